//! Notices: `GET /api/v1/notices` (delivery state of each notice, for admins and the incident's
//! officers), `GET /api/v1/incidents/{id}/report` (the initial or closing report of an incident
//! as a document: Thông tư 20/2017 Biểu mẫu 03/04 in the Nghị định 30/2020 layout, DOCX, HTML or
//! text, frozen when issued) and `POST /api/v1/incidents/{id}/report/reissue` (a correction).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::read::rfc3339;
use super::{ok, params, ApiError, AppState, Caller};
use crate::documents::incident::{self, Authority, Form};
use crate::documents::issue::{file_name, Issuer, Unreadable};
use crate::domain::auth::{Role, Scope};
use crate::store::{IssuedReport, NewAuditEntry, StoredIncident};

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
    /// `initial` (Biểu mẫu 03, default) or `closing` (Biểu mẫu 04).
    form: Option<String>,
    /// `text` (default), `html` or `docx`.
    format: Option<String>,
    /// A version issued earlier; the latest by default.
    version: Option<String>,
}

/// The provincial IT authority and the province in force now, for incident reports.
pub(super) fn authority(state: &AppState) -> Authority {
    Authority::of(state.organisation.current(time::OffsetDateTime::now_utc()))
}

/// Issues `form` of `incident` now (or returns it when it was issued), as `actor`.
pub(super) async fn issue(
    state: &AppState,
    incident: &StoredIncident,
    form: Form,
    actor: &str,
    reason: &str,
    reissue: bool,
) -> Result<IssuedReport, ApiError> {
    let authority = authority(state);
    let issuer = Issuer {
        store: &state.store,
        scheme: &state.incident_reports,
        authority: &authority,
    };
    Ok(issuer
        .issue(
            incident,
            form,
            actor,
            reason,
            reissue,
            time::OffsetDateTime::now_utc(),
        )
        .await?)
}

/// At closing, issues the initial report (if nobody read it before) and the closing report.
pub(super) async fn issuer_at_closing(
    state: &AppState,
    incident: &StoredIncident,
) -> Result<(), ApiError> {
    let authority = authority(state);
    let issuer = Issuer {
        store: &state.store,
        scheme: &state.incident_reports,
        authority: &authority,
    };
    Ok(issuer
        .at_closing(incident, time::OffsetDateTime::now_utc())
        .await?)
}

/// Reads the incident `id` for the caller, refusing other units' incidents.
async fn incident_in_scope(
    state: &AppState,
    caller: &Caller,
    id: &str,
    what: &str,
) -> Result<StoredIncident, ApiError> {
    let Some(incident) = state.store.incident(id).await? else {
        return Err(ApiError::NotFound(format!(
            "no incident with id {id:?}; GET /api/v1/incidents lists them"
        )));
    };
    let units = state.store.units_all().await?;
    if !Scope::of(&caller.principal, &units).contains(incident.unit_id) {
        return Err(caller.forbid(state, id, what).await);
    }
    Ok(incident)
}

/// `GET /api/v1/incidents/{id}/report`: the incident's initial or closing report as a document
/// (`format=docx|html|text`). The initial report is issued the first time it is read; the
/// closing report when the incident is closed. `version=N` reads an earlier version.
pub(super) async fn incidents_report(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<ReportQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let query = params::parsed(query, "form, format and version")?;
    let form = params::choice("form", query.form.as_deref(), &["initial", "closing"])?;
    let form = form
        .as_deref()
        .and_then(Form::parse)
        .unwrap_or(Form::Initial);
    let format = params::choice("format", query.format.as_deref(), &["text", "html", "docx"])?
        .unwrap_or_else(|| "text".to_owned());
    let version = match query.version.as_deref() {
        None => None,
        Some(text) => Some(text.parse::<u32>().ok().filter(|v| *v > 0).ok_or_else(|| {
            ApiError::bad_request("invalid_query", "version must be a whole number from 1")
        })?),
    };
    let incident = incident_in_scope(
        &state,
        &caller,
        &id,
        "this token may not read incidents of that unit",
    )
    .await?;
    let authority = authority(&state);
    let issuer = Issuer {
        store: &state.store,
        scheme: &state.incident_reports,
        authority: &authority,
    };
    let report = match issuer
        .to_read(&incident, form, version, time::OffsetDateTime::now_utc())
        .await?
    {
        Ok(report) => report,
        Err(Unreadable::NotClosed(incident_state)) => {
            return Err(ApiError::Conflict(format!(
                "the closing report is issued when the incident is closed; this one is {incident_state}"
            )))
        }
        Err(Unreadable::NoSuchVersion) => {
            return Err(ApiError::NotFound(format!(
                "no version {} of the {} report of incident {id}",
                version.unwrap_or_default(),
                form.as_str()
            )))
        }
    };
    let (content_type, bytes) = incident::render(&report.facts, &format)?;
    let mut response = ([(CONTENT_TYPE, content_type)], bytes).into_response();
    if format == "docx" {
        let name = format!(
            "attachment; filename=\"{}\"",
            file_name(&incident, form, report.version)
        );
        if let Ok(value) = axum::http::HeaderValue::from_str(&name) {
            response
                .headers_mut()
                .insert(axum::http::header::CONTENT_DISPOSITION, value);
        }
    }
    for (name, value) in [
        ("x-report-number", report.number.clone()),
        ("x-report-version", report.version.to_string()),
    ] {
        if let Ok(value) = axum::http::HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    Ok(response)
}

/// Body of `POST /api/v1/incidents/{id}/report/reissue`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReissueBody {
    form: String,
    reason: String,
}

/// `POST /api/v1/incidents/{id}/report/reissue`: a correction, issued as the next version of the
/// report with the incident's facts of now; earlier versions stay readable. Admins and officers
/// of the unit's scope; audited.
pub(super) async fn incidents_report_reissue(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    let body: ReissueBody = super::read_json(request, super::SMALL_BODY_LIMIT).await?;
    let Some(form) = Form::parse(&body.form) else {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "form must be initial or closing",
        ));
    };
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > 1000 {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "reason must say what is corrected, in at most 1000 characters",
        ));
    }
    if !caller.principal.role.can_act() {
        return Err(caller
            .forbid(
                &state,
                &id,
                "a viewer token may read reports but not issue them",
            )
            .await);
    }
    let incident = incident_in_scope(
        &state,
        &caller,
        &id,
        "this token may not issue reports of that unit",
    )
    .await?;
    if state
        .store
        .incident_reports(&incident.id, form)
        .await?
        .is_empty()
    {
        return Err(ApiError::Conflict(format!(
            "no {} report of this incident was issued yet; a correction follows an issued report",
            form.as_str()
        )));
    }
    let actor = caller.principal.actor();
    let report = issue(&state, &incident, form, &actor, reason, true).await?;
    state
        .audit(NewAuditEntry {
            actor,
            action: "incident.report_reissue".into(),
            target: report.number.clone(),
            outcome: "ok",
            remote_addr: caller.address.clone(),
            details: serde_json::json!({
                "incident": incident.id,
                "form": form.as_str(),
                "version": report.version,
                "reason": reason,
            }),
        })
        .await;
    Ok((
        axum::http::StatusCode::CREATED,
        axum::Json(serde_json::json!({
            "incident_id": incident.id,
            "form": form.as_str(),
            "version": report.version,
            "number": report.number,
            "issued_at": rfc3339(report.issued_at),
        })),
    )
        .into_response())
}
