//! `GET /api/v1/availability`: availability figures per unit for a time window, from
//! [`crate::domain::availability::figures`], for the unit asked and each unit under it, plus their total.
//!
//! Which incidents make a unit "down": by default the service-affecting kinds (LAN, WAN, Internet,
//! server, agent unreachable); `kind=` narrows to one kind (including security, host or other).
//! Down time inside a unit's planned maintenance windows is `planned_down_ms`, apart.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::read::rfc3339;
use super::{ok, params, ApiError, AppState, Caller};
use crate::domain::availability::{
    combine, figures_with_planned, Figures, Planned, UnitSpan, Window, SERVICE_KINDS,
};
use crate::store::{millis, INCIDENT_KINDS};

/// Query of `GET /api/v1/availability`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AvailabilityQuery {
    unit: Option<String>,
    kind: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

/// Figures of one unit.
#[derive(Debug, Serialize)]
struct UnitFigures {
    unit_code: String,
    unit_name: String,
    #[serde(flatten)]
    figures: Figures,
}

/// `GET /api/v1/availability?since=..&until=..[&unit=CODE][&kind=..]`.
pub(super) async fn availability_show(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<AvailabilityQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let query = params::parsed(query, "unit, kind, since and until")?;
    let kind = params::choice("kind", query.kind.as_deref(), INCIDENT_KINDS)?;
    let (since, until) = params::window(query.since.as_deref(), query.until.as_deref())?;
    let (Some(since), Some(until)) = (since, until) else {
        return Err(ApiError::bad_request(
            "invalid_query",
            "since and until are required, e.g. since=2026-09-15T00:00:00+07:00&until=2026-12-15T00:00:00+07:00",
        ));
    };
    let unit_ids = params::units_in_scope(&state, &caller, query.unit.as_deref()).await?;
    let units = state.store.units_all().await?;
    let window = Window {
        start: millis(since),
        end: millis(until),
    };
    let now = millis(OffsetDateTime::now_utc());
    let kinds: Vec<&str> = match &kind {
        Some(kind) => vec![kind.as_str()],
        None => SERVICE_KINDS.to_vec(),
    };
    let outages: Vec<_> = state
        .store
        .incident_outages(window.start, window.end)
        .await?
        .into_iter()
        .filter(|outage| kinds.contains(&outage.kind.as_str()))
        .collect();
    // Down time in planned maintenance of a unit is shown apart (`planned_down_ms`); it counts
    // against availability only when `[maintenance] planned_counts_against` says so.
    let windows = state.store.maintenance_live(window.start).await?;
    let planned =
        crate::services::maintenance::planned_by_unit(&windows, &units, window.start, window.end);
    let date = time::macros::format_description!("[year]-[month]-[day]");
    let mut rows = Vec::new();
    for unit in units
        .iter()
        .filter(|unit| unit_ids.as_ref().is_none_or(|ids| ids.contains(&unit.id)))
    {
        let day = |text: &Option<String>| {
            text.as_deref()
                .and_then(|text| time::Date::parse(text, &date).ok())
        };
        let span = UnitSpan::from_days(unit.id, day(&unit.valid_from), day(&unit.valid_to));
        let unit_planned = Planned {
            intervals: planned.get(&unit.id).cloned().unwrap_or_default(),
            counts_against: state.maintenance.planned_counts_against,
        };
        let unit_figures = figures_with_planned(window, now, &span, &outages, None, &unit_planned);
        rows.push(UnitFigures {
            unit_code: unit.code.clone(),
            unit_name: unit.name.clone(),
            figures: unit_figures,
        });
    }
    let total = combine(
        &rows
            .iter()
            .map(|row| row.figures.clone())
            .collect::<Vec<_>>(),
    );
    Ok(ok(serde_json::json!({
        "since": rfc3339(window.start),
        "until": rfc3339(window.end),
        "kinds": kinds,
        "total": total,
        "units": rows,
    })))
}
