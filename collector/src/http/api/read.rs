//! Read-only endpoints: health, metrics, the OpenAPI document, units and agents. Incidents and
//! probe results have their own files.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cntt_common::wire::HostSnapshot;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{ok, params, ApiError, AppState, Caller};
use crate::domain::auth::{subtree, Scope};
use crate::store::{from_millis, millis, Agent, Unit};

/// `GET /healthz`: 200 when the database answers, 503 otherwise. Needs no token.
pub(super) async fn healthz_show(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => ok(serde_json::json!({ "status": "ok" })),
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({ "status": "database unavailable" })),
            )
                .into_response()
        }
    }
}

/// `GET /metrics`: Prometheus text. Needs the scrape token (`listen.scrape_token_file`) or an admin
/// API token, unless `listen.public_metrics` is set. The series cover every unit, so a token
/// scoped to units (or read-only) gets 403 (issue 13, M2).
pub(super) async fn metrics_show(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    if !state.public_metrics {
        let (mut parts, _body) = request.into_parts();
        let scrape_token = state.scrape_token_hash.as_deref().is_some_and(|hash| {
            super::bearer(&parts)
                .is_some_and(|token| crate::domain::auth::hash_secret(token) == hash)
        });
        if !scrape_token {
            let caller = <Caller as axum::extract::FromRequestParts<AppState>>::from_request_parts(
                &mut parts, &state,
            )
            .await?;
            if caller.principal.role != crate::domain::auth::Role::Admin {
                return Err(caller
                    .forbid(
                        &state,
                        "/metrics",
                        "/metrics covers every unit: only the scrape token and admin API tokens may read it",
                    )
                    .await);
            }
        }
    }
    state
        .metrics
        .refresh(
            &state.store,
            &state.incidents,
            &state.reports,
            OffsetDateTime::now_utc(),
        )
        .await?;
    let text = state.metrics.render();
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
        .into_response())
}

/// `GET /api/v1/openapi.json`: the API described for people and tools. Needs no token.
pub(super) async fn openapi_show() -> Response {
    (
        [(CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
        .into_response()
}

/// Query of `GET /api/v1/units`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UnitsQuery {
    /// Only this unit and its descendants.
    root: Option<String>,
    /// Only units valid on this ISO date.
    at: Option<String>,
}

/// `GET /api/v1/units`: the units the caller may see, optionally one subtree, optionally those
/// valid on a date.
pub(super) async fn units_list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<UnitsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let query = params::parsed(query, "root, at")?;
    let units = state.store.units_all().await?;
    let scope = Scope::of(&caller.principal, &units);
    let root_ids = match &query.root {
        None => None,
        Some(code) => {
            let root = params::find_unit(&units, code)?;
            if !scope.contains(root.id) {
                return Err(caller
                    .forbid(&state, code, "this token may not read that unit")
                    .await);
            }
            Some(subtree(root.id, &units))
        }
    };
    if let Some(at) = &query.at {
        time::Date::parse(
            at,
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .map_err(|_| {
            ApiError::bad_request(
                "invalid_query",
                format!("at={at:?} is not a date like 2026-11-23"),
            )
        })?;
    }
    let visible: Vec<&Unit> = units
        .iter()
        .filter(|unit| scope.contains(unit.id))
        .filter(|unit| root_ids.as_ref().is_none_or(|ids| ids.contains(&unit.id)))
        .filter(|unit| query.at.as_deref().is_none_or(|at| unit.valid_on(at)))
        .collect();
    Ok(ok(serde_json::json!({ "units": visible })))
}

/// Query of `GET /api/v1/agents`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AgentsQuery {
    /// Only agents of this unit and its descendants.
    unit: Option<String>,
}

/// One agent in `GET /api/v1/agents`.
#[derive(Debug, Serialize)]
struct AgentView {
    id: String,
    unit_code: String,
    unit_name: String,
    hostname: String,
    agent_version: String,
    /// `online`, `silent`, `never_seen` or `revoked`.
    status: &'static str,
    enrolled_at: String,
    last_seen_at: Option<String>,
    last_seq: Option<i64>,
    last_address: Option<String>,
    heartbeat_interval_seconds: Option<i64>,
    host: Option<HostSummary>,
}

/// The host part of an agent listing.
#[derive(Debug, Serialize)]
struct HostSummary {
    hostname: String,
    os: String,
    uptime_seconds: u64,
    cpu_count: u32,
    cpu_usage_percent: f32,
    memory_total_bytes: u64,
    memory_used_percent: f64,
    disks: usize,
    fullest_disk_used_percent: Option<f64>,
}

/// `GET /api/v1/agents`: agents the caller may see, with last contact and a host summary.
pub(super) async fn agents_list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<AgentsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let query = params::parsed(query, "unit")?;
    let unit_ids = params::units_in_scope(&state, &caller, query.unit.as_deref()).await?;
    let now = millis(OffsetDateTime::now_utc());
    let agents: Vec<AgentView> = state
        .store
        .agents_list(unit_ids.as_deref())
        .await?
        .into_iter()
        .map(|agent| agent_view(agent, now))
        .collect();
    Ok(ok(serde_json::json!({ "agents": agents })))
}

/// An agent is silent after three missed heartbeats (and at least three minutes).
fn agent_view(agent: Agent, now: i64) -> AgentView {
    let interval_ms = agent.heartbeat_interval.unwrap_or(60).max(1) * 1000;
    let silent_after = (3 * interval_ms).max(180_000);
    let status = match (agent.revoked_at, agent.last_seen_at) {
        (Some(_), _) => "revoked",
        (None, None) => "never_seen",
        (None, Some(seen)) if now - seen > silent_after => "silent",
        (None, Some(_)) => "online",
    };
    let host = agent
        .host_snapshot
        .as_deref()
        .and_then(|text| serde_json::from_str::<HostSnapshot>(text).ok())
        .map(|host| HostSummary {
            os: format!("{} {}", host.os_name, host.os_version)
                .trim()
                .to_owned(),
            memory_used_percent: percent(host.memory_used_bytes, host.memory_total_bytes),
            disks: host.disks.len(),
            fullest_disk_used_percent: host
                .disks
                .iter()
                .map(|disk| {
                    percent(
                        disk.total_bytes.saturating_sub(disk.available_bytes),
                        disk.total_bytes,
                    )
                })
                .reduce(f64::max),
            hostname: host.hostname,
            uptime_seconds: host.uptime_seconds,
            cpu_count: host.cpu_count,
            cpu_usage_percent: host.cpu_usage_percent,
            memory_total_bytes: host.memory_total_bytes,
        });
    AgentView {
        id: agent.id,
        unit_code: agent.unit_code,
        unit_name: agent.unit_name,
        hostname: agent.hostname,
        agent_version: agent.agent_version,
        status,
        enrolled_at: rfc3339(agent.enrolled_at),
        last_seen_at: agent.last_seen_at.map(rfc3339),
        last_seq: agent.last_seq,
        last_address: agent.last_address,
        heartbeat_interval_seconds: agent.heartbeat_interval,
        host,
    }
}

fn percent(part: u64, total: u64) -> f64 {
    if total == 0 {
        return 0.0;
    }
    (part as f64 * 1000.0 / total as f64).round() / 10.0
}

/// RFC 3339 text of Unix milliseconds.
pub(crate) fn rfc3339(ms: i64) -> String {
    from_millis(ms)
        .format(&Rfc3339)
        .expect("stored times format as RFC 3339")
}
