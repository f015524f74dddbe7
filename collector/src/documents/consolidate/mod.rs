//! The consolidated provincial report of one reporting period (issue 6, item 6): the figures the
//! Sở gathers from every unit, written as an XLSX workbook ([`xlsx`]) and as a DOCX administrative
//! document ([`docx`]) for the province.
//!
//! # Design note
//!
//! This module only *writes*. Whoever builds a [`Consolidated`] (the compliance computation, the
//! `report consolidate` command, the API) has already read the store, judged each unit's
//! submission and ordered the rows; the renderers take that value and return bytes, with no
//! database, clock or file system. So the same value gives the same documents, and tests feed
//! [`example`] to them.
//!
//! - **Text.** Every Vietnamese word of the documents is in `vi.rs`: labels, number and date
//!   formats and the narrative of the DOCX, which `vi::narrative` composes as plain blocks
//!   (headings, paragraphs, list items) before `docx.rs` lays them out. Numbers are written the
//!   Vietnamese way (comma decimal, dot thousands: `99,5%`), dates `dd/mm/yyyy`, times 24-hour in
//!   Vietnam's time (+07:00) whatever offset the input carries.
//! - **XLSX.** Written with `rust_xlsxwriter` (pure Rust). Figures stay numbers: percentages are
//!   fractions with a `%` number format and submission times are spreadsheet date-times, so
//!   columns sort and sum; an absent figure is an empty cell, never a dash.
//! - **DOCX.** The OOXML parts are written here (`docx.rs`) and packed with `zip`, the same zip
//!   crate `rust_xlsxwriter` uses: the layout of Nghị định 30/2020/NĐ-CP (A4, margins, header and
//!   signature blocks as borderless tables, the short rules under the agency name, the motto and
//!   the title) needs exact control over a handful of elements, which is less code than bending
//!   a general DOCX builder to it and brings no second zip or XML stack.
//! - **Rates.** A group's submission rate is `(on_time + late) / required`; units marked
//!   [`SubmissionState::NotRequired`] are in no denominator and no list of the DOCX, but keep
//!   their row in the workbook so every unit of the period is accounted for.

mod build;
mod docx;
mod vi;
mod xlsx;

pub use build::{build, file_name};
pub use docx::docx;
pub use xlsx::xlsx;

use time::macros::{date, datetime};
use time::{Date, OffsetDateTime};

/// Everything the consolidated report of one period says; built by the compliance computation,
/// read by [`xlsx`] and [`docx`].
#[derive(Debug, Clone, PartialEq)]
pub struct Consolidated {
    /// Period label, e.g. `2026-Q4`.
    pub period: String,
    /// The period in words, lowercase, used inside sentences and titles: `quý IV năm 2026`.
    pub period_vi: String,
    /// Reporting scheme name, e.g. `quarterly`.
    pub scheme: String,
    /// First day of the data window (inclusive).
    pub data_from: Date,
    /// Last day of the data window (inclusive).
    pub data_to: Date,
    /// Due date of the units' reports.
    pub due: Date,
    /// When the figures were gathered; shown in Vietnam time (+07:00).
    pub generated_at: OffsetDateTime,
    /// The administrative header and signature block of the DOCX.
    pub header: DocumentHeader,
    /// One row per unit, already ordered (district, then unit).
    pub rows: Vec<UnitRow>,
    /// One entry per district (or province-level group), ordered as the rows.
    pub districts: Vec<DistrictRate>,
    /// Whole-province totals (name such as `Toàn tỉnh`).
    pub province: DistrictRate,
    /// Whether the due date had passed when the figures were gathered: before it, nothing is
    /// judged (no unit is "missing", no grade is given).
    pub deadline_passed: bool,
    /// The manual override of the due date, when the Sở moved it (`periods::Override`); "được
    /// gia hạn" is said only then.
    pub extension: Option<Extension>,
}

/// A due date moved by hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    /// The due date the scheme's rule gave.
    pub rule_due: Date,
    /// Why it was moved, as the Sở wrote it.
    pub reason: String,
}

/// The parts of a Nghị định 30/2020 document that are not figures: who writes, to whom, who signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentHeader {
    /// Governing body, uppercase: `UBND TỈNH ĐẮK NÔNG`.
    pub parent_agency: String,
    /// Issuing agency, uppercase: `SỞ KHOA HỌC VÀ CÔNG NGHỆ`.
    pub agency: String,
    /// Number and symbol, e.g. `……/BC-SKHCN` (the number is left blank, filled by hand).
    pub number: String,
    /// Place name of the date line: `Đắk Nông`.
    pub place: String,
    /// Date of the document.
    pub date: Date,
    /// Addressee of "Kính gửi", without the final full stop: `Ủy ban nhân dân tỉnh`.
    pub addressee: String,
    /// "Nơi nhận" lines, each with its own closing punctuation: `Như trên;`, `Lưu: VT, CNTT.`.
    pub recipients: Vec<String>,
    /// Signer's authority and title, uppercase; several lines separated by `\n`
    /// (`KT. GIÁM ĐỐC\nPHÓ GIÁM ĐỐC`).
    pub signer_title: String,
    /// Signer's full name.
    pub signer_name: String,
}

/// How a unit stands with its report for the period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubmissionState {
    /// Submitted by the due date.
    OnTime,
    /// Submitted after the due date.
    Late,
    /// Not submitted, and the due date has passed.
    Missing,
    /// Not submitted, and the due date has not come yet.
    Pending,
    /// The unit owed no report for this period (it did not exist then).
    NotRequired,
}

impl SubmissionState {
    /// The state as people read it: `Đúng hạn`, `Trễ hạn`, `Chưa nộp`, `Chưa đến hạn`,
    /// `Không phải nộp`.
    pub fn label(self) -> &'static str {
        vi::state(self)
    }
}

/// One unit's line of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitRow {
    /// Unit code (statistical or local code).
    pub code: String,
    /// Unit name as it was during the period.
    pub name: String,
    /// `department`, `district`, `commune`, `province`, …
    pub kind: String,
    /// Name of the district (or province-level group) the unit is counted under.
    pub district: String,
    /// Submission state for the period.
    pub state: SubmissionState,
    /// When the officer submitted the latest version (corrected for the agent's clock).
    pub submitted_at: Option<OffsetDateTime>,
    /// How many versions were submitted.
    pub versions: u32,
    /// The IT officer's name.
    pub officer: Option<String>,
    /// Whether the officer meets Điều 4's standards; `None` when no officer is registered.
    pub officer_qualified: Option<bool>,
    /// Vietnamese reason when the officer does not qualify, else empty.
    pub qualification_gap: String,
    /// Machines monitored.
    pub agents: u32,
    /// Incidents in the data window.
    pub incidents: u32,
    /// Incidents by kind code (`lan`, `wan`, `internet`, `server`, `host`, `security`, `other`).
    pub incidents_by_kind: Vec<(String, u32)>,
    /// Share of the data window the LAN was up, `0..=1`; `None` when not measured.
    pub availability_lan: Option<f64>,
    /// Share of the data window the WAN link was up, `0..=1`; `None` when not measured.
    pub availability_wan: Option<f64>,
    /// Mean time to recover from an incident, in minutes; `None` without resolved incidents.
    pub mean_time_to_recover_minutes: Option<f64>,
    /// Why the row reads as it does when units changed: an ended unit says which unit its report
    /// and figures count for; that unit names the ended ones it includes. Empty otherwise.
    pub note: String,
    /// What the officer wrote under "difficulties and proposals" in the latest version of the
    /// unit's report; empty without a report.
    pub difficulties: String,
}

/// Submission counts and a few figures of one district, group or the whole province.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DistrictRate {
    /// `Huyện Cư Jút`, `Khối sở, ban, ngành`, `Toàn tỉnh`.
    pub name: String,
    /// Units that owe a report for the period.
    pub required: u32,
    /// Of those, submitted on time.
    pub on_time: u32,
    /// Submitted late.
    pub late: u32,
    /// Not submitted after the due date.
    pub missing: u32,
    /// Not submitted, not yet due.
    pub pending: u32,
    /// Incidents in the data window.
    pub incidents: u32,
    /// WAN availability of the group, `0..=1`: the mean over its units with a WAN measurement;
    /// `None` when none was measured.
    pub availability_wan: Option<f64>,
    /// Units whose WAN availability was measured (an agent with WAN targets).
    pub measured_units: u32,
    /// Machines with an agent in those units.
    pub measured_agents: u32,
}

impl DistrictRate {
    /// Reports received, on time or late.
    pub fn submitted(&self) -> u32 {
        self.on_time + self.late
    }

    /// Share of the required reports received (`submitted / required`); `None` when none was
    /// required.
    pub fn submission_rate(&self) -> Option<f64> {
        (self.required > 0).then(|| f64::from(self.submitted()) / f64::from(self.required))
    }

    /// Share of the required reports received on time; `None` when none was required.
    pub fn on_time_rate(&self) -> Option<f64> {
        (self.required > 0).then(|| f64::from(self.on_time) / f64::from(self.required))
    }
}

/// Example data: the fourth quarter of 2026 for eleven units of Đắk Nông in four groups, with
/// every submission state, a late resubmission, unqualified and missing officers, unmeasured
/// figures and incidents of several kinds. Used by the tests of the renderers and the end-to-end
/// documents test, and by `--help` demonstrations; not real figures.
pub fn example() -> Consolidated {
    let departments = "Khối sở, ban, ngành";
    let gia_nghia = "Thành phố Gia Nghĩa";
    let cu_jut = "Huyện Cư Jút";
    let dak_mil = "Huyện Đắk Mil";
    let rows = vec![
        example_row(
            (
                "67.S.VPUB",
                "Văn phòng Ủy ban nhân dân tỉnh",
                "department",
                departments,
            ),
            (
                SubmissionState::OnTime,
                Some(datetime!(2026-12-05 09:12 +7)),
                1,
            ),
            (Some("Nguyễn Văn An"), Some(true), ""),
            (12, &[("lan", 1), ("server", 1)]),
            (Some(0.9991), Some(0.9978), Some(35.0)),
        ),
        example_row(
            ("67.S.TC", "Sở Tài chính", "department", departments),
            (
                SubmissionState::OnTime,
                Some(datetime!(2026-12-08 16:40 +7)),
                2,
            ),
            (Some("Trần Thị Bích Ngọc"), Some(true), ""),
            (25, &[("wan", 1), ("server", 1), ("security", 1)]),
            (Some(0.9995), Some(0.9969), Some(48.5)),
        ),
        example_row(
            ("67.S.YT", "Sở Y tế", "department", departments),
            (
                SubmissionState::Late,
                Some(datetime!(2026-12-11 10:05 +7)),
                1,
            ),
            (
                Some("Lê Minh Châu"),
                Some(false),
                "Trình độ tiếng Anh chưa đạt bậc B",
            ),
            (8, &[("lan", 2), ("wan", 1), ("host", 1)]),
            (Some(0.9902), Some(0.9861), Some(95.0)),
        ),
        example_row(
            (
                "67.S.GDDT",
                "Sở Giáo dục và Đào tạo",
                "department",
                departments,
            ),
            (SubmissionState::Missing, None, 0),
            (None, None, ""),
            (6, &[("internet", 1)]),
            (Some(0.998), Some(0.9935), Some(120.0)),
        ),
        example_row(
            ("660", "UBND thành phố Gia Nghĩa", "district", gia_nghia),
            (
                SubmissionState::OnTime,
                Some(datetime!(2026-12-09 14:20 +7)),
                1,
            ),
            (Some("Phạm Quốc Dũng"), Some(true), ""),
            (10, &[("wan", 1)]),
            (Some(0.9998), Some(0.9989), Some(22.0)),
        ),
        example_row(
            ("24611", "UBND phường Nghĩa Đức", "commune", gia_nghia),
            // Submitted late in the evening of the due date: still on time.
            (
                SubmissionState::OnTime,
                Some(datetime!(2026-12-10 21:47 +7)),
                1,
            ),
            (Some("Hoàng Thị Hoa"), Some(true), ""),
            (3, &[]),
            (Some(1.0), Some(0.9995), None),
        ),
        example_row(
            ("24614", "UBND phường Nghĩa Phú", "commune", gia_nghia),
            (SubmissionState::NotRequired, None, 0),
            (None, None, ""),
            (0, &[]),
            (None, None, None),
        ),
        example_row(
            ("662", "UBND huyện Cư Jút", "district", cu_jut),
            (
                SubmissionState::Late,
                Some(datetime!(2026-12-12 08:15 +7)),
                3,
            ),
            (Some("Đỗ Văn Giang"), Some(true), ""),
            (7, &[("lan", 1), ("wan", 3), ("other", 1)]),
            (Some(0.995), Some(0.9712), Some(64.0)),
        ),
        example_row(
            ("24643", "UBND xã Đắk Wil", "commune", cu_jut),
            (SubmissionState::Missing, None, 0),
            (
                Some("Y Bhăm Niê"),
                Some(false),
                "Chưa có bằng cao đẳng chuyên ngành CNTT",
            ),
            (2, &[("wan", 2)]),
            (None, Some(0.962), Some(180.0)),
        ),
        example_row(
            ("663", "UBND huyện Đắk Mil", "district", dak_mil),
            (
                SubmissionState::OnTime,
                Some(datetime!(2026-12-07 11:00 +7)),
                1,
            ),
            (Some("Vũ Thị Kim Liên"), Some(true), ""),
            (9, &[]),
            (Some(0.9999), Some(0.9993), None),
        ),
        example_row(
            ("24664", "UBND thị trấn Đắk Mil", "commune", dak_mil),
            // The Sở moved this unit's due date (manual override), so it is not late yet.
            (SubmissionState::Pending, None, 0),
            (Some("Nguyễn Thị Mai"), Some(true), ""),
            (4, &[("lan", 1)]),
            (Some(0.9987), Some(0.9979), Some(40.0)),
        ),
    ];
    let mut rows = rows;
    rows[2].difficulties =
        "- Thiết bị chuyển mạch đã cũ, thường xuyên mất kết nối.\n- Đề nghị Sở hỗ trợ kinh phí thay thế."
            .to_owned();
    let districts = [departments, gia_nghia, cu_jut, dak_mil]
        .into_iter()
        .map(|name| example_tally(name, rows.iter().filter(|row| row.district == name)))
        .collect();
    let province = example_tally("Toàn tỉnh", rows.iter());
    let organisations = crate::domain::organisation::Organisations::shipped();
    let organisation = organisations.at(date!(2026 - 12 - 15));
    Consolidated {
        period: "2026-Q4".to_owned(),
        period_vi: "quý IV năm 2026".to_owned(),
        scheme: "quarterly".to_owned(),
        data_from: date!(2026 - 09 - 15),
        data_to: date!(2026 - 12 - 14),
        due: date!(2026 - 12 - 10),
        generated_at: datetime!(2026-12-15 01:30 UTC),
        header: DocumentHeader {
            parent_agency: organisation.header_parent(),
            agency: organisation.header_agency(),
            number: format!("……/BC-{}", organisation.symbol),
            place: organisation.place.clone(),
            date: date!(2026 - 12 - 15),
            addressee: "Ủy ban nhân dân tỉnh".to_owned(),
            recipients: vec![
                "Như trên;".to_owned(),
                "Thường trực UBND tỉnh (để b/c);".to_owned(),
                "Lãnh đạo Sở;".to_owned(),
                "Các sở, ban, ngành; UBND các huyện, thành phố;".to_owned(),
                "Lưu: VT, CNTT.".to_owned(),
            ],
            signer_title: "KT. GIÁM ĐỐC\nPHÓ GIÁM ĐỐC".to_owned(),
            signer_name: "Nguyễn Văn Bình".to_owned(),
        },
        rows,
        districts,
        province,
        deadline_passed: true,
        extension: None,
    }
}

type ExampleIdentity<'a> = (&'a str, &'a str, &'a str, &'a str);
type ExampleSubmission = (SubmissionState, Option<OffsetDateTime>, u32);
type ExampleOfficer<'a> = (Option<&'a str>, Option<bool>, &'a str);
type ExampleIncidents<'a> = (u32, &'a [(&'a str, u32)]);
type ExampleFigures = (Option<f64>, Option<f64>, Option<f64>);

/// One row of [`example`], from tuples so the data reads as a table.
fn example_row(
    (code, name, kind, district): ExampleIdentity<'_>,
    (state, submitted_at, versions): ExampleSubmission,
    (officer, officer_qualified, qualification_gap): ExampleOfficer<'_>,
    (agents, by_kind): ExampleIncidents<'_>,
    (availability_lan, availability_wan, mean_time_to_recover_minutes): ExampleFigures,
) -> UnitRow {
    UnitRow {
        code: code.to_owned(),
        name: name.to_owned(),
        kind: kind.to_owned(),
        district: district.to_owned(),
        state,
        submitted_at,
        versions,
        officer: officer.map(str::to_owned),
        officer_qualified,
        qualification_gap: qualification_gap.to_owned(),
        agents,
        incidents: by_kind.iter().map(|(_, n)| n).sum(),
        incidents_by_kind: by_kind.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect(),
        availability_lan,
        availability_wan,
        mean_time_to_recover_minutes,
        note: String::new(),
        difficulties: String::new(),
    }
}

/// Counts of [`example`]'s rows for one group; WAN availability is the plain mean of the measured
/// units (the real computation belongs to the compliance code, not to the renderers).
fn example_tally<'a>(name: &str, rows: impl Iterator<Item = &'a UnitRow>) -> DistrictRate {
    let mut rate = DistrictRate {
        name: name.to_owned(),
        required: 0,
        on_time: 0,
        late: 0,
        missing: 0,
        pending: 0,
        incidents: 0,
        availability_wan: None,
        measured_units: 0,
        measured_agents: 0,
    };
    let mut wan = Vec::new();
    for row in rows {
        rate.incidents += row.incidents;
        wan.extend(row.availability_wan);
        if row.availability_wan.is_some() {
            rate.measured_units += 1;
            rate.measured_agents += row.agents;
        }
        let counter = match row.state {
            SubmissionState::OnTime => &mut rate.on_time,
            SubmissionState::Late => &mut rate.late,
            SubmissionState::Missing => &mut rate.missing,
            SubmissionState::Pending => &mut rate.pending,
            SubmissionState::NotRequired => continue,
        };
        *counter += 1;
        rate.required += 1;
    }
    rate.availability_wan = mean_share(&wan);
    rate
}

/// The plain mean of units' shares (`0..=1`), rounded as every percentage is
/// ([`crate::services::reports::round_percent`]); none without any value.
pub(crate) fn mean_share(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| {
        crate::services::reports::round_percent(values.iter().sum::<f64>() / values.len() as f64)
            / 100.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_counts_add_up() {
        let report = example();
        let province = &report.province;
        assert_eq!(
            province.required,
            province.on_time + province.late + province.missing + province.pending
        );
        assert_eq!((province.on_time, province.late), (5, 2));
        assert_eq!((province.missing, province.pending), (2, 1));
        assert_eq!(province.required, 10, "one unit owes no report");
        let by_district: u32 = report.districts.iter().map(|d| d.required).sum();
        assert_eq!(by_district, province.required);
        assert_eq!(province.submission_rate(), Some(0.7));
        assert_eq!(province.on_time_rate(), Some(0.5));
    }
}
