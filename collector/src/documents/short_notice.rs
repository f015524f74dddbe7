//! Notices as short texts for a phone (issue 17): what a Zalo message or an SMS says. Pure, like
//! `notice`, whose facts and words it reuses.
//!
//! A short text is written in two parts. The *head* is rendered when the notice is written (and
//! stored as its text, so every attempt sends the same words): what happened, where, since when,
//! how severe, the incident's number. The *tail* is the link to the incident on the console,
//! added when the notice is sent (`jobs::notify::incident_link` builds it) by [`fit`], which cuts
//! the head, never the link, to the platform's limit. Without a console address the tail says
//! plainly that there is no link, rather than send a broken one.
//!
//! Two forms: a Zalo message ([`Form::Message`], a few labelled lines, up to 2,000 characters)
//! and an SMS ([`Form::Compact`], one sentence: with Vietnamese diacritics an SMS is sent as
//! UCS-2, 70 characters for one part and 67 for each part of a longer one, so every character
//! costs).

use std::fmt::Write;

use super::notice::{duration_text, kind_text, severity_text, state_text, Facts, NoticeKind};
use crate::domain::vi::VIETNAM;

/// The shape of a short text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// A chat message: the subject, then one labelled line per fact (Zalo).
    Message,
    /// One sentence (SMS).
    Compact,
}

impl Form {
    /// The form a notice on `channel` takes: none for e-mail and webhooks, which carry the full
    /// notice.
    pub fn of(channel: &str) -> Option<Form> {
        match channel {
            "zalo" => Some(Form::Message),
            "sms" => Some(Form::Compact),
            _ => None,
        }
    }

    fn separator(self) -> &'static str {
        match self {
            Form::Message => "\n",
            Form::Compact => " ",
        }
    }
}

/// `08:12 23/11/2026` (Zalo) or `08:12 23/11` (SMS), Vietnam time, from Unix ms.
fn short_time(ms: i64, form: Form) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(VIETNAM);
    let mut text = format!(
        "{:02}:{:02} {:02}/{:02}",
        at.hour(),
        at.minute(),
        at.day(),
        u8::from(at.month())
    );
    if form == Form::Message {
        let _ = write!(text, "/{}", at.year());
    }
    text
}

/// The head of an incident's notice: `subject` is the notice's subject line (with its prefix),
/// which a Zalo message opens with; an SMS says it in one sentence of its own.
pub fn incident(
    kind: NoticeKind,
    facts: &Facts,
    subject: &str,
    prefix: &str,
    form: Form,
) -> String {
    let severity = severity_text(&facts.severity).to_lowercase();
    let since = short_time(facts.started_at, form);
    match form {
        Form::Compact => {
            let lead = match kind {
                NoticeKind::Escalation => format!(
                    "Sự cố {} chưa khắc phục sau {}",
                    facts.number,
                    duration_text(facts.open_for_ms)
                ),
                NoticeKind::Reminder => format!(
                    "Nhắc lại: sự cố {} vẫn đang xảy ra (đã {})",
                    facts.number,
                    duration_text(facts.open_for_ms)
                ),
                NoticeKind::Resolution => format!(
                    "Đã khắc phục sự cố {} sau {}",
                    facts.number,
                    duration_text(facts.ended_at.unwrap_or(facts.started_at) - facts.started_at)
                ),
                NoticeKind::Closing => format!("Đã kết thúc xử lý sự cố {}", facts.number),
                NoticeKind::Opening | NoticeKind::Test => format!("Sự cố {}", facts.number),
            };
            let when = match (kind, facts.ended_at) {
                (NoticeKind::Resolution | NoticeKind::Closing, Some(ended_at)) => {
                    format!("từ {since} đến {}", short_time(ended_at, form))
                }
                _ => format!("từ {since}"),
            };
            let text = format!(
                "{lead}, mức {severity}, tại {}, {when}: {}.",
                facts.unit_name,
                facts.title.trim_end_matches('.')
            );
            if prefix.is_empty() {
                text
            } else {
                format!("{prefix} {text}")
            }
        }
        Form::Message => {
            // A title as long as the whole message would push every fact out.
            let mut text = format!("{}\nSố hiệu: {}\n", cut(subject, 300), facts.number);
            let _ = writeln!(text, "Đơn vị: {}", facts.unit_name);
            let _ = writeln!(text, "Loại sự cố: {}", kind_text(&facts.kind));
            let _ = writeln!(text, "Mức độ: {}", severity_text(&facts.severity));
            if !facts.systems.is_empty() {
                let _ = writeln!(
                    text,
                    "Hệ thống bị ảnh hưởng: {}",
                    cut(&facts.systems.join("; "), 300)
                );
            }
            let _ = writeln!(text, "Bắt đầu: {since}");
            if let Some(ended_at) = facts.ended_at {
                let _ = writeln!(
                    text,
                    "Kết thúc: {} (sau {})",
                    short_time(ended_at, form),
                    duration_text(ended_at - facts.started_at)
                );
            } else if matches!(kind, NoticeKind::Escalation | NoticeKind::Reminder) {
                let _ = writeln!(text, "Đã kéo dài: {}", duration_text(facts.open_for_ms));
            }
            let _ = write!(text, "Tình trạng: {}", state_text(&facts.state));
            text
        }
    }
}

/// The head of a test notice.
pub fn test(prefix: &str) -> String {
    format!(
        "{prefix} Tin nhắn kiểm tra hệ thống thông báo sự cố: nếu Anh/Chị nhận được tin này, kênh đã được cấu hình đúng."
    )
    .trim_start()
    .to_owned()
}

/// The head of a notice that is not about one incident (a digest, a channel alarm): its subject,
/// and for a chat message its text too (cut to the limit when sent).
pub fn other(subject: &str, text: &str, form: Form) -> String {
    match form {
        Form::Compact => subject.to_owned(),
        Form::Message => format!("{subject}\n\n{}", text.trim_end()),
    }
}

/// The tail of an incident's short text: its link, or a plain word that there is none.
pub fn link_line(link: Option<&str>, form: Form) -> String {
    match (link, form) {
        (Some(link), _) => format!("Chi tiết: {link}"),
        (None, Form::Message) => {
            "Chi tiết xem trong thư điện tử thông báo sự cố (máy chủ giám sát chưa cấu hình địa chỉ trang quản trị nên tin này không kèm đường dẫn).".to_owned()
        }
        (None, Form::Compact) => "Chi tiết xem thư điện tử (chưa có đường dẫn).".to_owned(),
    }
}

/// `head` and `tail` joined, at most `limit` characters: the head is cut (at a space when one is
/// near, ending with `…`), never the tail; a tail that cannot fit with a word of the head is left
/// out rather than cut, so a link is whole or absent.
pub fn fit(head: &str, tail: &str, limit: usize, form: Form) -> String {
    let head = head.trim_end();
    let count = |text: &str| text.chars().count();
    let separator = form.separator();
    if tail.is_empty() {
        return cut(head, limit);
    }
    if count(head) + count(separator) + count(tail) <= limit {
        return format!("{head}{separator}{tail}");
    }
    let room = limit.saturating_sub(count(separator) + count(tail));
    if room < 16 {
        return cut(head, limit);
    }
    format!("{}{separator}{tail}", cut(head, room))
}

/// `text`, at most `limit` characters, ending with `…` when cut.
fn cut(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    if limit == 0 {
        return String::new();
    }
    let kept: String = text.chars().take(limit - 1).collect();
    // Cut at a space when one is among the last 15 characters kept, so no word is broken.
    let at_space = kept
        .char_indices()
        .filter(|(_, c)| c.is_whitespace())
        .map(|(index, _)| index)
        .next_back()
        .filter(|index| kept[*index..].chars().count() <= 15);
    let kept = match at_space {
        Some(index) => &kept[..index],
        None => kept.as_str(),
    };
    format!("{}…", kept.trim_end_matches([' ', '\n', ',', ':', ';']))
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::*;
    use crate::documents::notice::{render, Person};

    /// 2026-11-23 08:12:00 in Vietnam.
    const AT_0812: i64 = 1_795_396_320_000;

    const LINK: &str = "https://cntt.example.gov.vn/incidents/0193b1d2-7c4e-7a11-9f0e-3c2d1e0f4a5b";

    fn outage() -> Facts {
        Facts {
            number: "SC-2026-0042".into(),
            unit_name: "Huyện Đắk Mil".into(),
            contact: Some(Person::default()),
            kind: "wan".into(),
            severity: "critical".into(),
            source: "inferred".into(),
            title: "Mất kết nối WAN: Huyện Đắk Mil (3 đơn vị)".into(),
            started_at: AT_0812,
            discovered_at: AT_0812 + 95_000,
            state: "open".into(),
            ..Facts::default()
        }
    }

    /// The short text of `kind` in `form`, with the link, fitted to `limit`.
    fn short(kind: NoticeKind, facts: &Facts, form: Form, limit: usize) -> String {
        let subject = render(kind, facts, "[TBSC]").subject;
        let head = incident(kind, facts, &subject, "[TBSC]", form);
        fit(&head, &link_line(Some(LINK), form), limit, form)
    }

    #[test]
    fn a_zalo_message_says_what_where_since_when_how_severe_with_the_link() {
        expect![[r#"
            [TBSC] Sự cố SC-2026-0042: Mất kết nối WAN: Huyện Đắk Mil (3 đơn vị)
            Số hiệu: SC-2026-0042
            Đơn vị: Huyện Đắk Mil
            Loại sự cố: Sự cố đường truyền, thiết bị WAN
            Mức độ: Nghiêm trọng
            Bắt đầu: 08:12 23/11/2026
            Tình trạng: Đang xảy ra, chưa xử lý xong
            Chi tiết: https://cntt.example.gov.vn/incidents/0193b1d2-7c4e-7a11-9f0e-3c2d1e0f4a5b"#]]
        .assert_eq(&short(NoticeKind::Opening, &outage(), Form::Message, 2000));
    }

    #[test]
    fn an_sms_is_one_sentence_and_a_resolution_says_how_long() {
        let opening = short(NoticeKind::Opening, &outage(), Form::Compact, 268);
        expect!["[TBSC] Sự cố SC-2026-0042, mức nghiêm trọng, tại Huyện Đắk Mil, từ 08:12 23/11: Mất kết nối WAN: Huyện Đắk Mil (3 đơn vị). Chi tiết: https://cntt.example.gov.vn/incidents/0193b1d2-7c4e-7a11-9f0e-3c2d1e0f4a5b"]
            .assert_eq(&opening);
        let mut facts = outage();
        facts.ended_at = Some(AT_0812 + (2 * 3600 + 5 * 60) * 1000);
        facts.state = "resolved".into();
        expect!["[TBSC] Đã khắc phục sự cố SC-2026-0042 sau 2 giờ 5 phút, mức nghiêm trọng, tại Huyện Đắk Mil, từ 08:12 23/11 đến 10:17 23/11: Mất kết nối WAN: Huyện Đắk Mil (3 đơn vị). Chi tiết: https://cntt.example.gov.vn/incidents/0193b1d2-7c4e-7a11-9f0e-3c2d1e0f4a5b"]
            .assert_eq(&short(NoticeKind::Resolution, &facts, Form::Compact, 268));
    }

    #[test]
    fn shortening_cuts_the_head_and_keeps_the_link_whole() {
        let mut facts = outage();
        facts.title = "Mất kết nối WAN tới trung tâm dữ liệu tỉnh ".repeat(80);
        for (form, limit) in [
            (Form::Message, 2000),
            (Form::Compact, 160),
            (Form::Compact, 268),
        ] {
            let text = short(NoticeKind::Opening, &facts, form, limit);
            let length = text.chars().count();
            assert!(length <= limit, "{form:?}: {length} {text}");
            assert!(
                text.ends_with(&format!(" Chi tiết: {LINK}"))
                    || text.ends_with(&format!("\nChi tiết: {LINK}")),
                "{form:?}: {text}"
            );
            assert!(text.contains("SC-2026-0042"), "{text}");
            if form == Form::Compact {
                assert!(
                    length + 20 > limit && text.contains("… Chi tiết: "),
                    "{length} {text}"
                );
            }
        }
        // Cut at a space, not inside a word.
        expect!["Sự cố mất kết nối…"].assert_eq(&fit(
            "Sự cố mất kết nối WAN",
            "",
            20,
            Form::Compact,
        ));
        expect!["Sự cố mất kết nối WAN"].assert_eq(&fit(
            "Sự cố mất kết nối WAN",
            "",
            21,
            Form::Compact,
        ));
        // A link that cannot fit is left out, never cut.
        let tiny = fit(
            "Sự cố SC-2026-0042 tại Huyện Đắk Mil",
            &link_line(Some(LINK), Form::Compact),
            60,
            Form::Compact,
        );
        expect!["Sự cố SC-2026-0042 tại Huyện Đắk Mil"].assert_eq(&tiny);
    }

    #[test]
    fn without_a_console_address_the_text_says_there_is_no_link() {
        let subject = render(NoticeKind::Opening, &outage(), "").subject;
        let head = incident(NoticeKind::Opening, &outage(), &subject, "", Form::Compact);
        expect!["Sự cố SC-2026-0042, mức nghiêm trọng, tại Huyện Đắk Mil, từ 08:12 23/11: Mất kết nối WAN: Huyện Đắk Mil (3 đơn vị). Chi tiết xem thư điện tử (chưa có đường dẫn)."]
            .assert_eq(&fit(&head, &link_line(None, Form::Compact), 268, Form::Compact));
        assert!(!link_line(None, Form::Message).contains("http"));
        expect!["[TBSC] Tin nhắn kiểm tra hệ thống thông báo sự cố: nếu Anh/Chị nhận được tin này, kênh đã được cấu hình đúng."]
            .assert_eq(&test("[TBSC]"));
    }
}
