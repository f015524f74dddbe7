//! Lịch bảo trì (`/maintenance`): planned maintenance windows in the person's scope, with where
//! each stands, the form to plan one (officers and administrators) and cancelling. The checks and
//! audit are `services::maintenance`, shared with the API and the CLI; a refused form is shown
//! again with what was typed and what to fix.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use time::OffsetDateTime;

use super::{render_form, see_other, ConsoleError, Layout, Person, Posted, Section};
use crate::domain::auth::Scope;
use crate::domain::maintenance::{duration_text, local_text};
use crate::http::api::AppState;
use crate::services::incidents::Refusal;
use crate::services::maintenance::{self as services, WindowRequest};
use crate::store::{millis, StoredWindow};

/// The page's routes.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/maintenance",
            get(maintenance_show).post(maintenance_create),
        )
        .route("/maintenance/{id}/cancel", post(maintenance_cancel))
}

/// A window as a row.
#[derive(Debug, Clone)]
pub(super) struct WindowRow {
    pub(super) id: String,
    pub(super) covers: String,
    pub(super) when: String,
    pub(super) repeat: &'static str,
    pub(super) occurrence: String,
    pub(super) state: &'static str,
    pub(super) class: &'static str,
    pub(super) reason: String,
    pub(super) planned_by: String,
    pub(super) cancellable: bool,
}

impl WindowRow {
    pub(super) fn of(window: &StoredWindow, now: i64) -> WindowRow {
        let (state, occurrence) = services::standing(window, now);
        let (label, class) = match state {
            "active" => ("Đang bảo trì", "warn"),
            "planned" => ("Sắp tới", "muted"),
            "cancelled" => ("Đã hủy", "muted"),
            _ => ("Đã kết thúc", "muted"),
        };
        WindowRow {
            id: window.id.clone(),
            covers: window.scope_text(),
            when: format!(
                "từ {}, mỗi lần {}",
                local_text(window.starts_at),
                duration_text(window.duration_ms)
            ),
            repeat: window
                .recurrence
                .parse::<crate::domain::maintenance::Repeat>()
                .map_or("một lần", |repeat| repeat.text()),
            occurrence: occurrence
                .map(|(start, end)| format!("{} – {}", local_text(start), local_text(end)))
                .unwrap_or_default(),
            state: label,
            class,
            reason: window.reason.clone(),
            planned_by: window
                .planned_by
                .trim_start_matches("person:")
                .trim_start_matches("cli:")
                .to_owned(),
            cancellable: matches!(state, "active" | "planned"),
        }
    }
}

/// A unit to choose.
#[derive(Debug, Clone)]
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "maintenance.html")]
struct MaintenancePage {
    layout: Layout,
    current: Vec<WindowRow>,
    past: Vec<WindowRow>,
    can_act: bool,
    units: Vec<Choice>,
    form: Form,
    error: String,
}

/// What the form holds (kept when a submission is refused).
#[derive(Debug, Clone, Default, Deserialize)]
struct Form {
    #[serde(default)]
    unit: String,
    #[serde(default)]
    only_unit: Option<String>,
    #[serde(default)]
    agent: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    start: String,
    #[serde(default)]
    duration: String,
    #[serde(default)]
    repeat: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    remind_to: String,
}

impl Form {
    fn request(&self) -> WindowRequest {
        let given = |text: &str| {
            let text = text.trim();
            (!text.is_empty()).then(|| text.to_owned())
        };
        WindowRequest {
            unit: given(&self.unit),
            subtree: Some(self.only_unit.is_none()),
            agent: given(&self.agent),
            target: given(&self.target),
            system: None,
            start: self.start.trim().replacen('T', " ", 1),
            duration: self.duration.clone(),
            repeat: given(&self.repeat),
            until: given(&self.until),
            reason: self.reason.clone(),
            remind_to: given(&self.remind_to),
        }
    }
}

async fn page(
    state: &AppState,
    person: &Person,
    form: Form,
    error: String,
) -> Result<Response, ConsoleError> {
    let now = millis(OffsetDateTime::now_utc());
    let windows = services::visible(&state.store, &person.principal()).await?;
    let (current, past): (Vec<_>, Vec<_>) = windows
        .iter()
        .map(|window| WindowRow::of(window, now))
        .partition(|row| row.cancellable);
    let units = state.store.units_all().await?;
    let scope = Scope::of(&person.principal(), &units);
    let units = units
        .iter()
        .filter(|unit| scope.contains(unit.id))
        .map(|unit| Choice {
            selected: unit.code == form.unit,
            value: unit.code.clone(),
            label: format!("{} ({})", unit.name, unit.code),
        })
        .collect();
    let refused = !error.is_empty();
    Ok(render_form(
        &MaintenancePage {
            layout: Layout::new(person, Section::Maintenance, "Lịch bảo trì"),
            current,
            past: past.into_iter().take(50).collect(),
            can_act: person.can_act(),
            units,
            form,
            error,
        },
        refused,
    ))
}

/// `GET /maintenance`.
async fn maintenance_show(
    State(state): State<AppState>,
    person: Person,
) -> Result<Response, ConsoleError> {
    let form = Form {
        duration: "4h".into(),
        repeat: "once".into(),
        ..Form::default()
    };
    page(&state, &person, form, String::new()).await
}

/// `POST /maintenance`: plans a window; a refused form comes back with what was typed.
async fn maintenance_create(
    State(state): State<AppState>,
    posted: Posted<Form>,
) -> Result<Response, ConsoleError> {
    let (person, form) = (posted.person, posted.form);
    let now = OffsetDateTime::now_utc();
    match services::create(
        &state.store,
        &person.principal(),
        &form.request(),
        &state.maintenance,
        person.address.clone(),
        now,
    )
    .await
    {
        Ok(_) => Ok(see_other("/maintenance")),
        Err(Refusal::Invalid { vi, .. }) => page(&state, &person, form, vi).await,
        Err(Refusal::NotFound(_)) => {
            page(
                &state,
                &person,
                form,
                "Không tìm thấy đơn vị hoặc máy trạm đã chọn.".into(),
            )
            .await
        }
        Err(Refusal::Forbidden(why)) => Err(person.forbid(&state, &form.unit, why).await),
        Err(Refusal::WrongState(why)) => Err(ConsoleError::BadRequest(why)),
        Err(Refusal::Internal(err)) => Err(ConsoleError::Internal(err)),
    }
}

/// Posted cancellation.
#[derive(Debug, Deserialize)]
struct CancelForm {}

/// `POST /maintenance/{id}/cancel`.
async fn maintenance_cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<CancelForm>,
) -> Result<Response, ConsoleError> {
    let person = posted.person;
    let now = OffsetDateTime::now_utc();
    match services::cancel(
        &state.store,
        &person.principal(),
        &id,
        person.address.clone(),
        now,
    )
    .await
    {
        Ok(_) => Ok(see_other("/maintenance")),
        Err(Refusal::NotFound(_)) => Err(ConsoleError::NotFound),
        Err(Refusal::Forbidden(why)) => Err(person.forbid(&state, &id, why).await),
        Err(Refusal::WrongState(_)) => Err(ConsoleError::BadRequest(
            "Lịch bảo trì này đã được hủy trước đó. Xin tải lại trang.".into(),
        )),
        Err(Refusal::Invalid { vi, .. }) => Err(ConsoleError::BadRequest(vi)),
        Err(Refusal::Internal(err)) => Err(ConsoleError::Internal(err)),
    }
    .map(IntoResponse::into_response)
}
