//! Thông báo: contacts and routing rules (read only; imported by CSV on the server), the delivery
//! state of notices (what `GET /api/v1/notices` lists: administrators only, as there), and a test
//! notice to one contact.
//!
//! A test notice is written by `Store::notice_test`, the function behind `cntt-collector notify
//! test`, and handed at once to the notifier's loop (`Store::notice_release`): the page never
//! talks to a channel itself (only `jobs::notify` does), and the notice's delivery shows here
//! like any other's.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use time::OffsetDateTime;

use super::reports::when;
use super::{render, see_other, ConsoleError, Layout, Person, Posted, Section};
use crate::domain::auth::Scope;
use crate::http::api::AppState;
use crate::jobs::notify::rules;
use crate::store::NewAuditEntry;

/// The routes of this part of the console.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/notices", get(notices_show))
        .route("/notices/test", post(notices_test))
}

/// A contact's role as people say it.
fn role_label(role: &str) -> &'static str {
    match role {
        "leadership" => "Lãnh đạo đơn vị",
        "it_officer" => "Cán bộ chuyên trách CNTT",
        "so_on_duty" => "Trực ứng cứu sự cố của Sở",
        "so_leadership" => "Lãnh đạo Sở",
        "police" => "Công an tỉnh",
        _ => "Liên hệ",
    }
}

/// A notice's kind as people say it.
fn kind_label(kind: &str) -> &'static str {
    match kind {
        "opening" => "Báo sự cố",
        "escalation" => "Báo cấp trên",
        "reminder" => "Nhắc sự cố chưa xử lý",
        "resolution" => "Sự cố đã khắc phục",
        "closing" => "Đóng sự cố",
        "digest" => "Tổng hợp hằng ngày",
        "test" => "Thử",
        "channel_down" => "Kênh gửi hỏng",
        "report_reminder" => "Nhắc nộp báo cáo",
        "report_overdue" => "Báo cáo quá hạn",
        "closing_report_reminder" => "Nhắc báo cáo kết thúc sự cố",
        "maintenance_reminder" => "Nhắc lịch bảo trì sắp kết thúc",
        _ => "Khác",
    }
}

/// An incident kind as people say it.
fn incident_kind_label(kind: &str) -> String {
    match kind {
        "lan" => "mạng nội bộ (LAN)".to_owned(),
        "wan" => "đường truyền WAN".to_owned(),
        "internet" => "kết nối Internet".to_owned(),
        "server" => "máy chủ, dịch vụ".to_owned(),
        "host" => "tài nguyên máy".to_owned(),
        "security" => "an toàn thông tin".to_owned(),
        "other" => "khác".to_owned(),
        unknown => unknown.to_owned(),
    }
}

const SEVERITIES: [&str; 4] = ["thấp", "trung bình", "cao", "nghiêm trọng"];

/// A wait in minutes or hours, in words.
fn after_label(ms: i64) -> String {
    match ms {
        0 => "ngay khi mở".to_owned(),
        ms if ms % 3_600_000 == 0 => format!("sau {} giờ", ms / 3_600_000),
        ms => format!("sau {} phút", ms / 60_000),
    }
}

struct ContactRow {
    id: i64,
    unit: String,
    name: String,
    role: &'static str,
    position: String,
    phone: String,
    email: String,
    webhook: String,
    digest: bool,
    zalo: String,
    channels: String,
    quiet_hours: String,
}

struct RuleRow {
    unit: String,
    kinds: String,
    severity: String,
    role: &'static str,
    after: String,
}

struct NoticeRow {
    created_at: String,
    kind: &'static str,
    channel: String,
    address: String,
    subject: String,
    state: &'static str,
    class: &'static str,
    attempts: i64,
    detail: String,
}

#[derive(Template)]
#[template(path = "notices.html")]
struct NoticesPage {
    layout: Layout,
    contacts: Vec<ContactRow>,
    rules: Vec<RuleRow>,
    default_rules: bool,
    is_admin: bool,
    notices: Vec<NoticeRow>,
    state_filter: String,
    channels: String,
    tested: Option<String>,
}

/// Query of the page.
#[derive(Debug, Default, Deserialize)]
struct NoticesQuery {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    tested: Option<String>,
}

/// A channel as people say it.
fn channel_label(channel: &str) -> String {
    match channel {
        "email" => "thư điện tử".to_owned(),
        "zalo" => "Zalo".to_owned(),
        "sms" => "SMS".to_owned(),
        other => other.to_owned(),
    }
}

/// A contact's choice of channels as people say it.
fn choice_label(choice: Option<&str>) -> String {
    match choice {
        None => "mọi kênh có địa chỉ".to_owned(),
        Some(choice) => choice
            .split(',')
            .map(channel_label)
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// `/notices[?state=pending|sent|failed]`.
async fn notices_show(
    State(state): State<AppState>,
    person: Person,
    Query(query): Query<NoticesQuery>,
) -> Result<Response, ConsoleError> {
    let units = state.store.units_all().await?;
    let scope = Scope::of(&person.principal(), &units);
    let unit_name = |id: i64| {
        units
            .iter()
            .find(|unit| unit.id == id)
            .map_or_else(String::new, |unit| format!("{} ({})", unit.name, unit.code))
    };
    let contacts = state
        .store
        .contacts_list()
        .await?
        .into_iter()
        .filter(|contact| scope.contains(contact.unit_id))
        .map(|contact| ContactRow {
            id: contact.id,
            unit: unit_name(contact.unit_id),
            role: role_label(&contact.role),
            quiet_hours: contact
                .quiet_hours()
                .map_or_else(String::new, |quiet| quiet.show().replace('-', "–")),
            channels: choice_label(contact.channels.as_deref()),
            zalo: contact.zalo_id.unwrap_or_default(),
            name: contact.name,
            position: contact.position,
            phone: contact.phone,
            email: contact.email.unwrap_or_default(),
            webhook: contact.webhook.unwrap_or_default(),
            digest: contact.digest == 1,
        })
        .collect();
    let stored = state.store.notify_rules_list().await?;
    let default_rules = stored.is_empty();
    let kinds_text = |kinds: &str| {
        let named: Vec<String> = kinds
            .split(',')
            .map(str::trim)
            .filter(|kind| !kind.is_empty() && *kind != "*")
            .map(incident_kind_label)
            .collect();
        if named.is_empty() {
            "mọi loại".to_owned()
        } else {
            named.join(", ")
        }
    };
    let rules: Vec<RuleRow> = if default_rules {
        rules::defaults()
            .into_iter()
            .map(|rule| RuleRow {
                unit: rule
                    .unit_id
                    .map_or_else(|| "Mọi đơn vị".to_owned(), unit_name),
                kinds: kinds_text(&rule.kinds.join(", ")),
                severity: format!(
                    "từ mức {}",
                    SEVERITIES
                        .get(usize::from(rule.min_severity))
                        .unwrap_or(&"thấp")
                ),
                role: role_label(&rule.role),
                after: after_label(rule.after_ms),
            })
            .collect()
    } else {
        stored
            .into_iter()
            .map(|rule| RuleRow {
                unit: rule.unit_code.map_or_else(
                    || "Mọi đơn vị".to_owned(),
                    |code| {
                        units
                            .iter()
                            .find(|unit| unit.code == code)
                            .map_or(code.clone(), |unit| format!("{} ({code})", unit.name))
                    },
                ),
                kinds: kinds_text(&rule.kinds),
                severity: format!(
                    "từ mức {}",
                    SEVERITIES
                        .get(usize::from(rules::severity_rank(&rule.min_severity)))
                        .unwrap_or(&"thấp")
                ),
                role: role_label(&rule.role),
                after: after_label(rule.after_ms),
            })
            .collect()
    };
    let state_filter = match query.state.as_deref() {
        Some(value @ ("pending" | "sent" | "failed")) => value.to_owned(),
        _ => String::new(),
    };
    // As in the API, only administrators list every notice; others see each incident's notices
    // on the incident.
    let notices = if person.is_admin() {
        let filter = (!state_filter.is_empty()).then_some(state_filter.as_str());
        state
            .store
            .notices_list(None, filter, 100)
            .await?
            .into_iter()
            .map(|notice| {
                let (label, class) = match notice.state.as_str() {
                    "sent" => ("Đã gửi", "good"),
                    "failed" => ("Không gửi được", "bad"),
                    _ => ("Đang chờ gửi", "warn"),
                };
                let detail = match (&notice.sent_at, &notice.last_error) {
                    (Some(at), _) => format!("gửi lúc {}", when(*at)),
                    (None, Some(error)) => error.clone(),
                    (None, None) => format!("lần thử tới {}", when(notice.next_attempt_at)),
                };
                NoticeRow {
                    created_at: when(notice.created_at),
                    kind: kind_label(&notice.kind),
                    channel: channel_label(&notice.channel),
                    address: notice.address,
                    subject: notice.subject,
                    state: label,
                    class,
                    attempts: notice.attempts,
                    detail,
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    let channels = state.notify.channels_set_up();
    let channels = if channels.is_empty() {
        "chưa cấu hình kênh nào (thư điện tử, webhook, Zalo hoặc SMS)".to_owned()
    } else {
        channels
            .iter()
            .map(|channel| channel_label(channel))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Ok(render(&NoticesPage {
        layout: Layout::new(&person, Section::Notices, "Thông báo"),
        contacts,
        rules,
        default_rules,
        is_admin: person.is_admin(),
        notices,
        state_filter,
        channels,
        tested: query.tested,
    }))
}

/// Posted test notice.
#[derive(Debug, Deserialize)]
struct TestForm {
    contact: i64,
}

/// `POST /notices/test`: an administrator has a test notice sent to one contact on each of its
/// channels the collector has set up, by the notifier's loop.
async fn notices_test(
    State(state): State<AppState>,
    posted: Posted<TestForm>,
) -> Result<Response, ConsoleError> {
    let (person, form) = (posted.person, posted.form);
    let target = format!("contact:{}", form.contact);
    if !person.is_admin() {
        return Err(person
            .forbid(&state, &target, "only administrators send test notices")
            .await);
    }
    let contacts = state.store.contacts_list().await?;
    let Some(contact) = contacts.iter().find(|contact| contact.id == form.contact) else {
        return Err(ConsoleError::NotFound);
    };
    let settings = &state.notify;
    let holder = format!("console-{}", uuid::Uuid::new_v4());
    let now = OffsetDateTime::now_utc();
    let notices = state
        .store
        .notice_test(
            contact,
            &settings.channels_set_up(),
            &settings.subject_prefix,
            &holder,
            now,
        )
        .await?;
    if notices.is_empty() {
        return Err(ConsoleError::BadRequest(format!(
            "{} không có kênh nào mà máy chủ đã cấu hình (thư điện tử, webhook, Zalo hoặc SMS) trong số kênh người này chọn, nên không gửi thử được.",
            contact.name
        )));
    }
    // Handed to the notifier's loop at once: it claims, sends and records them like any notice.
    for notice in &notices {
        state.store.notice_release(&notice.id, &holder, now).await?;
    }
    state
        .audit(NewAuditEntry {
            actor: person.principal().actor(),
            action: "notice.test".into(),
            target,
            outcome: "ok",
            remote_addr: person.address.clone(),
            details: serde_json::json!({
                "notices": notices.iter().map(|notice| &notice.id).collect::<Vec<_>>(),
                "via": "console",
            }),
        })
        .await;
    Ok(see_other(&format!("/notices?tested={}", notices.len())))
}
