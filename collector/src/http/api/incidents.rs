//! Incidents: `GET /api/v1/incidents` and `GET /api/v1/incidents/{id}` (with its timeline and the
//! incidents folded under it), `POST /api/v1/incidents` to file one by hand (a security incident,
//! say), and the lifecycle actions `POST /api/v1/incidents/{id}/acknowledge|notes|resolve|close`.
//!
//! Reading is scoped like agents. Filing and acting need an admin or an officer whose unit covers
//! the incident's unit; viewers read only. Every refusal is audited.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::read::rfc3339;
use super::{ok, params, ApiError, AppState, Caller};
use crate::documents::incident::Form;
use crate::domain::auth::Scope;
use crate::services::incidents::{self as services, Filing, Refusal};
use crate::store::{
    IncidentFilter, StoredIncident, TimelineEntry, INCIDENT_KINDS, INCIDENT_STATES,
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
    /// `true`: only incidents not folded under another (the ones people are told about);
    /// `false`: only folded ones.
    top_level: Option<String>,
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
    parent_id: Option<String>,
    parent_number: Option<String>,
    scope: Option<String>,
    system_code: Option<String>,
    discovery: Option<String>,
    /// When the closing report is due (the end plus `incident_reports.closing_due_days`); shown
    /// with one incident.
    #[serde(skip_serializing_if = "Option::is_none")]
    closing_report_due: Option<String>,
    /// Issued reports (form, version, number, issued_at); shown with one incident.
    #[serde(skip_serializing_if = "Option::is_none")]
    reports: Option<Vec<serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeline: Option<Vec<TimelineView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    children: Option<Vec<ChildView>>,
}

/// An incident folded under the one shown.
#[derive(Debug, Serialize)]
struct ChildView {
    id: String,
    number: Option<String>,
    kind: String,
    source: String,
    state: String,
    title: String,
    hostname: Option<String>,
    started_at: String,
    ended_at: Option<String>,
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
    let query = params::parsed(
        query,
        "unit, kind, state, since, until, top_level and limit",
    )?;
    let kind = params::choice("kind", query.kind.as_deref(), INCIDENT_KINDS)?;
    let incident_state = params::choice("state", query.state.as_deref(), INCIDENT_STATES)?;
    let (since, until) = params::window(query.since.as_deref(), query.until.as_deref())?;
    let limit = params::limit(query.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?;
    let top_level = params::choice("top_level", query.top_level.as_deref(), &["true", "false"])?
        .map(|value| value == "true");
    let unit_ids = params::units_in_scope(&state, &caller, query.unit.as_deref()).await?;
    let filter = IncidentFilter {
        unit_ids,
        kind,
        state: incident_state,
        since,
        until,
        top_level,
        parent_id: None,
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
    let mut reports = Vec::new();
    for form in [Form::Initial, Form::Closing] {
        for report in state.store.incident_reports(&incident.id, form).await? {
            reports.push(serde_json::json!({
                "form": form.as_str(),
                "version": report.version,
                "number": report.number,
                "issued_at": rfc3339(report.issued_at),
            }));
        }
    }
    let closing_issued = reports.iter().any(|report| report["form"] == "closing");
    let due = incident
        .ended_at
        .filter(|_| !closing_issued)
        .map(|ended_at| rfc3339(state.incident_reports.closing_due(ended_at)));
    let mut view = incident_view(incident);
    view.closing_report_due = due;
    view.reports = Some(reports);
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
    let children = state
        .store
        .incidents_list(&IncidentFilter {
            parent_id: Some(id.clone()),
            limit: MAX_LIMIT,
            ..IncidentFilter::default()
        })
        .await?;
    view.children = Some(
        children
            .into_iter()
            .map(|child| ChildView {
                id: child.id,
                number: child.number,
                kind: child.kind,
                source: child.source,
                state: child.state,
                title: child.title,
                hostname: child.hostname,
                started_at: rfc3339(child.started_at),
                ended_at: child.ended_at.map(rfc3339),
            })
            .collect(),
    );
    Ok(ok(view))
}

/// Body of `POST /api/v1/incidents`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBody {
    unit: String,
    #[serde(default = "default_manual_kind")]
    kind: String,
    #[serde(default = "default_manual_severity")]
    severity: String,
    title: String,
    #[serde(default)]
    description: String,
    started_at: Option<String>,
    discovered_at: Option<String>,
    #[serde(default)]
    systems_affected: Vec<String>,
    /// Code of the affected system in the register.
    system: Option<String>,
    /// How it was discovered: `monitoring`, `logs`, `third_party` or `officer` (default).
    discovery: Option<String>,
}

fn default_manual_kind() -> String {
    "security".to_owned()
}

fn default_manual_severity() -> String {
    "medium".to_owned()
}

/// A refusal of the incidents service as the API answers it; a forbidden one is audited.
pub(super) async fn refused(
    state: &AppState,
    caller: &Caller,
    target: &str,
    refusal: Refusal,
) -> ApiError {
    match refusal {
        Refusal::NotFound(message) => ApiError::NotFound(message),
        Refusal::Forbidden(why) => caller.forbid(state, target, why).await,
        Refusal::Invalid { code, en, .. } => ApiError::unprocessable(code, en),
        Refusal::WrongState(why) => ApiError::Conflict(why),
        Refusal::Internal(err) => ApiError::Internal(err),
    }
}

/// An optional RFC 3339 time of a body, or a 422 naming the field.
fn body_time(name: &str, value: Option<&str>) -> Result<Option<time::OffsetDateTime>, ApiError> {
    params::time(name, value).map_err(|_| {
        ApiError::unprocessable(
            "invalid_field",
            format!("{name} is not an RFC 3339 time like 2026-11-23T08:00:00+07:00"),
        )
    })
}

/// `POST /api/v1/incidents`: files an incident by hand; 201 with the incident and its number.
/// The checks, the filing and its audit are `services::incidents::file`, shared with the console.
pub(super) async fn incidents_create(
    State(state): State<AppState>,
    caller: Caller,
    request: Request,
) -> Result<Response, ApiError> {
    let body: FileBody = super::read_json(request, super::SMALL_BODY_LIMIT).await?;
    let filing = Filing {
        started_at: body_time("started_at", body.started_at.as_deref())?,
        discovered_at: body_time("discovered_at", body.discovered_at.as_deref())?,
        unit: body.unit,
        kind: body.kind,
        severity: body.severity,
        title: body.title,
        description: body.description,
        systems_affected: body.systems_affected,
        system: body.system,
        discovery: body.discovery,
    };
    let unit = filing.unit.clone();
    let now = time::OffsetDateTime::now_utc();
    match services::file(
        &state.store,
        &caller.principal,
        filing,
        caller.address.clone(),
        now,
    )
    .await
    {
        Ok(incident) => Ok((
            axum::http::StatusCode::CREATED,
            axum::Json(incident_view(incident)),
        )
            .into_response()),
        Err(refusal) => Err(refused(&state, &caller, &unit, refusal).await),
    }
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
    /// When service came back (RFC 3339); now by default.
    restored_at: Option<String>,
}

/// Body of `POST /api/v1/incidents/{id}/close`: the closing report's fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CloseBody {
    #[serde(default)]
    cause: String,
    resolution: String,
    lessons: String,
    /// When service came back (RFC 3339), for an incident filed by a person; the end stays as it
    /// is without it.
    restored_at: Option<String>,
}

/// A stated restoration time as RFC 3339 text.
fn restored_at(value: Option<&str>) -> Result<Option<time::OffsetDateTime>, ApiError> {
    params::time("restored_at", value).map_err(|_| {
        ApiError::unprocessable(
            "invalid_field",
            "restored_at is not an RFC 3339 time like 2026-11-23T10:20:00+07:00",
        )
    })
}

/// `POST /api/v1/incidents/{id}/{action}`: acknowledge, add a note, resolve by hand or close.
/// The checks, the action and its audit are `services::incidents::act`, shared with the console;
/// closing then issues the initial report (if nobody read it before) and the closing report.
pub(super) async fn incidents_act(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, verb)): Path<(String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    let request = match verb.as_str() {
        "acknowledge" => services::Request::Acknowledge,
        "notes" => {
            let body: NoteBody = super::read_json(request, super::SMALL_BODY_LIMIT).await?;
            services::Request::Note { text: body.text }
        }
        "resolve" => {
            let body: ResolveBody = super::read_json(request, super::SMALL_BODY_LIMIT).await?;
            services::Request::Resolve {
                resolution: body.resolution,
                restored_at: restored_at(body.restored_at.as_deref())?,
            }
        }
        "close" => {
            let body: CloseBody = super::read_json(request, super::SMALL_BODY_LIMIT).await?;
            services::Request::Close {
                cause: body.cause,
                resolution: body.resolution,
                lessons: body.lessons,
                restored_at: restored_at(body.restored_at.as_deref())?,
            }
        }
        _ => {
            return Err(ApiError::NotFound(format!(
                "no action {verb:?}; use acknowledge, notes, resolve or close"
            )))
        }
    };
    let now = time::OffsetDateTime::now_utc();
    let acted = match services::act(
        &state.store,
        &caller.principal,
        &id,
        request,
        caller.address.clone(),
        now,
    )
    .await
    {
        Ok(acted) => acted,
        Err(refusal) => return Err(refused(&state, &caller, &id, refusal).await),
    };
    if acted.closed {
        super::notices::issuer_at_closing(&state, &acted.incident).await?;
    }
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
        parent_id: incident.parent_id,
        parent_number: incident.parent_number,
        scope: incident.scope,
        system_code: incident.system_code,
        discovery: incident.discovery,
        closing_report_due: None,
        reports: None,
        timeline: None,
        children: None,
    }
}
