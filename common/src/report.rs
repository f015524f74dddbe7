//! The periodic report (báo cáo định kỳ) an IT officer writes: the document, its checks, and what
//! the collector sends to prefill it.
//!
//! Design note:
//!
//! - **One document, edited by hand.** A report is a Markdown file with TOML front matter between
//!   `+++` lines. The front matter says which report it is (scheme, period, unit), who writes it,
//!   and carries the figures the monitoring prefilled (`[figures]`); the body has one `## N.`
//!   heading per section of QĐ 02/2017 Điều 5 and 12.1 ([`SECTIONS`]), which the officer fills in.
//!   Markdown is what an officer can edit in any text editor, read as is, and paste into Word.
//! - **The same checks everywhere.** [`parse`] is used by the agent before it queues a report and by
//!   the collector when one arrives (from an agent or the API), so an officer sees every problem at
//!   once, in Vietnamese, with its line, before anything is sent.
//! - **Prefill.** The collector computes a [`ReportContext`] per unit (`GET /api/v1/reports/context`):
//!   the open periods with their dates and the figures of each data window. The agent keeps the last
//!   one on disk, so drafting works while the WAN is down; [`draft`] writes the document from it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// HTTP path where an agent reads its unit's report context.
pub const CONTEXT_PATH: &str = "/api/v1/reports/context";

/// The largest document accepted, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// One section of the report form.
#[derive(Debug, Clone, Copy)]
pub struct SectionSpec {
    /// Its number in the form, `1` to `9`.
    pub number: u8,
    /// Stable key used in stored data.
    pub key: &'static str,
    /// Its heading, in Vietnamese.
    pub title: &'static str,
    /// What to write, shown to the officer as a comment.
    pub hint: &'static str,
    /// Whether the officer must write something.
    pub required: bool,
}

/// The sections, per QĐ 02/2017 Điều 5 (duties 5.1 to 5.7) and 12.1 (what is reported), and the
/// figures, in the order of the form.
///
/// Documents drafted before sections 7 and 8 (Điều 5.6 and 5.7) existed had nine sections, the
/// figures being `## 9.`; [`parse`] still reads them, with their sections renumbered.
pub const SECTIONS: [SectionSpec; 11] = [
    SectionSpec {
        number: 1,
        key: "advisory",
        title: "Công tác tham mưu, đề xuất ứng dụng công nghệ thông tin",
        hint: "Các văn bản, kế hoạch, đề xuất đã tham mưu cho lãnh đạo cơ quan trong kỳ (Điều 5.1).",
        required: true,
    },
    SectionSpec {
        number: 2,
        key: "operations",
        title: "Vận hành, bảo đảm an toàn hệ thống thông tin",
        hint: "Quản trị mạng LAN, máy chủ, thiết bị kết nối WAN; sao lưu; cập nhật bản vá; phòng chống mã độc (Điều 5.2).",
        required: true,
    },
    SectionSpec {
        number: 3,
        key: "incidents",
        title: "Sự cố và kết quả xử lý",
        hint: "Danh sách do hệ thống giám sát điền sẵn; ghi thêm nguyên nhân, cách khắc phục và sự cố an toàn thông tin (nếu có).",
        required: true,
    },
    SectionSpec {
        number: 4,
        key: "public_services",
        title: "Hỗ trợ cung cấp dịch vụ công trực tuyến",
        hint: "Hỗ trợ cán bộ, người dân sử dụng dịch vụ công trực tuyến, một cửa điện tử (Điều 5.4).",
        required: true,
    },
    SectionSpec {
        number: 5,
        key: "information",
        title: "Thu thập, cung cấp thông tin phục vụ lãnh đạo",
        hint: "Thông tin, số liệu đã thu thập, tổng hợp phục vụ chỉ đạo, điều hành (Điều 5.3).",
        required: true,
    },
    SectionSpec {
        number: 6,
        key: "trainings",
        title: "Tham gia hội nghị, tập huấn",
        hint: "Hội nghị, lớp tập huấn, kiểm tra trình độ do Sở tổ chức hoặc cử đi (Điều 5.5).",
        required: true,
    },
    SectionSpec {
        number: 7,
        key: "statistics",
        title: "Báo cáo thống kê, báo cáo định kỳ và đột xuất về công nghệ thông tin",
        hint: "Các báo cáo thống kê, báo cáo định kỳ hoặc đột xuất về công nghệ thông tin đã tham mưu cho thủ trưởng cơ quan gửi Ủy ban nhân dân tỉnh, Sở (Điều 5.6). Ghi \"Không có\" nếu không có.",
        required: true,
    },
    SectionSpec {
        number: 8,
        key: "other_tasks",
        title: "Nhiệm vụ khác do thủ trưởng cơ quan giao",
        hint: "Các nhiệm vụ khác được giao và kết quả (Điều 5.7). Ghi \"Không có\" nếu không có.",
        required: true,
    },
    SectionSpec {
        number: 9,
        key: "difficulties",
        title: "Khó khăn, vướng mắc và đề xuất, kiến nghị",
        hint: "Ghi \"Không có\" nếu không có. Nội dung này được tổng hợp vào báo cáo của Sở gửi tỉnh.",
        required: true,
    },
    SectionSpec {
        number: 10,
        key: "plan",
        title: "Kế hoạch kỳ tới",
        hint: "Nhiệm vụ chính dự kiến trong kỳ báo cáo tiếp theo.",
        required: true,
    },
    SectionSpec {
        number: 11,
        key: "figures",
        title: "Số liệu từ hệ thống giám sát",
        hint: "Điền sẵn; có thể ghi chú thêm.",
        required: false,
    },
];

/// The section with `key`.
pub fn section_spec(key: &str) -> Option<&'static SectionSpec> {
    SECTIONS.iter().find(|spec| spec.key == key)
}

/// Numbers of the nine-section form (before Điều 5.6 and 5.7 had sections) → today's numbers.
const NINE_SECTION_FORM: [(u8, u8); 3] = [(7, 9), (8, 10), (9, 11)];

/// Figures of one unit over one data window, computed by the collector.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// When they were computed (RFC 3339).
    pub generated_at: String,
    /// First day of the data window, `YYYY-MM-DD`.
    pub data_from: String,
    /// Last day of the data window, `YYYY-MM-DD`.
    pub data_to: String,
    /// Machines with an agent.
    pub machines: u32,
    /// Servers and services probed (distinct targets).
    pub monitored_targets: u32,
    /// Incidents in the window.
    pub incidents: u32,
    /// Incidents by kind (`lan`, `wan`, `internet`, `server`, `host`, `security`, ...).
    #[serde(default)]
    pub incidents_by_kind: BTreeMap<String, u32>,
    /// Incidents that ended in the window.
    pub recovered: u32,
    /// Mean time to recover, minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_time_to_recover_minutes: Option<f64>,
    /// Longest time to recover, minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longest_time_to_recover_minutes: Option<f64>,
    /// Share of time the LAN was up, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_lan_percent: Option<f64>,
    /// Share of time the WAN was up, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_wan_percent: Option<f64>,
}

/// One incident listed in a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentLine {
    /// Human number, e.g. `SC-2026-0007`.
    pub number: String,
    /// Kind code.
    pub kind: String,
    /// Title.
    pub title: String,
    /// Start.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// End, none while open.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub ended_at: Option<OffsetDateTime>,
}

/// One period a unit may report on, with its prefill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextPeriod {
    /// Scheme name.
    pub scheme: String,
    /// Period label, e.g. `2026-Q4`.
    pub label: String,
    /// Vietnamese name, e.g. `quý IV năm 2026`.
    pub label_vi: String,
    /// Due date, `YYYY-MM-DD`.
    pub due: String,
    /// How the due date was found.
    pub rule: String,
    /// Figures of the data window so far.
    pub figures: Figures,
    /// Incidents of the data window.
    pub incidents: Vec<IncidentLine>,
    /// Versions already received by the collector.
    pub versions: u32,
}

/// The officer registered for a unit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OfficerInfo {
    /// Full name.
    pub name: String,
    /// Position.
    pub position: String,
    /// Phone.
    pub phone: String,
    /// Email.
    pub email: String,
}

/// What an agent needs to draft its unit's reports: `GET /api/v1/reports/context`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportContext {
    /// Unit code.
    pub unit_code: String,
    /// Unit name.
    pub unit_name: String,
    /// The unit's IT officer, when registered.
    #[serde(default)]
    pub officer: Option<OfficerInfo>,
    /// When the collector computed this.
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    /// Open periods, per scheme.
    pub periods: Vec<ContextPeriod>,
}

/// The front matter of a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Front {
    /// Scheme name.
    pub scheme: String,
    /// Period label.
    pub period: String,
    /// Unit code.
    pub unit: String,
    /// Unit name, for people.
    #[serde(default)]
    pub unit_name: String,
    /// The officer who reports.
    #[serde(default)]
    pub officer: String,
    /// Their position.
    #[serde(default)]
    pub position: String,
    /// Their phone.
    #[serde(default)]
    pub phone: String,
    /// Their email.
    #[serde(default)]
    pub email: String,
    /// Figures prefilled by the monitoring.
    #[serde(default)]
    pub figures: Figures,
}

/// A checked report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Its front matter.
    pub front: Front,
    /// Section number → the officer's text (comments removed), for every section present.
    pub sections: BTreeMap<u8, String>,
}

/// Everything wrong with a document, each problem a Vietnamese sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<String>);

impl Report {
    /// The officer's text of the section with `key` (see [`SECTIONS`]), if present.
    pub fn section(&self, key: &str) -> Option<&str> {
        let spec = section_spec(key)?;
        self.sections.get(&spec.number).map(String::as_str)
    }
}

impl std::fmt::Display for Problems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "báo cáo chưa hợp lệ:")?;
        for problem in &self.0 {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// Reads and checks a report document: front matter, each required section present and filled in.
///
/// # Errors
///
/// [`Problems`] lists every problem found, with line numbers where they help.
pub fn parse(text: &str) -> Result<Report, Problems> {
    let mut problems = Vec::new();
    if text.len() > MAX_DOCUMENT_BYTES {
        problems.push(format!(
            "tệp dài {} byte, quá giới hạn {MAX_DOCUMENT_BYTES} byte",
            text.len()
        ));
        return Err(Problems(problems));
    }
    let text = text.trim_start_matches('\u{feff}').replace("\r\n", "\n");
    let Some(rest) = text.strip_prefix("+++\n") else {
        return Err(Problems(vec![
            "dòng 1 phải là \"+++\", mở đầu phần thông tin báo cáo".into(),
        ]));
    };
    let Some(end) = rest
        .find("\n+++\n")
        .or_else(|| rest.ends_with("\n+++").then(|| rest.len() - 4))
    else {
        return Err(Problems(vec![
            "thiếu dòng \"+++\" đóng phần thông tin báo cáo".into(),
        ]));
    };
    let (head, body) = (&rest[..end], rest.get(end + 5..).unwrap_or(""));
    let head_lines = head.lines().count() + 2;
    let front: Option<Front> = match toml::from_str(head) {
        Ok(front) => Some(front),
        Err(err) => {
            let line = err
                .span()
                .map(|span| head[..span.start].lines().count().max(1) + 1)
                .unwrap_or(2);
            problems.push(format!(
                "dòng {line}: phần thông tin báo cáo sai cú pháp: {}",
                err.message()
            ));
            None
        }
    };
    if let Some(front) = &front {
        for (value, name) in [
            (&front.scheme, "scheme (chế độ báo cáo)"),
            (&front.period, "period (kỳ báo cáo)"),
            (&front.unit, "unit (mã đơn vị)"),
            (&front.officer, "officer (họ tên cán bộ báo cáo)"),
        ] {
            if value.trim().is_empty() {
                problems.push(format!("chưa điền {name}"));
            }
        }
    }
    let sections = sections(body, head_lines, &mut problems);
    match (front, problems.is_empty()) {
        (Some(front), true) => Ok(Report { front, sections }),
        _ => Err(Problems(problems)),
    }
}

/// Splits the body at `## N.` headings and checks each required section.
fn sections(body: &str, first_line: usize, problems: &mut Vec<String>) -> BTreeMap<u8, String> {
    let highest = SECTIONS.iter().map(|spec| spec.number).max().unwrap_or(0);
    let mut found: BTreeMap<u8, (usize, String, String)> = BTreeMap::new();
    let mut current: Option<u8> = None;
    let mut in_comment = false;
    for (index, line) in body.lines().enumerate() {
        let number = first_line + index + 1;
        if let Some(heading) = line.strip_prefix("## ") {
            let digits: String = heading.chars().take_while(char::is_ascii_digit).collect();
            match digits.parse::<u8>() {
                Ok(n) if SECTIONS.iter().any(|s| s.number == n) => {
                    if found.contains_key(&n) {
                        problems.push(format!("dòng {number}: mục {n} xuất hiện hai lần"));
                    }
                    let title = heading[digits.len()..]
                        .trim_start_matches('.')
                        .trim()
                        .to_owned();
                    found.insert(n, (number, title, String::new()));
                    current = Some(n);
                }
                _ => problems.push(format!(
                    "dòng {number}: tiêu đề \"{}\" không phải một mục của mẫu báo cáo (## 1. đến ## {highest}.)",
                    line.trim()
                )),
            }
            continue;
        }
        let mut kept = String::new();
        let mut rest = line;
        loop {
            if in_comment {
                match rest.find("-->") {
                    Some(end) => {
                        in_comment = false;
                        rest = &rest[end + 3..];
                    }
                    None => break,
                }
            } else {
                match rest.find("<!--") {
                    Some(start) => {
                        kept.push_str(&rest[..start]);
                        in_comment = true;
                        rest = &rest[start + 4..];
                    }
                    None => {
                        kept.push_str(rest);
                        break;
                    }
                }
            }
        }
        if let Some((_, _, text)) = current.and_then(|n| found.get_mut(&n)) {
            text.push_str(&kept);
            text.push('\n');
        }
    }
    // A document of the nine-section form: its `## 9.` is the figures.
    let figures_title = section_spec("figures").map_or("", |spec| spec.title);
    let nine_sections = !found.contains_key(&10)
        && !found.contains_key(&11)
        && found
            .get(&9)
            .is_some_and(|(_, title, _)| title.starts_with(figures_title));
    if nine_sections {
        let mut renumbered = BTreeMap::new();
        for (n, entry) in std::mem::take(&mut found) {
            let to = NINE_SECTION_FORM
                .iter()
                .find(|(old, _)| *old == n)
                .map_or(n, |(_, new)| *new);
            renumbered.insert(to, entry);
        }
        found = renumbered;
    }
    for spec in SECTIONS.iter().filter(|spec| spec.required) {
        if nine_sections && matches!(spec.key, "statistics" | "other_tasks") {
            continue;
        }
        match found.get(&spec.number) {
            None => problems.push(format!("thiếu mục \"## {}. {}\"", spec.number, spec.title)),
            Some((line, _, text)) if text.trim().is_empty() => problems.push(format!(
                "dòng {line}: mục {}. {} chưa có nội dung",
                spec.number, spec.title
            )),
            Some(_) => {}
        }
    }
    found
        .into_iter()
        .map(|(n, (_, _, text))| (n, text.trim().to_owned()))
        .collect()
}

/// Writes a draft of the report for `period` of `context`'s unit, prefilled with its figures.
pub fn draft(context: &ReportContext, period: &ContextPeriod) -> String {
    let officer = context.officer.clone().unwrap_or_default();
    let mut figures = period.figures.clone();
    figures.generated_at = context
        .generated_at
        .to_offset(vietnam())
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let front = Front {
        scheme: period.scheme.clone(),
        period: period.label.clone(),
        unit: context.unit_code.clone(),
        unit_name: context.unit_name.clone(),
        officer: officer.name,
        position: officer.position,
        phone: officer.phone,
        email: officer.email,
        figures,
    };
    let toml = toml::to_string(&front).expect("the front matter always serializes");
    let mut out = String::from(
        "+++\n\
         # BÁO CÁO ĐỊNH KỲ CỦA CÁN BỘ CHUYÊN TRÁCH CNTT (QĐ 02/2017/QĐ-UBND, Điều 12.1)\n\
         # Kiểm tra họ tên, chức vụ, điện thoại, email của người báo cáo; viết nội dung dưới các mục\n\
         # \"## 1.\" đến \"## 10.\" (các dòng <!-- ... --> là gợi ý, không được gửi đi).\n\
         # Không sửa scheme, period, unit và phần [figures]: đó là số liệu của hệ thống giám sát.\n\
         # Nộp: cntt-agent report submit <tệp này>\n",
    );
    out.push_str(&toml);
    out.push_str("+++\n\n");
    let _ = writeln!(
        out,
        "# BÁO CÁO KẾT QUẢ CÔNG TÁC CÔNG NGHỆ THÔNG TIN {}\n",
        period.label_vi.to_uppercase()
    );
    let _ = writeln!(
        out,
        "Đơn vị: {} ({}). Số liệu từ {} đến {}. Hạn nộp: {} ({}).\n",
        context.unit_name,
        context.unit_code,
        day_vi(&period.figures.data_from),
        day_vi(&period.figures.data_to),
        day_vi(&period.due),
        period.rule
    );
    for spec in &SECTIONS {
        let _ = writeln!(out, "## {}. {}\n", spec.number, spec.title);
        let _ = writeln!(out, "<!-- {} -->\n", spec.hint);
        match spec.key {
            "incidents" => out.push_str(&incident_table(&period.incidents)),
            "figures" => out.push_str(&figures_table(&period.figures)),
            _ => {}
        }
    }
    out
}

/// One block of a submitted report as the Sở reads it: what [`document_blocks`] returns and the
/// text, HTML and DOCX renderers lay out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// The document's title.
    Title(String),
    /// A line of the identification under the title (unit, officer, period, submission).
    Meta(String),
    /// A section heading, numbered as in the form: `1. Công tác tham mưu, …`.
    Heading(String),
    /// A paragraph the officer wrote.
    Paragraph(String),
    /// A list item the officer wrote, without its `- `.
    Item(String),
    /// A table: the first row is the header.
    Table(Vec<Vec<String>>),
}

/// Facts about a stored version that are not in its document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Submission {
    /// The period in words, `quý IV năm 2026`; the label is used when empty.
    pub period_vi: String,
    /// Corrected submission time.
    pub submitted_at: Option<OffsetDateTime>,
    /// Version number, 1 for the first.
    pub version: u32,
}

/// A checked report as the Sở reads it: the title, who reports for which unit and period, then
/// each section with its heading, and nothing of the editing source (no front matter, no hints,
/// no instructions). Pure; the text, HTML and DOCX renderers lay these blocks out.
pub fn document_blocks(report: &Report, submission: &Submission) -> Vec<Block> {
    let front = &report.front;
    let period_vi = if submission.period_vi.is_empty() {
        front.period.clone()
    } else {
        submission.period_vi.clone()
    };
    let mut blocks = vec![Block::Title(format!(
        "BÁO CÁO KẾT QUẢ CÔNG TÁC CÔNG NGHỆ THÔNG TIN {}",
        period_vi.to_uppercase()
    ))];
    let unit = if front.unit_name.is_empty() {
        front.unit.clone()
    } else {
        format!("{} (mã {})", front.unit_name, front.unit)
    };
    blocks.push(Block::Meta(format!("Đơn vị: {unit}")));
    let mut officer = front.officer.clone();
    if !front.position.is_empty() {
        let _ = write!(officer, ", {}", front.position);
    }
    for (label, value) in [("điện thoại", &front.phone), ("thư điện tử", &front.email)] {
        if !value.is_empty() {
            let _ = write!(officer, "; {label}: {value}");
        }
    }
    blocks.push(Block::Meta(format!("Cán bộ chuyên trách CNTT: {officer}")));
    let mut period = format!("Kỳ báo cáo: {period_vi}");
    if !front.figures.data_from.is_empty() && !front.figures.data_to.is_empty() {
        let _ = write!(
            period,
            "; số liệu từ ngày {} đến ngày {}",
            day_vi(&front.figures.data_from),
            day_vi(&front.figures.data_to)
        );
    }
    blocks.push(Block::Meta(period));
    if let Some(at) = submission.submitted_at {
        let mut line = format!("Thời điểm nộp: {}", time_vi(at));
        if submission.version > 1 {
            let _ = write!(line, " (bản cập nhật lần {})", submission.version - 1);
        }
        blocks.push(Block::Meta(line));
    }
    for spec in &SECTIONS {
        let Some(text) = report.sections.get(&spec.number) else {
            continue;
        };
        blocks.push(Block::Heading(format!("{}. {}", spec.number, spec.title)));
        let before = blocks.len();
        markdown_blocks(text, &mut blocks);
        if blocks.len() == before {
            blocks.push(Block::Paragraph("Không có nội dung.".to_owned()));
        }
    }
    blocks
}

/// The officer's Markdown as blocks: tables (`| … |`, separator rows dropped), list items
/// (`- `, `* `) and paragraphs (lines joined up to a blank line); `**` and `#` marks removed.
fn markdown_blocks(text: &str, blocks: &mut Vec<Block>) {
    let mut paragraph: Vec<String> = Vec::new();
    let mut table: Vec<Vec<String>> = Vec::new();
    let flush =
        |paragraph: &mut Vec<String>, table: &mut Vec<Vec<String>>, blocks: &mut Vec<Block>| {
            if !paragraph.is_empty() {
                blocks.push(Block::Paragraph(paragraph.join(" ")));
                paragraph.clear();
            }
            if !table.is_empty() {
                blocks.push(Block::Table(std::mem::take(table)));
            }
        };
    for line in text.lines() {
        let line = line.trim();
        let plain = |text: &str| {
            text.replace("**", "")
                .trim_start_matches('#')
                .trim()
                .to_owned()
        };
        if line.starts_with('|') {
            if !paragraph.is_empty() {
                blocks.push(Block::Paragraph(paragraph.join(" ")));
                paragraph.clear();
            }
            let cells: Vec<String> = line
                .trim_matches('|')
                .split('|')
                .map(|cell| plain(cell.trim()))
                .collect();
            let separator = cells
                .iter()
                .all(|cell| !cell.is_empty() && cell.chars().all(|c| matches!(c, '-' | ':' | ' ')));
            if !separator {
                table.push(cells);
            }
        } else if line.is_empty() {
            flush(&mut paragraph, &mut table, blocks);
        } else if let Some(item) = line.strip_prefix("- ").or_else(|| line.strip_prefix("* ")) {
            flush(&mut paragraph, &mut table, blocks);
            blocks.push(Block::Item(plain(item)));
        } else {
            if !table.is_empty() {
                blocks.push(Block::Table(std::mem::take(&mut table)));
            }
            paragraph.push(plain(line));
        }
    }
    flush(&mut paragraph, &mut table, blocks);
}

/// The blocks as readable plain text (UTF-8, LF): the title and section headings on their own
/// lines, items with `- `, table cells separated by ` | `.
pub fn render_text(blocks: &[Block]) -> String {
    let mut out = String::new();
    for block in blocks {
        match block {
            Block::Title(text) => {
                let _ = writeln!(out, "{text}\n");
            }
            Block::Meta(text) => {
                let _ = writeln!(out, "{text}");
            }
            Block::Heading(text) => {
                let _ = writeln!(out, "\n{text}\n");
            }
            Block::Paragraph(text) => {
                let _ = writeln!(out, "{text}\n");
            }
            Block::Item(text) => {
                let _ = writeln!(out, "- {text}");
            }
            Block::Table(rows) => {
                for row in rows {
                    let _ = writeln!(out, "{}", row.join(" | "));
                }
                out.push('\n');
            }
        }
    }
    let mut tidy = out.trim_end().replace("\n\n\n", "\n\n");
    tidy.push('\n');
    tidy
}

/// The blocks as a self-contained HTML page (UTF-8), every text escaped.
pub fn render_html(blocks: &[Block]) -> String {
    let escape = |text: &str| {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let title = blocks
        .iter()
        .find_map(|block| match block {
            Block::Title(text) => Some(text.as_str()),
            _ => None,
        })
        .unwrap_or_default();
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"vi\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>body{{font-family:'Times New Roman',serif;max-width:48em;margin:2em auto;line-height:1.4}}\
         h1{{font-size:1.2em;text-align:center}}h2{{font-size:1.05em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #888;padding:2px 6px;vertical-align:top}}</style></head><body>\n",
        escape(title)
    );
    let mut in_list = false;
    for block in blocks {
        let item = matches!(block, Block::Item(_));
        if in_list && !item {
            out.push_str("</ul>\n");
            in_list = false;
        }
        match block {
            Block::Title(text) => {
                let _ = writeln!(out, "<h1>{}</h1>", escape(text));
            }
            Block::Meta(text) => {
                let _ = writeln!(out, "<p class=\"meta\">{}</p>", escape(text));
            }
            Block::Heading(text) => {
                let _ = writeln!(out, "<h2>{}</h2>", escape(text));
            }
            Block::Paragraph(text) => {
                let _ = writeln!(out, "<p>{}</p>", escape(text));
            }
            Block::Item(text) => {
                if !in_list {
                    out.push_str("<ul>\n");
                    in_list = true;
                }
                let _ = writeln!(out, "<li>{}</li>", escape(text));
            }
            Block::Table(rows) => {
                out.push_str("<table>\n");
                for (index, row) in rows.iter().enumerate() {
                    let cell = if index == 0 { "th" } else { "td" };
                    out.push_str("<tr>");
                    for text in row {
                        let _ = write!(out, "<{cell}>{}</{cell}>", escape(text));
                    }
                    out.push_str("</tr>\n");
                }
                out.push_str("</table>\n");
            }
        }
    }
    if in_list {
        out.push_str("</ul>\n");
    }
    out.push_str("</body></html>\n");
    out
}

fn vietnam() -> time::UtcOffset {
    time::UtcOffset::from_hms(7, 0, 0).expect("+07:00 is a valid offset")
}

/// `YYYY-MM-DD` as `dd/mm/yyyy`; anything else as it is.
pub fn day_vi(iso: &str) -> String {
    match iso.split('-').collect::<Vec<_>>().as_slice() {
        [y, m, d] => format!("{d}/{m}/{y}"),
        _ => iso.to_owned(),
    }
}

/// A time as people in Vietnam read it: `HH:MM dd/mm/yyyy`, in +07:00.
pub fn time_vi(at: OffsetDateTime) -> String {
    let at = at.to_offset(vietnam());
    format!(
        "{:02}:{:02} {:02}/{:02}/{}",
        at.hour(),
        at.minute(),
        at.day(),
        at.month() as u8,
        at.year()
    )
}

/// A kind code in Vietnamese.
pub fn kind_vi(kind: &str) -> &str {
    match kind {
        "lan" => "Mạng LAN",
        "wan" => "Đường truyền WAN",
        "internet" => "Internet",
        "server" => "Máy chủ, dịch vụ",
        "host" => "Máy trạm",
        "security" => "An toàn thông tin",
        "agent_unreachable" => "Mất liên lạc máy giám sát",
        "other" => "Khác",
        other => other,
    }
}

/// A number the Vietnamese way: comma decimal, one decimal place.
pub fn number_vi(value: f64) -> String {
    format!("{value:.1}").replace('.', ",")
}

/// A percentage the Vietnamese way, with the two decimals every document uses: `99,90`.
pub fn percent_vi(value: f64) -> String {
    format!("{value:.2}").replace('.', ",")
}

fn incident_table(incidents: &[IncidentLine]) -> String {
    if incidents.is_empty() {
        return "Hệ thống giám sát không ghi nhận sự cố trong kỳ.\n\n".into();
    }
    let mut out = String::from(
        "| Số | Loại | Nội dung | Bắt đầu | Kết thúc | Thời gian khắc phục |\n|---|---|---|---|---|---|\n",
    );
    for incident in incidents {
        let (end, took) = match incident.ended_at {
            Some(end) => (
                time_vi(end),
                format!(
                    "{} phút",
                    number_vi((end - incident.started_at).as_seconds_f64() / 60.0)
                ),
            ),
            None => ("chưa khắc phục".into(), String::new()),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {end} | {took} |",
            incident.number,
            kind_vi(&incident.kind),
            incident.title.replace('|', "/"),
            time_vi(incident.started_at)
        );
    }
    out.push('\n');
    out
}

fn figures_table(figures: &Figures) -> String {
    let percent = |value: Option<f64>| {
        value.map_or_else(
            || "không có số liệu".to_owned(),
            |v| format!("{}%", percent_vi(v)),
        )
    };
    let minutes = |value: Option<f64>| {
        value.map_or_else(|| "—".to_owned(), |v| format!("{} phút", number_vi(v)))
    };
    let mut out = String::from("| Chỉ tiêu | Giá trị |\n|---|---|\n");
    let _ = writeln!(out, "| Số máy được giám sát | {} |", figures.machines);
    let _ = writeln!(
        out,
        "| Số máy chủ, dịch vụ được kiểm tra | {} |",
        figures.monitored_targets
    );
    let _ = writeln!(out, "| Tổng số sự cố | {} |", figures.incidents);
    for (kind, count) in &figures.incidents_by_kind {
        let _ = writeln!(out, "| Sự cố: {} | {count} |", kind_vi(kind));
    }
    let _ = writeln!(out, "| Sự cố đã khắc phục | {} |", figures.recovered);
    let _ = writeln!(
        out,
        "| Thời gian khắc phục trung bình | {} |",
        minutes(figures.mean_time_to_recover_minutes)
    );
    let _ = writeln!(
        out,
        "| Thời gian khắc phục dài nhất | {} |",
        minutes(figures.longest_time_to_recover_minutes)
    );
    let _ = writeln!(
        out,
        "| Tỷ lệ hoạt động mạng LAN | {} |",
        percent(figures.availability_lan_percent)
    );
    let _ = writeln!(
        out,
        "| Tỷ lệ hoạt động đường truyền WAN | {} |",
        percent(figures.availability_wan_percent)
    );
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn context() -> ReportContext {
        ReportContext {
            unit_code: "67.S.TTTT".into(),
            unit_name: "Sở Thông tin và Truyền thông".into(),
            officer: Some(OfficerInfo {
                name: "Nguyễn Văn An".into(),
                position: "Chuyên viên".into(),
                phone: "0261 3544 001".into(),
                email: "an@example.vn".into(),
            }),
            generated_at: datetime!(2026-11-23 01:00 UTC),
            periods: vec![ContextPeriod {
                scheme: "quarterly".into(),
                label: "2026-Q4".into(),
                label_vi: "quý IV năm 2026".into(),
                due: "2026-12-10".into(),
                rule: "ngày 10 tháng cuối kỳ".into(),
                figures: Figures {
                    data_from: "2026-09-15".into(),
                    data_to: "2026-12-14".into(),
                    machines: 3,
                    monitored_targets: 4,
                    incidents: 1,
                    incidents_by_kind: [("wan".to_owned(), 1)].into(),
                    recovered: 1,
                    mean_time_to_recover_minutes: Some(12.5),
                    longest_time_to_recover_minutes: Some(12.5),
                    availability_lan_percent: Some(100.0),
                    availability_wan_percent: Some(99.9),
                    ..Figures::default()
                },
                incidents: vec![IncidentLine {
                    number: "SC-2026-0001".into(),
                    kind: "wan".into(),
                    title: "Mất kết nối WAN".into(),
                    started_at: datetime!(2026-10-01 02:00 UTC),
                    ended_at: Some(datetime!(2026-10-01 02:12:30 UTC)),
                }],
                versions: 0,
            }],
        }
    }

    fn filled(draft: &str) -> String {
        let mut out = String::new();
        for line in draft.lines() {
            out.push_str(line);
            out.push('\n');
            if line.starts_with("## ") && !line.starts_with("## 11.") && !line.starts_with("## 3.")
            {
                out.push_str("Đã thực hiện đầy đủ.\n");
            }
        }
        out
    }

    #[test]
    fn a_draft_prefills_figures_and_incidents_and_a_filled_one_passes() {
        let context = context();
        let draft = draft(&context, &context.periods[0]);
        assert!(draft.contains("# BÁO CÁO KẾT QUẢ CÔNG TÁC CÔNG NGHỆ THÔNG TIN QUÝ IV NĂM 2026"));
        assert!(draft.contains("| SC-2026-0001 | Đường truyền WAN | Mất kết nối WAN | 09:00 01/10/2026 | 09:12 01/10/2026 | 12,5 phút |"), "{draft}");
        assert!(draft.contains("| Tỷ lệ hoạt động đường truyền WAN | 99,90% |"));
        // Untouched, the draft is refused: the officer has written nothing yet.
        let problems = parse(&draft).unwrap_err();
        assert_eq!(problems.0.len(), 9, "{problems}");
        assert!(
            problems.0[0].contains("mục 1. Công tác tham mưu"),
            "{problems}"
        );
        let report = parse(&filled(&draft)).unwrap();
        assert_eq!(report.front.period, "2026-Q4");
        assert_eq!(
            report.front.figures,
            Figures {
                generated_at: "2026-11-23T08:00:00+07:00".into(),
                ..context.periods[0].figures.clone()
            }
        );
        assert_eq!(report.sections[&1], "Đã thực hiện đầy đủ.");
        assert!(report.sections[&3].contains("SC-2026-0001"));
    }

    #[test]
    fn problems_name_the_line_and_the_section() {
        let context = context();
        let text = filled(&draft(&context, &context.periods[0]));
        let without_plan = text.replace("## 10. Kế hoạch kỳ tới", "Kế hoạch kỳ tới");
        let problems = parse(&without_plan).unwrap_err();
        assert_eq!(problems.0, ["thiếu mục \"## 10. Kế hoạch kỳ tới\""]);
        let broken = text.replace("period = \"2026-Q4\"", "period = 2026-Q4");
        let problems = parse(&broken).unwrap_err();
        assert!(
            problems.0[0].starts_with("dòng 8: phần thông tin báo cáo sai cú pháp"),
            "{problems}"
        );
        assert!(parse("# Báo cáo\n").unwrap_err().0[0].contains("dòng 1"));
        let no_officer = text.replace("officer = \"Nguyễn Văn An\"", "officer = \"\"");
        assert_eq!(
            parse(&no_officer).unwrap_err().0,
            ["chưa điền officer (họ tên cán bộ báo cáo)"]
        );
    }

    #[test]
    fn sections_cover_every_duty_of_article_5() {
        let hints: String = SECTIONS.iter().map(|spec| spec.hint).collect();
        for duty in ["5.1", "5.2", "5.3", "5.4", "5.5", "5.6", "5.7"] {
            assert!(hints.contains(&format!("Điều {duty}")), "{duty}");
        }
        let context = context();
        let draft = draft(&context, &context.periods[0]);
        assert!(draft.contains("## 7. Báo cáo thống kê"), "{draft}");
        assert!(draft.contains("## 8. Nhiệm vụ khác do thủ trưởng cơ quan giao"));
        let without = filled(&draft).replace(
            "## 8. Nhiệm vụ khác do thủ trưởng cơ quan giao\nĐã thực hiện đầy đủ.",
            "## 8. Nhiệm vụ khác do thủ trưởng cơ quan giao\n",
        );
        let problems = parse(&without).unwrap_err();
        assert_eq!(problems.0.len(), 1, "{problems}");
        assert!(problems.0[0].contains("mục 8. Nhiệm vụ khác"), "{problems}");
    }

    #[test]
    fn a_document_of_the_nine_section_form_still_reads() {
        let old = "+++\nscheme = \"quarterly\"\nperiod = \"2026-Q4\"\nunit = \"24700\"\nofficer = \"A\"\n+++\n\
                   ## 1. a\nx\n## 2. b\nx\n## 3. c\nx\n## 4. d\nx\n## 5. e\nx\n## 6. f\nx\n\
                   ## 7. Khó khăn, vướng mắc và đề xuất, kiến nghị\nThiếu máy chủ.\n## 8. Kế hoạch kỳ tới\nx\n\
                   ## 9. Số liệu từ hệ thống giám sát\n| a | b |\n";
        let report = parse(old).unwrap();
        assert_eq!(report.section("difficulties"), Some("Thiếu máy chủ."));
        assert_eq!(report.section("plan"), Some("x"));
        assert_eq!(report.section("figures"), Some("| a | b |"));
        assert_eq!(report.section("statistics"), None);
    }

    #[test]
    fn the_document_the_so_receives_has_no_editing_source() {
        let context = context();
        let text = filled(&draft(&context, &context.periods[0])).replace(
            "## 9. Khó khăn, vướng mắc và đề xuất, kiến nghị\nĐã thực hiện đầy đủ.",
            "## 9. Khó khăn, vướng mắc và đề xuất, kiến nghị\n\n- Thiếu **máy chủ** dự phòng;\n- Đề nghị tập huấn <an toàn> thông tin.",
        );
        let report = parse(&text).unwrap();
        let blocks = document_blocks(
            &report,
            &Submission {
                period_vi: "quý IV năm 2026".into(),
                submitted_at: Some(datetime!(2026-12-05 02:00 UTC)),
                version: 2,
            },
        );
        let text = render_text(&blocks);
        for absent in ["+++", "<!--", "cntt-agent", "scheme =", "[figures]", "##"] {
            assert!(!text.contains(absent), "{absent} in {text}");
        }
        for present in [
            "BÁO CÁO KẾT QUẢ CÔNG TÁC CÔNG NGHỆ THÔNG TIN QUÝ IV NĂM 2026\n",
            "Đơn vị: Sở Thông tin và Truyền thông (mã 67.S.TTTT)\n",
            "Cán bộ chuyên trách CNTT: Nguyễn Văn An, Chuyên viên; điện thoại: 0261 3544 001; thư điện tử: an@example.vn\n",
            "Kỳ báo cáo: quý IV năm 2026; số liệu từ ngày 15/09/2026 đến ngày 14/12/2026\n",
            "Thời điểm nộp: 09:00 05/12/2026 (bản cập nhật lần 1)\n",
            "\n7. Báo cáo thống kê, báo cáo định kỳ và đột xuất về công nghệ thông tin\n",
            "- Thiếu máy chủ dự phòng;\n- Đề nghị tập huấn <an toàn> thông tin.\n",
            "SC-2026-0001 | Đường truyền WAN | Mất kết nối WAN",
            "Tỷ lệ hoạt động đường truyền WAN | 99,90%",
        ] {
            assert!(text.contains(present), "{present:?} missing from\n{text}");
        }
        let html = render_html(&blocks);
        assert!(
            html.contains("<li>Đề nghị tập huấn &lt;an toàn&gt; thông tin.</li>"),
            "{html}"
        );
        assert!(html.contains("<h2>9. Khó khăn, vướng mắc và đề xuất, kiến nghị</h2>"));
        assert!(html.contains("<th>Số</th>"), "{html}");
        assert!(!html.contains("<!--") && !html.contains("+++"));
    }
}
