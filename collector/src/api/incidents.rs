//! `GET /api/v1/incidents` and `GET /api/v1/incidents/{id}`: incidents the agents reported, as the
//! store rebuilt them from their phases, scoped like agents.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::read::rfc3339;
use super::{ok, params, ApiError, AppState, Caller};
use crate::auth::Scope;
use crate::store::{IncidentFilter, StoredIncident, INCIDENT_KINDS, INCIDENT_STATES};

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
    Ok(ok(incident_view(incident)))
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
    }
}
