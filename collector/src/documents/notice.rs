//! The notices people read: subject, plain text and HTML of each kind of notice, in formal
//! Vietnamese, from the facts of one incident (issue 5, item 4). Pure: the engine gathers the
//! facts, this module only writes.
//!
//! The opening notice carries the fields of the initial incident report of Thông tư 20/2017
//! (Biểu mẫu 03) that the system knows: reporting unit and contact, affected system, time
//! discovered, how it was discovered, short description, current status, who else has been told.
//! The closing notice carries those of the closing report (Biểu mẫu 04): reference of the initial
//! report, what happened, how it was resolved, duration, lessons learned. Times are 24-hour in
//! Vietnam's time zone, dates dd/mm/yyyy (`crate::domain::vi::time_of`).

use std::fmt::Write;

use crate::domain::vi::time_of;

pub use crate::domain::notice_rules::NoticeKind;

/// A person who reports or is told.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Person {
    /// Full name.
    pub name: String,
    /// Position, e.g. "Cán bộ chuyên trách CNTT".
    pub position: String,
    /// Phone number.
    pub phone: String,
    /// Email address.
    pub email: String,
}

/// What a notice says about its incident.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Facts {
    /// Human number, e.g. `SC-2026-0042`.
    pub number: String,
    /// Name of the unit it happened in.
    pub unit_name: String,
    /// The unit's IT officer, the contact for the report.
    pub contact: Option<Person>,
    /// `lan`, `wan`, `internet`, `server`, `host`, `security`, `other`, `agent_unreachable`.
    pub kind: String,
    /// `low`, `medium`, `high`, `critical`.
    pub severity: String,
    /// How it was found: `agent_detected`, `inferred`, `agent_manual`, `manual`.
    pub source: String,
    /// One line.
    pub title: String,
    /// More words.
    pub description: String,
    /// Systems affected (the failing target for detected incidents).
    pub systems: Vec<String>,
    /// When it started, Unix ms.
    pub started_at: i64,
    /// When it was discovered (detected or reported), Unix ms.
    pub discovered_at: i64,
    /// When it ended, Unix ms.
    pub ended_at: Option<i64>,
    /// `open`, `acknowledged`, `resolved`, `closed`.
    pub state: String,
    /// Incidents folded under it (for a grouped outage: the agents and units it explains).
    pub grouped: usize,
    /// Who else has been told (names with their unit or role).
    pub told: Vec<String>,
    /// Closing report: what happened.
    pub cause: String,
    /// Closing report: how it was resolved.
    pub resolution: String,
    /// Closing report: lessons learned.
    pub lessons: String,
    /// For escalations and reminders: how long it has been open, ms.
    pub open_for_ms: i64,
}

/// A notice ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Subject line, with the configured prefix.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body: the same content as a table.
    pub html: String,
}

/// The kind of incident as people say it.
pub fn kind_text(kind: &str) -> &'static str {
    match kind {
        "lan" => "Sự cố mạng nội bộ (LAN)",
        "wan" => "Sự cố đường truyền, thiết bị WAN",
        "internet" => "Sự cố kết nối Internet",
        "server" => "Sự cố máy chủ, dịch vụ",
        "host" => "Sự cố máy trạm, máy chủ (tài nguyên)",
        "security" => "Sự cố an toàn thông tin",
        "agent_unreachable" => "Mất liên lạc với tác tử giám sát",
        _ => "Sự cố khác",
    }
}

/// Severity as people say it.
pub fn severity_text(severity: &str) -> &'static str {
    match severity {
        "low" => "Thấp",
        "medium" => "Trung bình",
        "high" => "Cao",
        "critical" => "Nghiêm trọng",
        _ => "Không rõ",
    }
}

fn discovery_text(source: &str) -> &'static str {
    match source {
        "agent_detected" => "Hệ thống giám sát tự động phát hiện",
        "inferred" => "Hệ thống giám sát tự động suy ra (các tác tử cùng mất liên lạc)",
        _ => "Cán bộ báo cáo",
    }
}

/// An incident's state as people say it.
pub(crate) fn state_text(state: &str) -> &'static str {
    match state {
        "open" => "Đang xảy ra, chưa xử lý xong",
        "acknowledged" => "Đang xảy ra, cán bộ đã tiếp nhận xử lý",
        "resolved" => "Đã khắc phục",
        "closed" => "Đã khắc phục và kết thúc xử lý",
        _ => "Không rõ",
    }
}

/// `2 giờ 5 phút`, `45 phút`, `30 giây`.
pub fn duration_text(ms: i64) -> String {
    let seconds = ms.max(0) / 1000;
    let (days, hours, minutes) = (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60);
    let mut parts = Vec::new();
    if days > 0 {
        parts.push(format!("{days} ngày"));
    }
    if hours > 0 {
        parts.push(format!("{hours} giờ"));
    }
    if minutes > 0 {
        parts.push(format!("{minutes} phút"));
    }
    if parts.is_empty() {
        parts.push(format!("{seconds} giây"));
    }
    parts.join(" ")
}

/// The rows of a notice: (label, value), in order.
fn rows(kind: NoticeKind, facts: &Facts) -> Vec<(&'static str, String)> {
    let mut rows = vec![("Số hiệu sự cố", facts.number.clone())];
    if kind == NoticeKind::Closing {
        rows.push((
            "Tham chiếu báo cáo ban đầu",
            format!("Báo cáo ban đầu sự cố {}", facts.number),
        ));
    }
    rows.push(("Đơn vị", facts.unit_name.clone()));
    if let Some(contact) = &facts.contact {
        let mut who = contact.name.clone();
        for extra in [&contact.position, &contact.phone, &contact.email] {
            if !extra.is_empty() {
                who.push_str(", ");
                who.push_str(extra);
            }
        }
        rows.push(("Người liên hệ", who));
    }
    rows.push(("Loại sự cố", kind_text(&facts.kind).to_owned()));
    rows.push(("Mức độ", severity_text(&facts.severity).to_owned()));
    if !facts.systems.is_empty() {
        rows.push(("Hệ thống bị ảnh hưởng", facts.systems.join("; ")));
    }
    rows.push(("Mô tả", describe(facts)));
    rows.push(("Thời điểm bắt đầu", time_of(facts.started_at)));
    rows.push(("Thời điểm phát hiện", time_of(facts.discovered_at)));
    rows.push(("Cách phát hiện", discovery_text(&facts.source).to_owned()));
    if let Some(ended_at) = facts.ended_at {
        rows.push(("Thời điểm kết thúc", time_of(ended_at)));
        // A duration only for what interrupts a service: a defacement has no "interruption".
        if crate::documents::incident::INTERRUPTING_KINDS.contains(&facts.kind.as_str()) {
            rows.push((
                "Thời gian gián đoạn",
                duration_text(ended_at - facts.started_at),
            ));
        }
    } else if matches!(kind, NoticeKind::Escalation | NoticeKind::Reminder) {
        rows.push(("Đã kéo dài", duration_text(facts.open_for_ms)));
    }
    rows.push(("Tình trạng hiện tại", state_text(&facts.state).to_owned()));
    if kind == NoticeKind::Closing {
        rows.push(("Nguyên nhân, diễn biến", or_dash(&facts.cause)));
        rows.push(("Biện pháp khắc phục", or_dash(&facts.resolution)));
        rows.push(("Bài học kinh nghiệm", or_dash(&facts.lessons)));
    }
    if !facts.told.is_empty() {
        rows.push(("Đã thông báo cho", facts.told.join("; ")));
    }
    rows
}

fn or_dash(text: &str) -> String {
    if text.trim().is_empty() {
        "(chưa ghi)".to_owned()
    } else {
        text.trim().to_owned()
    }
}

fn describe(facts: &Facts) -> String {
    let mut text = facts.title.clone();
    if !facts.description.trim().is_empty() {
        text.push_str(". ");
        text.push_str(facts.description.trim());
    }
    if facts.grouped > 0 {
        let _ = write!(
            text,
            " (gộp {} sự cố liên quan, không thông báo riêng)",
            facts.grouped
        );
    }
    text
}

/// The heading of each kind of notice.
fn heading(kind: NoticeKind) -> &'static str {
    match kind {
        NoticeKind::Opening => "THÔNG BÁO SỰ CỐ (BÁO CÁO BAN ĐẦU)",
        NoticeKind::Escalation => "BÁO CÁO SỰ CỐ CHƯA ĐƯỢC KHẮC PHỤC",
        NoticeKind::Reminder => "NHẮC LẠI: SỰ CỐ VẪN ĐANG XẢY RA",
        NoticeKind::Resolution => "THÔNG BÁO SỰ CỐ ĐÃ ĐƯỢC KHẮC PHỤC",
        NoticeKind::Closing => "BÁO CÁO KẾT THÚC ỨNG CỨU SỰ CỐ",
        NoticeKind::Test => "THƯ KIỂM TRA HỆ THỐNG THÔNG BÁO",
    }
}

fn subject_line(kind: NoticeKind, facts: &Facts) -> String {
    match kind {
        NoticeKind::Opening => format!("Sự cố {}: {}", facts.number, facts.title),
        NoticeKind::Escalation => format!(
            "Sự cố {} chưa khắc phục sau {}: {}",
            facts.number,
            duration_text(facts.open_for_ms),
            facts.title
        ),
        NoticeKind::Reminder => format!(
            "Nhắc lại sự cố {} (đã {}): {}",
            facts.number,
            duration_text(facts.open_for_ms),
            facts.title
        ),
        NoticeKind::Resolution => format!(
            "Đã khắc phục sự cố {} sau {}: {}",
            facts.number,
            duration_text(facts.ended_at.unwrap_or(facts.started_at) - facts.started_at),
            facts.title
        ),
        NoticeKind::Closing => format!("Kết thúc xử lý sự cố {}: {}", facts.number, facts.title),
        NoticeKind::Test => "Thư kiểm tra hệ thống thông báo sự cố".to_owned(),
    }
}

const FOOTER: &str =
    "Thông báo này do Hệ thống giám sát hạ tầng công nghệ thông tin của tỉnh gửi tự động \
theo Quyết định 02/2017/QĐ-UBND; nội dung theo các trường của Thông tư 20/2017/TT-BTTTT. \
Vui lòng không trả lời thư này.";

/// Renders a notice. `prefix` goes before the subject, e.g. `[TBSC]`.
pub fn render(kind: NoticeKind, facts: &Facts, prefix: &str) -> Rendered {
    let subject = if prefix.is_empty() {
        subject_line(kind, facts)
    } else {
        format!("{prefix} {}", subject_line(kind, facts))
    };
    if kind == NoticeKind::Test {
        let text = format!(
            "{}\n\nĐây là thư kiểm tra: nếu Anh/Chị nhận được thư này, kênh thông báo đã được cấu hình đúng.\n\n{FOOTER}\n",
            heading(kind)
        );
        let html = format!(
            "<!DOCTYPE html><html lang=\"vi\"><head><meta charset=\"utf-8\"><title>{}</title></head><body>\
             <h2>{}</h2><p>Đây là thư kiểm tra: nếu Anh/Chị nhận được thư này, kênh thông báo đã được cấu hình đúng.</p>\
             <p><small>{FOOTER}</small></p></body></html>",
            escape(&subject),
            heading(kind)
        );
        return Rendered {
            subject,
            text,
            html,
        };
    }
    let rows = rows(kind, facts);
    let width = rows
        .iter()
        .map(|(label, _)| label.chars().count())
        .max()
        .unwrap_or(0);
    let mut text = format!("{}\n\n", heading(kind));
    for (label, value) in &rows {
        let pad = width - label.chars().count();
        let _ = writeln!(text, "{label}:{} {value}", " ".repeat(pad));
    }
    let _ = write!(text, "\n{FOOTER}\n");
    let mut html = format!(
        "<!DOCTYPE html><html lang=\"vi\"><head><meta charset=\"utf-8\"><title>{}</title></head><body>\
         <h2>{}</h2><table cellpadding=\"4\" style=\"border-collapse:collapse\">",
        escape(&subject),
        heading(kind)
    );
    for (label, value) in &rows {
        let _ = write!(
            html,
            "<tr><th align=\"left\" valign=\"top\">{}</th><td>{}</td></tr>",
            escape(label),
            escape(value)
        );
    }
    let _ = write!(
        html,
        "</table><p><small>{}</small></p></body></html>",
        escape(FOOTER)
    );
    Rendered {
        subject,
        text,
        html,
    }
}

/// One line of the daily digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestLine {
    /// Human number.
    pub number: String,
    /// Unit name.
    pub unit_name: String,
    /// Kind.
    pub kind: String,
    /// Title.
    pub title: String,
    /// Start, Unix ms.
    pub started_at: i64,
    /// End, Unix ms.
    pub ended_at: Option<i64>,
    /// State.
    pub state: String,
}

/// The daily digest: the incidents of the last 24 hours a contact may see.
pub fn render_digest(lines: &[DigestLine], now: i64, prefix: &str) -> Rendered {
    let date = time_of(now);
    let date = date.split(' ').nth(1).unwrap_or_default().to_owned();
    let open = lines
        .iter()
        .filter(|line| matches!(line.state.as_str(), "open" | "acknowledged"))
        .count();
    let subject = format!(
        "{prefix} Tổng hợp sự cố ngày {date}: {} sự cố, {open} đang xảy ra",
        lines.len()
    )
    .trim_start()
    .to_owned();
    let mut text = format!(
        "TỔNG HỢP SỰ CỐ 24 GIỜ QUA\n\nĐến {}: {} sự cố, trong đó {open} đang xảy ra.\n\n",
        time_of(now),
        lines.len()
    );
    if lines.is_empty() {
        text.push_str("Không có sự cố nào trong 24 giờ qua.\n");
    }
    for line in lines {
        let _ = write!(
            text,
            "- {} | {} | {} | {} | bắt đầu {} | {}",
            line.number,
            line.unit_name,
            kind_text(&line.kind),
            line.title,
            time_of(line.started_at),
            state_text(&line.state)
        );
        if let Some(ended_at) = line.ended_at {
            let _ = write!(text, " sau {}", duration_text(ended_at - line.started_at));
        }
        text.push('\n');
    }
    let _ = write!(text, "\n{FOOTER}\n");
    let html = preformatted_html(&subject, &text);
    Rendered {
        subject,
        text,
        html,
    }
}

/// The notice that one channel has been failing for a while, sent through another.
pub fn render_channel_down(channel: &str, since: i64, error: &str, prefix: &str) -> Rendered {
    let (name, what) = match channel {
        "email" => ("thư điện tử (email)", "máy chủ thư"),
        "zalo" => (
            "Zalo",
            "tài khoản Zalo Bot (mã truy cập) và kết nối tới Zalo",
        ),
        "sms" => ("tin nhắn SMS", "cổng gửi tin nhắn SMS của nhà mạng"),
        _ => ("webhook", "dịch vụ nhận webhook"),
    };
    let subject = format!(
        "{prefix} Kênh thông báo {name} không gửi được từ {}",
        time_of(since)
    )
    .trim_start()
    .to_owned();
    let text = format!(
        "CẢNH BÁO: KÊNH THÔNG BÁO SỰ CỐ KHÔNG HOẠT ĐỘNG\n\n\
         Kênh {name} của hệ thống giám sát không gửi được thông báo từ {}.\n\
         Lỗi gần nhất: {error}\n\n\
         Các thông báo sự cố vẫn được lưu và sẽ được gửi lại theo thứ tự khi kênh hoạt động trở lại. \
         Đề nghị kiểm tra {what}.\n\n{FOOTER}\n",
        time_of(since)
    );
    let html = preformatted_html(&subject, &text);
    Rendered {
        subject,
        text,
        html,
    }
}

/// Adds the link with which the person acknowledges the incident from the notice (issue 17),
/// valid until `expires_at` (Unix ms), to the text and the HTML.
pub fn add_ack_link(rendered: &mut Rendered, url: &str, expires_at: i64) {
    let line = format!(
        "Xác nhận đã tiếp nhận và đang xử lý (đăng nhập, dùng một lần, hạn đến {}): {url}",
        time_of(expires_at)
    );
    rendered.text.push('\n');
    rendered.text.push_str(&line);
    rendered.text.push('\n');
    let html = format!(
        "<p><a href=\"{}\">Xác nhận đã tiếp nhận và đang xử lý</a> (đăng nhập, dùng một lần, hạn đến {})</p>",
        escape(url),
        escape(&time_of(expires_at))
    );
    match rendered.html.rfind("</body>") {
        Some(at) => rendered.html.insert_str(at, &html),
        None => rendered.html.push_str(&html),
    }
}

/// A reminder to whoever planned a long maintenance window that it ends at `end` (Unix ms): the
/// problems still open then will be announced.
pub fn render_maintenance_reminder(
    scope: &str,
    reason: &str,
    planned_by: &str,
    end: i64,
    now: i64,
    prefix: &str,
) -> Rendered {
    let subject = format!("{prefix} Lịch bảo trì sắp kết thúc: {scope}")
        .trim_start()
        .to_owned();
    let text = format!(
        "NHẮC LỊCH BẢO TRÌ SẮP KẾT THÚC\n\n\
         Lịch bảo trì của {scope} kết thúc lúc {} (còn khoảng {}).\n\
         Lý do: {reason}\n\
         Người lập lịch: {planned_by}\n\n\
         Trong lịch bảo trì, sự cố vẫn được ghi nhận nhưng không thông báo. Khi lịch kết thúc, \
         những sự cố còn mở sẽ được thông báo như thường lệ. Nếu công việc chưa xong, đề nghị \
         lập thêm lịch bảo trì trên bảng điều khiển trước giờ kết thúc.\n\n{FOOTER}\n",
        time_of(end),
        duration_text((end - now).max(0)),
    );
    let html = preformatted_html(&subject, &text);
    Rendered {
        subject,
        text,
        html,
    }
}

/// A reminder to an IT officer that the unit's periodic report is due in `days` days.
pub fn render_report_reminder(
    name: &str,
    row: &crate::services::reports::UnitStanding,
    period: &crate::domain::periods::Period,
    days: i64,
    prefix: &str,
) -> Rendered {
    use crate::domain::periods::{show_date, weekday_vi};
    let when = if days <= 1 {
        "ngày mai hoặc hôm nay".to_owned()
    } else {
        format!("trong {days} ngày tới")
    };
    let subject = format!(
        "{prefix} Nhắc nộp báo cáo {}: hạn {} – {}",
        period.label_vi,
        show_date(period.due),
        row.unit_name
    )
    .trim_start()
    .to_owned();
    let text = format!(
        "Kính gửi: {name},\n\n\
         Báo cáo định kỳ {} của {} ({}) đến hạn nộp {when}: {} {}.\n\
         Số liệu của kỳ tính từ {} đến {}. Hệ thống chưa nhận được báo cáo của đơn vị.\n\n\
         Cách nộp: trên máy đã cài cntt-agent, chạy\n\
         \x20 cntt-agent report draft --period {}\n\
         để tạo bản nháp có sẵn số liệu giám sát, điền nội dung, rồi chạy\n\
         \x20 cntt-agent report submit <tệp báo cáo>\n\
         Báo cáo nộp khi mạng gián đoạn vẫn được tính theo thời điểm nộp.\n\n\
         Căn cứ: Điều 12.1 Quyết định 02/2017/QĐ-UBND; hạn nộp: {}.\n\n{FOOTER}\n",
        period.label_vi,
        row.unit_name,
        row.unit_code,
        weekday_vi(period.due.weekday()),
        show_date(period.due),
        show_date(period.data_from),
        show_date(period.data_to),
        period.label,
        period.rule
    );
    let html = preformatted_html(&subject, &text);
    Rendered {
        subject,
        text,
        html,
    }
}

/// A notice to a unit's leadership that its periodic report is overdue.
pub fn render_report_overdue(
    name: &str,
    authority: &str,
    row: &crate::services::reports::UnitStanding,
    period: &crate::domain::periods::Period,
    prefix: &str,
) -> Rendered {
    use crate::domain::periods::show_date;
    let subject = format!(
        "{prefix} Quá hạn báo cáo {}: {}",
        period.label_vi, row.unit_name
    )
    .trim_start()
    .to_owned();
    let text = format!(
        "Kính gửi: {name},\n\n\
         Đến nay {authority} chưa nhận được báo cáo định kỳ {} của {} ({}), hạn nộp ngày {}.\n\
         Đề nghị đồng chí chỉ đạo cán bộ chuyên trách CNTT của đơn vị hoàn thành và gửi báo cáo sớm.\n\n\
         Căn cứ: Điều 12.1 Quyết định 02/2017/QĐ-UBND.\n\n{FOOTER}\n",
        period.label_vi,
        row.unit_name,
        row.unit_code,
        show_date(period.due)
    );
    let html = preformatted_html(&subject, &text);
    Rendered {
        subject,
        text,
        html,
    }
}

/// A reminder to a unit's IT officer that the closing report (Biểu mẫu 04) of an incident whose
/// response has ended is due by `due` (Unix ms) and has not been issued: it is issued when the
/// incident is closed with its cause, resolution and lessons.
pub fn render_closing_report_reminder(
    name: &str,
    incident_number: &str,
    title: &str,
    unit_name: &str,
    ended_at: i64,
    due: i64,
    prefix: &str,
) -> Rendered {
    use crate::documents::incident::time_text;
    let subject = format!(
        "{prefix} Nhắc gửi báo cáo kết thúc sự cố {incident_number}: hạn {}",
        time_text(due)
    )
    .trim_start()
    .to_owned();
    let text = format!(
        "Kính gửi: {name},\n\n\
         Sự cố {incident_number} ({title}) của {unit_name} đã được khắc phục lúc {}.\n\
         Báo cáo kết thúc ứng phó sự cố phải được gửi chậm nhất lúc {}, nhưng đến nay sự cố chưa \
         được đóng nên báo cáo kết thúc chưa được lập.\n\n\
         Đề nghị đồng chí đóng sự cố (ghi nguyên nhân, biện pháp xử lý và bài học kinh nghiệm); \
         hệ thống sẽ lập báo cáo kết thúc để thủ trưởng đơn vị ký và gửi.\n\n{FOOTER}\n",
        time_text(ended_at),
        time_text(due)
    );
    let html = preformatted_html(&subject, &text);
    Rendered {
        subject,
        text,
        html,
    }
}

/// An HTML body that shows the plain text as it is, for notices that are a list rather than a form.
fn preformatted_html(subject: &str, text: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"vi\"><head><meta charset=\"utf-8\"><title>{}</title></head><body><pre>{}</pre></body></html>",
        escape(subject),
        escape(text)
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::*;

    /// 2026-11-23 08:12:00 in Vietnam.
    const AT_0812: i64 = 1_795_396_320_000;

    fn district_outage() -> Facts {
        Facts {
            number: "SC-2026-0042".into(),
            unit_name: "Huyện Đắk Mil".into(),
            contact: Some(Person {
                name: "Nguyễn Văn An".into(),
                position: "Cán bộ chuyên trách CNTT".into(),
                phone: "0912 345 678".into(),
                email: "an.nv@dakmil.daknong.gov.vn".into(),
            }),
            kind: "wan".into(),
            severity: "critical".into(),
            source: "inferred".into(),
            title: "Mất kết nối WAN: Huyện Đắk Mil (3 đơn vị)".into(),
            description: "3 đơn vị dùng chung đường truyền qua Huyện Đắk Mil cùng mất liên lạc."
                .into(),
            systems: vec![],
            started_at: AT_0812,
            discovered_at: AT_0812 + 95_000,
            ended_at: None,
            state: "open".into(),
            grouped: 14,
            told: vec!["Lê Thị Bình (Lãnh đạo UBND huyện Đắk Mil)".into()],
            cause: String::new(),
            resolution: String::new(),
            lessons: String::new(),
            open_for_ms: 0,
        }
    }

    #[test]
    fn the_opening_notice_has_the_initial_report_fields() {
        let notice = render(NoticeKind::Opening, &district_outage(), "[TBSC]");
        expect!["[TBSC] Sự cố SC-2026-0042: Mất kết nối WAN: Huyện Đắk Mil (3 đơn vị)"]
            .assert_eq(&notice.subject);
        expect![[r#"
            THÔNG BÁO SỰ CỐ (BÁO CÁO BAN ĐẦU)

            Số hiệu sự cố:       SC-2026-0042
            Đơn vị:              Huyện Đắk Mil
            Người liên hệ:       Nguyễn Văn An, Cán bộ chuyên trách CNTT, 0912 345 678, an.nv@dakmil.daknong.gov.vn
            Loại sự cố:          Sự cố đường truyền, thiết bị WAN
            Mức độ:              Nghiêm trọng
            Mô tả:               Mất kết nối WAN: Huyện Đắk Mil (3 đơn vị). 3 đơn vị dùng chung đường truyền qua Huyện Đắk Mil cùng mất liên lạc. (gộp 14 sự cố liên quan, không thông báo riêng)
            Thời điểm bắt đầu:   08:12:00 23/11/2026
            Thời điểm phát hiện: 08:13:35 23/11/2026
            Cách phát hiện:      Hệ thống giám sát tự động suy ra (các tác tử cùng mất liên lạc)
            Tình trạng hiện tại: Đang xảy ra, chưa xử lý xong
            Đã thông báo cho:    Lê Thị Bình (Lãnh đạo UBND huyện Đắk Mil)

            Thông báo này do Hệ thống giám sát hạ tầng công nghệ thông tin của tỉnh gửi tự động theo Quyết định 02/2017/QĐ-UBND; nội dung theo các trường của Thông tư 20/2017/TT-BTTTT. Vui lòng không trả lời thư này.
        "#]]
        .assert_eq(&notice.text);
        assert!(notice.html.starts_with("<!DOCTYPE html><html lang=\"vi\">"));
        assert!(notice.html.contains(
            "<tr><th align=\"left\" valign=\"top\">Mức độ</th><td>Nghiêm trọng</td></tr>"
        ));
    }

    #[test]
    fn escalation_resolution_and_closing_say_how_long() {
        let mut facts = district_outage();
        facts.open_for_ms = 31 * 60_000;
        expect!["[TBSC] Sự cố SC-2026-0042 chưa khắc phục sau 31 phút: Mất kết nối WAN: Huyện Đắk Mil (3 đơn vị)"]
            .assert_eq(&render(NoticeKind::Escalation, &facts, "[TBSC]").subject);
        assert!(render(NoticeKind::Reminder, &facts, "[TBSC]")
            .text
            .contains("Đã kéo dài:          31 phút\n"));
        facts.ended_at = Some(AT_0812 + (2 * 3600 + 5 * 60) * 1000);
        facts.state = "resolved".into();
        let resolution = render(NoticeKind::Resolution, &facts, "[TBSC]");
        expect!["[TBSC] Đã khắc phục sự cố SC-2026-0042 sau 2 giờ 5 phút: Mất kết nối WAN: Huyện Đắk Mil (3 đơn vị)"]
            .assert_eq(&resolution.subject);
        assert!(resolution
            .text
            .contains("Thời điểm kết thúc:  10:17:00 23/11/2026\n"));
        facts.state = "closed".into();
        facts.cause = "Đứt cáp quang do thi công đường".into();
        facts.resolution = "Nhà mạng hàn nối cáp".into();
        facts.lessons = "Đề nghị nhà mạng bố trí tuyến dự phòng".into();
        let closing = render(NoticeKind::Closing, &facts, "");
        expect!["Kết thúc xử lý sự cố SC-2026-0042: Mất kết nối WAN: Huyện Đắk Mil (3 đơn vị)"]
            .assert_eq(&closing.subject);
        for line in [
            "Tham chiếu báo cáo ban đầu: Báo cáo ban đầu sự cố SC-2026-0042",
            "Thời gian gián đoạn:        2 giờ 5 phút",
            "Nguyên nhân, diễn biến:     Đứt cáp quang do thi công đường",
            "Biện pháp khắc phục:        Nhà mạng hàn nối cáp",
            "Bài học kinh nghiệm:        Đề nghị nhà mạng bố trí tuyến dự phòng",
        ] {
            assert!(closing.text.contains(line), "{line}\n{}", closing.text);
        }
    }

    #[test]
    fn html_is_escaped_and_durations_read_naturally() {
        let mut facts = district_outage();
        facts.title = "Máy chủ <portal> & CSDL".into();
        let html = render(NoticeKind::Opening, &facts, "[TBSC]").html;
        assert!(html.contains("Máy chủ &lt;portal&gt; &amp; CSDL"));
        assert!(!html.contains("<portal>"));
        assert_eq!(duration_text(30_000), "30 giây");
        assert_eq!(duration_text(45 * 60_000), "45 phút");
        assert_eq!(
            duration_text((26 * 3600 + 60) * 1000),
            "1 ngày 2 giờ 1 phút"
        );
        assert_eq!(NoticeKind::parse("closing"), Some(NoticeKind::Closing));
        assert_eq!(NoticeKind::parse("x"), None);
    }
}
