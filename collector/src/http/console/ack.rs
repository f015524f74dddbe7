//! Acknowledging from a notice's link (issue 17, item 4; rules in `domain::ack_link`):
//! `GET /ack/{token}` (after logging in: the session's redirect keeps the link) shows the incident
//! and a button; `POST /ack/{token}` acknowledges it through `services::incidents::act`, the same
//! path as the incident page, which stops its escalation. A link acts once and until it expires;
//! a used, expired or altered link is refused with a page that says so, and audited
//! (`incident.ack_link`). The confirmation step keeps mail scanners that open links from
//! acknowledging anything.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use time::OffsetDateTime;

use super::incidents::local_time;
use super::{render, see_other, ConsoleError, Layout, Person, Posted, Section};
use crate::domain::ack_link::{self, LinkRefusal};
use crate::domain::auth::Scope;
use crate::http::api::AppState;
use crate::services::incidents::{self as services, Refusal};
use crate::store::{millis, NewAuditEntry, StoredIncident};

/// The page's routes.
pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/ack/{token}", get(ack_show).post(ack_confirm))
}

#[derive(Template)]
#[template(path = "ack.html")]
struct AckPage {
    layout: Layout,
    token: String,
    id: String,
    number: String,
    title: String,
    unit: String,
    started: String,
    state: String,
    /// Why it cannot be used; empty when it can.
    refusal: String,
}

/// What a link leads to, once checked.
enum Checked {
    Usable(String, StoredIncident),
    Refused(&'static str, String, Option<StoredIncident>),
}

/// Checks the link for `person` without using it: signature, expiry, single use, the incident and
/// the person's scope. A refusal carries the audit's reason and the Vietnamese words.
async fn check(state: &AppState, person: &Person, token: &str) -> Result<Checked, ConsoleError> {
    let now = millis(OffsetDateTime::now_utc());
    let key = state.store.ack_link_key().await?;
    let claims = match ack_link::verify(&key, token, now) {
        Ok(claims) => claims,
        Err(LinkRefusal::Expired) => {
            return Ok(Checked::Refused(
                "expired",
                "Đường dẫn xác nhận này đã hết hạn. Xin mở sự cố trên trang Sự cố để xác nhận.".into(),
                None,
            ))
        }
        Err(LinkRefusal::Altered) => {
            return Ok(Checked::Refused(
                "altered",
                "Đường dẫn xác nhận không hợp lệ (có thể đã bị sửa hoặc chép thiếu). Xin mở sự cố trên trang Sự cố.".into(),
                None,
            ))
        }
    };
    let Some(notice) = state.store.linked_notice(&claims.notice_id).await? else {
        return Ok(Checked::Refused(
            "altered",
            "Đường dẫn xác nhận không hợp lệ.".into(),
            None,
        ));
    };
    let Some(incident_id) = notice.incident_id else {
        return Ok(Checked::Refused(
            "altered",
            "Đường dẫn xác nhận không hợp lệ.".into(),
            None,
        ));
    };
    let Some(incident) = state.store.incident(&incident_id).await? else {
        return Err(ConsoleError::NotFound);
    };
    let units = state.store.units_all().await?;
    if !Scope::of(&person.principal(), &units).contains(incident.unit_id) {
        return Ok(Checked::Refused(
            "outside scope",
            "Sự cố này không thuộc phạm vi tài khoản của bạn.".into(),
            None,
        ));
    }
    if state
        .store
        .ack_link_used(&claims.notice_id)
        .await?
        .is_some()
    {
        return Ok(Checked::Refused(
            "used",
            "Đường dẫn xác nhận này đã được dùng. Trạng thái sự cố hiện tại ở dưới.".into(),
            Some(incident),
        ));
    }
    Ok(Checked::Usable(claims.notice_id, incident))
}

fn page(
    person: &Person,
    token: &str,
    incident: Option<&StoredIncident>,
    refusal: String,
) -> Response {
    let state_text = |state: &str| match state {
        "open" => "Đang xảy ra",
        "acknowledged" => "Đã tiếp nhận",
        "resolved" => "Đã khắc phục",
        "closed" => "Đã đóng",
        _ => "",
    };
    render(&AckPage {
        layout: Layout::new(person, Section::Incidents, "Xác nhận tiếp nhận sự cố"),
        token: token.to_owned(),
        id: incident.map(|i| i.id.clone()).unwrap_or_default(),
        number: incident.and_then(|i| i.number.clone()).unwrap_or_default(),
        title: incident.map(|i| i.title.clone()).unwrap_or_default(),
        unit: incident.map(|i| i.unit_name.clone()).unwrap_or_default(),
        started: incident
            .map(|i| local_time(i.started_at))
            .unwrap_or_default(),
        state: incident
            .map(|i| state_text(&i.state).to_owned())
            .unwrap_or_default(),
        refusal,
    })
}

async fn audit_refusal(state: &AppState, person: &Person, token: &str, why: &str) {
    let notice = token.split('.').next().unwrap_or_default();
    state
        .audit(NewAuditEntry {
            actor: person.principal().actor(),
            action: "incident.ack_link".into(),
            target: notice.chars().take(64).collect(),
            outcome: "denied",
            remote_addr: person.address.clone(),
            details: serde_json::json!({ "reason": why }),
        })
        .await;
}

/// `GET /ack/{token}`: the incident and the button, or why the link does not work.
async fn ack_show(
    State(state): State<AppState>,
    person: Person,
    Path(token): Path<String>,
) -> Result<Response, ConsoleError> {
    match check(&state, &person, &token).await? {
        Checked::Usable(_, incident) => Ok(page(&person, &token, Some(&incident), String::new())),
        Checked::Refused(why, words, incident) => {
            audit_refusal(&state, &person, &token, why).await;
            let mut response = page(&person, &token, incident.as_ref(), words);
            *response.status_mut() = axum::http::StatusCode::FORBIDDEN;
            Ok(response)
        }
    }
}

/// Posted confirmation.
#[derive(Debug, Deserialize)]
struct ConfirmForm {}

/// `POST /ack/{token}`: acknowledges the incident (if it is still open) and spends the link.
async fn ack_confirm(
    State(state): State<AppState>,
    Path(token): Path<String>,
    posted: Posted<ConfirmForm>,
) -> Result<Response, ConsoleError> {
    let person = posted.person;
    let (notice_id, incident) = match check(&state, &person, &token).await? {
        Checked::Usable(notice_id, incident) => (notice_id, incident),
        Checked::Refused(why, words, incident) => {
            audit_refusal(&state, &person, &token, why).await;
            let mut response = page(&person, &token, incident.as_ref(), words);
            *response.status_mut() = axum::http::StatusCode::FORBIDDEN;
            return Ok(response);
        }
    };
    let now = OffsetDateTime::now_utc();
    // Spent first: two clicks at once act once.
    if !state
        .store
        .ack_link_use(&notice_id, &person.principal().actor(), now)
        .await?
    {
        audit_refusal(&state, &person, &token, "used").await;
        let mut response = page(
            &person,
            &token,
            Some(&incident),
            "Đường dẫn xác nhận này đã được dùng.".into(),
        );
        *response.status_mut() = axum::http::StatusCode::FORBIDDEN;
        return Ok(response);
    }
    if incident.state == "open" {
        match services::act(
            &state.store,
            &person.principal(),
            &incident.id,
            services::Request::Acknowledge,
            person.address.clone(),
            now,
        )
        .await
        {
            Ok(_) => {}
            Err(Refusal::Forbidden(why)) => {
                return Err(person.forbid(&state, &incident.id, why).await)
            }
            Err(Refusal::WrongState(_)) => {}
            Err(Refusal::NotFound(_)) => return Err(ConsoleError::NotFound),
            Err(Refusal::Invalid { vi, .. }) => return Err(ConsoleError::BadRequest(vi)),
            Err(Refusal::Internal(err)) => return Err(ConsoleError::Internal(err)),
        }
    }
    state
        .audit(NewAuditEntry {
            actor: person.principal().actor(),
            action: "incident.ack_link".into(),
            target: incident.id.clone(),
            outcome: "ok",
            remote_addr: person.address.clone(),
            details: serde_json::json!({ "notice": notice_id, "state_before": incident.state }),
        })
        .await;
    Ok(see_other(&format!("/incidents/{}", incident.id)))
}
