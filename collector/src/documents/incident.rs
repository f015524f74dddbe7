//! Incident reports as documents: the initial report (Thông tư 20/2017/TT-BTTTT Biểu mẫu 03) and
//! the closing report (Biểu mẫu 04) of one incident, issued by the unit whose system had it.
//!
//! [`Facts`] is everything a report says, gathered when the report is issued and stored with it
//! as JSON (`incident_reports.facts`): the document is a pure function of it, so a report read
//! again later, after the incident moved on, is the same document byte for byte. [`document`]
//! lays the facts out as a [`nd30::Document`]; the words of the forms are here, the form titles,
//! legal basis, recipients and deadline are the configurable [`Scheme`] (`[incident_reports]`).
//!
//! Every field the collector can know is filled; the others are labelled blanks ("……") to
//! complete by hand. The end of an incident is when service came back (`ended_at`), never its
//! closure; a duration is given only for kinds that interrupt a service, or when a person stated
//! an interruption.

use serde::{Deserialize, Serialize};
use time::{OffsetDateTime, UtcOffset};

use super::nd30::{self, Block, Document, BLANK};
use crate::services::systems::InfoSystem;

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Form {
    /// Báo cáo ban đầu (Biểu mẫu 03).
    Initial,
    /// Báo cáo kết thúc (Biểu mẫu 04).
    Closing,
}

impl Form {
    /// `initial` or `closing`.
    pub fn as_str(self) -> &'static str {
        match self {
            Form::Initial => "initial",
            Form::Closing => "closing",
        }
    }

    /// From `initial` or `closing`.
    pub fn parse(text: &str) -> Option<Form> {
        match text {
            "initial" => Some(Form::Initial),
            "closing" => Some(Form::Closing),
            _ => None,
        }
    }
}

/// The reporting scheme (`[incident_reports]`): by default Thông tư 20/2017/TT-BTTTT. Since
/// 1 March 2025 information security is overseen by the Ministry of Public Security, so the
/// forms' titles, legal basis, recipients and deadline are configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scheme {
    /// Kind of document of the initial report.
    pub initial_kind: String,
    /// Its abstract.
    pub initial_title: String,
    /// Its legal basis, under the title.
    pub initial_basis: String,
    /// Kind of document of the closing report.
    pub closing_kind: String,
    /// Its abstract.
    pub closing_title: String,
    /// Its legal basis.
    pub closing_basis: String,
    /// Addressees besides the provincial IT authority (which is always first): by default the
    /// police contact, `Công an {province}` when empty.
    pub police: String,
    /// Leave the police out of the addressees.
    pub without_police: bool,
    /// "Nơi nhận" lines after "Như trên;".
    pub recipients: Vec<String>,
    /// Days after the end of the response by which the closing report is due.
    pub closing_due_days: u32,
    /// Remind the unit's IT officer this many days before that deadline.
    pub closing_reminder_days: u32,
    /// Signer's title lines.
    pub signer_title: Vec<String>,
    /// Line under the signer's title.
    pub signer_note: String,
}

impl Default for Scheme {
    fn default() -> Scheme {
        Scheme {
            initial_kind: "BÁO CÁO BAN ĐẦU".to_owned(),
            initial_title: "Sự cố an toàn thông tin mạng".to_owned(),
            initial_basis: "(Theo Biểu mẫu 03 ban hành kèm theo Thông tư số 20/2017/TT-BTTTT ngày 12 tháng 9 năm 2017)".to_owned(),
            closing_kind: "BÁO CÁO KẾT THÚC".to_owned(),
            closing_title: "Ứng phó sự cố an toàn thông tin mạng".to_owned(),
            closing_basis: "(Theo Biểu mẫu 04 ban hành kèm theo Thông tư số 20/2017/TT-BTTTT ngày 12 tháng 9 năm 2017)".to_owned(),
            police: String::new(),
            without_police: false,
            recipients: vec!["Lưu: VT.".to_owned()],
            closing_due_days: 5,
            closing_reminder_days: 2,
            signer_title: vec!["THỦ TRƯỞNG ĐƠN VỊ".to_owned()],
            signer_note: "(Ký, ghi rõ họ tên, đóng dấu)".to_owned(),
        }
    }
}

impl Scheme {
    /// Checks the values.
    ///
    /// # Errors
    ///
    /// When a title or the deadline is empty.
    pub fn check(self) -> anyhow::Result<Scheme> {
        if self.initial_kind.trim().is_empty() || self.closing_kind.trim().is_empty() {
            anyhow::bail!("incident_reports.initial_kind and closing_kind must not be empty");
        }
        if self.closing_due_days == 0 {
            anyhow::bail!("incident_reports.closing_due_days must be at least 1");
        }
        Ok(self)
    }

    /// When the closing report of an incident whose response ended at `ended_at` (Unix ms) is due.
    pub fn closing_due(&self, ended_at: i64) -> i64 {
        ended_at + i64::from(self.closing_due_days) * 86_400_000
    }
}

/// The provincial IT authority and the province, from `crate::domain::organisation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Authority {
    /// `Sở Khoa học và Công nghệ`.
    pub name: String,
    /// `tỉnh Lâm Đồng`.
    pub province: String,
    /// Place name of the date line: `Lâm Đồng`.
    pub place: String,
    /// Governing body of departments on a letterhead: `UBND TỈNH LÂM ĐỒNG`.
    pub header_parent: String,
}

impl Authority {
    /// The authority as the organisation in force names it.
    pub fn of(organisation: &crate::domain::organisation::Organisation) -> Authority {
        Authority {
            name: organisation.name.clone(),
            province: organisation.province.clone(),
            place: organisation.place.clone(),
            header_parent: organisation.header_parent(),
        }
    }
}

/// A person named in a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Person {
    /// Full name.
    pub name: String,
    /// Position.
    pub position: String,
    /// Phone.
    pub phone: String,
    /// E-mail.
    pub email: String,
}

/// The initial report a closing report refers to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    /// Its number and symbol.
    pub number: String,
    /// When it was issued, Unix ms.
    pub issued_at: i64,
}

/// Everything a report says, frozen when it is issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    /// Which report.
    pub form: Form,
    /// Number and symbol: `01/BC-UBND`.
    pub number: String,
    /// Version, 1 for the first issue; a correction is the next.
    pub version: u32,
    /// Why this version was issued again (empty for the first).
    pub reason: String,
    /// When this version was issued, Unix ms.
    pub issued_at: i64,
    /// The scheme when it was issued.
    pub scheme: Scheme,
    /// The authority and the province when it was issued.
    pub authority: Authority,
    /// Letterhead: governing body line (may be empty).
    pub parent_agency: String,
    /// Letterhead: agency line(s).
    pub agency: String,
    /// The reporting body: `UBND xã Đắk Mil`.
    pub reporting_name: String,
    /// Its address.
    pub address: String,
    /// Its phone.
    pub phone: String,
    /// Its e-mail.
    pub email: String,
    /// The unit's IT officer, the contact for the report.
    pub contact: Option<Person>,
    /// The affected system from the register.
    pub system: Option<InfoSystem>,
    /// What the incident names when no registered system is known (systems affected, target).
    pub systems_named: Vec<String>,
    /// Human number of the incident: `SC-2026-0042`.
    pub incident_number: String,
    /// Kind of incident.
    pub kind: String,
    /// Severity.
    pub severity: String,
    /// One line.
    pub title: String,
    /// More words.
    pub description: String,
    /// Start, Unix ms.
    pub started_at: i64,
    /// Discovery, Unix ms.
    pub discovered_at: i64,
    /// Service restored, Unix ms (none while it lasts).
    pub ended_at: Option<i64>,
    /// Whether the incident interrupted a service (a duration is then given).
    pub interrupts: bool,
    /// Closure (paperwork done), Unix ms.
    pub closed_at: Option<i64>,
    /// `open`, `acknowledged`, `resolved`, `closed` when issued.
    pub state: String,
    /// How it was discovered: `monitoring`, `logs`, `third_party`, `officer`.
    pub discovery: String,
    /// Who has been told.
    pub told: Vec<String>,
    /// The machine that saw it (agent's host name).
    pub hostname: Option<String>,
    /// The agent's failing target (its name in the agent's config), for detected incidents.
    #[serde(default)]
    pub target: Option<String>,
    /// Closing report: the initial report.
    pub initial: Option<Reference>,
    /// Closing report: what happened.
    pub cause: String,
    /// Closing report: how it was resolved.
    pub resolution: String,
    /// Closing report: lessons learned.
    pub lessons: String,
}

/// Kinds of incident that interrupt a service.
pub const INTERRUPTING_KINDS: &[&str] = &["lan", "wan", "internet", "server", "agent_unreachable"];

/// How an incident was discovered, in the form's words; the first three are the form's options,
/// the last covers an officer's report and anything else.
pub const DISCOVERY: [(&str, &str); 4] = [
    (
        "monitoring",
        "Qua hệ thống giám sát, phát hiện xâm nhập (IDS)",
    ),
    ("logs", "Qua xem xét nhật ký hệ thống"),
    ("third_party", "Được tổ chức, cá nhân bên ngoài thông báo"),
    ("officer", "Cán bộ báo cáo hoặc cách khác"),
];

fn kind_text(kind: &str) -> &'static str {
    crate::documents::notice::kind_text(kind)
}

fn state_text(state: &str, form: Form) -> &'static str {
    match (state, form) {
        ("open", _) => "Chưa xử lý xong (đang xảy ra)",
        ("acknowledged", _) => "Đang xử lý (cán bộ đã tiếp nhận)",
        ("resolved", Form::Initial) => "Đã xử lý, đã khôi phục hoạt động",
        ("resolved" | "closed", _) => "Đã xử lý xong, kết thúc ứng phó",
        _ => BLANK,
    }
}

/// `10:20 ngày 03/12/2026`, Vietnam time.
pub fn time_text(ms: i64) -> String {
    let offset = UtcOffset::from_hms(7, 0, 0).expect("+07:00 is a valid offset");
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .to_offset(offset);
    format!(
        "{:02}:{:02} ngày {:02}/{:02}/{}",
        at.hour(),
        at.minute(),
        at.day(),
        u8::from(at.month()),
        at.year()
    )
}

fn date_of(ms: i64) -> time::Date {
    let offset = UtcOffset::from_hms(7, 0, 0).expect("+07:00 is a valid offset");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .to_offset(offset)
        .date()
}

fn or_blank(text: &str) -> String {
    if text.trim().is_empty() {
        BLANK.to_owned()
    } else {
        text.trim().to_owned()
    }
}

fn field(label: &str, value: impl Into<String>) -> (String, String) {
    (label.to_owned(), value.into())
}

/// The addressees: the provincial IT authority, then the police contact.
pub fn addressees(scheme: &Scheme, authority: &Authority) -> Vec<String> {
    let mut out = vec![format!("{} {}", authority.name, authority.province)];
    if !scheme.without_police {
        out.push(if scheme.police.trim().is_empty() {
            format!("Công an {}", authority.province)
        } else {
            scheme.police.trim().to_owned()
        });
    }
    out
}

fn organisation_fields(facts: &Facts) -> Vec<(String, String)> {
    let contact = facts.contact.clone().unwrap_or_default();
    vec![
        field(
            "Tên cơ quan, tổ chức báo cáo",
            or_blank(&facts.reporting_name),
        ),
        field("Địa chỉ", or_blank(&facts.address)),
        field("Điện thoại", or_blank(&facts.phone)),
        field("Thư điện tử", or_blank(&facts.email)),
        field("Người liên hệ", or_blank(&contact.name)),
        field("Chức vụ", or_blank(&contact.position)),
        field("Điện thoại người liên hệ", or_blank(&contact.phone)),
        field("Thư điện tử người liên hệ", or_blank(&contact.email)),
    ]
}

fn system_name(facts: &Facts) -> String {
    match &facts.system {
        Some(system) => system.name.clone(),
        None if !facts.systems_named.is_empty() => facts.systems_named.join("; "),
        None => BLANK.to_owned(),
    }
}

fn level_text(facts: &Facts) -> String {
    facts.system.as_ref().map_or_else(
        || format!("Cấp độ {BLANK} (Nghị định số 85/2016/NĐ-CP)"),
        |system| {
            format!(
                "Cấp độ {} (Nghị định số 85/2016/NĐ-CP)",
                system.security_level
            )
        },
    )
}

fn system_fields(facts: &Facts) -> Vec<(String, String)> {
    let system = facts.system.clone().unwrap_or_default();
    vec![
        field("Tên hệ thống thông tin", system_name(facts)),
        field("Đơn vị vận hành", or_blank(&system.operator)),
        field("Cơ quan chủ quản", or_blank(&system.governing_body)),
        field("Cấp độ an toàn hệ thống thông tin", level_text(facts)),
        field("Mục đích sử dụng", or_blank(&system.purpose)),
        field(
            "Đơn vị cung cấp dịch vụ kết nối",
            or_blank(&system.connection_provider),
        ),
        field(
            "Đơn vị cung cấp dịch vụ bảo đảm an toàn thông tin",
            or_blank(&system.security_provider),
        ),
    ]
}

/// The options of "how discovered", the right one ticked.
fn discovery_text(discovery: &str) -> String {
    DISCOVERY
        .iter()
        .map(|(key, text)| {
            let mark = if *key == discovery { "☒" } else { "☐" };
            format!("{mark} {text}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn describe(facts: &Facts) -> String {
    let mut text = facts.title.trim().to_owned();
    if !facts.description.trim().is_empty() {
        if !text.ends_with('.') {
            text.push('.');
        }
        text.push(' ');
        text.push_str(facts.description.trim());
    }
    or_blank(&text)
}

/// End and duration rows: the end is the restoration of service; a duration only when the
/// incident interrupted a service.
fn end_fields(facts: &Facts, fields: &mut Vec<(String, String)>) {
    match facts.ended_at {
        Some(ended_at) => {
            fields.push(field(
                "Thời điểm kết thúc (khôi phục hoạt động)",
                time_text(ended_at),
            ));
            if facts.interrupts {
                fields.push(field(
                    "Thời gian gián đoạn",
                    crate::documents::notice::duration_text(ended_at - facts.started_at),
                ));
            }
        }
        None => fields.push(field(
            "Thời điểm kết thúc (khôi phục hoạt động)",
            "Chưa kết thúc",
        )),
    }
}

fn initial_blocks(facts: &Facts) -> Vec<Block> {
    let system = facts.system.clone().unwrap_or_default();
    let mut incident = vec![
        field(
            "Số hiệu sự cố (hệ thống giám sát)",
            facts.incident_number.clone(),
        ),
        field("Loại sự cố", kind_text(&facts.kind)),
        field(
            "Mức độ nghiêm trọng",
            crate::documents::notice::severity_text(&facts.severity),
        ),
        field("Mô tả sơ bộ về sự cố", describe(facts)),
        field("Thời điểm bắt đầu", time_text(facts.started_at)),
        field("Ngày, giờ phát hiện sự cố", time_text(facts.discovered_at)),
    ];
    end_fields(facts, &mut incident);
    incident.push(field(
        "Cách thức phát hiện",
        discovery_text(&facts.discovery),
    ));
    incident.push(field(
        "Tình trạng hiện tại",
        state_text(&facts.state, Form::Initial),
    ));
    incident.push(field(
        "Đã thông báo sự cố cho",
        if facts.told.is_empty() {
            BLANK.to_owned()
        } else {
            facts.told.join("; ")
        },
    ));
    let mut technical = vec![
        field("Hệ điều hành, phiên bản", or_blank(&system.os)),
        field("Các dịch vụ đang chạy", or_blank(&system.services)),
        field("Các biện pháp bảo đảm an toàn đã triển khai", BLANK),
        field("Địa chỉ IP công khai", or_blank(&system.public_addresses)),
        field("Tên miền", or_blank(&system.domains)),
    ];
    if let Some(hostname) = &facts.hostname {
        technical.push(field("Máy ghi nhận sự cố", hostname.clone()));
    }
    if let Some(target) = &facts.target {
        technical.push(field("Đối tượng giám sát bị lỗi", target.clone()));
    }
    vec![
        Block::Heading("1. Thông tin về tổ chức, cá nhân báo cáo sự cố".to_owned()),
        Block::Fields(organisation_fields(facts)),
        Block::Heading("2. Thông tin về hệ thống thông tin bị sự cố".to_owned()),
        Block::Fields(system_fields(facts)),
        Block::Heading("3. Thông tin về sự cố".to_owned()),
        Block::Fields(incident),
        Block::Heading("4. Thông tin kỹ thuật của hệ thống".to_owned()),
        Block::Fields(technical),
        Block::Heading("5. Bảo mật thông tin báo cáo".to_owned()),
        Block::Fields(vec![field(
            "Đề nghị giữ bí mật thông tin báo cáo",
            "☐ Có     ☐ Không",
        )]),
        Block::Heading("6. Kiến nghị, đề xuất hỗ trợ".to_owned()),
        Block::ToComplete(String::new()),
        Block::Paragraph(format!("Thời gian báo cáo: {}", time_text(facts.issued_at))),
    ]
}

fn closing_blocks(facts: &Facts) -> Vec<Block> {
    let reference = facts.initial.as_ref().map_or_else(
        || vec![field("Số, ngày báo cáo ban đầu", BLANK)],
        |initial| {
            vec![
                field("Số báo cáo ban đầu", initial.number.clone()),
                field("Ngày báo cáo ban đầu", time_text(initial.issued_at)),
            ]
        },
    );
    let mut incident = vec![
        field(
            "Số hiệu sự cố (hệ thống giám sát)",
            facts.incident_number.clone(),
        ),
        field("Loại sự cố", kind_text(&facts.kind)),
        field(
            "Mức độ nghiêm trọng",
            crate::documents::notice::severity_text(&facts.severity),
        ),
        field("Thời điểm bắt đầu", time_text(facts.started_at)),
        field("Ngày, giờ phát hiện sự cố", time_text(facts.discovered_at)),
    ];
    end_fields(facts, &mut incident);
    if let Some(closed_at) = facts.closed_at {
        incident.push(field("Thời điểm kết thúc ứng phó", time_text(closed_at)));
    }
    if let Some(ended_at) = facts.ended_at {
        incident.push(field(
            "Hạn gửi báo cáo kết thúc",
            time_text(facts.scheme.closing_due(ended_at)),
        ));
    }
    incident.push(field("Tình trạng", state_text(&facts.state, Form::Closing)));
    vec![
        Block::Heading("1. Thông tin về tổ chức báo cáo".to_owned()),
        Block::Fields(organisation_fields(facts)),
        Block::Heading("2. Báo cáo ban đầu".to_owned()),
        Block::Fields(reference),
        Block::Heading("3. Hệ thống thông tin bị sự cố".to_owned()),
        Block::Fields(vec![
            field("Tên hệ thống thông tin", system_name(facts)),
            field("Cấp độ an toàn hệ thống thông tin", level_text(facts)),
            field(
                "Đơn vị vận hành",
                or_blank(
                    &facts
                        .system
                        .as_ref()
                        .map(|system| system.operator.clone())
                        .unwrap_or_default(),
                ),
            ),
        ]),
        Block::Heading("4. Thông tin về sự cố và kết quả xử lý".to_owned()),
        Block::Fields(incident),
        Block::Heading("5. Mô tả sự cố, diễn biến, nguyên nhân".to_owned()),
        Block::Paragraph(or_blank(&if facts.cause.trim().is_empty() {
            describe(facts)
        } else {
            facts.cause.clone()
        })),
        Block::Heading("6. Biện pháp xử lý, khắc phục".to_owned()),
        Block::Paragraph(or_blank(&facts.resolution)),
        Block::Heading("7. Bài học kinh nghiệm".to_owned()),
        Block::Paragraph(or_blank(&facts.lessons)),
        Block::Heading("8. Kiến nghị, đề xuất".to_owned()),
        Block::ToComplete(String::new()),
        Block::Heading("9. Tài liệu kèm theo".to_owned()),
        Block::Paragraph(BLANK.to_owned()),
        Block::Paragraph(format!("Thời gian báo cáo: {}", time_text(facts.issued_at))),
    ]
}

/// The report as an administrative document.
pub fn document(facts: &Facts) -> Document {
    let scheme = &facts.scheme;
    let (kind, title, basis, blocks) = match facts.form {
        Form::Initial => (
            &scheme.initial_kind,
            &scheme.initial_title,
            &scheme.initial_basis,
            initial_blocks(facts),
        ),
        Form::Closing => (
            &scheme.closing_kind,
            &scheme.closing_title,
            &scheme.closing_basis,
            closing_blocks(facts),
        ),
    };
    let mut subtitle = vec![format!("Sự cố {}: {}", facts.incident_number, facts.title)];
    if !basis.trim().is_empty() {
        subtitle.push(basis.clone());
    }
    if facts.version > 1 {
        let mut line = format!("Bản đính chính lần {}", facts.version - 1);
        if !facts.reason.trim().is_empty() {
            line.push_str(": ");
            line.push_str(facts.reason.trim());
        }
        subtitle.push(line);
    }
    let mut recipients = vec!["Như trên;".to_owned()];
    recipients.extend(scheme.recipients.iter().cloned());
    Document {
        parent_agency: facts.parent_agency.clone(),
        agency: facts.agency.clone(),
        number: facts.number.clone(),
        place: facts.authority.place.clone(),
        date: Some(date_of(facts.issued_at)),
        kind: kind.clone(),
        title: title.clone(),
        subtitle,
        addressees: addressees(scheme, &facts.authority),
        blocks,
        recipients,
        signer_title: scheme.signer_title.clone(),
        signer_note: Some(scheme.signer_note.clone()).filter(|note| !note.trim().is_empty()),
        signer_name: String::new(),
        created_at: OffsetDateTime::from_unix_timestamp_nanos(
            i128::from(facts.issued_at) * 1_000_000,
        )
        .unwrap_or(OffsetDateTime::UNIX_EPOCH),
    }
}

/// The report in one of the formats served: `docx`, `html` or `text`; with its content type.
///
/// # Errors
///
/// Only if packing the DOCX fails.
pub fn render(facts: &Facts, format: &str) -> anyhow::Result<(&'static str, Vec<u8>)> {
    let document = document(facts);
    Ok(match format {
        "docx" => (
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            nd30::docx(&document)?,
        ),
        "html" => (
            "text/html; charset=utf-8",
            nd30::html(&document).into_bytes(),
        ),
        _ => (
            "text/plain; charset=utf-8",
            nd30::text(&document).into_bytes(),
        ),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A WAN incident restored at 10:20 and closed at 21:55 (+07:00) on 3 December 2026.
    pub(crate) fn wan_facts(form: Form) -> Facts {
        let at = |hour: i64, minute: i64| 1_796_256_000_000 + ((hour - 7) * 60 + minute) * 60_000;
        Facts {
            form,
            number: "01/BC-UBND".to_owned(),
            version: 1,
            reason: String::new(),
            issued_at: at(22, 0),
            scheme: Scheme::default(),
            authority: Authority {
                name: "Sở Khoa học và Công nghệ".to_owned(),
                province: "tỉnh Lâm Đồng".to_owned(),
                place: "Lâm Đồng".to_owned(),
                header_parent: "UBND TỈNH LÂM ĐỒNG".to_owned(),
            },
            parent_agency: String::new(),
            agency: "ỦY BAN NHÂN DÂN\nXÃ ĐẮK MIL".to_owned(),
            reporting_name: "UBND xã Đắk Mil".to_owned(),
            address: "Thôn 1, xã Đắk Mil".to_owned(),
            phone: "0261 3 123 456".to_owned(),
            email: "ubnd@dakmil.gov.vn".to_owned(),
            contact: Some(Person {
                name: "Nguyễn Văn An".to_owned(),
                position: "Cán bộ chuyên trách CNTT".to_owned(),
                phone: "0912 345 678".to_owned(),
                email: "an.nv@dakmil.gov.vn".to_owned(),
            }),
            system: None,
            systems_named: vec!["Đường truyền số liệu chuyên dùng".to_owned()],
            incident_number: "SC-2026-0007".to_owned(),
            kind: "wan".to_owned(),
            severity: "high".to_owned(),
            title: "Mất kết nối WAN".to_owned(),
            description: String::new(),
            started_at: at(8, 10),
            discovered_at: at(8, 11),
            ended_at: Some(at(10, 20)),
            interrupts: true,
            closed_at: Some(at(21, 55)),
            state: "closed".to_owned(),
            discovery: "monitoring".to_owned(),
            told: Vec::new(),
            hostname: Some("dakmil-pc01".to_owned()),
            target: None,
            initial: None,
            cause: String::new(),
            resolution: "Nhà mạng thay thiết bị lúc 10:20".to_owned(),
            lessons: "Có đường truyền dự phòng".to_owned(),
        }
    }

    #[test]
    fn the_end_is_the_restoration_and_blanks_are_labelled() {
        let text = nd30::text(&document(&wan_facts(Form::Closing)));
        for expected in [
            "ỦY BAN NHÂN DÂN\nXÃ ĐẮK MIL\nSố: 01/BC-UBND\n",
            "Lâm Đồng, ngày 03 tháng 12 năm 2026",
            "BÁO CÁO KẾT THÚC\n",
            "Kính gửi:\n- Sở Khoa học và Công nghệ tỉnh Lâm Đồng;\n- Công an tỉnh Lâm Đồng.",
            "Thời điểm kết thúc (khôi phục hoạt động): 10:20 ngày 03/12/2026",
            "Thời gian gián đoạn: 2 giờ 10 phút",
            "Thời điểm kết thúc ứng phó: 21:55 ngày 03/12/2026",
            "Hạn gửi báo cáo kết thúc: 10:20 ngày 08/12/2026",
            "Số, ngày báo cáo ban đầu: ……",
            "Cấp độ an toàn hệ thống thông tin: Cấp độ …… (Nghị định số 85/2016/NĐ-CP)",
            "THỦ TRƯỞNG ĐƠN VỊ\n(Ký, ghi rõ họ tên, đóng dấu)",
        ] {
            assert!(text.contains(expected), "{expected:?} in\n{text}");
        }
        let mut detected = wan_facts(Form::Initial);
        detected.systems_named.clear();
        detected.target = Some("so-wan".to_owned());
        let text = nd30::text(&document(&detected));
        assert!(text.contains("Tên hệ thống thông tin: ……\n"), "{text}");
        assert!(
            text.contains("Đối tượng giám sát bị lỗi: so-wan\n"),
            "{text}"
        );
        let mut security = wan_facts(Form::Initial);
        security.kind = "security".to_owned();
        security.interrupts = false;
        security.discovery = "third_party".to_owned();
        let text = nd30::text(&document(&security));
        assert!(!text.contains("Thời gian gián đoạn"), "{text}");
        assert!(
            text.contains("☐ Qua hệ thống giám sát, phát hiện xâm nhập (IDS)\n☐ Qua xem xét nhật ký hệ thống\n☒ Được tổ chức"),
            "{text}"
        );
    }

    #[test]
    fn facts_survive_storage_and_give_the_same_bytes() {
        let facts = wan_facts(Form::Initial);
        let stored = serde_json::to_string(&facts).unwrap();
        let back: Facts = serde_json::from_str(&stored).unwrap();
        assert_eq!(back, facts);
        assert_eq!(
            render(&back, "docx").unwrap().1,
            render(&facts, "docx").unwrap().1
        );
    }
}
