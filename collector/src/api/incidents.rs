//! Incidents: `GET /api/v1/incidents` and `GET /api/v1/incidents/{id}` (with its timeline), and the
//! lifecycle actions `POST /api/v1/incidents/{id}/acknowledge|notes|resolve|close`.
//!
//! Reading is scoped like agents. Acting needs an admin or an officer whose unit covers the
//! incident's unit; viewers read only. Every refusal is audited.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::read::rfc3339;
use super::{ok, params, ApiError, AppState, Caller};
use crate::auth::{Role, Scope};
use crate::store::{
    Action, ActionRefusal, IncidentFilter, NewAuditEntry, StoredIncident, TimelineEntry,
    INCIDENT_KINDS, INCIDENT_STATES,
};

/// Incidents listed when no `limit` is given.
const DEFAULT_LIMIT: i64 = 100;

/// Most incidents one request may list.
const MAX_LIMIT: i64 = 1000;

/// Query of `GET /api/v1/incidents`; every value is text so [`params`] can explain bad ones.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IncidentsQuery {
    /// Only incidents of this unit and its descendants.
    unit: Option<String>,
    /// Only this kind.
    kind: Option<String>,
    /// Only this state.
    state: Option<String>,
    /// Only incidents not ended before this time.
    since: Option<String>,
    /// Only incidents started before this time.
    until: Option<String>,
    /// At most this many.
    limit: Option<String>,
}

/// One incident as the API shows it.
#[derive(Debug, Serialize)]
struct IncidentView {
    id: String,
    unit_code: String,
    unit_name: String,
    agent_id: Option<String>,
    hostname: Option<String>,
    kind: String,
    source: String,
    severity: String,
    state: String,
    title: String,
    description: String,
    target: Option<String>,
    started_at: String,
    ended_at: Option<String>,
    discovered_at: Option<String>,
    systems_affected: serde_json::Value,
    evidence: serde_json::Value,
    consequences: serde_json::Value,
    first_event_at: Option<String>,
    last_event_seq: Option<i64>,
    created_at: String,
    updated_at: String,
    number: Option<String>,
    duration_seconds: Option<i64>,
    acknowledged_at: Option<String>,
    acknowledged_by: Option<String>,
    closed_at: Option<String>,
    closed_by: Option<String>,
    cause: String,
    resolution: String,
    lessons: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeline: Option<Vec<TimelineView>>,
}

/// One timeline entry as the API shows it.
#[derive(Debug, Serialize)]
struct TimelineView {
    at: String,
    actor: String,
    entry: String,
    text: String,
}

/// `GET /api/v1/incidents`: incidents the caller may see, latest started first.
pub(super) async fn incidents_list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<IncidentsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let query = params::parsed(query, "unit, kind, state, since, until and limit")?;
    let kind = params::choice("kind", query.kind.as_deref(), INCIDENT_KINDS)?;
    let incident_state = params::choice("state", query.state.as_deref(), INCIDENT_STATES)?;
    let (since, until) = params::window(query.since.as_deref(), query.until.as_deref())?;
    let limit = params::limit(query.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?;
    let unit_ids = params::units_in_scope(&state, &caller, query.unit.as_deref()).await?;
    let filter = IncidentFilter {
        unit_ids,
        kind,
        state: incident_state,
        since,
        until,
        limit,
    };
    let incidents: Vec<IncidentView> = state
        .store
        .incidents_list(&filter)
        .await?
        .into_iter()
        .map(incident_view)
        .collect();
    Ok(ok(serde_json::json!({ "incidents": incidents })))
}

/// `GET /api/v1/incidents/{id}`: one incident; 404 when unknown, 403 (audited) outside the
/// caller's scope.
pub(super) async fn incidents_show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
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
    let mut view = incident_view(incident);
    let timeline = state.store.incident_timeline(&id).await?;
    view.timeline = Some(
        timeline
            .into_iter()
            .map(
                |TimelineEntry {
                     at,
                     actor,
                     entry,
                     text,
                 }| TimelineView {
                    at: rfc3339(at),
                    actor,
                    entry,
                    text,
                },
            )
            .collect(),
    );
    Ok(ok(view))
}

/// Body of `POST /api/v1/incidents/{id}/notes`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteBody {
    text: String,
}

/// Body of `POST /api/v1/incidents/{id}/resolve`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResolveBody {
    #[serde(default)]
    resolution: String,
}

/// Body of `POST /api/v1/incidents/{id}/close`: the closing report's fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CloseBody {
    #[serde(default)]
    cause: String,
    resolution: String,
    lessons: String,
}

/// Longest note or closing field.
const MAX_TEXT: usize = 10_000;

fn text_field(name: &str, value: &str, required: bool) -> Result<String, ApiError> {
    let value = value.trim();
    if required && value.is_empty() {
        return Err(ApiError::unprocessable(
            "missing_field",
            format!("{name} must not be empty"),
        ));
    }
    if value.chars().count() > MAX_TEXT {
        return Err(ApiError::unprocessable(
            "field_too_long",
            format!("{name} is longer than {MAX_TEXT} characters"),
        ));
    }
    Ok(value.to_owned())
}

/// `POST /api/v1/incidents/{id}/{action}`: acknowledge, add a note, resolve by hand or close.
pub(super) async fn incidents_act(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, verb)): Path<(String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    let action = match verb.as_str() {
        "acknowledge" => Action::Acknowledge,
        "notes" => {
            let body: NoteBody = super::read_json(request, super::SMALL_BODY_LIMIT).await?;
            Action::Note(text_field("text", &body.text, true)?)
        }
        "resolve" => {
            let body: ResolveBody = super::read_json(request, super::SMALL_BODY_LIMIT).await?;
            Action::Resolve {
                resolution: text_field("resolution", &body.resolution, false)?,
            }
        }
        "close" => {
            let body: CloseBody = super::read_json(request, super::SMALL_BODY_LIMIT).await?;
            Action::Close {
                cause: text_field("cause", &body.cause, false)?,
                resolution: text_field("resolution", &body.resolution, true)?,
                lessons: text_field("lessons", &body.lessons, true)?,
            }
        }
        _ => {
            return Err(ApiError::NotFound(format!(
                "no action {verb:?}; use acknowledge, notes, resolve or close"
            )))
        }
    };
    let Some(incident) = state.store.incident(&id).await? else {
        return Err(ApiError::NotFound(format!(
            "no incident with id {id:?}; GET /api/v1/incidents lists them"
        )));
    };
    if caller.principal.role == Role::Viewer {
        return Err(caller
            .forbid(
                &state,
                &id,
                "a viewer token may read incidents but not change them",
            )
            .await);
    }
    let units = state.store.units_all().await?;
    if !Scope::of(&caller.principal, &units).contains(incident.unit_id) {
        return Err(caller
            .forbid(
                &state,
                &id,
                "this token may not change incidents of that unit",
            )
            .await);
    }
    let actor = caller.principal.actor();
    match state
        .store
        .incident_act(&id, &action, &actor, time::OffsetDateTime::now_utc())
        .await?
    {
        Ok(()) => {}
        Err(ActionRefusal::NotFound) => {
            return Err(ApiError::NotFound(format!("no incident with id {id:?}")))
        }
        Err(ActionRefusal::WrongState(why)) => return Err(ApiError::Conflict(why)),
    }
    state
        .audit(NewAuditEntry {
            actor,
            action: format!("incident.{verb}"),
            target: incident.number.clone().unwrap_or_else(|| id.clone()),
            outcome: "ok",
            remote_addr: caller.address.clone(),
            details: serde_json::json!({ "incident": id }),
        })
        .await;
    let Some(updated) = state.store.incident(&id).await? else {
        return Err(ApiError::NotFound(format!("no incident with id {id:?}")));
    };
    Ok(ok(incident_view(updated)))
}

/// A stored JSON list as JSON; a damaged one (never written by us) shows as empty and is logged.
fn json_list(incident: &str, field: &str, text: &str) -> serde_json::Value {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(value @ serde_json::Value::Array(_)) => value,
        Ok(_) | Err(_) => {
            tracing::warn!(incident, field, "stored incident list is not a JSON array");
            serde_json::Value::Array(Vec::new())
        }
    }
}

fn incident_view(incident: StoredIncident) -> IncidentView {
    IncidentView {
        systems_affected: json_list(&incident.id, "systems_affected", &incident.systems_affected),
        evidence: json_list(&incident.id, "evidence", &incident.evidence),
        consequences: json_list(&incident.id, "consequences", &incident.consequences),
        id: incident.id,
        unit_code: incident.unit_code,
        unit_name: incident.unit_name,
        agent_id: incident.agent_id,
        hostname: incident.hostname,
        kind: incident.kind,
        source: incident.source,
        severity: incident.severity,
        state: incident.state,
        title: incident.title,
        description: incident.description,
        target: incident.target,
        started_at: rfc3339(incident.started_at),
        ended_at: incident.ended_at.map(rfc3339),
        discovered_at: incident.discovered_at.map(rfc3339),
        first_event_at: incident.first_event_at.map(rfc3339),
        last_event_seq: incident.last_event_seq,
        created_at: rfc3339(incident.created_at),
        updated_at: rfc3339(incident.updated_at),
        duration_seconds: incident
            .ended_at
            .map(|end| (end - incident.started_at).max(0) / 1000),
        number: incident.number,
        acknowledged_at: incident.acknowledged_at.map(rfc3339),
        acknowledged_by: incident.acknowledged_by,
        closed_at: incident.closed_at.map(rfc3339),
        closed_by: incident.closed_by,
        cause: incident.cause,
        resolution: incident.resolution,
        lessons: incident.lessons,
        timeline: None,
    }
}
