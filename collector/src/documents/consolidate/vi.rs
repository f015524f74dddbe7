//! Every Vietnamese word of the consolidated report: labels of states and incident kinds, column
//! headings, number and date formats, and the narrative of the DOCX ([`narrative`]), composed as
//! plain blocks so the wording is reviewed (and snapshot-tested) apart from the layout.
//!
//! Numbers use a comma for decimals and a dot for thousands (`1.234,5`); dates are `dd/mm/yyyy`;
//! times are 24-hour in Vietnam's time (+07:00).

use std::fmt::Write;

use time::{Date, OffsetDateTime};

use super::{Consolidated, DistrictRate, SubmissionState, UnitRow};
use crate::domain::vi::VIETNAM;

/// Incident kinds in the order columns and sentences list them.
pub(super) const INCIDENT_KINDS: [&str; 7] = [
    "lan", "wan", "internet", "server", "host", "security", "other",
];

/// The state of a unit's report as people read it.
pub(super) fn state(state: SubmissionState) -> &'static str {
    match state {
        SubmissionState::OnTime => "Đúng hạn",
        SubmissionState::Late => "Trễ hạn",
        SubmissionState::Missing => "Chưa nộp",
        SubmissionState::Pending => "Chưa đến hạn",
        SubmissionState::NotRequired => "Không phải nộp",
    }
}

/// Short name of an incident kind, for a column heading.
pub(super) fn kind_short(kind: &str) -> String {
    match kind {
        "lan" => "LAN".to_owned(),
        "wan" => "WAN".to_owned(),
        "internet" => "Internet".to_owned(),
        "server" => "Máy chủ, dịch vụ".to_owned(),
        "host" => "Tài nguyên máy".to_owned(),
        "security" => "An toàn thông tin".to_owned(),
        "other" => "Khác".to_owned(),
        unknown => unknown.to_owned(),
    }
}

/// An incident kind inside a sentence ("3 sự cố {kind}").
fn kind_phrase(kind: &str) -> String {
    match kind {
        "lan" => "mạng nội bộ (LAN)".to_owned(),
        "wan" => "đường truyền, thiết bị WAN".to_owned(),
        "internet" => "kết nối Internet".to_owned(),
        "server" => "máy chủ, dịch vụ".to_owned(),
        "host" => "tài nguyên máy (đĩa, bộ nhớ)".to_owned(),
        "security" => "an toàn thông tin".to_owned(),
        "other" => "khác".to_owned(),
        unknown => format!("loại {unknown}"),
    }
}

/// Whether the officer meets the standards, for a cell.
pub(super) fn qualified(row: &UnitRow) -> &'static str {
    match row.officer_qualified {
        Some(true) => "Đạt",
        Some(false) => "Chưa đạt",
        None => "Chưa có cán bộ",
    }
}

/// Why the unit has no qualified officer; empty when it has one.
pub(super) fn qualification_reason(row: &UnitRow) -> String {
    match row.officer_qualified {
        Some(true) => String::new(),
        Some(false) if row.qualification_gap.is_empty() => "Chưa đạt tiêu chuẩn".to_owned(),
        Some(false) => row.qualification_gap.clone(),
        None => "Chưa có cán bộ chuyên trách CNTT được đăng ký".to_owned(),
    }
}

/// Column headings of the "Đơn vị" sheet before the incident kinds.
pub(super) const UNIT_HEADINGS: [&str; 12] = [
    "STT",
    "Mã đơn vị",
    "Tên đơn vị",
    "Khối, địa bàn",
    "Trạng thái nộp",
    "Thời điểm nộp",
    "Số lần nộp",
    "Cán bộ chuyên trách",
    "Đạt chuẩn",
    "Lý do chưa đạt",
    "Số máy giám sát",
    "Số sự cố",
];

/// Heading of an incident kind's column.
pub(super) fn kind_heading(kind: &str) -> String {
    format!("Sự cố {}", kind_short(kind))
}

/// Column headings of the "Đơn vị" sheet after the incident kinds.
pub(super) const UNIT_FIGURE_HEADINGS: [&str; 5] = [
    "Khả dụng LAN (%)",
    "Khả dụng WAN (%)",
    "Thời gian khắc phục TB (phút)",
    "Ghi chú",
    "Khó khăn, vướng mắc, đề xuất của đơn vị",
];

/// Column headings of the "Tổng hợp" sheet.
pub(super) const RATE_HEADINGS: [&str; 14] = [
    "STT",
    "Khối, địa bàn",
    "Phải nộp",
    "Đúng hạn",
    "Trễ hạn",
    "Chưa nộp",
    "Chưa đến hạn",
    "Đã nộp",
    "Tỷ lệ nộp (%)",
    "Tỷ lệ đúng hạn (%)",
    "Số sự cố",
    "Khả dụng WAN (%)",
    "Đơn vị có số liệu WAN",
    "Số máy của các đơn vị đó",
];

/// Column headings of the DOCX summary table: those of the "Tổng hợp" sheet less "Đã nộp",
/// so that the figures fit an A4 page.
pub(super) const TABLE_HEADINGS: [&str; 11] = [
    "STT",
    "Khối, địa bàn",
    "Phải nộp",
    "Đúng hạn",
    "Trễ hạn",
    "Chưa nộp",
    "Chưa đến hạn",
    "Tỷ lệ nộp (%)",
    "Tỷ lệ đúng hạn (%)",
    "Số sự cố",
    "Khả dụng WAN (%)",
];

/// Sheet names.
pub(super) const SHEET_UNITS: &str = "Đơn vị";
/// Sheet names.
pub(super) const SHEET_SUMMARY: &str = "Tổng hợp";

/// Title of the workbook's sheets: `TỔNG HỢP TÌNH HÌNH ỨNG DỤNG CNTT QUÝ IV NĂM 2026`.
pub(super) fn workbook_title(report: &Consolidated) -> String {
    format!("{} {}", TITLE_ABSTRACT, report.period_vi).to_uppercase()
}

/// The second line of each sheet: data window, due date, when the figures were gathered.
pub(super) fn workbook_subtitle(report: &Consolidated) -> String {
    format!(
        "Kỳ báo cáo {} ({}); số liệu từ ngày {} đến ngày {}; hạn nộp báo cáo: {}; tổng hợp lúc {}.",
        report.period,
        report.period_vi,
        date(report.data_from),
        date(report.data_to),
        date(report.due),
        date_time(report.generated_at),
    )
}

/// `dd/mm/yyyy`.
pub(super) fn date(date: Date) -> String {
    format!(
        "{:02}/{:02}/{}",
        date.day(),
        u8::from(date.month()),
        date.year()
    )
}

/// `HH:MM dd/mm/yyyy` in Vietnam's time.
pub(super) fn date_time(at: OffsetDateTime) -> String {
    let at = at.to_offset(VIETNAM);
    format!("{:02}:{:02} {}", at.hour(), at.minute(), date(at.date()))
}

/// The date line of Nghị định 30/2020: `Đắk Nông, ngày 05 tháng 02 năm 2026`. Days below 10 and
/// the months January and February take a leading zero; other months do not.
pub(super) fn place_date(place: &str, date: Date) -> String {
    let month = u8::from(date.month());
    let month = if month < 3 {
        format!("{month:02}")
    } else {
        month.to_string()
    };
    format!(
        "{place}, ngày {:02} tháng {month} năm {}",
        date.day(),
        date.year()
    )
}

/// A number with exactly `places` decimals, Vietnamese style: `1.234,5`, `42,0`, `0,75`. The
/// decimals are never trimmed, so a value prints the same in every document (the XLSX formats
/// `0.0%` and `0.00%` show the same digits).
pub(super) fn decimal(value: f64, places: usize) -> String {
    let fixed = format!("{:.*}", places, value.abs());
    let (whole, fraction) = fixed.split_once('.').unwrap_or((&fixed, ""));
    let mut out = String::new();
    if value < 0.0 && fixed.bytes().any(|b| b.is_ascii_digit() && b != b'0') {
        out.push('-');
    }
    for (index, digit) in whole.chars().enumerate() {
        if index > 0 && (whole.len() - index) % 3 == 0 {
            out.push('.');
        }
        out.push(digit);
    }
    if !fraction.is_empty() {
        out.push(',');
        out.push_str(fraction);
    }
    out
}

/// A share `0..=1` as a percentage with `places` decimals: `99,50%`, `100,0%`.
pub(super) fn percent(share: f64, places: usize) -> String {
    format!("{}%", decimal(share * 100.0, places))
}

/// Decimals of a submission rate in every document (DOCX text and table, XLSX `0.0%`).
pub(super) const RATE_PLACES: usize = 1;
/// Decimals of an availability in every document (DOCX text and table, XLSX `0.00%`, the
/// officer's report), as rounded once by `reports::round_percent`.
pub(super) const AVAILABILITY_PLACES: usize = 2;
/// Decimals of minutes.
pub(super) const MINUTE_PLACES: usize = 1;

/// A submission rate: `70,0%`.
fn rate(share: f64) -> String {
    percent(share, RATE_PLACES)
}

/// An availability: `99,03%`.
fn availability(share: f64) -> String {
    percent(share, AVAILABILITY_PLACES)
}

/// What a cell or sentence says where no figure was measured.
pub(super) const NO_DATA: &str = "không có số liệu";

/// The note of a unit that ended before the due date.
pub(super) fn counted_for(name: &str, code: &str) -> String {
    format!("Đã kết thúc trước hạn nộp; báo cáo, số liệu được tính cho {name} (mã {code})")
}

/// The note of a unit that answers for ended units.
pub(super) fn includes(units: &[(String, String)]) -> String {
    let names: Vec<String> = units
        .iter()
        .map(|(name, code)| format!("{name} (mã {code})"))
        .collect();
    format!(
        "Gồm báo cáo, số liệu của đơn vị đã kết thúc: {}",
        names.join("; ")
    )
}

/// The heading of the workbook's annex line: `Phụ lục kèm theo Báo cáo số ……/BC-SKHCN ngày
/// 15/12/2026`.
pub(super) fn annex(report: &Consolidated) -> String {
    format!(
        "Phụ lục kèm theo Báo cáo số {} ngày {}",
        report.header.number,
        date(report.header.date)
    )
}

/// Label of the totals row of the units sheet.
pub(super) const TOTAL: &str = "Tổng cộng";

/// Abstract of the title (trích yếu), before the period.
pub(super) const TITLE_ABSTRACT: &str = "Tổng hợp tình hình ứng dụng CNTT";
/// Kind of document (tên loại).
pub(super) const DOCUMENT_KIND: &str = "BÁO CÁO";
/// National name (quốc hiệu).
pub(super) const NATIONAL_NAME: &str = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM";
/// Motto (tiêu ngữ).
pub(super) const MOTTO: &str = "Độc lập - Tự do - Hạnh phúc";
/// Heading of the recipients' list.
pub(super) const RECIPIENTS: &str = "Nơi nhận:";
/// Caption of the DOCX summary table.
pub(super) const TABLE_CAPTION: &str = "Bảng tổng hợp tình hình nộp báo cáo theo khối, địa bàn";
/// Name of the document's author in its properties.
pub(super) const GENERATOR: &str = "Hệ thống giám sát hạ tầng CNTT";

/// `Số: ……/BC-SKHCN`.
pub(super) fn number(number: &str) -> String {
    format!("Số: {number}")
}

/// `Kính gửi: Ủy ban nhân dân tỉnh.`
pub(super) fn addressee(addressee: &str) -> String {
    format!("Kính gửi: {addressee}.")
}

/// The full title's abstract: `Tổng hợp tình hình ứng dụng CNTT quý IV năm 2026`.
pub(super) fn title(report: &Consolidated) -> String {
    format!("{TITLE_ABSTRACT} {}", report.period_vi)
}

/// One block of the DOCX body, laid out by `docx.rs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Block {
    /// A section heading (`I. …`), bold.
    Heading(String),
    /// A justified paragraph with a first-line indent.
    Paragraph(String),
    /// A list item; the layout adds the `- ` prefix.
    Item(String),
    /// A line left for the Sở to complete by hand.
    ToComplete(String),
}

/// The body of the DOCX from the figures: sections I–IV (the summary table and [`closing`]
/// follow them). Every sentence states only what a row of the annex (the workbook) shows: counts
/// from the "Tổng hợp" sheet, names and figures from the "Đơn vị" sheet.
pub(super) fn narrative(report: &Consolidated) -> Vec<Block> {
    let mut blocks = Vec::new();
    reporting(report, &mut blocks);
    incidents(report, &mut blocks);
    officers(report, &mut blocks);
    assessment(report, &mut blocks);
    blocks
}

/// Rows of units that owed a report for the period.
fn required_rows(report: &Consolidated) -> impl Iterator<Item = &UnitRow> {
    report
        .rows
        .iter()
        .filter(|row| row.state != SubmissionState::NotRequired)
}

/// `Sở Y tế (Khối sở, ban, ngành)`.
fn unit_with_group(row: &UnitRow) -> String {
    format!("{} ({})", row.name, row.district)
}

/// `5/10 đơn vị (50,0%)`, or `0/0 đơn vị` when none was required.
fn counted(part: u32, rate_of: &DistrictRate) -> String {
    match rate_of.submission_rate() {
        Some(_) => format!(
            "{part}/{} đơn vị ({})",
            rate_of.required,
            rate(f64::from(part) / f64::from(rate_of.required))
        ),
        None => format!("{part}/0 đơn vị"),
    }
}

fn reporting(report: &Consolidated, blocks: &mut Vec<Block>) {
    let province = &report.province;
    blocks.push(Block::Heading(
        "I. TÌNH HÌNH THỰC HIỆN CHẾ ĐỘ BÁO CÁO ĐỊNH KỲ".to_owned(),
    ));
    let due = match &report.extension {
        Some(extension) => format!(
            "{} (được gia hạn từ ngày {}; lý do: {})",
            date(report.due),
            date(extension.rule_due),
            extension.reason
        ),
        None => date(report.due),
    };
    blocks.push(Block::Paragraph(format!(
        "Thực hiện Quy chế quản lý chuyên môn nghiệp vụ đối với cán bộ, công chức, viên chức \
         chuyên trách công nghệ thông tin (CNTT) ban hành kèm theo Quyết định số \
         02/2017/QĐ-UBND ngày 24/01/2017 của Ủy ban nhân dân (UBND) tỉnh (Điều 12), các cơ quan, \
         đơn vị báo cáo định kỳ kết quả công tác CNTT {}. Thời gian chốt số liệu từ ngày {} đến \
         ngày {}; hạn nộp báo cáo của các đơn vị là ngày {due}.",
        report.period_vi,
        date(report.data_from),
        date(report.data_to),
    )));
    if report.deadline_passed {
        blocks.push(Block::Paragraph(format!(
            "Toàn tỉnh có {} đơn vị phải báo cáo; đã nộp {}, trong đó đúng hạn {}, trễ hạn {} \
             đơn vị; chưa nộp {} đơn vị.",
            province.required,
            counted(province.submitted(), province),
            counted(province.on_time, province),
            province.late,
            province.missing,
        )));
    } else {
        blocks.push(Block::Paragraph(format!(
            "Đến thời điểm tổng hợp ({}), chưa đến hạn nộp báo cáo. Toàn tỉnh có {} đơn vị phải \
             báo cáo; đã nộp {}; {} đơn vị chưa nộp (chưa đến hạn).",
            date_time(report.generated_at),
            province.required,
            counted(province.submitted(), province),
            province.pending,
        )));
    }
    blocks.push(Block::Paragraph(
        "Tình hình nộp báo cáo theo từng khối, địa bàn (chi tiết tại bảng tổng hợp kèm theo):"
            .to_owned(),
    ));
    for district in &report.districts {
        let mut item = format!(
            "{}: đã nộp {}",
            district.name,
            counted(district.submitted(), district)
        );
        if report.deadline_passed {
            let _ = write!(
                item,
                ", đúng hạn {}, trễ hạn {}, chưa nộp {}",
                district.on_time, district.late, district.missing,
            );
        }
        if district.pending > 0 {
            let _ = write!(item, ", chưa đến hạn {}", district.pending);
        }
        item.push(';');
        blocks.push(Block::Item(item));
    }
    if let Some(Block::Item(last)) = blocks.last_mut() {
        last.pop();
        last.push('.');
    }
    if report.deadline_passed {
        list_units(
            blocks,
            required_rows(report).filter(|row| row.state == SubmissionState::Missing),
            "Các đơn vị chưa nộp báo cáo",
            "Không có đơn vị nào chưa nộp báo cáo sau hạn.",
            unit_with_group,
        );
        list_units(
            blocks,
            required_rows(report).filter(|row| row.state == SubmissionState::Late),
            "Các đơn vị nộp báo cáo trễ hạn",
            "Không có đơn vị nào nộp báo cáo trễ hạn.",
            |row| match row.submitted_at {
                Some(at) => format!("{}, nộp lúc {}", unit_with_group(row), date_time(at)),
                None => unit_with_group(row),
            },
        );
    }
    let ended: Vec<&UnitRow> = report
        .rows
        .iter()
        .filter(|row| row.state == SubmissionState::NotRequired && !row.note.is_empty())
        .collect();
    if !ended.is_empty() {
        let names: Vec<String> = ended
            .iter()
            .map(|row| format!("{}: {}", row.name, lowercase_first(&row.note)))
            .collect();
        blocks.push(Block::Paragraph(format!(
            "Đơn vị đã kết thúc hoạt động trước hạn nộp ({} đơn vị): {}.",
            ended.len(),
            names.join("; ")
        )));
    }
}

/// A paragraph naming units, or `none` when there are none.
fn list_units<'a>(
    blocks: &mut Vec<Block>,
    rows: impl Iterator<Item = &'a UnitRow>,
    lead: &str,
    none: &str,
    describe: impl Fn(&UnitRow) -> String,
) {
    let names: Vec<String> = rows.map(describe).collect();
    if names.is_empty() {
        blocks.push(Block::Paragraph(none.to_owned()));
    } else {
        blocks.push(Block::Paragraph(format!(
            "{lead} ({} đơn vị): {}.",
            names.len(),
            names.join("; ")
        )));
    }
}

fn incidents(report: &Consolidated, blocks: &mut Vec<Block>) {
    blocks.push(Block::Heading(
        "II. TÌNH HÌNH SỰ CỐ VÀ KHẢ DỤNG HẠ TẦNG".to_owned(),
    ));
    let rows: Vec<&UnitRow> = report.rows.iter().collect();
    let agents: u32 = rows.iter().map(|row| row.agents).sum();
    let monitored = rows.iter().filter(|row| row.agents > 0).count();
    let total: u32 = rows.iter().map(|row| row.incidents).sum();
    let affected = rows.iter().filter(|row| row.incidents > 0).count();
    if agents == 0 {
        blocks.push(Block::Paragraph(format!(
            "Trong thời gian chốt số liệu, chưa có máy nào của các đơn vị được hệ thống giám sát \
             theo dõi, nên {NO_DATA} về sự cố và khả dụng hạ tầng."
        )));
        return;
    }
    let mut sentence = format!(
        "Trong thời gian chốt số liệu, hệ thống giám sát theo dõi {agents} máy tại {monitored} \
         đơn vị và ghi nhận {total} sự cố tại {affected} đơn vị"
    );
    let by_kind = incidents_by_kind(&rows);
    if by_kind.is_empty() {
        sentence.push('.');
    } else {
        let parts: Vec<String> = by_kind
            .iter()
            .map(|(kind, count)| format!("{count} sự cố {}", kind_phrase(kind)))
            .collect();
        let _ = write!(sentence, ", gồm: {}.", parts.join(", "));
    }
    blocks.push(Block::Paragraph(sentence));
    let unmonitored: Vec<&UnitRow> = required_rows(report)
        .filter(|row| row.agents == 0)
        .collect();
    if !unmonitored.is_empty() {
        let names: Vec<String> = unmonitored.iter().map(|row| row.name.clone()).collect();
        blocks.push(Block::Paragraph(format!(
            "{} đơn vị chưa có máy được giám sát nên {NO_DATA} khả dụng: {}.",
            unmonitored.len(),
            names.join("; ")
        )));
    }

    let province = &report.province;
    let mut figures = Vec::new();
    match province.availability_wan {
        Some(wan) => figures.push(format!(
            "khả dụng đường truyền WAN bình quân của {} đơn vị có số liệu đo ({} máy) đạt {}",
            province.measured_units,
            province.measured_agents,
            availability(wan)
        )),
        None => figures.push(format!("khả dụng đường truyền WAN: {NO_DATA}")),
    }
    let lan: Vec<f64> = rows.iter().filter_map(|row| row.availability_lan).collect();
    match super::mean_share(&lan) {
        Some(mean) => figures.push(format!(
            "khả dụng mạng nội bộ (LAN) bình quân của {} đơn vị có số liệu đo đạt {}",
            lan.len(),
            availability(mean)
        )),
        None => figures.push(format!("khả dụng mạng nội bộ (LAN): {NO_DATA}")),
    }
    if let Some(minutes) = weighted_time_to_recover(&rows) {
        figures.push(format!(
            "thời gian khắc phục sự cố trung bình là {} phút",
            decimal(minutes, MINUTE_PLACES)
        ));
    }
    blocks.push(Block::Paragraph(capitalize(&format!(
        "{}.",
        figures.join("; ")
    ))));

    if province.measured_units == 0 {
        return;
    }
    let mut lowest: Vec<(&UnitRow, f64)> = rows
        .iter()
        .filter_map(|row| Some((*row, row.availability_wan?)))
        .filter(|(_, wan)| *wan < WAN_TARGET)
        .collect();
    lowest.sort_by(|a, b| a.1.total_cmp(&b.1));
    if lowest.is_empty() {
        blocks.push(Block::Paragraph(format!(
            "Cả {} đơn vị có số liệu đo đều đạt khả dụng WAN từ {} trở lên.",
            province.measured_units,
            availability(WAN_TARGET)
        )));
    } else {
        let names: Vec<String> = lowest
            .iter()
            .map(|(row, wan)| format!("{} ({})", row.name, availability(*wan)))
            .collect();
        blocks.push(Block::Paragraph(format!(
            "Các đơn vị có khả dụng WAN dưới {}: {}.",
            availability(WAN_TARGET),
            names.join("; ")
        )));
    }
}

/// WAN availability below which a unit is named in section II.
const WAN_TARGET: f64 = 0.99;

/// Incident counts summed over rows, standard kinds first in their order, then others by name;
/// kinds with no incident left out.
pub(super) fn incidents_by_kind(rows: &[&UnitRow]) -> Vec<(String, u32)> {
    let mut totals: Vec<(String, u32)> = Vec::new();
    for row in rows {
        for (kind, count) in &row.incidents_by_kind {
            match totals.iter_mut().find(|(known, _)| known == kind) {
                Some((_, total)) => *total += count,
                None => totals.push((kind.clone(), *count)),
            }
        }
    }
    totals.retain(|(_, count)| *count > 0);
    totals.sort_by_key(|(kind, _)| kind_order(kind));
    totals
}

/// Sort key of a kind: standard kinds by their place, others after them by name.
pub(super) fn kind_order(kind: &str) -> (usize, String) {
    match INCIDENT_KINDS.iter().position(|known| *known == kind) {
        Some(index) => (index, String::new()),
        None => (INCIDENT_KINDS.len(), kind.to_owned()),
    }
}

/// Mean time to recover over the province, each unit's mean weighted by its incidents.
fn weighted_time_to_recover(rows: &[&UnitRow]) -> Option<f64> {
    let (sum, weight) = rows
        .iter()
        .filter_map(|row| Some((row.mean_time_to_recover_minutes?, row.incidents.max(1))))
        .fold((0.0, 0_u32), |(sum, weight), (minutes, n)| {
            (sum + minutes * f64::from(n), weight + n)
        });
    (weight > 0).then(|| sum / f64::from(weight))
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn officers(report: &Consolidated, blocks: &mut Vec<Block>) {
    blocks.push(Block::Heading(
        "III. ĐỘI NGŨ CÁN BỘ CHUYÊN TRÁCH CÔNG NGHỆ THÔNG TIN".to_owned(),
    ));
    let required: Vec<&UnitRow> = required_rows(report).collect();
    let unqualified: Vec<&UnitRow> = required
        .iter()
        .copied()
        .filter(|row| row.officer_qualified != Some(true))
        .collect();
    let qualified = required.len() - unqualified.len();
    blocks.push(Block::Paragraph(format!(
        "{qualified}/{} đơn vị có cán bộ chuyên trách CNTT đạt tiêu chuẩn theo Điều 4 của Quy \
         chế ban hành kèm theo Quyết định số 02/2017/QĐ-UBND.",
        required.len()
    )));
    if unqualified.is_empty() {
        return;
    }
    blocks.push(Block::Paragraph(format!(
        "Các đơn vị chưa có cán bộ chuyên trách đạt tiêu chuẩn ({} đơn vị):",
        unqualified.len()
    )));
    let n_items = unqualified.len();
    for (index, row) in unqualified.iter().enumerate() {
        let reason = qualification_reason(row);
        let end = if index + 1 == n_items { '.' } else { ';' };
        // The check names each officer in its reason ("Lê Minh Châu: …"); names stay as written.
        let text = match &row.officer {
            Some(officer) if reason.starts_with(officer.as_str()) => reason,
            Some(officer) => format!("(cán bộ: {officer}): {}", lowercase_first(&reason)),
            None => lowercase_first(&reason),
        };
        let separator = if text.starts_with('(') { " " } else { ": " };
        blocks.push(Block::Item(format!(
            "{}{separator}{}{end}",
            row.name,
            text.trim_end_matches(['.', ';'])
        )));
    }
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// How the units' difficulties open in section IV.
const DIFFICULTIES_LEAD: &str = "Khó khăn, vướng mắc và đề xuất, kiến nghị của các đơn vị";

/// What the units wrote under "difficulties and proposals", one item per unit, as written.
fn difficulties(report: &Consolidated, blocks: &mut Vec<Block>) {
    let written: Vec<&UnitRow> = report
        .rows
        .iter()
        .filter(|row| !row.difficulties.trim().is_empty() && !says_none(&row.difficulties))
        .collect();
    let submitted = report.rows.iter().filter(|row| row.versions > 0).count();
    if written.is_empty() {
        blocks.push(Block::Paragraph(if submitted == 0 {
            format!("{DIFFICULTIES_LEAD}: chưa có báo cáo của đơn vị nào.")
        } else {
            format!(
                "{DIFFICULTIES_LEAD}: {submitted} đơn vị đã nộp báo cáo không nêu khó khăn, \
                 vướng mắc."
            )
        }));
        return;
    }
    blocks.push(Block::Paragraph(format!(
        "{DIFFICULTIES_LEAD}: {} đơn vị nêu ý kiến (chi tiết tại cột \"{}\" của phụ lục):",
        written.len(),
        UNIT_FIGURE_HEADINGS[4]
    )));
    for row in written {
        let text: Vec<&str> = row
            .difficulties
            .lines()
            .map(|line| {
                line.trim()
                    .trim_start_matches("- ")
                    .trim_start_matches("* ")
            })
            .filter(|line| !line.is_empty())
            .collect();
        let mut text = text.join(" ");
        if !text.ends_with(['.', ';', '!', '?']) {
            text.push('.');
        }
        blocks.push(Block::Item(format!("{}: {text}", row.name)));
    }
}

/// Whether an officer wrote only "Không có" (or the like).
fn says_none(text: &str) -> bool {
    let text = text.trim().trim_end_matches('.').to_lowercase();
    matches!(
        text.as_str(),
        "không" | "không có" | "không có khó khăn" | "không có ý kiến"
    )
}

fn assessment(report: &Consolidated, blocks: &mut Vec<Block>) {
    blocks.push(Block::Heading("IV. ĐÁNH GIÁ CHUNG VÀ ĐỀ XUẤT".to_owned()));
    difficulties(report, blocks);
    let province = &report.province;
    let mut sentences = Vec::new();
    match (report.deadline_passed, province.on_time_rate()) {
        (false, _) => sentences.push(format!(
            "Chưa đến hạn nộp báo cáo (ngày {}) nên chưa đánh giá việc chấp hành chế độ báo cáo \
             định kỳ {}",
            date(report.due),
            report.period_vi
        )),
        (true, Some(on_time)) => sentences.push(format!(
            "Việc chấp hành chế độ báo cáo định kỳ {} {}: tỷ lệ nộp báo cáo đạt {}, tỷ lệ nộp \
             đúng hạn đạt {}",
            report.period_vi,
            grade(on_time),
            rate(province.submission_rate().unwrap_or(on_time)),
            rate(on_time),
        )),
        (true, None) => sentences.push(format!(
            "Không có đơn vị nào phải báo cáo {}",
            report.period_vi
        )),
    }
    if let Some(wan) = province.availability_wan {
        let quality = if wan >= WAN_TARGET {
            "ổn định"
        } else {
            "chưa ổn định"
        };
        sentences.push(format!(
            "tại {} đơn vị có số liệu đo, hạ tầng đường truyền WAN hoạt động {quality} (khả dụng \
             bình quân {})",
            province.measured_units,
            availability(wan)
        ));
    }
    blocks.push(Block::Paragraph(format!("{}.", sentences.join("; "))));

    let mut proposals = Vec::new();
    if report.deadline_passed && province.missing > 0 {
        proposals.push(format!(
            "đề nghị {} đơn vị chưa nộp báo cáo khẩn trương hoàn thành và gửi về Sở",
            province.missing
        ));
    }
    let unqualified = required_rows(report)
        .filter(|row| row.officer_qualified != Some(true))
        .count();
    if unqualified > 0 {
        proposals.push(format!(
            "đề nghị {unqualified} đơn vị chưa có cán bộ chuyên trách đạt tiêu chuẩn bố trí, cử \
             cán bộ đi đào tạo, bồi dưỡng theo quy định"
        ));
    }
    let unmonitored = required_rows(report).filter(|row| row.agents == 0).count();
    if unmonitored > 0 {
        proposals.push(format!(
            "đề nghị {unmonitored} đơn vị chưa có máy được giám sát cài đặt phần mềm giám sát để \
             có số liệu khả dụng hạ tầng"
        ));
    }
    if !proposals.is_empty() {
        blocks.push(Block::Paragraph(capitalize(&format!(
            "{}.",
            proposals.join("; ")
        ))));
    }
    blocks.push(Block::ToComplete(
        "Đánh giá, đề xuất khác của Sở: ".to_owned(),
    ));
}

/// The last sentence of the body, after the summary table.
pub(super) fn closing(report: &Consolidated) -> String {
    format!(
        "Trên đây là báo cáo tổng hợp tình hình ứng dụng CNTT {}, kính báo cáo {} xem xét, chỉ \
         đạo./.",
        report.period_vi, report.header.addressee
    )
}

/// How a share of reports on time reads in the assessment.
fn grade(on_time: f64) -> &'static str {
    if on_time >= 0.95 {
        "được thực hiện tốt"
    } else if on_time >= 0.8 {
        "được thực hiện khá"
    } else {
        "chưa đạt yêu cầu"
    }
}

/// The line under the table saying where the figures come from.
pub(super) fn source_note(report: &Consolidated) -> String {
    format!(
        "Số liệu được tổng hợp tự động từ hệ thống giám sát hạ tầng CNTT lúc {}.",
        date_time(report.generated_at)
    )
}

#[cfg(test)]
mod tests {
    use expect_test::expect;
    use time::macros::{date, datetime};

    use super::*;

    #[test]
    fn numbers_and_dates_are_written_the_vietnamese_way() {
        assert_eq!(percent(0.995, 1), "99,5%");
        assert_eq!(percent(1.0, 1), "100,0%");
        assert_eq!(percent(0.99781, 2), "99,78%");
        assert_eq!(percent(0.993, 2), "99,30%", "decimals are never trimmed");
        assert_eq!(decimal(1234.5, 1), "1.234,5");
        assert_eq!(decimal(1_234_567.0, 0), "1.234.567");
        assert_eq!(decimal(42.0, 1), "42,0");
        assert_eq!(decimal(-0.04, 1), "0,0");
        assert_eq!(decimal(-2.5, 1), "-2,5");
        assert_eq!(date(date!(2026 - 03 - 05)), "05/03/2026");
        assert_eq!(
            date_time(datetime!(2026-12-31 17:30 UTC)),
            "00:30 01/01/2027",
            "shown in Vietnam time"
        );
        assert_eq!(
            place_date("Đắk Nông", date!(2026 - 02 - 05)),
            "Đắk Nông, ngày 05 tháng 02 năm 2026"
        );
        assert_eq!(
            place_date("Đắk Nông", date!(2026 - 12 - 15)),
            "Đắk Nông, ngày 15 tháng 12 năm 2026"
        );
        assert_eq!(
            place_date("Gia Nghĩa", date!(2026 - 03 - 09)),
            "Gia Nghĩa, ngày 09 tháng 3 năm 2026"
        );
    }

    #[test]
    fn narrative_of_the_example() {
        let text: String = narrative(&super::super::example())
            .iter()
            .map(|block| match block {
                Block::Heading(text) => format!("# {text}\n"),
                Block::Paragraph(text) => format!("{text}\n"),
                Block::Item(text) => format!("- {text}\n"),
                Block::ToComplete(text) => format!("{text}……\n"),
            })
            .collect();
        expect![[r##"
            # I. TÌNH HÌNH THỰC HIỆN CHẾ ĐỘ BÁO CÁO ĐỊNH KỲ
            Thực hiện Quy chế quản lý chuyên môn nghiệp vụ đối với cán bộ, công chức, viên chức chuyên trách công nghệ thông tin (CNTT) ban hành kèm theo Quyết định số 02/2017/QĐ-UBND ngày 24/01/2017 của Ủy ban nhân dân (UBND) tỉnh (Điều 12), các cơ quan, đơn vị báo cáo định kỳ kết quả công tác CNTT quý IV năm 2026. Thời gian chốt số liệu từ ngày 15/09/2026 đến ngày 14/12/2026; hạn nộp báo cáo của các đơn vị là ngày 10/12/2026.
            Toàn tỉnh có 10 đơn vị phải báo cáo; đã nộp 7/10 đơn vị (70,0%), trong đó đúng hạn 5/10 đơn vị (50,0%), trễ hạn 2 đơn vị; chưa nộp 2 đơn vị.
            Tình hình nộp báo cáo theo từng khối, địa bàn (chi tiết tại bảng tổng hợp kèm theo):
            - Khối sở, ban, ngành: đã nộp 3/4 đơn vị (75,0%), đúng hạn 2, trễ hạn 1, chưa nộp 1;
            - Thành phố Gia Nghĩa: đã nộp 2/2 đơn vị (100,0%), đúng hạn 2, trễ hạn 0, chưa nộp 0;
            - Huyện Cư Jút: đã nộp 1/2 đơn vị (50,0%), đúng hạn 0, trễ hạn 1, chưa nộp 1;
            - Huyện Đắk Mil: đã nộp 1/2 đơn vị (50,0%), đúng hạn 1, trễ hạn 0, chưa nộp 0, chưa đến hạn 1.
            Các đơn vị chưa nộp báo cáo (2 đơn vị): Sở Giáo dục và Đào tạo (Khối sở, ban, ngành); UBND xã Đắk Wil (Huyện Cư Jút).
            Các đơn vị nộp báo cáo trễ hạn (2 đơn vị): Sở Y tế (Khối sở, ban, ngành), nộp lúc 10:05 11/12/2026; UBND huyện Cư Jút (Huyện Cư Jút), nộp lúc 08:15 12/12/2026.
            # II. TÌNH HÌNH SỰ CỐ VÀ KHẢ DỤNG HẠ TẦNG
            Trong thời gian chốt số liệu, hệ thống giám sát theo dõi 86 máy tại 10 đơn vị và ghi nhận 19 sự cố tại 8 đơn vị, gồm: 5 sự cố mạng nội bộ (LAN), 8 sự cố đường truyền, thiết bị WAN, 1 sự cố kết nối Internet, 2 sự cố máy chủ, dịch vụ, 1 sự cố tài nguyên máy (đĩa, bộ nhớ), 1 sự cố an toàn thông tin, 1 sự cố khác.
            Khả dụng đường truyền WAN bình quân của 10 đơn vị có số liệu đo (86 máy) đạt 99,03%; khả dụng mạng nội bộ (LAN) bình quân của 9 đơn vị có số liệu đo đạt 99,78%; thời gian khắc phục sự cố trung bình là 76,7 phút.
            Các đơn vị có khả dụng WAN dưới 99,00%: UBND xã Đắk Wil (96,20%); UBND huyện Cư Jút (97,12%); Sở Y tế (98,61%).
            # III. ĐỘI NGŨ CÁN BỘ CHUYÊN TRÁCH CÔNG NGHỆ THÔNG TIN
            7/10 đơn vị có cán bộ chuyên trách CNTT đạt tiêu chuẩn theo Điều 4 của Quy chế ban hành kèm theo Quyết định số 02/2017/QĐ-UBND.
            Các đơn vị chưa có cán bộ chuyên trách đạt tiêu chuẩn (3 đơn vị):
            - Sở Y tế (cán bộ: Lê Minh Châu): trình độ tiếng Anh chưa đạt bậc B;
            - Sở Giáo dục và Đào tạo: chưa có cán bộ chuyên trách CNTT được đăng ký;
            - UBND xã Đắk Wil (cán bộ: Y Bhăm Niê): chưa có bằng cao đẳng chuyên ngành CNTT.
            # IV. ĐÁNH GIÁ CHUNG VÀ ĐỀ XUẤT
            Khó khăn, vướng mắc và đề xuất, kiến nghị của các đơn vị: 1 đơn vị nêu ý kiến (chi tiết tại cột "Khó khăn, vướng mắc, đề xuất của đơn vị" của phụ lục):
            - Sở Y tế: Thiết bị chuyển mạch đã cũ, thường xuyên mất kết nối. Đề nghị Sở hỗ trợ kinh phí thay thế.
            Việc chấp hành chế độ báo cáo định kỳ quý IV năm 2026 chưa đạt yêu cầu: tỷ lệ nộp báo cáo đạt 70,0%, tỷ lệ nộp đúng hạn đạt 50,0%; tại 10 đơn vị có số liệu đo, hạ tầng đường truyền WAN hoạt động ổn định (khả dụng bình quân 99,03%).
            Đề nghị 2 đơn vị chưa nộp báo cáo khẩn trương hoàn thành và gửi về Sở; đề nghị 3 đơn vị chưa có cán bộ chuyên trách đạt tiêu chuẩn bố trí, cử cán bộ đi đào tạo, bồi dưỡng theo quy định.
            Đánh giá, đề xuất khác của Sở: ……
        "##]].assert_eq(&text);
    }
}
