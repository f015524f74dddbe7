//! `GET /api/v1/probe-results`: the checks agents ran, newest first, scoped by the agent's unit.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::read::rfc3339;
use super::{ok, params, ApiError, AppState, Caller};
use crate::domain::auth::Scope;
use crate::store::{ProbeResultFilter, StoredProbeResult};

/// Results listed when no `limit` is given.
const DEFAULT_LIMIT: i64 = 500;

/// Most results one request may list.
const MAX_LIMIT: i64 = 5000;

/// Query of `GET /api/v1/probe-results`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProbeResultsQuery {
    /// Only this agent's results.
    agent: Option<String>,
    /// Only this target's.
    target: Option<String>,
    /// Only checks at or after this time.
    since: Option<String>,
    /// Only checks before this time.
    until: Option<String>,
    /// At most this many.
    limit: Option<String>,
}

/// One probe result as the API shows it.
#[derive(Debug, Serialize)]
struct ProbeResultView {
    id: String,
    agent_id: String,
    unit_code: String,
    target: String,
    target_kind: String,
    check: String,
    address: String,
    at: String,
    ok: bool,
    rtt_ms: Option<f64>,
    error: Option<String>,
    http_status: Option<i64>,
    cert_not_after: Option<String>,
}

/// `GET /api/v1/probe-results`: results of agents the caller may see; an agent outside the
/// caller's scope is a 403 (audited), an unknown one a 404.
pub(super) async fn probe_results_list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ProbeResultsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let query = params::parsed(query, "agent, target, since, until and limit")?;
    let (since, until) = params::window(query.since.as_deref(), query.until.as_deref())?;
    let limit = params::limit(query.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?;
    let unit_ids = match &query.agent {
        Some(agent_id) => {
            let Some(agent) = state.store.agent(agent_id).await? else {
                return Err(ApiError::NotFound(format!(
                    "no agent with id {agent_id:?}; GET /api/v1/agents lists them"
                )));
            };
            let units = state.store.units_all().await?;
            if !Scope::of(&caller.principal, &units).contains(agent.unit_id) {
                return Err(caller
                    .forbid(
                        &state,
                        agent_id,
                        "this token may not read that agent's unit",
                    )
                    .await);
            }
            None
        }
        None => params::units_in_scope(&state, &caller, None).await?,
    };
    let filter = ProbeResultFilter {
        unit_ids,
        agent_id: query.agent,
        target: query.target,
        since,
        until,
        limit,
    };
    let results: Vec<ProbeResultView> = state
        .store
        .probe_results_list(&filter)
        .await?
        .into_iter()
        .map(probe_result_view)
        .collect();
    Ok(ok(serde_json::json!({ "probe_results": results })))
}

fn probe_result_view(result: StoredProbeResult) -> ProbeResultView {
    ProbeResultView {
        id: result.id,
        agent_id: result.agent_id,
        unit_code: result.unit_code,
        target: result.target,
        target_kind: result.target_kind,
        check: result.check_kind,
        address: result.address,
        at: rfc3339(result.at),
        ok: result.ok != 0,
        rtt_ms: result.rtt_ms,
        error: result.error,
        http_status: result.http_status,
        cert_not_after: result.cert_not_after.map(rfc3339),
    }
}
