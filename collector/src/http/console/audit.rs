//! Nhật ký (`/audit`, administrators only): the audit log newest first, filtered by actor, action
//! and time, a bounded page at a time (`before=` the last entry shown). Anyone else gets an
//! audited 403.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use super::incidents::{day_start, local_time};
use super::{render, ConsoleError, Layout, Person, Section};
use crate::http::api::AppState;
use crate::store::{millis, AuditQuery};

/// The audit page's route.
pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/audit", get(audit_list))
}

/// Entries on one page.
const PAGE: i64 = 50;

/// The filters, as typed.
#[derive(Debug, Default, Deserialize)]
struct Filters {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    before: String,
}

/// One entry as shown.
#[derive(Debug, Clone)]
struct Entry {
    at: String,
    actor: String,
    action: String,
    target: String,
    denied: bool,
    address: String,
    details: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    layout: Layout,
    actor: String,
    action: String,
    since: String,
    until: String,
    entries: Vec<Entry>,
    /// The query string of the next page, when there may be one.
    next: Option<String>,
    first_page: bool,
    /// The query string of the first page with the same filters.
    first: String,
}

/// Percent-encodes a query value.
fn encoded(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// `GET /audit`.
async fn audit_list(
    State(state): State<AppState>,
    person: Person,
    Query(filters): Query<Filters>,
) -> Result<Response, ConsoleError> {
    if !person.is_admin() {
        return Err(person
            .forbid(&state, "/audit", "only administrators read the audit log")
            .await);
    }
    let text = |value: &str| Some(value.trim().to_owned()).filter(|value| !value.is_empty());
    let query = AuditQuery {
        actor: text(&filters.actor),
        action: text(&filters.action),
        since: day_start(&filters.since).map(millis),
        until: day_start(&filters.until).map(|day| millis(day + time::Duration::days(1))),
        before_id: filters.before.trim().parse().ok(),
        limit: PAGE,
    };
    let rows = state.store.audit_search(&query).await?;
    let first = format!(
        "actor={}&action={}&since={}&until={}",
        encoded(filters.actor.trim()),
        encoded(filters.action.trim()),
        encoded(filters.since.trim()),
        encoded(filters.until.trim()),
    );
    let next = (rows.len() as i64 == PAGE)
        .then(|| rows.last().map(|row| row.id))
        .flatten()
        .map(|last| format!("{first}&before={last}"));
    let entries = rows
        .into_iter()
        .map(|row| Entry {
            at: local_time(row.at),
            actor: row.actor,
            action: row.action,
            target: row.target,
            denied: row.outcome != "ok",
            address: row.remote_addr.unwrap_or_default(),
            details: if row.details == "{}" {
                String::new()
            } else {
                row.details
            },
        })
        .collect();
    Ok(render(&AuditPage {
        layout: Layout::new(&person, Section::Audit, "Nhật ký"),
        actor: filters.actor.trim().to_owned(),
        action: filters.action.trim().to_owned(),
        since: filters.since.trim().to_owned(),
        until: filters.until.trim().to_owned(),
        entries,
        next,
        first_page: query.before_id.is_none(),
        first,
    }))
}
