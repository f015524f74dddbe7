//! Notices: `GET /api/v1/notices` (delivery state of each notice, for admins and the incident's
//! officers) and `GET /api/v1/incidents/{id}/report` (the initial or closing report of an incident
//! as a document, the same words the notices carry).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::read::rfc3339;
use super::{ok, params, ApiError, AppState, Caller};
use crate::auth::{Role, Scope};
use crate::notify::render::{self, Facts, NoticeKind};

/// Query of `GET /api/v1/notices`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NoticesQuery {
    incident: Option<String>,
    state: Option<String>,
    limit: Option<String>,
}

/// `GET /api/v1/notices`: newest first. Admins see every notice; officers and viewers only those
/// of an incident of their scope (`incident=` is then required).
pub(super) async fn notices_list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<NoticesQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let query = params::parsed(query, "incident, state and limit")?;
    let notice_state = params::choice(
        "state",
        query.state.as_deref(),
        &["pending", "sent", "failed"],
    )?;
    let limit = params::limit(query.limit.as_deref(), 100, 1000)?;
    if caller.principal.role != Role::Admin {
        let Some(id) = query.incident.as_deref() else {
            return Err(ApiError::bad_request(
                "invalid_query",
                "only an admin token lists every notice; give incident=<id>",
            ));
        };
        let Some(incident) = state.store.incident(id).await? else {
            return Err(ApiError::NotFound(format!("no incident with id {id:?}")));
        };
        let units = state.store.units_all().await?;
        if !Scope::of(&caller.principal, &units).contains(incident.unit_id) {
            return Err(caller
                .forbid(&state, id, "this token may not read notices of that unit")
                .await);
        }
    }
    let notices = state
        .store
        .notices_list(query.incident.as_deref(), notice_state.as_deref(), limit)
        .await?;
    let notices: Vec<serde_json::Value> = notices
        .into_iter()
        .map(|notice| {
            serde_json::json!({
                "id": notice.id,
                "incident_id": notice.incident_id,
                "contact_id": notice.contact_id,
                "channel": notice.channel,
                "address": notice.address,
                "kind": notice.kind,
                "step": notice.step,
                "subject": notice.subject,
                "state": notice.state,
                "attempts": notice.attempts,
                "next_attempt_at": rfc3339(notice.next_attempt_at),
                "last_error": notice.last_error,
                "created_at": rfc3339(notice.created_at),
                "sent_at": notice.sent_at.map(rfc3339),
            })
        })
        .collect();
    Ok(ok(serde_json::json!({ "notices": notices })))
}

/// Query of `GET /api/v1/incidents/{id}/report`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReportQuery {
    /// `initial` (Biểu mẫu 03 fields, default) or `closing` (Biểu mẫu 04 fields).
    form: Option<String>,
    /// `text` (default) or `html`.
    format: Option<String>,
}

/// `GET /api/v1/incidents/{id}/report`: the incident's initial or closing report as a document.
pub(super) async fn incidents_report(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<ReportQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let query = params::parsed(query, "form and format")?;
    let form = params::choice("form", query.form.as_deref(), &["initial", "closing"])?;
    let format = params::choice("format", query.format.as_deref(), &["text", "html"])?;
    let Some(incident) = state.store.incident(&id).await? else {
        return Err(ApiError::NotFound(format!(
            "no incident with id {id:?}; GET /api/v1/incidents lists them"
        )));
    };
    let units = state.store.units_all().await?;
    if !Scope::of(&caller.principal, &units).contains(incident.unit_id) {
        return Err(caller
            .forbid(
                &state,
                &id,
                "this token may not read incidents of that unit",
            )
            .await);
    }
    let kind = if form.as_deref() == Some("closing") {
        if incident.state != "closed" {
            return Err(ApiError::Conflict(format!(
                "the closing report exists once the incident is closed; this one is {}",
                incident.state
            )));
        }
        NoticeKind::Closing
    } else {
        NoticeKind::Opening
    };
    let contacts = state.store.contacts_list().await?;
    let officer = contacts
        .iter()
        .find(|contact| contact.unit_id == incident.unit_id && contact.role == "it_officer");
    let mut systems: Vec<String> =
        serde_json::from_str(&incident.systems_affected).unwrap_or_default();
    if systems.is_empty() {
        systems.extend(incident.target.clone());
    }
    let facts = Facts {
        number: incident.number.clone().unwrap_or_default(),
        unit_name: incident.unit_name.clone(),
        contact: officer.map(|contact| render::Person {
            name: contact.name.clone(),
            position: contact.position.clone(),
            phone: contact.phone.clone(),
            email: contact.email.clone().unwrap_or_default(),
        }),
        kind: incident.kind.clone(),
        severity: incident.severity.clone(),
        source: incident.source.clone(),
        title: incident.title.clone(),
        description: incident.description.clone(),
        systems,
        started_at: incident.started_at,
        discovered_at: incident.discovered_at.unwrap_or(incident.created_at),
        ended_at: incident.ended_at,
        state: incident.state.clone(),
        grouped: 0,
        told: Vec::new(),
        cause: incident.cause.clone(),
        resolution: incident.resolution.clone(),
        lessons: incident.lessons.clone(),
        open_for_ms: 0,
    };
    let rendered = render::render(kind, &facts, "");
    Ok(if format.as_deref() == Some("html") {
        ([(CONTENT_TYPE, "text/html; charset=utf-8")], rendered.html).into_response()
    } else {
        ([(CONTENT_TYPE, "text/plain; charset=utf-8")], rendered.text).into_response()
    })
}
