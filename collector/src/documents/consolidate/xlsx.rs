//! The consolidated report as an XLSX workbook: sheet "Đơn vị" (one row per unit) and sheet
//! "Tổng hợp" (one row per district or group, then the province), each under a title row with
//! the period. Figures stay numbers so they sort: percentages are fractions shown with a `%`
//! format, submission times are date-times shown `dd/mm/yyyy hh:mm` in Vietnam time.

use anyhow::Context;
use rust_xlsxwriter::{
    DocProperties, ExcelDateTime, Format, FormatAlign, FormatBorder, Workbook, Worksheet,
};
use time::OffsetDateTime;

use super::vi;
use super::{Consolidated, DistrictRate, UnitRow};
use crate::domain::vi::VIETNAM;

/// Row of the column headings; the annex line, the title and the subtitle are above it.
const HEADING_ROW: u32 = 3;
/// A4 in the spreadsheet's paper sizes.
const PAPER_A4: u8 = 9;
const FONT: &str = "Times New Roman";

/// Writes the workbook of `report`.
///
/// # Errors
///
/// Only if the XLSX writer refuses a value (for example a date outside the spreadsheet's range).
pub fn xlsx(report: &Consolidated) -> anyhow::Result<Vec<u8>> {
    let formats = Formats::default();
    let mut workbook = Workbook::new();
    // The creation time is when the figures were gathered, so the same report gives the same
    // bytes.
    let created = wall_clock(report.generated_at.to_offset(time::UtcOffset::UTC))?;
    workbook.set_properties(
        &DocProperties::new()
            .set_title(vi::workbook_title(report))
            .set_author(vi::GENERATOR)
            .set_creation_datetime(&created),
    );
    units_sheet(workbook.add_worksheet(), report, &formats).context("writing the units sheet")?;
    summary_sheet(workbook.add_worksheet(), report, &formats)
        .context("writing the summary sheet")?;
    workbook.save_to_buffer().context("packing the workbook")
}

/// The cell formats, all in Times New Roman with thin borders.
struct Formats {
    annex: Format,
    title: Format,
    subtitle: Format,
    heading: Format,
    text: Format,
    wrapped: Format,
    integer: Format,
    decimal: Format,
    percent: Format,
    availability: Format,
    date_time: Format,
    total_text: Format,
    total_integer: Format,
    total_percent: Format,
    total_availability: Format,
}

impl Default for Formats {
    fn default() -> Self {
        let base = Format::new()
            .set_font_name(FONT)
            .set_font_size(12)
            .set_border(FormatBorder::Thin)
            .set_align(FormatAlign::VerticalCenter);
        let bold = base.clone().set_bold();
        Formats {
            annex: Format::new()
                .set_font_name(FONT)
                .set_font_size(12)
                .set_italic()
                .set_align(FormatAlign::Right),
            title: Format::new()
                .set_font_name(FONT)
                .set_font_size(14)
                .set_bold()
                .set_align(FormatAlign::Center),
            subtitle: Format::new()
                .set_font_name(FONT)
                .set_font_size(12)
                .set_italic()
                .set_align(FormatAlign::Center),
            heading: bold
                .clone()
                .set_text_wrap()
                .set_align(FormatAlign::Center)
                .set_background_color(0xD9E1F2),
            text: base.clone(),
            wrapped: base.clone().set_text_wrap(),
            integer: base.clone().set_num_format("0"),
            decimal: base.clone().set_num_format("0.0"),
            percent: base.clone().set_num_format("0.0%"),
            availability: base.clone().set_num_format("0.00%"),
            date_time: base.clone().set_num_format("dd/mm/yyyy hh:mm"),
            total_text: bold.clone(),
            total_integer: bold.clone().set_num_format("0"),
            total_percent: bold.clone().set_num_format("0.0%"),
            total_availability: bold.set_num_format("0.00%"),
        }
    }
}

/// Incident kinds that get a column: the standard ones, then any other kind found in the rows.
fn kind_columns(report: &Consolidated) -> Vec<String> {
    let mut kinds: Vec<String> = vi::INCIDENT_KINDS.iter().map(|k| (*k).to_owned()).collect();
    for row in &report.rows {
        for (kind, _) in &row.incidents_by_kind {
            if !kinds.contains(kind) {
                kinds.push(kind.clone());
            }
        }
    }
    kinds.sort_by_key(|kind| vi::kind_order(kind));
    kinds
}

/// Writes the title, the subtitle and the headings, freezes the panes above `HEADING_ROW + 1`
/// and left of `frozen_columns`, and sets the page up for printing.
fn frame(
    sheet: &mut Worksheet,
    report: &Consolidated,
    formats: &Formats,
    headings: &[String],
    frozen_columns: u16,
    first_page_columns: Option<u16>,
) -> anyhow::Result<()> {
    // The annex line, title and subtitle span the columns of the first printed page, so they
    // are not cut between two pages.
    let last_column = match first_page_columns {
        Some(columns) => columns - 1,
        None => u16::try_from(headings.len() - 1).context("too many columns")?,
    };
    sheet.merge_range(0, 0, 0, last_column, &vi::annex(report), &formats.annex)?;
    sheet.merge_range(
        1,
        0,
        1,
        last_column,
        &vi::workbook_title(report),
        &formats.title,
    )?;
    sheet.merge_range(
        2,
        0,
        2,
        last_column,
        &vi::workbook_subtitle(report),
        &formats.subtitle,
    )?;
    sheet.set_row_height(1, 24)?;
    sheet.set_row_height(2, 32)?;
    sheet.set_row_height(HEADING_ROW, 48)?;
    for (column, heading) in (0..).zip(headings) {
        sheet.write_string_with_format(HEADING_ROW, column, heading, &formats.heading)?;
    }
    sheet.set_freeze_panes(HEADING_ROW + 1, frozen_columns)?;
    sheet.set_repeat_rows(HEADING_ROW, HEADING_ROW)?;
    sheet.set_paper_size(PAPER_A4);
    sheet.set_landscape();
    sheet.set_print_fit_to_pages(1, 0);
    Ok(())
}

fn units_sheet(
    sheet: &mut Worksheet,
    report: &Consolidated,
    formats: &Formats,
) -> anyhow::Result<()> {
    sheet.set_name(vi::SHEET_UNITS)?;
    let kinds = kind_columns(report);
    let mut headings: Vec<String> = vi::UNIT_HEADINGS.iter().map(|h| (*h).to_owned()).collect();
    headings.extend(kinds.iter().map(|kind| vi::kind_heading(kind)));
    headings.extend(vi::UNIT_FIGURE_HEADINGS.iter().map(|h| (*h).to_owned()));
    frame(sheet, report, formats, &headings, 3, Some(12))?;

    // Narrow enough for two landscape A4 pages at a legible scale, the unit's number, code and
    // name repeated on the second; long texts wrap.
    let widths = [
        4.0, 10.0, 24.0, 14.0, 11.0, 14.0, 6.0, 16.0, 12.0, 22.0, 7.0, 7.0,
    ];
    for (column, width) in (0..).zip(widths) {
        sheet.set_column_width(column, width)?;
    }
    let first_kind = u16::try_from(widths.len()).context("too many columns")?;
    let first_figure = first_kind + u16::try_from(kinds.len()).context("too many columns")?;
    for column in first_kind..first_figure {
        sheet.set_column_width(column, 8)?;
    }
    for column in first_figure..first_figure + 3 {
        sheet.set_column_width(column, 9)?;
    }
    sheet.set_column_width(first_figure + 3, 24)?;
    sheet.set_column_width(first_figure + 4, 32)?;
    sheet.set_print_fit_to_pages(2, 0);
    sheet.set_repeat_columns(0, 2)?;

    let mut row_index = HEADING_ROW;
    for (number, row) in (1_u32..).zip(&report.rows) {
        row_index += 1;
        unit_row(sheet, row_index, number, row, &kinds, formats)?;
        // Spreadsheets do not grow a row for wrapped text written by a program: give it the
        // lines its longest wrapped cell needs.
        let wrapped = [
            (row.name.as_str(), widths[2]),
            (row.district.as_str(), widths[3]),
            (&vi::qualification_reason(row), widths[9]),
            (row.note.as_str(), 24.0),
            (row.difficulties.as_str(), 32.0),
        ];
        let lines = wrapped
            .iter()
            .map(|(text, width)| lines_needed(text, *width))
            .max()
            .unwrap_or(1);
        if lines > 1 {
            sheet.set_row_height(row_index, 15.0 * f64::from(lines))?;
        }
    }
    if row_index > HEADING_ROW {
        sheet.autofilter(HEADING_ROW, 0, row_index, first_figure + 4)?;
    }
    totals_row(
        sheet,
        row_index + 1,
        report,
        &kinds,
        formats,
        first_figure + 4,
    )?;
    Ok(())
}

/// The totals under the units: units listed, machines, incidents of each kind. Availability is
/// not added up here: the "Tổng hợp" sheet has the province's figure with the units it covers.
fn totals_row(
    sheet: &mut Worksheet,
    at: u32,
    report: &Consolidated,
    kinds: &[String],
    formats: &Formats,
    last_column: u16,
) -> anyhow::Result<()> {
    for column in 0..=last_column {
        sheet.write_blank(at, column, &formats.total_text)?;
    }
    sheet.write_string_with_format(at, 2, vi::TOTAL, &formats.total_text)?;
    let versions: u32 = report.rows.iter().map(|row| row.versions).sum();
    sheet.write_number_with_format(at, 6, versions, &formats.total_integer)?;
    let agents: u32 = report.rows.iter().map(|row| row.agents).sum();
    sheet.write_number_with_format(at, 10, agents, &formats.total_integer)?;
    let incidents: u32 = report.rows.iter().map(|row| row.incidents).sum();
    sheet.write_number_with_format(at, 11, incidents, &formats.total_integer)?;
    for (column, kind) in (12_u16..).zip(kinds) {
        let count: u32 = report
            .rows
            .iter()
            .flat_map(|row| &row.incidents_by_kind)
            .filter(|(known, _)| known == kind)
            .map(|(_, count)| count)
            .sum();
        sheet.write_number_with_format(at, column, count, &formats.total_integer)?;
    }
    Ok(())
}

fn unit_row(
    sheet: &mut Worksheet,
    at: u32,
    number: u32,
    row: &UnitRow,
    kinds: &[String],
    formats: &Formats,
) -> anyhow::Result<()> {
    sheet.write_number_with_format(at, 0, number, &formats.integer)?;
    sheet.write_string_with_format(at, 1, &row.code, &formats.text)?;
    sheet.write_string_with_format(at, 2, &row.name, &formats.wrapped)?;
    sheet.write_string_with_format(at, 3, &row.district, &formats.wrapped)?;
    sheet.write_string_with_format(at, 4, row.state.label(), &formats.text)?;
    match row.submitted_at {
        Some(submitted_at) => {
            sheet.write_datetime_with_format(
                at,
                5,
                excel_date_time(submitted_at)?,
                &formats.date_time,
            )?;
        }
        None => {
            sheet.write_blank(at, 5, &formats.date_time)?;
        }
    }
    sheet.write_number_with_format(at, 6, row.versions, &formats.integer)?;
    match &row.officer {
        Some(officer) => sheet.write_string_with_format(at, 7, officer, &formats.text)?,
        None => sheet.write_blank(at, 7, &formats.text)?,
    };
    sheet.write_string_with_format(at, 8, vi::qualified(row), &formats.text)?;
    sheet.write_string_with_format(at, 9, vi::qualification_reason(row), &formats.wrapped)?;
    sheet.write_number_with_format(at, 10, row.agents, &formats.integer)?;
    sheet.write_number_with_format(at, 11, row.incidents, &formats.integer)?;
    let mut column = 12_u16;
    for kind in kinds {
        let count = row
            .incidents_by_kind
            .iter()
            .filter(|(known, _)| known == kind)
            .map(|(_, count)| count)
            .sum::<u32>();
        sheet.write_number_with_format(at, column, count, &formats.integer)?;
        column += 1;
    }
    optional_number(
        sheet,
        at,
        column,
        row.availability_lan,
        &formats.availability,
    )?;
    optional_number(
        sheet,
        at,
        column + 1,
        row.availability_wan,
        &formats.availability,
    )?;
    optional_number(
        sheet,
        at,
        column + 2,
        row.mean_time_to_recover_minutes,
        &formats.decimal,
    )?;
    sheet.write_string_with_format(at, column + 3, &row.note, &formats.wrapped)?;
    sheet.write_string_with_format(at, column + 4, &row.difficulties, &formats.wrapped)?;
    Ok(())
}

/// Lines `text` takes in a column `width` characters wide (a rough count: a column holds about
/// its width in characters of a 12 pt font).
fn lines_needed(text: &str, width: f64) -> u32 {
    let per_line = (width * 0.9).max(1.0);
    text.lines()
        .map(|line| {
            let chars = line.chars().count() as f64;
            (chars / per_line).ceil().max(1.0) as u32
        })
        .sum::<u32>()
        .max(1)
}

/// A number, or an empty cell with the same format when absent.
fn optional_number(
    sheet: &mut Worksheet,
    row: u32,
    column: u16,
    value: Option<f64>,
    format: &Format,
) -> anyhow::Result<()> {
    match value {
        Some(value) => sheet.write_number_with_format(row, column, value, format)?,
        None => sheet.write_blank(row, column, format)?,
    };
    Ok(())
}

/// The spreadsheet date-time of an instant in Vietnam time (spreadsheets have no time zones).
fn excel_date_time(at: OffsetDateTime) -> anyhow::Result<ExcelDateTime> {
    wall_clock(at.to_offset(VIETNAM))
}

/// The spreadsheet date-time of the date and time `at` shows in its own offset.
fn wall_clock(at: OffsetDateTime) -> anyhow::Result<ExcelDateTime> {
    let year = u16::try_from(at.year()).context("year before the common era")?;
    ExcelDateTime::from_ymd(year, u8::from(at.month()), at.day())
        .and_then(|date| date.and_hms(u16::from(at.hour()), at.minute(), at.second()))
        .with_context(|| format!("date {at} outside the spreadsheet's range"))
}

fn summary_sheet(
    sheet: &mut Worksheet,
    report: &Consolidated,
    formats: &Formats,
) -> anyhow::Result<()> {
    sheet.set_name(vi::SHEET_SUMMARY)?;
    let headings: Vec<String> = vi::RATE_HEADINGS.iter().map(|h| (*h).to_owned()).collect();
    frame(sheet, report, formats, &headings, 2, None)?;
    let widths = [
        5.0, 30.0, 9.0, 9.0, 9.0, 9.0, 10.0, 9.0, 10.0, 11.0, 9.0, 11.0, 12.0, 12.0,
    ];
    for (column, width) in (0..).zip(widths) {
        sheet.set_column_width(column, width)?;
    }
    let mut at = HEADING_ROW;
    for (number, district) in (1_u32..).zip(&report.districts) {
        at += 1;
        rate_row(sheet, at, Some(number), district, formats, false)?;
    }
    rate_row(sheet, at + 1, None, &report.province, formats, true)?;
    Ok(())
}

fn rate_row(
    sheet: &mut Worksheet,
    at: u32,
    number: Option<u32>,
    rate: &DistrictRate,
    formats: &Formats,
    total: bool,
) -> anyhow::Result<()> {
    let (text, integer, percent, availability) = if total {
        (
            &formats.total_text,
            &formats.total_integer,
            &formats.total_percent,
            &formats.total_availability,
        )
    } else {
        (
            &formats.text,
            &formats.integer,
            &formats.percent,
            &formats.availability,
        )
    };
    match number {
        Some(number) => sheet.write_number_with_format(at, 0, number, integer)?,
        None => sheet.write_blank(at, 0, integer)?,
    };
    sheet.write_string_with_format(at, 1, &rate.name, text)?;
    let counts = [
        rate.required,
        rate.on_time,
        rate.late,
        rate.missing,
        rate.pending,
        rate.submitted(),
    ];
    for (column, count) in (2..).zip(counts) {
        sheet.write_number_with_format(at, column, count, integer)?;
    }
    optional_number(sheet, at, 8, rate.submission_rate(), percent)?;
    optional_number(sheet, at, 9, rate.on_time_rate(), percent)?;
    sheet.write_number_with_format(at, 10, rate.incidents, integer)?;
    optional_number(sheet, at, 11, rate.availability_wan, availability)?;
    sheet.write_number_with_format(at, 12, rate.measured_units, integer)?;
    sheet.write_number_with_format(at, 13, rate.measured_agents, integer)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Read};

    use super::*;
    use crate::documents::consolidate::example;

    fn part(bytes: &[u8], name: &str) -> String {
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).expect("an XLSX is a zip");
        let mut text = String::new();
        archive
            .by_name(name)
            .unwrap_or_else(|_| panic!("{name} in the workbook"))
            .read_to_string(&mut text)
            .unwrap();
        text
    }

    #[test]
    fn workbook_has_both_sheets_frozen_headings_and_numeric_percentages() {
        let bytes = xlsx(&example()).unwrap();
        let workbook = part(&bytes, "xl/workbook.xml");
        assert!(
            workbook.contains(r#"<sheet name="Đơn vị" sheetId="1""#),
            "{workbook}"
        );
        assert!(
            workbook.contains(r#"<sheet name="Tổng hợp" sheetId="2""#),
            "{workbook}"
        );
        let units = part(&bytes, "xl/worksheets/sheet1.xml");
        assert!(units.contains(r#"state="frozen""#), "frozen panes");
        assert!(units.contains(r#"topLeftCell="D5""#), "{units}");
        assert!(units.contains("<autoFilter"), "sortable");
        // Sở Tài chính's WAN availability, as a number, not text.
        assert!(units.contains("<v>0.9969</v>"), "{units}");
        let styles = part(&bytes, "xl/styles.xml");
        assert!(styles.contains(r#"formatCode="0.00%""#), "{styles}");
        assert!(styles.contains(r#"formatCode="dd/mm/yyyy hh:mm""#));
        assert!(styles.contains("Times New Roman"));
        let strings = part(&bytes, "xl/sharedStrings.xml");
        for expected in [
            "TỔNG HỢP TÌNH HÌNH ỨNG DỤNG CNTT QUÝ IV NĂM 2026",
            "Sở Giáo dục và Đào tạo",
            "Chưa nộp",
            "Trễ hạn",
            "Không phải nộp",
            "Trình độ tiếng Anh chưa đạt bậc B",
            "Khả dụng WAN (%)",
            "Sự cố An toàn thông tin",
            "Toàn tỉnh",
            "Tỷ lệ nộp (%)",
            "Phụ lục kèm theo Báo cáo số ……/BC-SKHCN ngày 15/12/2026",
            "Tổng cộng",
            "Khó khăn, vướng mắc, đề xuất của đơn vị",
        ] {
            assert!(strings.contains(expected), "{expected} in {strings}");
        }
        let summary = part(&bytes, "xl/worksheets/sheet2.xml");
        // 4 groups and the province under the headings (rows 5 to 9), the province's rate 0.7.
        assert!(summary.contains(r#"<row r="9""#), "{summary}");
        assert!(summary.contains("<v>0.7</v>"), "{summary}");
    }

    #[test]
    fn the_same_report_gives_the_same_bytes() {
        assert_eq!(xlsx(&example()).unwrap(), xlsx(&example()).unwrap());
    }

    #[test]
    fn unknown_incident_kinds_get_their_own_column_after_the_standard_ones() {
        let mut report = example();
        report.rows[0]
            .incidents_by_kind
            .push(("power".to_owned(), 2));
        let kinds = kind_columns(&report);
        assert_eq!(kinds.len(), 8);
        assert_eq!(kinds[0], "lan");
        assert_eq!(kinds[7], "power");
        let bytes = xlsx(&report).unwrap();
        assert!(part(&bytes, "xl/sharedStrings.xml").contains("Sự cố power"));
    }

    #[test]
    fn submission_times_are_vietnam_time() {
        let at = time::macros::datetime!(2026-12-10 16:59:30 UTC);
        let expected = ExcelDateTime::from_ymd(2026, 12, 10)
            .unwrap()
            .and_hms(23, 59, 30)
            .unwrap();
        assert_eq!(excel_date_time(at).unwrap().to_excel(), expected.to_excel());
    }
}
