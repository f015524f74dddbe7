//! Đơn vị và máy (`/units`): the unit tree of a person's scope (ended units marked with the unit
//! answering for them), the agents with their last contact (the evaluation's silence rule),
//! version and host snapshot (the latest heartbeat's CPU, memory and disks), open incidents per
//! unit, and a form that creates an enrollment token (`services::enrollment::create`, the function
//! behind `cntt-collector enroll-token create`, audited) for admins and officers of the unit,
//! answered once with a ready install command that keeps the token out of any command line.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::header::HOST;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use cntt_common::wire::HostSnapshot;
use serde::Deserialize;
use time::OffsetDateTime;

use super::incidents::local_time;
use super::{render, ConsoleError, Layout, Person, Posted, Section};
use crate::domain::auth::Scope;
use crate::http::api::AppState;
use crate::metrics::Silence;
use crate::services::enrollment;
use crate::store::{millis, IncidentFilter, Unit};

/// The units page's routes.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/units", get(units_list))
        .route("/units/enroll-token", post(units_enroll_token))
}

/// Most agents listed at once (narrow by unit for the rest).
const AGENTS_SHOWN: usize = 300;

/// Most uses and days of validity a token made in the console may have.
const MAX_USES: u32 = 100;
const MAX_DAYS: u64 = 30;

/// Deepest indentation class of the tree (`depth0`…`depth4`).
const MAX_DEPTH: usize = 4;

/// A unit as a row of the tree.
#[derive(Debug, Clone)]
struct UnitRow {
    code: String,
    name: String,
    kind: &'static str,
    depth: usize,
    ended: Option<String>,
    agents: usize,
    reporting: usize,
    open: usize,
}

/// An agent as a row.
#[derive(Debug, Clone)]
struct AgentRow {
    hostname: String,
    unit: String,
    version: String,
    last_contact: String,
    reporting: bool,
    cpu: String,
    memory: String,
    disks: Vec<String>,
    os: String,
}

/// A unit one may choose for a token.
#[derive(Debug, Clone)]
struct Choice {
    code: String,
    label: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "units.html")]
struct UnitsPage {
    layout: Layout,
    units: Vec<UnitRow>,
    agents: Vec<AgentRow>,
    more_agents: usize,
    filter: String,
    can_enroll: bool,
    token_units: Vec<Choice>,
    max_uses: u32,
    max_days: u64,
}

/// How a unit kind reads.
fn kind_text(kind: &str) -> &'static str {
    match kind {
        "province" => "Tỉnh",
        "department" => "Sở, ban, ngành",
        "district" => "Huyện",
        "commune" => "Xã",
        _ => "Khác",
    }
}

/// Bytes as people read them: `7,6 GB`.
fn bytes_text(bytes: u64) -> String {
    let gb = bytes as f64 / 1e9;
    if gb >= 1.0 {
        format!("{gb:.1} GB").replace('.', ",")
    } else {
        format!("{:.0} MB", bytes as f64 / 1e6)
    }
}

/// An ISO date as `dd/mm/yyyy`.
fn date_text(iso: &str) -> String {
    let parts: Vec<&str> = iso.split('-').collect();
    match parts.as_slice() {
        [year, month, day] => format!("{day}/{month}/{year}"),
        _ => iso.to_owned(),
    }
}

/// The units of `scope` in tree order with their depth, roots first.
fn tree<'a>(units: &'a [Unit], scope: &Scope) -> Vec<(&'a Unit, usize)> {
    let visible: HashSet<i64> = units
        .iter()
        .filter(|unit| scope.contains(unit.id))
        .map(|unit| unit.id)
        .collect();
    let mut children: HashMap<i64, Vec<&Unit>> = HashMap::new();
    let mut roots = Vec::new();
    for unit in units.iter().filter(|unit| visible.contains(&unit.id)) {
        match unit.parent_id.filter(|parent| visible.contains(parent)) {
            Some(parent) => children.entry(parent).or_default().push(unit),
            None => roots.push(unit),
        }
    }
    let mut out = Vec::new();
    let mut stack: Vec<(&Unit, usize)> = roots.into_iter().rev().map(|unit| (unit, 0)).collect();
    let mut seen = HashSet::new();
    while let Some((unit, depth)) = stack.pop() {
        if !seen.insert(unit.id) {
            continue;
        }
        out.push((unit, depth));
        if let Some(kids) = children.get(&unit.id) {
            stack.extend(kids.iter().rev().map(|kid| (*kid, depth + 1)));
        }
    }
    out
}

/// The filter of the agents list.
#[derive(Debug, Default, Deserialize)]
struct UnitsQuery {
    #[serde(default)]
    unit: String,
}

/// `GET /units`.
async fn units_list(
    State(state): State<AppState>,
    person: Person,
    Query(query): Query<UnitsQuery>,
) -> Result<Response, ConsoleError> {
    let now = OffsetDateTime::now_utc();
    let now_ms = millis(now);
    let today = now
        .to_offset(crate::domain::periods::VIETNAM)
        .date()
        .to_string();
    let units = state.store.units_all().await?;
    let principal = person.principal();
    let scope = Scope::of(&principal, &units);
    let filter = query.unit.trim();
    let shown_ids = match crate::services::incidents::unit_filter(
        &units,
        &principal,
        Some(filter).filter(|code| !code.is_empty()),
    ) {
        Ok(ids) => ids,
        Err(crate::services::incidents::Refusal::Forbidden(why)) => {
            return Err(person.forbid(&state, filter, why).await)
        }
        Err(_) => return Err(ConsoleError::NotFound),
    };
    let silence = Silence::of(&state.incidents);
    let agents: Vec<_> = state
        .store
        .agents_list(shown_ids.as_deref())
        .await?
        .into_iter()
        .filter(|agent| agent.revoked_at.is_none())
        .collect();
    let all_agents: Vec<_> = match &shown_ids {
        None => agents.clone(),
        Some(_) => state
            .store
            .agents_list(None)
            .await?
            .into_iter()
            .filter(|agent| agent.revoked_at.is_none() && scope.contains(agent.unit_id))
            .collect(),
    };
    let mut counts: HashMap<i64, (usize, usize)> = HashMap::new();
    for agent in &all_agents {
        let entry = counts.entry(agent.unit_id).or_default();
        entry.0 += 1;
        if silence.reporting(agent, now_ms) {
            entry.1 += 1;
        }
    }
    let mut open: HashMap<i64, usize> = HashMap::new();
    for incident_state in ["open", "acknowledged"] {
        for incident in state
            .store
            .incidents_list(&IncidentFilter {
                state: Some(incident_state.into()),
                top_level: Some(true),
                limit: 10_000,
                ..IncidentFilter::default()
            })
            .await?
        {
            *open.entry(incident.unit_id).or_default() += 1;
        }
    }
    let mut rows = Vec::new();
    for (unit, depth) in tree(&units, &scope) {
        let ended = match state.store.unit_ended(unit, &today).await? {
            Some(ended) => Some(match ended.successor {
                Some(next) => format!(
                    "Đã kết thúc ngày {}; {} ({}) tiếp nhận",
                    date_text(&ended.valid_to),
                    next.name,
                    next.code
                ),
                None => format!("Đã kết thúc ngày {}", date_text(&ended.valid_to)),
            }),
            None => None,
        };
        let (n_agents, n_reporting) = counts.get(&unit.id).copied().unwrap_or_default();
        rows.push(UnitRow {
            code: unit.code.clone(),
            name: unit.name.clone(),
            kind: kind_text(&unit.kind),
            depth: depth.min(MAX_DEPTH),
            ended,
            agents: n_agents,
            reporting: n_reporting,
            open: open.get(&unit.id).copied().unwrap_or(0),
        });
    }
    let more_agents = agents.len().saturating_sub(AGENTS_SHOWN);
    let agent_rows = agents
        .iter()
        .take(AGENTS_SHOWN)
        .map(|agent| {
            let host = agent
                .host_snapshot
                .as_deref()
                .and_then(|text| serde_json::from_str::<HostSnapshot>(text).ok());
            let (cpu, memory, disks, os) = match &host {
                Some(host) => (
                    format!("{:.0}%", host.cpu_usage_percent),
                    format!(
                        "{} / {}",
                        bytes_text(host.memory_used_bytes),
                        bytes_text(host.memory_total_bytes)
                    ),
                    host.disks
                        .iter()
                        .map(|disk| {
                            format!(
                                "{}: còn {} / {}",
                                disk.mount_point,
                                bytes_text(disk.available_bytes),
                                bytes_text(disk.total_bytes)
                            )
                        })
                        .collect(),
                    format!("{} {}", host.os_name, host.os_version),
                ),
                None => (
                    "không có số liệu".to_owned(),
                    "không có số liệu".to_owned(),
                    Vec::new(),
                    String::new(),
                ),
            };
            AgentRow {
                hostname: agent.hostname.clone(),
                unit: agent.unit_name.clone(),
                version: if agent.agent_version.is_empty() {
                    "—".into()
                } else {
                    agent.agent_version.clone()
                },
                last_contact: agent
                    .last_seen_at
                    .map(local_time)
                    .unwrap_or_else(|| "chưa từng liên lạc".into()),
                reporting: silence.reporting(agent, now_ms),
                cpu,
                memory,
                disks,
                os,
            }
        })
        .collect();
    let can_enroll = person.can_act();
    let own = units
        .iter()
        .find(|unit| Some(unit.id) == person.unit_id)
        .map(|unit| unit.code.clone())
        .unwrap_or_default();
    let token_units = units
        .iter()
        .filter(|unit| scope.contains(unit.id) && unit.valid_on(&today))
        .map(|unit| Choice {
            code: unit.code.clone(),
            label: format!("{} ({})", unit.name, unit.code),
            selected: unit.code == own,
        })
        .collect();
    Ok(render(&UnitsPage {
        layout: Layout::new(&person, Section::Units, "Đơn vị và máy"),
        units: rows,
        agents: agent_rows,
        more_agents,
        filter: filter.to_owned(),
        can_enroll,
        token_units,
        max_uses: MAX_USES,
        max_days: MAX_DAYS,
    }))
}

/// The form creating an enrollment token.
#[derive(Debug, Deserialize)]
struct TokenForm {
    unit: String,
    #[serde(default)]
    uses: String,
    #[serde(default)]
    days: String,
}

#[derive(Template)]
#[template(path = "units_token.html")]
struct TokenPage {
    layout: Layout,
    unit: String,
    token: String,
    uses: u32,
    expires: String,
    linux: String,
    linux_env: String,
}

/// `POST /units/enroll-token`: creates a token for a unit in scope (admins and officers), shown
/// once with the install command.
async fn units_enroll_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    posted: Posted<TokenForm>,
) -> Result<Response, ConsoleError> {
    let Posted { person, form } = posted;
    let code = form.unit.trim();
    if !person.can_act() {
        return Err(person
            .forbid(&state, code, "this person may not create enrollment tokens")
            .await);
    }
    let units = state.store.units_all().await?;
    let Some(unit) = units.iter().find(|unit| unit.code == code) else {
        return Err(ConsoleError::NotFound);
    };
    if !Scope::of(&person.principal(), &units).contains(unit.id) {
        return Err(person
            .forbid(
                &state,
                code,
                "this person may not create enrollment tokens for that unit",
            )
            .await);
    }
    let now = OffsetDateTime::now_utc();
    let today = now
        .to_offset(crate::domain::periods::VIETNAM)
        .date()
        .to_string();
    if let Some(ended) = state.store.unit_ended(unit, &today).await? {
        return Err(ConsoleError::BadRequest(match ended.successor {
            Some(next) => format!(
                "Đơn vị {} đã kết thúc ngày {}; xin tạo mã cho đơn vị tiếp nhận {} ({}).",
                unit.name,
                date_text(&ended.valid_to),
                next.name,
                next.code
            ),
            None => format!(
                "Đơn vị {} đã kết thúc ngày {}.",
                unit.name,
                date_text(&ended.valid_to)
            ),
        }));
    }
    let uses: u32 = form.uses.trim().parse().unwrap_or(0);
    let days: u64 = form.days.trim().parse().unwrap_or(0);
    if !(1..=MAX_USES).contains(&uses) || !(1..=MAX_DAYS).contains(&days) {
        return Err(ConsoleError::BadRequest(format!(
            "Số lần dùng từ 1 đến {MAX_USES}, số ngày hiệu lực từ 1 đến {MAX_DAYS}."
        )));
    }
    let created = enrollment::create(
        &state.store,
        unit,
        uses,
        Duration::from_secs(days * 86_400),
        &format!("console: {}", person.full_name),
        &person.principal().actor(),
        person.address.clone(),
        now,
    )
    .await?;
    let host = headers
        .get(HOST)
        .and_then(|host| host.to_str().ok())
        .filter(|host| {
            host.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        })
        .unwrap_or("MAY-CHU-THU-THAP:8443");
    let server = format!("https://{host}");
    Ok(render(&TokenPage {
        layout: Layout::new(&person, Section::Units, "Mã đăng ký máy"),
        unit: format!("{} ({})", unit.name, unit.code),
        token: created.secret.expose().to_owned(),
        uses,
        expires: local_time(millis(created.expires_at)),
        linux: format!("sudo -u cntt-agent cntt-agent enroll --server {server} --ca ca.pem"),
        linux_env: format!(
            "read -rs CNTT_ENROLL_TOKEN && export CNTT_ENROLL_TOKEN\nsudo --preserve-env=CNTT_ENROLL_TOKEN -u cntt-agent cntt-agent enroll --server {server} --ca ca.pem\nunset CNTT_ENROLL_TOKEN"
        ),
    }))
}
