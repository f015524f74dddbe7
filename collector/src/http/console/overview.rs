//! Tổng quan (`/`): what a person should see first, in their scope: open incidents (top level:
//! those folded under another are explained by it), silent units (agents not heard from by the
//! evaluation's silence rule, `metrics::Silence`), notices delivered today, and reports due soon
//! with each unit's standing (`services::reports::standings`), and maintenance windows going on or
//! starting within the week (incidents they hold are marked). Leadership lands here.
//!
//! A figure nobody measured says "không có số liệu", never 0.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use time::OffsetDateTime;

use super::incidents::{local_time, Row};
use super::{render, ConsoleError, Layout, Person, Section};
use crate::domain::auth::Scope;
use crate::http::api::AppState;
use crate::metrics::Silence;
use crate::services::reports::{standings, Standing};
use crate::store::{millis, IncidentFilter, StoredIncident};

/// The overview's route.
pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/", get(overview_show))
}

/// Most open incidents listed (the count is exact).
const OPEN_SHOWN: usize = 20;

/// Reports whose due date is at most this many days away count as due soon.
const DUE_SOON_DAYS: i64 = 30;

/// A unit with silent agents.
#[derive(Debug, Clone)]
struct SilentUnit {
    name: String,
    silent: usize,
    agents: usize,
    last_heard: String,
}

/// A notice delivered today.
#[derive(Debug, Clone)]
struct SentRow {
    at: String,
    kind: &'static str,
    subject: String,
    to: String,
    incident: Option<(String, String)>,
}

/// A unit's standing on a period due soon.
#[derive(Debug, Clone)]
struct StandingRow {
    unit: String,
    standing: &'static str,
    class: &'static str,
}

/// A period due soon.
#[derive(Debug, Clone)]
struct DuePeriod {
    name: String,
    due: String,
    days_left: i64,
    tally: Vec<(&'static str, usize)>,
    rows: Vec<StandingRow>,
    more: usize,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    layout: Layout,
    n_open: usize,
    open: Vec<Row>,
    /// `None`: no agent in scope, so silence is not measured.
    n_silent_units: Option<usize>,
    silent: Vec<SilentUnit>,
    n_agents: usize,
    sent: Vec<SentRow>,
    due: Vec<DuePeriod>,
    /// Maintenance windows going on, and those starting within a week.
    windows: Vec<super::maintenance::WindowRow>,
    n_windows_active: usize,
}

/// How a notice's kind reads.
fn notice_kind(kind: &str) -> &'static str {
    match kind {
        "opening" => "Thông báo sự cố",
        "escalation" => "Báo cấp trên",
        "reminder" => "Nhắc lại",
        "resolution" => "Đã khắc phục",
        "closing" => "Đóng sự cố",
        "closing_report_reminder" => "Nhắc báo cáo kết thúc",
        "maintenance_reminder" => "Nhắc lịch bảo trì",
        "report_reminder" => "Nhắc báo cáo định kỳ",
        "report_overdue" => "Báo cáo định kỳ quá hạn",
        "digest" => "Tổng hợp hằng ngày",
        "test" => "Thử",
        _ => "Thông báo",
    }
}

fn standing_class(standing: Standing) -> &'static str {
    match standing {
        Standing::OnTime => "good",
        Standing::Late | Standing::Pending => "warn",
        Standing::Missing => "bad",
        Standing::NotRequired => "muted",
    }
}

/// `GET /`.
async fn overview_show(
    State(state): State<AppState>,
    person: Person,
) -> Result<Response, ConsoleError> {
    let now = OffsetDateTime::now_utc();
    let now_ms = millis(now);
    let units = state.store.units_all().await?;
    let scope = Scope::of(&person.principal(), &units);
    let unit_ids: Option<Vec<i64>> = match &scope {
        Scope::All => None,
        Scope::Units(ids) => {
            let mut ids: Vec<i64> = ids.iter().copied().collect();
            ids.sort_unstable();
            Some(ids)
        }
    };

    // Open incidents people are told about: top level, open or acknowledged.
    let mut open: Vec<StoredIncident> = Vec::new();
    for incident_state in ["open", "acknowledged"] {
        open.extend(
            state
                .store
                .incidents_list(&IncidentFilter {
                    unit_ids: unit_ids.clone(),
                    state: Some(incident_state.into()),
                    top_level: Some(true),
                    limit: 1000,
                    ..IncidentFilter::default()
                })
                .await?,
        );
    }
    open.sort_by_key(|incident| std::cmp::Reverse(incident.started_at));
    let n_open = open.len();

    // Silent units: the evaluation's rule, per agent in service.
    let silence = Silence::of(&state.incidents);
    let agents = state.store.agents_list(unit_ids.as_deref()).await?;
    let agents: Vec<_> = agents
        .into_iter()
        .filter(|agent| agent.revoked_at.is_none())
        .collect();
    let mut by_unit: BTreeMap<(String, i64), (usize, usize, Option<i64>)> = BTreeMap::new();
    for agent in &agents {
        let entry = by_unit
            .entry((agent.unit_name.clone(), agent.unit_id))
            .or_insert((0, 0, None));
        entry.1 += 1;
        if !silence.reporting(agent, now_ms) {
            entry.0 += 1;
        }
        entry.2 = entry.2.max(agent.last_seen_at);
    }
    let silent: Vec<SilentUnit> = by_unit
        .into_iter()
        .filter(|(_, (silent, _, _))| *silent > 0)
        .map(|((name, _), (silent, total, last))| SilentUnit {
            name,
            silent,
            agents: total,
            last_heard: last
                .map(local_time)
                .unwrap_or_else(|| "chưa từng liên lạc".into()),
        })
        .collect();

    // Notices delivered today (Vietnam's day), of incidents in scope; admins see every notice.
    let today = now.to_offset(crate::domain::periods::VIETNAM).date();
    let day_start = millis(
        today
            .midnight()
            .assume_offset(crate::domain::periods::VIETNAM),
    );
    let sent = state
        .store
        .notices_sent_between(day_start, now_ms + 1, 200)
        .await?
        .into_iter()
        .filter(|notice| match notice.unit_id {
            Some(unit_id) => scope.contains(unit_id),
            None => person.is_admin(),
        })
        .map(|notice| SentRow {
            at: local_time(notice.sent_at),
            kind: notice_kind(&notice.kind),
            subject: notice.subject,
            to: notice.address,
            incident: notice
                .incident_id
                .map(|id| (id, notice.incident_number.unwrap_or_default())),
        })
        .collect();

    // Reports due soon, with the standing of the units in scope.
    let overrides = state.store.period_overrides().await?;
    let settings = &state.reports;
    let mut due = Vec::new();
    for scheme in settings.required_schemes() {
        for period in scheme.open_periods(today, 0, &settings.holidays, &overrides) {
            let days_left = (period.due - today).whole_days();
            if !(0..=DUE_SOON_DAYS).contains(&days_left) {
                continue;
            }
            let reports = state
                .store
                .reports_of_period(&period.scheme, &period.label)
                .await?;
            let rows: Vec<_> = standings(&units, &reports, settings, &period, now_ms)
                .into_iter()
                .filter(|row| scope.contains(row.unit_id))
                .filter(|row| row.standing != Standing::NotRequired)
                .collect();
            let tally = Standing::ALL
                .iter()
                .filter(|standing| **standing != Standing::NotRequired)
                .map(|standing| {
                    (
                        standing.vi(),
                        rows.iter().filter(|row| row.standing == *standing).count(),
                    )
                })
                .collect();
            let shown = 15;
            due.push(DuePeriod {
                name: period.label_vi.clone(),
                due: format!(
                    "{:02}/{:02}/{}",
                    period.due.day(),
                    u8::from(period.due.month()),
                    period.due.year()
                ),
                days_left,
                tally,
                more: rows.len().saturating_sub(shown),
                rows: rows
                    .iter()
                    .take(shown)
                    .map(|row| StandingRow {
                        unit: row.unit_name.clone(),
                        standing: row.standing.vi(),
                        class: standing_class(row.standing),
                    })
                    .collect(),
            });
        }
    }

    // Maintenance going on or within the week: what will not be announced.
    let marker = crate::services::maintenance::Marker::load(&state.store, &units, now_ms).await?;
    let windows: Vec<super::maintenance::WindowRow> =
        crate::services::maintenance::visible(&state.store, &person.principal())
            .await?
            .iter()
            .filter(
                |window| match crate::services::maintenance::standing(window, now_ms) {
                    ("active", _) => true,
                    ("planned", Some((start, _))) => start - now_ms <= 7 * 86_400_000,
                    _ => false,
                },
            )
            .map(|window| super::maintenance::WindowRow::of(window, now_ms))
            .collect();
    let n_windows_active = windows.iter().filter(|row| row.class == "warn").count();

    Ok(render(&OverviewPage {
        layout: Layout::new(&person, Section::Overview, "Tổng quan"),
        n_open,
        open: open
            .iter()
            .take(OPEN_SHOWN)
            .map(|incident| Row::marked(incident, &marker, now_ms))
            .collect(),
        n_silent_units: (!agents.is_empty()).then_some(silent.len()),
        n_agents: agents.len(),
        silent,
        sent,
        due,
        windows,
        n_windows_active,
    }))
}
