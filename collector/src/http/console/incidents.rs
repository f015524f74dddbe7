//! Sự cố: the incidents of a person's scope (`/incidents`, filters by unit subtree, kind, state and
//! time), one incident (`/incidents/{id}`: facts, timeline, evidence, incidents folded under it,
//! reports) with the lifecycle forms, filing a security incident (`/incidents/new`) and the
//! initial and closing reports as DOCX (`/incidents/{id}/report?form=initial|closing`).
//!
//! Every action goes through `services::incidents` (the API's checks, store calls and audit);
//! closing issues the reports through `documents::issue::Issuer::at_closing`, as the API does.
//! Someone outside the incident's unit scope gets an audited 403 for the page, the download and
//! any post; viewers and leadership see no forms and a posted action is refused the same way.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use time::OffsetDateTime;

use super::{render, render_form, see_other, ConsoleError, Layout, Person, Posted, Section};
use crate::documents::incident::{self, Authority, Form, DISCOVERY};
use crate::documents::issue::{file_name, Issuer, Unreadable};
use crate::domain::auth::Scope;
use crate::http::api::AppState;
use crate::jobs::notify::render::{kind_text, severity_text};
use crate::services::incidents::{self as services, Filing, Refusal, SEVERITIES};
use crate::store::{IncidentFilter, StoredIncident, Unit, INCIDENT_KINDS};

/// The incident pages' routes.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/incidents", get(incidents_list))
        .route("/incidents/new", get(incidents_new).post(incidents_create))
        .route("/incidents/{id}", get(incidents_show))
        .route("/incidents/{id}/report", get(incidents_report))
        .route("/incidents/{id}/{action}", post(incidents_act))
}

/// Most incidents one list shows.
const LIST_LIMIT: i64 = 200;

/// Vietnam's offset: people read times in it.
const VIETNAM: time::UtcOffset = crate::domain::periods::VIETNAM;

/// A time as people read it: `dd/mm/yyyy HH:MM` in Vietnam.
pub(super) fn local_time(ms: i64) -> String {
    let at = crate::store::from_millis(ms).to_offset(VIETNAM);
    format!(
        "{:02}/{:02}/{} {:02}:{:02}",
        at.day(),
        u8::from(at.month()),
        at.year(),
        at.hour(),
        at.minute()
    )
}

/// A day typed in a date field (`yyyy-mm-dd`), as the start of that day in Vietnam.
pub(super) fn day_start(text: &str) -> Option<OffsetDateTime> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text.trim(), &format)
        .ok()
        .map(|date| date.midnight().assume_offset(VIETNAM))
}

/// A time typed in a `datetime-local` field (`yyyy-mm-ddTHH:MM`), in Vietnam; `Ok(None)` when
/// empty.
fn local_input(text: &str, label: &str) -> Result<Option<OffsetDateTime>, ConsoleError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let short = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let long = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    time::PrimitiveDateTime::parse(text, &short)
        .or_else(|_| time::PrimitiveDateTime::parse(text, &long))
        .map(|at| Some(at.assume_offset(VIETNAM)))
        .map_err(|_| {
            ConsoleError::BadRequest(format!(
                "{label} chưa đúng dạng ngày giờ (ví dụ 2026-11-23T08:00)."
            ))
        })
}

/// A state as people read it.
pub(super) fn state_text(state: &str) -> &'static str {
    match state {
        "open" => "Đang xảy ra",
        "acknowledged" => "Đã tiếp nhận",
        "resolved" => "Đã khắc phục",
        "closed" => "Đã đóng",
        _ => "Không rõ",
    }
}

/// The badge class of a state.
pub(super) fn state_class(state: &str) -> &'static str {
    match state {
        "open" => "bad",
        "acknowledged" => "warn",
        "resolved" => "good",
        _ => "muted",
    }
}

/// How a source reads.
fn source_text(source: &str) -> &'static str {
    match source {
        "agent_detected" => "Tác tử giám sát phát hiện",
        "inferred" => "Máy chủ thu thập suy ra",
        "agent_manual" => "Cán bộ báo cáo qua tác tử",
        _ => "Cán bộ báo cáo",
    }
}

/// What a timeline entry says.
fn entry_text(entry: &str) -> &'static str {
    match entry {
        "opened" => "Mở",
        "updated" => "Cập nhật",
        "resolved" => "Khắc phục",
        "inferred" => "Suy ra",
        "acknowledged" => "Tiếp nhận",
        "note" => "Ghi chú",
        "restored" => "Khôi phục dịch vụ",
        "closed" => "Đóng",
        _ => "Khác",
    }
}

/// One incident in a list.
#[derive(Debug, Clone)]
pub(super) struct Row {
    pub(super) id: String,
    pub(super) number: String,
    pub(super) unit: String,
    pub(super) kind: &'static str,
    pub(super) severity: &'static str,
    pub(super) state: &'static str,
    pub(super) state_class: &'static str,
    pub(super) title: String,
    pub(super) started: String,
    pub(super) ended: String,
    pub(super) folded: bool,
    /// Begun in (or now under) a planned maintenance window: shown "trong lịch bảo trì".
    pub(super) maintenance: bool,
}

impl Row {
    /// The row of `incident`, marked when a maintenance window holds it.
    pub(super) fn marked(
        incident: &StoredIncident,
        marker: &crate::services::maintenance::Marker,
        now: i64,
    ) -> Row {
        Row {
            maintenance: marker.marks(incident, now),
            ..Row::of(incident)
        }
    }

    /// The row of `incident`.
    pub(super) fn of(incident: &StoredIncident) -> Row {
        Row {
            id: incident.id.clone(),
            number: incident.number.clone().unwrap_or_else(|| "—".into()),
            unit: incident.unit_name.clone(),
            kind: kind_text(&incident.kind),
            severity: severity_text(&incident.severity),
            state: state_text(&incident.state),
            state_class: state_class(&incident.state),
            title: incident.title.clone(),
            started: local_time(incident.started_at),
            ended: incident.ended_at.map(local_time).unwrap_or_default(),
            folded: incident.parent_id.is_some(),
            maintenance: false,
        }
    }
}

/// A choice of a select.
#[derive(Debug, Clone)]
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

fn choices(options: &[(String, String)], current: &str) -> Vec<Choice> {
    options
        .iter()
        .map(|(value, label)| Choice {
            value: value.clone(),
            label: label.clone(),
            selected: value == current,
        })
        .collect()
}

/// The units `person` may see, in code order, as choices.
fn unit_choices(units: &[Unit], scope: &Scope, current: &str) -> Vec<Choice> {
    let options: Vec<(String, String)> = units
        .iter()
        .filter(|unit| scope.contains(unit.id))
        .map(|unit| (unit.code.clone(), format!("{} ({})", unit.name, unit.code)))
        .collect();
    choices(&options, current)
}

/// The filters of the list, as typed.
#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    #[serde(default)]
    unit: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    folded: String,
}

#[derive(Template)]
#[template(path = "incidents_list.html")]
struct ListPage {
    layout: Layout,
    units: Vec<Choice>,
    kinds: Vec<Choice>,
    states: Vec<Choice>,
    since: String,
    until: String,
    folded: bool,
    rows: Vec<Row>,
    limited: bool,
    can_file: bool,
}

/// `GET /incidents`.
async fn incidents_list(
    State(state): State<AppState>,
    person: Person,
    Query(query): Query<ListQuery>,
) -> Result<Response, ConsoleError> {
    let units = state.store.units_all().await?;
    let principal = person.principal();
    let code = Some(query.unit.trim()).filter(|code| !code.is_empty());
    let unit_ids = match services::unit_filter(&units, &principal, code) {
        Ok(ids) => ids,
        Err(Refusal::Forbidden(why)) => {
            return Err(person.forbid(&state, code.unwrap_or_default(), why).await)
        }
        Err(Refusal::NotFound(_)) => return Err(ConsoleError::NotFound),
        Err(other) => return Err(ConsoleError::Internal(other.into())),
    };
    let pick = |value: &str, valid: &[&str]| {
        Some(value.to_owned()).filter(|value| valid.contains(&value.as_str()))
    };
    let since = day_start(&query.since);
    let until = day_start(&query.until).map(|day| day + time::Duration::days(1));
    let folded = query.folded == "1";
    let filter = IncidentFilter {
        unit_ids,
        kind: pick(&query.kind, INCIDENT_KINDS),
        state: pick(&query.state, crate::store::INCIDENT_STATES),
        since,
        until,
        top_level: if folded { None } else { Some(true) },
        parent_id: None,
        limit: LIST_LIMIT,
    };
    let incidents = state.store.incidents_list(&filter).await?;
    let scope = Scope::of(&principal, &units);
    let mut kinds = vec![(String::new(), "Mọi loại".to_owned())];
    kinds.extend(
        INCIDENT_KINDS
            .iter()
            .map(|kind| ((*kind).to_owned(), kind_text(kind).to_owned())),
    );
    let mut states = vec![(String::new(), "Mọi trạng thái".to_owned())];
    states.extend(
        crate::store::INCIDENT_STATES
            .iter()
            .map(|value| ((*value).to_owned(), state_text(value).to_owned())),
    );
    let mut unit_list = vec![Choice {
        value: String::new(),
        label: "Mọi đơn vị trong phạm vi".into(),
        selected: query.unit.is_empty(),
    }];
    unit_list.extend(unit_choices(&units, &scope, query.unit.trim()));
    Ok(render(&ListPage {
        layout: Layout::new(&person, Section::Incidents, "Sự cố"),
        units: unit_list,
        kinds: choices(&kinds, &query.kind),
        states: choices(&states, &query.state),
        since: query.since.trim().to_owned(),
        until: query.until.trim().to_owned(),
        folded,
        limited: incidents.len() as i64 >= LIST_LIMIT,
        rows: {
            let now = crate::store::millis(time::OffsetDateTime::now_utc());
            let marker =
                crate::services::maintenance::Marker::load(&state.store, &units, now).await?;
            incidents
                .iter()
                .map(|incident| Row::marked(incident, &marker, now))
                .collect()
        },
        can_file: person.can_act(),
    }))
}

/// One label and value.
#[derive(Debug, Clone)]
struct Fact {
    label: &'static str,
    value: String,
}

/// One timeline entry as shown.
#[derive(Debug, Clone)]
struct Moment {
    at: String,
    actor: String,
    entry: &'static str,
    text: String,
}

/// An issued report as shown.
#[derive(Debug, Clone)]
struct ReportLink {
    form: &'static str,
    label: &'static str,
    issued: String,
}

#[derive(Template)]
#[template(path = "incidents_show.html")]
struct ShowPage {
    layout: Layout,
    id: String,
    state: &'static str,
    state_class: &'static str,
    facts: Vec<Fact>,
    description: String,
    evidence: Vec<String>,
    consequences: Vec<String>,
    timeline: Vec<Moment>,
    children: Vec<Row>,
    parent: Option<(String, String)>,
    reports: Vec<ReportLink>,
    closing_due: String,
    can_act: bool,
    can_acknowledge: bool,
    can_resolve: bool,
    can_close: bool,
    manual: bool,
    closing: Vec<Fact>,
    typed: Typed,
    error: String,
}

/// What the action forms hold: empty, or what was typed in the one whose submission was refused.
#[derive(Debug, Default)]
struct Typed {
    comment: String,
    resolve_resolution: String,
    resolve_restored_at: String,
    cause: String,
    close_resolution: String,
    lessons: String,
    close_restored_at: String,
    note: String,
}

impl Typed {
    /// The fields `verb`'s form sent, in that form only (the resolve and close forms both have a
    /// resolution).
    fn of(verb: &str, form: ActForm) -> Typed {
        match verb {
            "acknowledge" => Typed {
                comment: form.comment,
                ..Typed::default()
            },
            "resolve" => Typed {
                resolve_resolution: form.resolution,
                resolve_restored_at: form.restored_at,
                ..Typed::default()
            },
            "close" => Typed {
                cause: form.cause,
                close_resolution: form.resolution,
                lessons: form.lessons,
                close_restored_at: form.restored_at,
                ..Typed::default()
            },
            "notes" => Typed {
                note: form.text,
                ..Typed::default()
            },
            _ => Typed::default(),
        }
    }
}

/// A stored JSON list as lines; anything not a string is shown as JSON.
fn lines(text: &str) -> Vec<String> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                serde_json::Value::String(text) => text,
                other => other.to_string(),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// A duration as people read it: `2 giờ 5 phút`.
fn duration_text(ms: i64) -> String {
    let minutes = ms.max(0) / 60_000;
    let (days, hours, minutes) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    match (days, hours) {
        (0, 0) => format!("{minutes} phút"),
        (0, _) => format!("{hours} giờ {minutes} phút"),
        _ => format!("{days} ngày {hours} giờ {minutes} phút"),
    }
}

/// The incident `id` if `person` may see it: 404 when unknown, an audited 403 outside the scope.
async fn incident_for(
    state: &AppState,
    person: &Person,
    id: &str,
) -> Result<StoredIncident, ConsoleError> {
    let Some(incident) = state.store.incident(id).await? else {
        return Err(ConsoleError::NotFound);
    };
    let units = state.store.units_all().await?;
    if !Scope::of(&person.principal(), &units).contains(incident.unit_id) {
        return Err(person
            .forbid(state, id, "this person may not read incidents of that unit")
            .await);
    }
    Ok(incident)
}

/// `GET /incidents/{id}`.
async fn incidents_show(
    State(state): State<AppState>,
    person: Person,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    show_page(&state, &person, &id, Typed::default(), String::new()).await
}

/// The incident's page; with `error`, an action refused with the reason above the forms and what
/// was typed kept in its form (a closing report's cause and lessons are paragraphs), answering 422.
async fn show_page(
    state: &AppState,
    person: &Person,
    id: &str,
    typed: Typed,
    error: String,
) -> Result<Response, ConsoleError> {
    let id = id.to_owned();
    let incident = incident_for(state, person, &id).await?;
    let mut reports = Vec::new();
    for (form, label) in [
        (Form::Initial, "Báo cáo ban đầu (Biểu mẫu 03)"),
        (Form::Closing, "Báo cáo kết thúc (Biểu mẫu 04)"),
    ] {
        let issued = state.store.incident_reports(&incident.id, form).await?;
        let issued = issued
            .last()
            .map(|report| {
                format!(
                    "số {}, phiên bản {}, {}",
                    report.number,
                    report.version,
                    local_time(report.issued_at)
                )
            })
            .unwrap_or_else(|| "chưa lập; lập khi tải về".into());
        // The closing report exists only once the incident is closed.
        if form == Form::Closing && incident.state != "closed" {
            continue;
        }
        reports.push(ReportLink {
            form: form.as_str(),
            label,
            issued,
        });
    }
    let closing_issued = !state
        .store
        .incident_reports(&incident.id, Form::Closing)
        .await?
        .is_empty();
    let closing_due = incident
        .ended_at
        .filter(|_| !closing_issued)
        .map(|ended| local_time(state.incident_reports.closing_due(ended)))
        .unwrap_or_default();
    let timeline = state
        .store
        .incident_timeline(&id)
        .await?
        .into_iter()
        .map(|entry| Moment {
            at: local_time(entry.at),
            actor: entry.actor,
            entry: entry_text(&entry.entry),
            text: entry.text,
        })
        .collect();
    let children = state
        .store
        .incidents_list(&IncidentFilter {
            parent_id: Some(id.clone()),
            limit: 1000,
            ..IncidentFilter::default()
        })
        .await?
        .iter()
        .map(Row::of)
        .collect();
    let now_ms = crate::store::millis(time::OffsetDateTime::now_utc());
    let marker = crate::services::maintenance::Marker::load(
        &state.store,
        &state.store.units_all().await?,
        now_ms,
    )
    .await?;
    let mut facts = vec![
        Fact {
            label: "Đơn vị",
            value: format!("{} ({})", incident.unit_name, incident.unit_code),
        },
        Fact {
            label: "Loại",
            value: kind_text(&incident.kind).into(),
        },
        Fact {
            label: "Mức độ",
            value: severity_text(&incident.severity).into(),
        },
        Fact {
            label: "Nguồn",
            value: source_text(&incident.source).into(),
        },
        Fact {
            label: "Bắt đầu",
            value: local_time(incident.started_at),
        },
    ];
    if let Some(discovered) = incident.discovered_at {
        facts.push(Fact {
            label: "Phát hiện",
            value: local_time(discovered),
        });
    }
    facts.push(Fact {
        label: "Kết thúc",
        value: match incident.ended_at {
            Some(ended) => format!(
                "{} (kéo dài {})",
                local_time(ended),
                duration_text(ended - incident.started_at)
            ),
            None => "Chưa kết thúc".into(),
        },
    });
    if marker.marks(&incident, now_ms) {
        facts.push(Fact {
            label: "Bảo trì",
            value: "Trong lịch bảo trì: sự cố vẫn được ghi nhận nhưng không gửi thông báo trong thời gian bảo trì; \
                    nếu còn mở khi lịch kết thúc, sự cố sẽ được thông báo một lần."
                .into(),
        });
    }
    if let Some(host) = &incident.hostname {
        facts.push(Fact {
            label: "Máy",
            value: host.clone(),
        });
    }
    if let Some(target) = &incident.target {
        facts.push(Fact {
            label: "Đối tượng kiểm tra",
            value: target.clone(),
        });
    }
    if let Some(system) = &incident.system_code {
        facts.push(Fact {
            label: "Hệ thống",
            value: system.clone(),
        });
    }
    let affected = lines(&incident.systems_affected);
    if !affected.is_empty() {
        facts.push(Fact {
            label: "Hệ thống bị ảnh hưởng",
            value: affected.join(", "),
        });
    }
    if let (Some(at), Some(by)) = (incident.acknowledged_at, &incident.acknowledged_by) {
        facts.push(Fact {
            label: "Tiếp nhận",
            value: format!("{} bởi {by}", local_time(at)),
        });
    }
    if let (Some(at), Some(by)) = (incident.closed_at, &incident.closed_by) {
        facts.push(Fact {
            label: "Đóng",
            value: format!("{} bởi {by}", local_time(at)),
        });
    }
    let closing = [
        ("Nguyên nhân", &incident.cause),
        ("Cách khắc phục", &incident.resolution),
        ("Bài học kinh nghiệm", &incident.lessons),
    ]
    .into_iter()
    .filter(|(_, value)| !value.is_empty())
    .map(|(label, value)| Fact {
        label,
        value: value.clone(),
    })
    .collect();
    let manual = matches!(incident.source.as_str(), "manual" | "agent_manual");
    let resolvable = !matches!(incident.source.as_str(), "agent_detected");
    let can_act = person.can_act();
    let title = format!(
        "{} {}",
        incident.number.as_deref().unwrap_or("Sự cố"),
        incident.title
    );
    let refused = !error.is_empty();
    Ok(render_form(
        &ShowPage {
            layout: Layout::new(person, Section::Incidents, title),
            state: state_text(&incident.state),
            state_class: state_class(&incident.state),
            can_act,
            can_acknowledge: can_act && incident.state == "open",
            can_resolve: can_act
                && resolvable
                && matches!(incident.state.as_str(), "open" | "acknowledged"),
            can_close: can_act && incident.state == "resolved",
            manual,
            description: incident.description.clone(),
            evidence: lines(&incident.evidence),
            consequences: lines(&incident.consequences),
            parent: incident.parent_id.clone().map(|parent| {
                (
                    parent,
                    incident
                        .parent_number
                        .clone()
                        .unwrap_or_else(|| "sự cố gốc".into()),
                )
            }),
            id: incident.id,
            facts,
            timeline,
            children,
            reports,
            closing_due,
            closing,
            typed,
            error,
        },
        refused,
    ))
}

/// The fields of every action form (each form sends the ones it has).
#[derive(Debug, Clone, Default, Deserialize)]
struct ActForm {
    #[serde(default)]
    text: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    cause: String,
    #[serde(default)]
    resolution: String,
    #[serde(default)]
    lessons: String,
    #[serde(default)]
    restored_at: String,
}

/// Why an action was refused when the incident has moved on (someone else acted first), shown
/// above the incident's page as it now stands.
const WRONG_STATE: &str = "Sự cố không ở trạng thái cho phép thao tác này (có thể người khác vừa xử lý); trang dưới đây là trạng thái hiện tại.";

/// A refusal of the incidents service as a page; a forbidden one is audited.
async fn refused(
    state: &AppState,
    person: &Person,
    target: &str,
    refusal: Refusal,
) -> ConsoleError {
    match refusal {
        Refusal::NotFound(_) => ConsoleError::NotFound,
        Refusal::Forbidden(why) => person.forbid(state, target, why).await,
        Refusal::Invalid { vi, .. } => ConsoleError::BadRequest(vi),
        Refusal::WrongState(why) => {
            tracing::debug!(why, "console action in the wrong state");
            ConsoleError::BadRequest(
                "Sự cố không ở trạng thái cho phép thao tác này (có thể người khác vừa xử lý). Xin tải lại trang sự cố.".into(),
            )
        }
        Refusal::Internal(err) => ConsoleError::Internal(err),
    }
}

/// `POST /incidents/{id}/acknowledge|notes|resolve|close`.
async fn incidents_act(
    State(state): State<AppState>,
    Path((id, verb)): Path<(String, String)>,
    posted: Posted<ActForm>,
) -> Result<Response, ConsoleError> {
    let Posted { person, form } = posted;
    // A refused action shows the incident again with the reason and what was typed.
    let again = |why: String| show_page(&state, &person, &id, Typed::of(&verb, form.clone()), why);
    let restored_at = match local_input(&form.restored_at, "Thời điểm khôi phục") {
        Ok(at) => at,
        Err(ConsoleError::BadRequest(why)) => return again(why).await,
        Err(err) => return Err(err),
    };
    let request = match verb.as_str() {
        "acknowledge" => services::Request::Acknowledge,
        "notes" => services::Request::Note {
            text: form.text.clone(),
        },
        "resolve" => services::Request::Resolve {
            resolution: form.resolution.clone(),
            restored_at,
        },
        "close" => services::Request::Close {
            cause: form.cause.clone(),
            resolution: form.resolution.clone(),
            lessons: form.lessons.clone(),
            restored_at,
        },
        _ => return Err(ConsoleError::NotFound),
    };
    let principal = person.principal();
    let now = OffsetDateTime::now_utc();
    let acted = match services::act(
        &state.store,
        &principal,
        &id,
        request,
        person.address.clone(),
        now,
    )
    .await
    {
        Ok(acted) => acted,
        Err(Refusal::Invalid { vi, .. }) => return again(vi).await,
        Err(Refusal::WrongState(why)) => {
            tracing::debug!(why, "console action in the wrong state");
            return again(WRONG_STATE.into()).await;
        }
        Err(refusal) => return Err(refused(&state, &person, &id, refusal).await),
    };
    // Acknowledging takes a comment: it is the incident's next note.
    if verb == "acknowledge" && !form.comment.trim().is_empty() {
        let note = services::Request::Note {
            text: form.comment.clone(),
        };
        if let Err(refusal) = services::act(
            &state.store,
            &principal,
            &id,
            note,
            person.address.clone(),
            now,
        )
        .await
        {
            return Err(refused(&state, &person, &id, refusal).await);
        }
    }
    if acted.closed {
        let authority = Authority::of(state.organisation.current(now));
        let issuer = Issuer {
            store: &state.store,
            scheme: &state.incident_reports,
            authority: &authority,
        };
        issuer.at_closing(&acted.incident, now).await?;
    }
    Ok(see_other(&format!("/incidents/{id}")))
}

/// Query of the report download.
#[derive(Debug, Deserialize)]
struct ReportQuery {
    #[serde(default)]
    form: String,
}

/// `GET /incidents/{id}/report?form=initial|closing`: the same DOCX as
/// `GET /api/v1/incidents/{id}/report?format=docx`, for a person logged in to the console.
async fn incidents_report(
    State(state): State<AppState>,
    person: Person,
    Path(id): Path<String>,
    Query(query): Query<ReportQuery>,
) -> Result<Response, ConsoleError> {
    let form = Form::parse(&query.form).unwrap_or(Form::Initial);
    let incident = incident_for(&state, &person, &id).await?;
    let now = OffsetDateTime::now_utc();
    let report = {
        let authority = Authority::of(state.organisation.current(now));
        let issuer = Issuer {
            store: &state.store,
            scheme: &state.incident_reports,
            authority: &authority,
        };
        issuer.to_read(&incident, form, None, now).await?
    };
    let report = match report {
        Ok(report) => report,
        Err(Unreadable::NotClosed(_)) => {
            return Err(ConsoleError::BadRequest(
                "Báo cáo kết thúc được lập khi sự cố được đóng.".into(),
            ))
        }
        Err(Unreadable::NoSuchVersion) => return Err(ConsoleError::NotFound),
    };
    let (content_type, bytes) = incident::render(&report.facts, "docx")?;
    let mut response = ([(CONTENT_TYPE, content_type)], bytes).into_response();
    let name = format!(
        "attachment; filename=\"{}\"",
        file_name(&incident, form, report.version)
    );
    if let Ok(value) = HeaderValue::from_str(&name) {
        response.headers_mut().insert(CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

#[derive(Template)]
#[template(path = "incidents_new.html")]
struct NewPage {
    layout: Layout,
    units: Vec<Choice>,
    severities: Vec<Choice>,
    discoveries: Vec<Choice>,
    form: NewForm,
    error: String,
}

/// The filing form, filled with `form` (no unit: the person's own); with `error`, a refused
/// submission comes back with what was typed (an officer may have written a long description)
/// and answers 422.
async fn new_page(
    state: &AppState,
    person: &Person,
    mut form: NewForm,
    error: String,
) -> Result<Response, ConsoleError> {
    let units = state.store.units_all().await?;
    if form.unit.is_empty() {
        if let Some(own) = units.iter().find(|unit| Some(unit.id) == person.unit_id) {
            form.unit.clone_from(&own.code);
        }
    }
    let scope = Scope::of(&person.principal(), &units);
    let severities: Vec<(String, String)> = SEVERITIES
        .iter()
        .map(|value| ((*value).to_owned(), severity_text(value).to_owned()))
        .collect();
    let discoveries: Vec<(String, String)> = DISCOVERY
        .iter()
        .map(|(key, label)| ((*key).to_owned(), (*label).to_owned()))
        .collect();
    let refused = !error.is_empty();
    Ok(render_form(
        &NewPage {
            layout: Layout::new(person, Section::Incidents, "Báo sự cố an toàn thông tin"),
            units: unit_choices(&units, &scope, &form.unit),
            severities: choices(&severities, &form.severity),
            discoveries: choices(&discoveries, &form.discovery),
            form,
            error,
        },
        refused,
    ))
}

/// `GET /incidents/new`: the form to file a security incident.
async fn incidents_new(
    State(state): State<AppState>,
    person: Person,
) -> Result<Response, ConsoleError> {
    if !person.can_act() {
        return Err(person
            .forbid(
                &state,
                "/incidents/new",
                "this person may read incidents but not file them",
            )
            .await);
    }
    let form = NewForm {
        severity: "medium".into(),
        discovery: "officer".into(),
        ..NewForm::default()
    };
    new_page(&state, &person, form, String::new()).await
}

/// The form of `POST /incidents/new`, the fields of `POST /api/v1/incidents`; kept as typed when
/// a submission is refused.
#[derive(Debug, Clone, Default, Deserialize)]
struct NewForm {
    unit: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    started_at: String,
    #[serde(default)]
    discovered_at: String,
    #[serde(default)]
    systems_affected: String,
    #[serde(default)]
    system: String,
    #[serde(default)]
    discovery: String,
}

/// `POST /incidents/new`: files a security incident; then its page.
async fn incidents_create(
    State(state): State<AppState>,
    posted: Posted<NewForm>,
) -> Result<Response, ConsoleError> {
    let Posted { person, form } = posted;
    let times = local_input(&form.started_at, "Thời điểm bắt đầu").and_then(|started_at| {
        Ok((
            started_at,
            local_input(&form.discovered_at, "Thời điểm phát hiện")?,
        ))
    });
    let (started_at, discovered_at) = match times {
        Ok(times) => times,
        Err(ConsoleError::BadRequest(why)) => return new_page(&state, &person, form, why).await,
        Err(err) => return Err(err),
    };
    let filing = Filing {
        started_at,
        discovered_at,
        unit: form.unit.clone(),
        kind: "security".into(),
        severity: form.severity.clone(),
        title: form.title.clone(),
        description: form.description.clone(),
        systems_affected: form
            .systems_affected
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(str::to_owned)
            .collect(),
        system: Some(form.system.trim().to_owned()).filter(|code| !code.is_empty()),
        discovery: Some(form.discovery.clone()).filter(|value| !value.is_empty()),
    };
    match services::file(
        &state.store,
        &person.principal(),
        filing,
        person.address.clone(),
        OffsetDateTime::now_utc(),
    )
    .await
    {
        Ok(incident) => Ok(see_other(&format!("/incidents/{}", incident.id))),
        Err(Refusal::Invalid { vi, .. }) => new_page(&state, &person, form, vi).await,
        Err(Refusal::NotFound(_)) => {
            let why = "Không tìm thấy đơn vị đã chọn; xin chọn lại.".to_owned();
            new_page(&state, &person, form, why).await
        }
        Err(refusal) => Err(refused(&state, &person, &form.unit, refusal).await),
    }
}
