//! Planned maintenance windows (issue 17): `GET /api/v1/maintenance-windows` lists those the caller
//! may see with where each stands, `POST` plans one (201), `POST /api/v1/maintenance-windows/{id}/cancel`
//! cancels one. The checks and audit are `services::maintenance`, shared with the CLI and console.

use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use time::OffsetDateTime;

use super::incidents::refused;
use super::read::rfc3339;
use super::{ok, ApiError, AppState, Caller};
use crate::services::maintenance::{self as services, WindowRequest};
use crate::store::{millis, StoredWindow};

/// A window as the API shows it: times as RFC 3339 text.
#[derive(Debug, Serialize)]
struct WindowView {
    id: String,
    scope: String,
    unit_code: Option<String>,
    unit_name: Option<String>,
    subtree: bool,
    agent_id: Option<String>,
    target: Option<String>,
    system_code: Option<String>,
    /// What it covers, in Vietnamese.
    covers: String,
    starts_at: String,
    duration_seconds: i64,
    repeat: String,
    until: Option<String>,
    reason: String,
    planned_by: String,
    created_at: String,
    cancelled_at: Option<String>,
    cancelled_by: Option<String>,
    /// `active`, `planned`, `ended` or `cancelled`.
    state: &'static str,
    /// The occurrence going on, or the next one.
    occurrence_start: Option<String>,
    occurrence_end: Option<String>,
}

fn view(window: StoredWindow, now: i64) -> WindowView {
    let (state, occurrence) = services::standing(&window, now);
    WindowView {
        covers: window.scope_text(),
        subtree: window.subtree != 0,
        starts_at: rfc3339(window.starts_at),
        duration_seconds: window.duration_ms / 1000,
        until: window.until_at.map(rfc3339),
        created_at: rfc3339(window.created_at),
        cancelled_at: window.cancelled_at.map(rfc3339),
        occurrence_start: occurrence.map(|(start, _)| rfc3339(start)),
        occurrence_end: occurrence.map(|(_, end)| rfc3339(end)),
        state,
        id: window.id,
        scope: window.scope_kind,
        unit_code: window.unit_code,
        unit_name: window.unit_name,
        agent_id: window.agent_id,
        target: window.target,
        system_code: window.system_code,
        repeat: window.recurrence,
        reason: window.reason,
        planned_by: window.planned_by,
        cancelled_by: window.cancelled_by,
    }
}

/// `GET /api/v1/maintenance-windows`.
pub(super) async fn windows_list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let now = millis(OffsetDateTime::now_utc());
    let windows = services::visible(&state.store, &caller.principal).await?;
    let views: Vec<WindowView> = windows.into_iter().map(|w| view(w, now)).collect();
    Ok(ok(serde_json::json!({ "windows": views })))
}

/// `POST /api/v1/maintenance-windows`: body `{unit | agent | target [+ unit] | system, start
/// ("2026-12-12 22:00", Vietnam time), duration ("4h"), repeat (once|daily|weekly), until
/// ("2027-06-30"), reason, remind_to}`; 201 with the window.
pub(super) async fn windows_create(
    State(state): State<AppState>,
    caller: Caller,
    request: Request,
) -> Result<Response, ApiError> {
    let body: WindowRequest = super::read_json(request, super::SMALL_BODY_LIMIT).await?;
    let now = OffsetDateTime::now_utc();
    let target = body.unit.clone().unwrap_or_default();
    match services::create(
        &state.store,
        &caller.principal,
        &body,
        &state.maintenance,
        caller.address.clone(),
        now,
    )
    .await
    {
        Ok(window) => Ok((
            axum::http::StatusCode::CREATED,
            axum::Json(view(window, millis(now))),
        )
            .into_response()),
        Err(refusal) => Err(refused(&state, &caller, &target, refusal).await),
    }
}

/// `POST /api/v1/maintenance-windows/{id}/cancel`.
pub(super) async fn windows_cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let now = OffsetDateTime::now_utc();
    match services::cancel(
        &state.store,
        &caller.principal,
        &id,
        caller.address.clone(),
        now,
    )
    .await
    {
        Ok(window) => Ok(ok(view(window, millis(now)))),
        Err(refusal) => Err(refused(&state, &caller, &id, refusal).await),
    }
}
