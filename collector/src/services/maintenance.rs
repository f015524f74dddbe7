//! Planning and cancelling maintenance windows (issue 17), shared by the API
//! (`http/api/maintenance.rs`), the CLI (`cntt-collector maintenance`) and the console
//! (`http/console/maintenance.rs`), so the three doors check and audit the same way. The rules of
//! what a window does are in `domain::maintenance`.
//!
//! Who may plan: administrators anywhere; IT officers for their own unit's subtree (a unit, its
//! agents, targets on them); systems by administrators only. Viewers and leadership read.
//! Every plan and cancellation is audited as `maintenance.create` / `maintenance.cancel`.

use std::collections::HashMap;
use std::time::Duration;

use time::OffsetDateTime;

use super::incidents::{text_field, Refusal};
use crate::config::MaintenanceConfig;
use crate::domain::auth::{Principal, Role, Scope as AuthScope};
use crate::domain::maintenance::{self, parse_local, Repeat, Scope};
use crate::store::{millis, NewAuditEntry, NewWindow, Store, StoredWindow, Unit};

/// A window as asked for, before checks: the same fields on every door.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowRequest {
    /// A unit's code: the unit (and its subtree unless `subtree` is false), or the unit whose
    /// agents' `target` is meant.
    #[serde(default)]
    pub unit: Option<String>,
    /// Whether the units under `unit` are covered too (default true).
    #[serde(default)]
    pub subtree: Option<bool>,
    /// One agent's id.
    #[serde(default)]
    pub agent: Option<String>,
    /// A target's name.
    #[serde(default)]
    pub target: Option<String>,
    /// A registered system's code.
    #[serde(default)]
    pub system: Option<String>,
    /// First start, Vietnam time: `2026-12-12 22:00`.
    pub start: String,
    /// Length of each occurrence: `4h`, `90m`.
    pub duration: String,
    /// `once` (default), `daily`, `weekly`.
    #[serde(default)]
    pub repeat: Option<String>,
    /// Last day an occurrence may start, Vietnam time: `2027-06-30`.
    #[serde(default)]
    pub until: Option<String>,
    /// Why.
    pub reason: String,
    /// Where the reminder goes (an email address).
    #[serde(default)]
    pub remind_to: Option<String>,
}

fn invalid(en: impl Into<String>, vi: impl Into<String>) -> Refusal {
    Refusal::Invalid {
        code: "invalid_field",
        en: en.into(),
        vi: vi.into(),
    }
}

/// A field's text, trimmed, when it holds any.
fn given(value: &Option<String>) -> Option<&str> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty())
}

fn unit_by_code<'a>(units: &'a [Unit], code: &str) -> Result<&'a Unit, Refusal> {
    units
        .iter()
        .find(|unit| unit.code == code)
        .ok_or_else(|| Refusal::NotFound(format!("no unit with code {code:?}")))
}

/// Checks a request against the rules and the principal's scope, without storing it.
///
/// # Errors
///
/// A field that does not make sense, or a scope the principal may not plan for.
pub async fn check(
    store: &Store,
    principal: &Principal,
    request: &WindowRequest,
    settings: &MaintenanceConfig,
    now: OffsetDateTime,
) -> Result<NewWindow, Refusal> {
    if !principal.role.can_act() {
        return Err(Refusal::Forbidden(
            "only administrators and IT officers plan maintenance",
        ));
    }
    let units = store.units_all().await?;
    let scope_of = AuthScope::of(principal, &units);
    let named = [
        given(&request.agent).is_some(),
        given(&request.target).is_some(),
        given(&request.system).is_some(),
    ]
    .iter()
    .filter(|named| **named)
    .count();
    if named > 1 {
        return Err(invalid(
            "name at most one of agent, target and system",
            "Chỉ chọn một trong: máy trạm, mục tiêu, hệ thống.",
        ));
    }
    let unit = given(&request.unit)
        .map(|code| unit_by_code(&units, code))
        .transpose()?;
    if let Some(unit) = unit {
        if !scope_of.contains(unit.id) {
            return Err(Refusal::Forbidden(
                "that unit is outside this account's scope",
            ));
        }
    }
    let scope = if let Some(agent) = given(&request.agent) {
        let agents = store.agents_list(None).await?;
        let Some(found) = agents.iter().find(|a| a.id == agent) else {
            return Err(Refusal::NotFound(format!("no agent with id {agent:?}")));
        };
        if !scope_of.contains(found.unit_id) {
            return Err(Refusal::Forbidden(
                "that agent is outside this account's scope",
            ));
        }
        Scope::Agent(agent.to_owned())
    } else if let Some(target) = given(&request.target) {
        if unit.is_none() && principal.role != Role::Admin {
            return Err(invalid(
                "an officer names the unit whose agents' target it is",
                "Xin chọn đơn vị có mục tiêu này.",
            ));
        }
        Scope::Target {
            name: target.to_owned(),
            unit_id: unit.map(|unit| unit.id),
        }
    } else if let Some(system) = given(&request.system) {
        if principal.role != Role::Admin {
            return Err(Refusal::Forbidden(
                "only administrators plan maintenance of a registered system",
            ));
        }
        Scope::System(system.to_owned())
    } else {
        let Some(unit) = unit else {
            return Err(invalid(
                "name a unit, an agent, a target or a system",
                "Xin chọn đơn vị (hoặc máy trạm, mục tiêu, hệ thống) được bảo trì.",
            ));
        };
        Scope::Unit {
            unit_id: unit.id,
            subtree: request.subtree.unwrap_or(true),
        }
    };
    let starts_at = parse_local(&request.start).map_err(|en| {
        invalid(
            format!("start: {en}"),
            "Thời điểm bắt đầu phải có dạng 2026-12-12 22:00 (giờ Việt Nam).",
        )
    })?;
    let duration = humantime::parse_duration(request.duration.trim()).map_err(|_| {
        invalid(
            format!(
                "duration {:?} is not a length like 4h or 90m",
                request.duration
            ),
            "Thời lượng phải có dạng 4h hoặc 90m.",
        )
    })?;
    if duration < Duration::from_secs(1) || duration > settings.longest {
        return Err(invalid(
            format!(
                "duration must be between 1s and {} ([maintenance] longest)",
                humantime::format_duration(settings.longest)
            ),
            format!(
                "Thời lượng mỗi lần bảo trì phải từ 1 giây đến {}.",
                maintenance::duration_text(
                    i64::try_from(settings.longest.as_millis()).unwrap_or(i64::MAX)
                )
            ),
        ));
    }
    let repeat: Repeat = request
        .repeat
        .as_deref()
        .unwrap_or("once")
        .parse()
        .map_err(|en: String| invalid(en, "Lặp lại phải là: một lần, hằng ngày hoặc hằng tuần."))?;
    let duration_ms = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
    if repeat == Repeat::Daily && duration_ms > 86_400_000 {
        return Err(invalid(
            "a daily window lasts at most a day",
            "Lịch hằng ngày dài tối đa một ngày.",
        ));
    }
    if repeat == Repeat::Weekly && duration_ms > 7 * 86_400_000 {
        return Err(invalid(
            "a weekly window lasts at most a week",
            "Lịch hằng tuần dài tối đa một tuần.",
        ));
    }
    let until = match given(&request.until) {
        None => None,
        Some(day) => {
            // The whole last day may still start an occurrence.
            let midnight = parse_local(&format!("{day} 00:00")).map_err(|_| {
                invalid(
                    format!("until {day:?} is not a day like 2027-06-30"),
                    "Ngày kết thúc lặp lại phải có dạng 2027-06-30.",
                )
            })?;
            Some(midnight + 86_400_000)
        }
    };
    if until.is_some_and(|until| until <= starts_at) {
        return Err(invalid(
            "until is before the first start",
            "Ngày kết thúc lặp lại đứng trước lần bắt đầu đầu tiên.",
        ));
    }
    let end = match (repeat, until) {
        (Repeat::Once, _) => starts_at + duration_ms,
        (_, Some(until)) => until + duration_ms,
        (_, None) => i64::MAX,
    };
    if end <= millis(now) {
        return Err(invalid(
            "the window is wholly in the past; planned maintenance is planned ahead",
            "Lịch bảo trì đã trôi qua hoàn toàn; lịch chỉ lập cho công việc sắp tới hoặc đang làm.",
        ));
    }
    let reason = text_field("reason", "lý do", &request.reason, true)?;
    let remind_to = given(&request.remind_to).map(str::to_owned);
    if let Some(address) = &remind_to {
        if address.parse::<lettre::Address>().is_err() {
            return Err(invalid(
                format!("remind_to {address:?} is not an email address"),
                "Địa chỉ email nhắc lịch không hợp lệ.",
            ));
        }
    }
    Ok(NewWindow {
        scope,
        starts_at,
        duration_ms,
        repeat,
        until,
        reason,
        planned_by: principal.actor(),
        remind_to,
    })
}

/// Plans a window for `principal`, audited as `maintenance.create`.
///
/// # Errors
///
/// A refused or invalid request, or a database failure.
pub async fn create(
    store: &Store,
    principal: &Principal,
    request: &WindowRequest,
    settings: &MaintenanceConfig,
    remote_addr: Option<String>,
    now: OffsetDateTime,
) -> Result<StoredWindow, Refusal> {
    let window = check(store, principal, request, settings, now).await?;
    let stored = store.maintenance_create(&window, now).await?;
    audit(
        store,
        NewAuditEntry {
            actor: principal.actor(),
            action: "maintenance.create".into(),
            target: stored.id.clone(),
            outcome: "ok",
            remote_addr,
            details: serde_json::json!({
                "scope": stored.scope_kind,
                "unit": stored.unit_code,
                "agent": stored.agent_id,
                "target": stored.target,
                "system": stored.system_code,
                "starts_at": stored.starts_at,
                "duration_ms": stored.duration_ms,
                "repeat": stored.recurrence,
                "until": stored.until_at,
                "reason": stored.reason,
            }),
        },
        now,
    )
    .await;
    Ok(stored)
}

/// Cancels a window for `principal` (its planner's scope rules apply), audited as
/// `maintenance.cancel`.
///
/// # Errors
///
/// No such window, already cancelled, outside the principal's scope, or a database failure.
pub async fn cancel(
    store: &Store,
    principal: &Principal,
    id: &str,
    remote_addr: Option<String>,
    now: OffsetDateTime,
) -> Result<StoredWindow, Refusal> {
    if !principal.role.can_act() {
        return Err(Refusal::Forbidden(
            "only administrators and IT officers cancel maintenance",
        ));
    }
    let Some(window) = store.maintenance_get(id).await? else {
        return Err(Refusal::NotFound(format!("no maintenance window {id:?}")));
    };
    if window.cancelled_at.is_some() {
        return Err(Refusal::WrongState(
            "the window was already cancelled".into(),
        ));
    }
    if principal.role != Role::Admin {
        let units = store.units_all().await?;
        let scope_of = AuthScope::of(principal, &units);
        let unit = match window.scope_kind.as_str() {
            "agent" => {
                let agents = store.agents_list(None).await?;
                agents
                    .iter()
                    .find(|a| Some(&a.id) == window.agent_id.as_ref())
                    .map(|a| a.unit_id)
            }
            _ => window.unit_id,
        };
        if !unit.is_some_and(|unit| scope_of.contains(unit)) {
            return Err(Refusal::Forbidden(
                "that window is outside this account's scope",
            ));
        }
    }
    let Some(cancelled) = store
        .maintenance_cancel(id, &principal.actor(), now)
        .await?
    else {
        return Err(Refusal::WrongState(
            "the window was already cancelled".into(),
        ));
    };
    audit(
        store,
        NewAuditEntry {
            actor: principal.actor(),
            action: "maintenance.cancel".into(),
            target: id.to_owned(),
            outcome: "ok",
            remote_addr,
            details: serde_json::json!({ "reason": cancelled.reason }),
        },
        now,
    )
    .await;
    Ok(cancelled)
}

/// The windows `principal` may see: every one for a province-wide account, else those over units
/// in its scope and over agents of those units.
///
/// # Errors
///
/// On a database failure.
pub async fn visible(store: &Store, principal: &Principal) -> anyhow::Result<Vec<StoredWindow>> {
    let windows = store.maintenance_list().await?;
    if principal.unit_id.is_none() {
        return Ok(windows);
    }
    let units = store.units_all().await?;
    let scope_of = AuthScope::of(principal, &units);
    let agents: HashMap<String, i64> = store
        .agents_list(None)
        .await?
        .into_iter()
        .map(|agent| (agent.id, agent.unit_id))
        .collect();
    Ok(windows
        .into_iter()
        .filter(|window| {
            let unit = match window.scope_kind.as_str() {
                "agent" => window
                    .agent_id
                    .as_ref()
                    .and_then(|id| agents.get(id))
                    .copied(),
                _ => window.unit_id,
            };
            unit.is_some_and(|unit| scope_of.contains(unit))
        })
        .collect())
}

/// Where a window stands at `now`: `active` (an occurrence going on), `planned` (one to come),
/// `ended` or `cancelled`; with the current or next occurrence.
pub fn standing(window: &StoredWindow, now: i64) -> (&'static str, Option<(i64, i64)>) {
    if window.cancelled_at.is_some_and(|at| at <= now) {
        return ("cancelled", None);
    }
    let rules = window.to_domain();
    if let Some(now_on) = rules.occurrence_at(now) {
        return ("active", Some(now_on));
    }
    match rules.next_occurrence(now) {
        Some(next) => ("planned", Some(next)),
        None => ("ended", None),
    }
}

/// The planned intervals of each unit within `[from, to)` from the windows over units (windows of
/// one agent, target or system cover part of a unit and are not counted as the unit's planned
/// time).
pub fn planned_by_unit(
    windows: &[maintenance::Window],
    units: &[Unit],
    from: i64,
    to: i64,
) -> HashMap<i64, Vec<(i64, i64)>> {
    let parents: HashMap<i64, Option<i64>> = units.iter().map(|u| (u.id, u.parent_id)).collect();
    let unit_windows: Vec<maintenance::Window> = windows
        .iter()
        .filter(|w| matches!(w.scope, Scope::Unit { .. }))
        .cloned()
        .collect();
    let mut out = HashMap::new();
    if unit_windows.is_empty() {
        return out;
    }
    for unit in units {
        let mut chain = vec![unit.id];
        while let Some(Some(up)) = parents.get(chain.last().expect("starts non-empty")) {
            if chain.contains(up) || chain.len() > 64 {
                break;
            }
            chain.push(*up);
        }
        let covered = maintenance::Covered {
            unit_chain: chain,
            ..maintenance::Covered::default()
        };
        let planned = maintenance::planned_intervals(&unit_windows, &covered, from, to);
        if !planned.is_empty() {
            out.insert(unit.id, planned);
        }
    }
    out
}

/// Writes an audit entry; a failure is logged, never shown.
async fn audit(store: &Store, entry: NewAuditEntry, now: OffsetDateTime) {
    if let Err(err) = store.audit(&entry, now).await {
        tracing::error!(error = %format!("{err:#}"), action = %entry.action, "could not write audit entry");
    }
}

/// Which windows cover incidents, for marking them "trong lịch bảo trì" where people see them.
#[derive(Debug, Clone)]
pub struct Marker {
    windows: Vec<maintenance::Window>,
    parents: HashMap<i64, Option<i64>>,
}

impl Marker {
    /// Reads the windows that may concern incidents of the last month.
    ///
    /// # Errors
    ///
    /// On a database failure.
    pub async fn load(store: &Store, units: &[Unit], now: i64) -> anyhow::Result<Marker> {
        Ok(Marker {
            windows: store.maintenance_live(now - 31 * 86_400_000).await?,
            parents: units.iter().map(|u| (u.id, u.parent_id)).collect(),
        })
    }

    /// Whether `incident` began inside a window covering it, or one covers it now while it is
    /// open: its notices were held.
    pub fn marks(&self, incident: &crate::store::StoredIncident, now: i64) -> bool {
        if self.windows.is_empty() || incident.kind == "security" {
            return false;
        }
        let mut chain = vec![incident.unit_id];
        while let Some(Some(up)) = self.parents.get(chain.last().expect("starts non-empty")) {
            if chain.contains(up) || chain.len() > 64 {
                break;
            }
            chain.push(*up);
        }
        let covered = maintenance::Covered {
            unit_chain: chain,
            agent_id: incident.agent_id.clone(),
            target: incident.target.clone(),
            system_code: incident.system_code.clone(),
        };
        let open = matches!(incident.state.as_str(), "open" | "acknowledged");
        let held = maintenance::hold(
            &self.windows,
            &covered,
            &incident.kind,
            incident.started_at,
            if open { now } else { incident.started_at },
        );
        held.started_in_window || (open && held.until.is_some())
    }
}
