//! Periodic reports (issue 6): the agent's prefill context, submission by people, compliance per
//! period, one version's document, and the consolidated provincial report.
//!
//! Agents submit through ingest (a `periodic_report` event); people submit here with the same
//! document and the same checks. Both keep every version.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::read::rfc3339;
use super::{ok, params, ApiError, AppState, AuthenticatedAgent, Caller};
use crate::domain::auth::Scope;
use crate::services::reports::{self, tallies};
use crate::store::millis;

/// `GET /api/v1/reports/context`: what the calling agent's unit needs to draft its reports.
pub(super) async fn reports_context(
    State(state): State<AppState>,
    caller: AuthenticatedAgent,
) -> Result<Response, ApiError> {
    let units = state.store.units_all().await?;
    let Some(unit) = units.iter().find(|unit| unit.id == caller.agent.unit_id) else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "agent {} has no unit",
            caller.agent.id
        )));
    };
    let now = time::OffsetDateTime::now_utc();
    let context = reports::context(&state.store, &state.reports, unit, now).await?;
    Ok(ok(context))
}

/// Body of `POST /api/v1/reports`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitBody {
    /// The report document (Markdown with front matter), as `cntt-agent report draft` writes it.
    document: String,
}

/// `POST /api/v1/reports`: a person submits a report version for a unit in their scope.
pub(super) async fn reports_create(
    State(state): State<AppState>,
    caller: Caller,
    request: Request,
) -> Result<Response, ApiError> {
    let body: SubmitBody =
        super::read_json(request, cntt_common::report::MAX_DOCUMENT_BYTES + 4096).await?;
    let front_unit = cntt_common::report::parse(&body.document)
        .map(|report| report.front.unit)
        .map_err(|problems| ApiError::unprocessable("invalid_report", problems.to_string()))?;
    if !caller.principal.role.can_act() {
        return Err(caller
            .forbid(
                &state,
                &front_unit,
                "a viewer token may read reports but not submit them",
            )
            .await);
    }
    let units = state.store.units_all().await?;
    let unit = params::find_unit(&units, &front_unit)?;
    if !Scope::of(&caller.principal, &units).contains(unit.id) {
        return Err(caller
            .forbid(
                &state,
                &front_unit,
                "this token may not submit reports for that unit",
            )
            .await);
    }
    let now = time::OffsetDateTime::now_utc();
    let submitted = reports::submit(&state.store, &state.reports, unit, body.document, now)
        .await
        .map_err(|err| match err {
            reports::SubmitError::Invalid(message) => {
                ApiError::unprocessable("invalid_report", message)
            }
            reports::SubmitError::Store(err) => ApiError::Internal(err),
        })?;
    state
        .audit(submitted.audit_entry(caller.principal.actor(), caller.address.clone()))
        .await;
    Ok((
        axum::http::StatusCode::CREATED,
        axum::Json(serde_json::json!({
            "id": submitted.id,
            "unit_code": submitted.unit_code,
            "scheme": submitted.scheme,
            "period": submitted.period,
            "submitted_at": rfc3339(submitted.submitted_at),
        })),
    )
        .into_response())
}

/// Query of `GET /api/v1/reports` and `GET /api/v1/reports/consolidated`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PeriodQuery {
    period: Option<String>,
    scheme: Option<String>,
    unit: Option<String>,
    format: Option<String>,
}

async fn period_of(
    state: &AppState,
    query: &PeriodQuery,
) -> Result<crate::domain::periods::Period, ApiError> {
    let Some(label) = query.period.as_deref() else {
        return Err(ApiError::bad_request(
            "invalid_query",
            "period is required, e.g. period=2026-Q4 (or 2026-M11, 2026-H1, 2026-9M, 2026)",
        ));
    };
    let overrides = state.store.period_overrides().await?;
    state
        .reports
        .period(label, query.scheme.as_deref(), &overrides)
        .map_err(|err| ApiError::bad_request("invalid_period", format!("{err:#}")))
}

/// `GET /api/v1/reports?period=2026-Q4[&scheme=..][&unit=CODE]`: each unit's standing, with
/// tallies per district and for the province.
pub(super) async fn reports_list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<PeriodQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let query = params::parsed(query, "period, scheme and unit")?;
    let period = period_of(&state, &query).await?;
    let scope = params::units_in_scope(&state, &caller, query.unit.as_deref()).await?;
    let now = time::OffsetDateTime::now_utc();
    let rows: Vec<_> = reports::compliance(&state.store, &state.reports, &period, now)
        .await?
        .into_iter()
        .filter(|row| scope.as_ref().is_none_or(|ids| ids.contains(&row.unit_id)))
        .collect();
    let (districts, province) = tallies(&rows);
    let districts: Vec<_> = districts
        .into_iter()
        .map(|(code, (name, tally))| {
            serde_json::json!({ "code": code, "name": name, "tally": tally, "rate": tally.rate() })
        })
        .collect();
    Ok(ok(serde_json::json!({
        "period": period,
        "deadline": rfc3339(millis(period.deadline())),
        "units": rows,
        "districts": districts,
        "province": { "tally": province, "rate": province.rate() },
    })))
}

/// Query of `GET /api/v1/reports/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ShowQuery {
    format: Option<String>,
}

/// `GET /api/v1/reports/{id}[?format=markdown|text|html|docx]`: one version's document. By
/// default the Markdown the officer submitted (the editing source); `text`, `html` and `docx`
/// are the clean document the Sở reads: no front matter, hints or instructions, with the unit,
/// the officer, the period and each section under its heading ([`crate::services::reports::rendered`]);
/// the DOCX in the Nghị định 30/2020 layout, issued by the unit.
pub(super) async fn reports_show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<ShowQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let query = params::parsed(query, "format")?;
    let format = params::choice(
        "format",
        query.format.as_deref(),
        &["markdown", "text", "html", "docx"],
    )?
    .unwrap_or_else(|| "markdown".to_owned());
    let Some((report, document)) = state.store.report(&id).await? else {
        return Err(ApiError::NotFound(format!("no report with id {id:?}")));
    };
    let units = state.store.units_all().await?;
    if !Scope::of(&caller.principal, &units).contains(report.unit_id) {
        return Err(caller
            .forbid(
                &state,
                &report.unit_code,
                "this token may not read that unit",
            )
            .await);
    }
    if format == "markdown" {
        return Ok((
            [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
            document,
        )
            .into_response());
    }
    if format == "docx" {
        let unit = units
            .iter()
            .find(|unit| unit.id == report.unit_id)
            .ok_or_else(|| ApiError::NotFound(format!("no unit {}", report.unit_code)))?;
        let bytes = officer_report_docx(&state, &report, unit, &document).await?;
        let name = format!(
            "bao-cao-{}-{}-{}.docx",
            report.scheme, report.period, report.unit_code
        );
        return Ok((
            [
                (
                    header::CONTENT_TYPE,
                    "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
                        .to_owned(),
                ),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{name}\""),
                ),
            ],
            bytes,
        )
            .into_response());
    }
    let blocks = reports::rendered(&state.store, &state.reports, &report, &document).await?;
    let (content_type, body) = if format == "html" {
        (
            "text/html; charset=utf-8",
            cntt_common::report::render_html(&blocks),
        )
    } else {
        (
            "text/plain; charset=utf-8",
            cntt_common::report::render_text(&blocks),
        )
    };
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

/// The officer's report as a Nghị định 30/2020 document issued by its unit
/// ([`crate::documents::periodic`]): what `?format=docx` serves, and the console's download.
///
/// # Errors
///
/// When the stored document no longer reads, or on a database error.
pub(crate) async fn officer_report_docx(
    state: &AppState,
    report: &crate::store::StoredReport,
    unit: &crate::store::Unit,
    document: &str,
) -> anyhow::Result<Vec<u8>> {
    let blocks = reports::rendered(&state.store, &state.reports, report, document).await?;
    let profile = state.store.unit_profile(unit.id).await?.unwrap_or_default();
    let body = if profile.reporting_name.trim().is_empty() {
        crate::services::units::body_name(&unit.kind, &unit.name)
    } else {
        profile.reporting_name.trim().to_owned()
    };
    let submitted_at = crate::store::from_millis(report.submitted_at);
    let authority = state.organisation.current(submitted_at);
    // A department's letterhead names the province's People's Committee; a People's Committee
    // has no governing body line.
    let parent_agency = if !profile.governing_body.trim().is_empty() {
        profile.governing_body.trim().to_owned()
    } else if body.starts_with("UBND ") {
        String::new()
    } else {
        authority.header_parent()
    };
    let officer = cntt_common::report::parse(document)
        .map(|parsed| parsed.front.officer)
        .unwrap_or_default();
    let symbol = if profile.symbol.trim().is_empty() {
        unit.code.clone()
    } else {
        profile.symbol.trim().to_owned()
    };
    let issue = crate::documents::periodic::Issue {
        body,
        symbol,
        parent_agency,
        officer,
        submitted_at,
        authority,
    };
    let document = crate::documents::periodic::document(&blocks, &issue);
    crate::documents::nd30::docx(&document)
}

/// `GET /api/v1/reports/consolidated?period=2026-Q4&format=xlsx|docx`: the Sở's consolidated
/// report. Whole province only: tokens limited to one unit are refused.
pub(super) async fn reports_consolidated(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<PeriodQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let query = params::parsed(query, "period, scheme and format")?;
    let format = params::choice("format", query.format.as_deref(), &["xlsx", "docx"])?
        .unwrap_or_else(|| "xlsx".to_owned());
    if caller.principal.unit_id.is_some() {
        return Err(caller
            .forbid(
                &state,
                "consolidated",
                "the consolidated report covers the whole province; this token is limited to one unit",
            )
            .await);
    }
    let period = period_of(&state, &query).await?;
    let now = time::OffsetDateTime::now_utc();
    let report =
        crate::documents::consolidate::build(&state.store, &state.reports, &period, now).await?;
    let (bytes, content_type) = if format == "docx" {
        (
            crate::documents::consolidate::docx(&report)?,
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        )
    } else {
        (
            crate::documents::consolidate::xlsx(&report)?,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    };
    let name = crate::documents::consolidate::file_name(&period, &format);
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}
