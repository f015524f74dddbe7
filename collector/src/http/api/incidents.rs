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
use crate::documents::incident::{Form, DISCOVERY};
use crate::domain::auth::Scope;
use crate::store::{
    Action, ActionRefusal, IncidentFilter, ManualIncident, NewAuditEntry, StoredIncident,
    TimelineEntry, INCIDENT_KINDS, INCIDENT_STATES,
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

/// Kinds a person may file: everything but what only the collector infers.
const MANUAL_KINDS: &[&str] = &[
    "lan", "wan", "internet", "server", "host", "security", "other",
];

/// Severities.
const SEVERITIES: &[&str] = &["low", "medium", "high", "critical"];

/// Longest title.
const MAX_TITLE: usize = cntt_common::wire::MAX_INCIDENT_TITLE;

/// `POST /api/v1/incidents`: files an incident by hand; 201 with the incident and its number.
pub(super) async fn incidents_create(
    State(state): State<AppState>,
    caller: Caller,
    request: Request,
) -> Result<Response, ApiError> {
    let body: FileBody = super::read_json(request, super::SMALL_BODY_LIMIT).await?;
    let invalid = |message: String| ApiError::unprocessable("invalid_field", message);
    if !MANUAL_KINDS.contains(&body.kind.as_str()) {
        return Err(invalid(format!(
            "kind {:?} is not valid; use one of {}",
            body.kind,
            MANUAL_KINDS.join(", ")
        )));
    }
    if !SEVERITIES.contains(&body.severity.as_str()) {
        return Err(invalid(format!(
            "severity {:?} is not valid; use one of {}",
            body.severity,
            SEVERITIES.join(", ")
        )));
    }
    let title = text_field("title", &body.title, true)?;
    if title.chars().count() > MAX_TITLE {
        return Err(invalid(format!(
            "title is longer than {MAX_TITLE} characters; put the rest in description"
        )));
    }
    let description = text_field("description", &body.description, false)?;
    let now = time::OffsetDateTime::now_utc();
    let at = |name: &str, value: Option<&str>| -> Result<time::OffsetDateTime, ApiError> {
        let at = params::time(name, value)
            .map_err(|_| {
                invalid(format!(
                    "{name} is not an RFC 3339 time like 2026-11-23T08:00:00+07:00"
                ))
            })?
            .unwrap_or(now);
        if at > now + time::Duration::minutes(5) {
            return Err(invalid(format!("{name} is in the future")));
        }
        if at.year() < 2000 {
            return Err(invalid(format!("{name} is before the year 2000")));
        }
        Ok(at)
    };
    let started_at = at("started_at", body.started_at.as_deref())?;
    let discovered_at = at("discovered_at", body.discovered_at.as_deref())?;
    if discovered_at < started_at {
        return Err(invalid("discovered_at is before started_at".to_owned()));
    }
    if body.systems_affected.len() > 50
        || body
            .systems_affected
            .iter()
            .any(|system| system.chars().count() > MAX_TITLE)
    {
        return Err(invalid(format!(
            "systems_affected takes at most 50 names of at most {MAX_TITLE} characters"
        )));
    }
    if !caller.principal.role.can_act() {
        return Err(caller
            .forbid(
                &state,
                &body.unit,
                "a viewer token may read incidents but not file them",
            )
            .await);
    }
    let units = state.store.units_all().await?;
    let unit = params::find_unit(&units, &body.unit)?;
    if !Scope::of(&caller.principal, &units).contains(unit.id) {
        return Err(caller
            .forbid(
                &state,
                &body.unit,
                "this token may not file incidents for that unit",
            )
            .await);
    }
    let discovery = body.discovery.unwrap_or_else(|| "officer".to_owned());
    if !DISCOVERY.iter().any(|(key, _)| *key == discovery) {
        return Err(invalid(format!(
            "discovery {discovery:?} is not valid; use monitoring, logs, third_party or officer"
        )));
    }
    if let Some(code) = &body.system {
        if state.store.info_system(code).await?.is_none() {
            return Err(invalid(format!(
                "system {code:?} is not in the register; `cntt-collector systems list` shows it"
            )));
        }
    }
    let actor = caller.principal.actor();
    let manual = ManualIncident {
        system_code: body.system,
        discovery,
        unit_id: unit.id,
        kind: body.kind,
        severity: body.severity,
        title,
        description,
        started_at,
        discovered_at,
        systems_affected: body.systems_affected,
    };
    let id = state.store.incident_file(&manual, &actor, now).await?;
    let Some(incident) = state.store.incident(&id).await? else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "incident {id} vanished after filing"
        )));
    };
    state
        .audit(NewAuditEntry {
            actor,
            action: "incident.file".into(),
            target: incident.number.clone().unwrap_or_else(|| id.clone()),
            outcome: "ok",
            remote_addr: caller.address.clone(),
            details: serde_json::json!({ "incident": id, "unit": unit.code, "kind": manual.kind }),
        })
        .await;
    Ok((
        axum::http::StatusCode::CREATED,
        axum::Json(incident_view(incident)),
    )
        .into_response())
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

/// A stated restoration time: RFC 3339, not in the future, not before the start.
fn restored_at(value: Option<&str>, started_at: i64) -> Result<Option<i64>, ApiError> {
    let invalid = |message: &str| ApiError::unprocessable("invalid_field", message.to_owned());
    let Some(at) = params::time("restored_at", value).map_err(|_| {
        invalid("restored_at is not an RFC 3339 time like 2026-11-23T10:20:00+07:00")
    })?
    else {
        return Ok(None);
    };
    let at = crate::store::millis(at);
    if at > crate::store::millis(time::OffsetDateTime::now_utc()) + 300_000 {
        return Err(invalid("restored_at is in the future"));
    }
    if at < started_at {
        return Err(invalid("restored_at is before the incident started"));
    }
    Ok(Some(at))
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
    // A stated restoration time, checked against the incident's start once it is read.
    let mut restored: Option<String> = None;
    let mut action = match verb.as_str() {
        "acknowledge" => Action::Acknowledge,
        "notes" => {
            let body: NoteBody = super::read_json(request, super::SMALL_BODY_LIMIT).await?;
            Action::Note(text_field("text", &body.text, true)?)
        }
        "resolve" => {
            let body: ResolveBody = super::read_json(request, super::SMALL_BODY_LIMIT).await?;
            restored = body.restored_at;
            Action::Resolve {
                resolution: text_field("resolution", &body.resolution, false)?,
                restored_at: None,
            }
        }
        "close" => {
            let body: CloseBody = super::read_json(request, super::SMALL_BODY_LIMIT).await?;
            restored = body.restored_at;
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
    if !caller.principal.role.can_act() {
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
    let restored = restored_at(restored.as_deref(), incident.started_at)?;
    if let Action::Resolve { restored_at, .. } = &mut action {
        *restored_at = restored;
    }
    // Closing with a stated restoration first corrects the end, then closes.
    let mut actions = Vec::new();
    if let (Action::Close { .. }, Some(at)) = (&action, restored) {
        actions.push(Action::Restore { at });
    }
    let closing = matches!(action, Action::Close { .. });
    actions.push(action);
    for action in &actions {
        match state
            .store
            .incident_act(&id, action, &actor, time::OffsetDateTime::now_utc())
            .await?
        {
            Ok(()) => {}
            Err(ActionRefusal::NotFound) => {
                return Err(ApiError::NotFound(format!("no incident with id {id:?}")))
            }
            Err(ActionRefusal::WrongState(why)) => return Err(ApiError::Conflict(why)),
        }
    }
    if closing {
        // The initial report exists by now at the latest (with the facts of the closing moment
        // when nobody read it before); then the closing report is issued.
        if let Some(closed) = state.store.incident(&id).await? {
            super::notices::issue(&state, &closed, Form::Initial, "system", "", false).await?;
            super::notices::issue(&state, &closed, Form::Closing, "system", "", false).await?;
        }
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
