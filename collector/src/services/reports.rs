//! Periodic reports on the collector: settings, figures prefilled from monitoring, compliance, and
//! reminders (QĐ 02/2017 Điều 12.1; issue 6).
//!
//! Design note:
//!
//! - **Who must report.** A unit of a reporting kind (`reports.unit_kinds`) must report on a period
//!   of a required scheme when it exists on the period's due date. A unit merged away before the
//!   due date is "not required", never "missing"; one created during the period reports.
//! - **On time** is judged by the first version: its submission time (the agent's clock corrected
//!   by the offset measured on the batch that carried it, so a report submitted on time during a WAN
//!   outage counts as on time) against the end of the due date in Vietnam. Later versions correct
//!   the content, not the timeliness. No version by the deadline: "missing" once it has passed,
//!   "pending" before.
//! - **Figures** of a unit over a data window come from [`crate::domain::availability::figures`], the same
//!   function as the availability API, over the unit's own incidents: those not folded under
//!   another incident of the same unit (a commune outage counts once, not once per agent).
//! - **Reminders** go by email to the unit's active officers (their registry email, else contacts
//!   with role `it_officer`) at each `reports.reminders` step before the deadline, while the unit
//!   has not submitted; a day after the deadline (time for reports submitted offline to arrive),
//!   the unit's leadership is told it is overdue.
//!   Each is written once, by a key, however many collectors plan at once; only the most recent
//!   step reached is sent, so a collector started late does not send every step at once.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use cntt_common::report::{ContextPeriod, Figures, IncidentLine, OfficerInfo, ReportContext};
use serde::Serialize;
use time::OffsetDateTime;

use crate::config::ReportsConfig;
use crate::domain::availability::{self, Outage, UnitSpan, Window};
use crate::domain::officers::OfficerRecord;
use crate::domain::organisation::Organisations;
use crate::domain::periods::{scheme_for, Holidays, Override, Period, Scheme};
use crate::store::{
    millis, NewAuditEntry, NewPeriodicReport, Store, StoredOfficer, StoredReport, Unit,
};

/// Overdue notices are sent only for deadlines this recent, so a first start does not tell every
/// leader about every past period.
const OVERDUE_WINDOW: time::Duration = time::Duration::days(7);

/// Overdue notices wait this long after the deadline, so reports submitted on time on an agent
/// cut off from the collector can still arrive.
const OVERDUE_AFTER: time::Duration = time::Duration::days(1);

/// Periods stay in an agent's context this many days after their due date.
const CONTEXT_GRACE_DAYS: i64 = 60;

/// The checked `[reports]` settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Every scheme: the built-in ones, replaced or extended by the configured ones.
    pub schemes: Vec<Scheme>,
    /// Schemes units must report on.
    pub required: Vec<String>,
    /// Kinds of unit that report.
    pub unit_kinds: Vec<String>,
    /// Reminder steps before the deadline, longest first.
    pub reminders: Vec<Duration>,
    /// Whether leadership is told of overdue reports.
    pub overdue_notice: bool,
    /// Days off.
    pub holidays: Holidays,
    /// Who issues the consolidated report, by date.
    pub organisation: Organisations,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings::check(
            ReportsConfig::default(),
            Path::new("."),
            Organisations::shipped(),
        )
        .expect("the default report settings are valid")
    }
}

impl Settings {
    /// Checks the `[reports]` section; a relative `holidays_file` is read from `base`;
    /// `organisation` is the checked `[[organisation]]` list.
    ///
    /// # Errors
    ///
    /// When a scheme is invalid, a required scheme or unit kind is unknown, or the calendar file
    /// cannot be read.
    pub fn check(
        raw: ReportsConfig,
        base: &Path,
        organisation: Organisations,
    ) -> anyhow::Result<Settings> {
        let mut schemes = Scheme::defaults();
        for config in raw.schemes {
            let scheme = Scheme::check(config)?;
            schemes.retain(|known| known.name != scheme.name);
            schemes.push(scheme);
        }
        for name in &raw.required {
            if !schemes.iter().any(|scheme| &scheme.name == name) {
                bail!(
                    "reports.required names {name:?}, which is not a scheme; known: {}",
                    schemes
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        for kind in &raw.unit_kinds {
            if !crate::services::units::KINDS.contains(&kind.as_str()) {
                bail!(
                    "reports.unit_kinds: {kind:?} must be one of {}",
                    crate::services::units::KINDS.join(", ")
                );
            }
        }
        let holidays = match &raw.holidays_file {
            Some(path) => Holidays::load(&base.join(path))?,
            None => Holidays::shipped(),
        };
        let mut reminders = raw.reminders;
        reminders.sort_unstable_by(|a, b| b.cmp(a));
        Ok(Settings {
            schemes,
            required: raw.required,
            unit_kinds: raw.unit_kinds,
            reminders,
            overdue_notice: raw.overdue_notice,
            holidays,
            organisation,
        })
    }

    /// The scheme named `name`.
    pub fn scheme(&self, name: &str) -> Option<&Scheme> {
        self.schemes.iter().find(|scheme| scheme.name == name)
    }

    /// The required schemes.
    pub fn required_schemes(&self) -> impl Iterator<Item = &Scheme> {
        self.required.iter().filter_map(|name| self.scheme(name))
    }

    /// The period `label` of `scheme` (or of the only scheme of its frequency), with overrides.
    ///
    /// # Errors
    ///
    /// When the label or scheme is unknown.
    pub fn period(
        &self,
        label: &str,
        scheme: Option<&str>,
        overrides: &[Override],
    ) -> anyhow::Result<Period> {
        let scheme = scheme_for(&self.schemes, label, scheme)?;
        scheme.period(label, &self.holidays, overrides)
    }
}

/// Where a unit stands on one period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// First version submitted by the deadline.
    OnTime,
    /// First version submitted after it.
    Late,
    /// Nothing, and the deadline has passed.
    Missing,
    /// Nothing yet, before the deadline.
    Pending,
    /// The unit did not have to report (not a reporting kind, or did not exist on the due date).
    NotRequired,
}

impl Standing {
    /// Every standing, in order.
    pub const ALL: [Standing; 5] = [
        Standing::OnTime,
        Standing::Late,
        Standing::Missing,
        Standing::Pending,
        Standing::NotRequired,
    ];

    /// The code used in the API and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::OnTime => "on_time",
            Standing::Late => "late",
            Standing::Missing => "missing",
            Standing::Pending => "pending",
            Standing::NotRequired => "not_required",
        }
    }

    /// In Vietnamese.
    pub fn vi(self) -> &'static str {
        match self {
            Standing::OnTime => "Đúng hạn",
            Standing::Late => "Trễ hạn",
            Standing::Missing => "Chưa nộp",
            Standing::Pending => "Chưa đến hạn",
            Standing::NotRequired => "Không phải nộp",
        }
    }
}

/// One unit's standing on one period.
#[derive(Debug, Clone, Serialize)]
pub struct UnitStanding {
    /// Unit id.
    #[serde(skip)]
    pub unit_id: i64,
    /// Unit code.
    pub unit_code: String,
    /// Unit name.
    pub unit_name: String,
    /// Unit kind.
    pub unit_kind: String,
    /// Code of the district it belongs to, or of the province for province-level units.
    pub district_code: String,
    /// Its name.
    pub district_name: String,
    /// Where it stands.
    pub standing: Standing,
    /// Corrected submission time of the first version, Unix ms.
    pub first_submitted_at: Option<i64>,
    /// Versions received.
    pub versions: u32,
    /// Id of the latest version.
    pub latest_report: Option<String>,
    /// For a unit that ended before the due date: the code of the unit that answers for it then
    /// (its reports and figures are counted there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counted_for: Option<String>,
    /// Codes of ended units whose reports are counted in this row.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub includes: Vec<String>,
}

/// Whether `unit` had to report on `period`: a reporting kind, existing on the due date.
pub fn required(unit: &Unit, period: &Period, kinds: &[String]) -> bool {
    let due = period.due.to_string();
    kinds.iter().any(|kind| kind == &unit.kind) && unit.valid_on(&due)
}

/// The standing from the facts; see the design note.
pub fn judge(required: bool, first_submitted_at: Option<i64>, deadline: i64, now: i64) -> Standing {
    match first_submitted_at {
        Some(at) if at <= deadline => Standing::OnTime,
        Some(_) => Standing::Late,
        None if !required => Standing::NotRequired,
        None if now > deadline => Standing::Missing,
        None => Standing::Pending,
    }
}

/// The unit that answers for `unit` on `date` (`YYYY-MM-DD`): itself while it is valid, else,
/// following `successor_codes` through later changes, the first successor the data names that is
/// valid on that date (when several are, the first listed one answers for all of the unit's
/// history); none when the chain ends without one.
pub fn answering_unit<'a>(
    unit: &'a Unit,
    by_code: &HashMap<&str, &'a Unit>,
    date: &str,
) -> Option<&'a Unit> {
    let mut current = unit;
    for _ in 0..16 {
        if current.valid_on(date) {
            return Some(current);
        }
        let successors: Vec<&Unit> = current
            .successor_codes
            .split(';')
            .map(str::trim)
            .filter_map(|code| by_code.get(code).copied())
            .collect();
        current = match successors.iter().find(|next| next.valid_on(date)) {
            Some(valid) => valid,
            None => successors.first()?,
        };
    }
    None
}

/// Ended units → the unit that answers for them on `date` (see [`answering_unit`]); units valid
/// on `date`, and ended units without a valid successor, are not in the map.
pub fn attribution(units: &[Unit], date: &str) -> HashMap<i64, i64> {
    let by_code: HashMap<&str, &Unit> = units
        .iter()
        .map(|unit| (unit.code.as_str(), unit))
        .collect();
    units
        .iter()
        .filter(|unit| !unit.valid_on(date))
        .filter_map(|unit| {
            let answering = answering_unit(unit, &by_code, date)?;
            (answering.id != unit.id).then_some((unit.id, answering.id))
        })
        .collect()
}

/// Suffix of the group code of departments when no district holds them (since 2025 there are
/// none): `68.S`, after the province's code, so departments sort before communes.
pub const GROUP_DEPARTMENTS: &str = "S";
/// Suffix of the group code of communes when no district holds them: `68.X`.
pub const GROUP_COMMUNES: &str = "X";

/// The group a unit is counted under, `(code, name)`, by the hierarchy in force on `date`: the
/// nearest ancestor (or itself) of kind `district`, each ancestor replaced by the unit answering
/// for it on that date; without one (every unit since the district level ended on 2025-07-01),
/// departments and communes form one group each, and a province is its own group.
pub fn group_of(
    unit: &Unit,
    by_id: &HashMap<i64, &Unit>,
    by_code: &HashMap<&str, &Unit>,
    date: &str,
) -> (String, String) {
    let start = answering_unit(unit, by_code, date).unwrap_or(unit);
    let mut current = start;
    for _ in 0..16 {
        if current.kind == "district" {
            return (current.code.clone(), current.name.clone());
        }
        let Some(parent) = current.parent_id.and_then(|id| by_id.get(&id)) else {
            break;
        };
        current = answering_unit(parent, by_code, date).unwrap_or(parent);
    }
    let top = &current.code;
    match start.kind.as_str() {
        "department" => (
            format!("{top}.{GROUP_DEPARTMENTS}"),
            "Khối sở, ban, ngành".to_owned(),
        ),
        "commune" => (
            format!("{top}.{GROUP_COMMUNES}"),
            "Khối xã, phường".to_owned(),
        ),
        _ => (current.code.clone(), current.name.clone()),
    }
}

/// The province a period's report covers on `date`: the top of the tree of the given units as
/// in force on that date (for example `Tỉnh Lâm Đồng` after 2025-07-01), if any.
pub fn province_on<'a>(units: &'a [Unit], date: &str) -> Option<&'a Unit> {
    units
        .iter()
        .filter(|unit| unit.kind == "province" && unit.valid_on(date))
        .min_by(|a, b| a.code.cmp(&b.code))
}

/// Every unit's standing on `period`, for units of a reporting kind that existed at some time
/// between the start of the data window and the due date, by district then code.
///
/// # Errors
///
/// On a database error.
pub async fn compliance(
    store: &Store,
    settings: &Settings,
    period: &Period,
    now: OffsetDateTime,
) -> anyhow::Result<Vec<UnitStanding>> {
    let units = store.units_all().await?;
    let reports = store
        .reports_of_period(&period.scheme, &period.label)
        .await?;
    Ok(standings(&units, &reports, settings, period, millis(now)))
}

/// [`compliance`] from rows already read.
pub fn standings(
    units: &[Unit],
    reports: &[StoredReport],
    settings: &Settings,
    period: &Period,
    now: i64,
) -> Vec<UnitStanding> {
    let by_id: HashMap<i64, &Unit> = units.iter().map(|unit| (unit.id, unit)).collect();
    let by_code: HashMap<&str, &Unit> = units
        .iter()
        .map(|unit| (unit.code.as_str(), unit))
        .collect();
    let (from, due) = (period.data_from.to_string(), period.due.to_string());
    // Reports of a unit that ended before the due date count for the unit answering for it.
    let attributed = attribution(units, &due);
    let answer = |id: i64| attributed.get(&id).copied().unwrap_or(id);
    let mut by_unit: HashMap<i64, Vec<&StoredReport>> = HashMap::new();
    // As of `now`: a version submitted later does not count yet (a report built "as of" a past
    // day says what was known then).
    for report in reports.iter().filter(|report| report.submitted_at <= now) {
        by_unit
            .entry(answer(report.unit_id))
            .or_default()
            .push(report);
    }
    let deadline = millis(period.deadline());
    let existed = |unit: &Unit| {
        unit.valid_from
            .as_deref()
            .is_none_or(|start| start <= due.as_str())
            && unit
                .valid_to
                .as_deref()
                .is_none_or(|end| end >= from.as_str())
    };
    let mut rows: Vec<UnitStanding> = units
        .iter()
        .filter(|unit| settings.unit_kinds.iter().any(|kind| kind == &unit.kind))
        .filter(|unit| existed(unit))
        .map(|unit| {
            let versions = by_unit.get(&unit.id).map(Vec::as_slice).unwrap_or_default();
            let first = versions.first().map(|report| report.submitted_at);
            let (district_code, district_name) = group_of(unit, &by_id, &by_code, &due);
            let mut includes: Vec<String> = attributed
                .iter()
                .filter(|(_, to)| **to == unit.id)
                .filter_map(|(from, _)| by_id.get(from))
                .filter(|from| existed(from) || versions.iter().any(|r| r.unit_id == from.id))
                .map(|from| from.code.clone())
                .collect();
            includes.sort();
            UnitStanding {
                unit_id: unit.id,
                unit_code: unit.code.clone(),
                unit_name: unit.name.clone(),
                unit_kind: unit.kind.clone(),
                district_code,
                district_name,
                standing: judge(
                    required(unit, period, &settings.unit_kinds),
                    first,
                    deadline,
                    now,
                ),
                first_submitted_at: first,
                versions: u32::try_from(versions.len()).unwrap_or(u32::MAX),
                latest_report: versions.last().map(|report| report.id.clone()),
                counted_for: attributed
                    .get(&unit.id)
                    .and_then(|id| by_id.get(id))
                    .map(|to| to.code.clone()),
                includes,
            }
        })
        .collect();
    rows.sort_by(|a, b| (&a.district_code, &a.unit_code).cmp(&(&b.district_code, &b.unit_code)));
    rows
}

/// Counts of standings, for a district or the province.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Units that had to report.
    pub required: u32,
    /// On time.
    pub on_time: u32,
    /// Late.
    pub late: u32,
    /// Missing.
    pub missing: u32,
    /// Pending.
    pub pending: u32,
}

impl Tally {
    /// Adds one standing.
    pub fn add(&mut self, standing: Standing) {
        match standing {
            Standing::OnTime => self.on_time += 1,
            Standing::Late => self.late += 1,
            Standing::Missing => self.missing += 1,
            Standing::Pending => self.pending += 1,
            Standing::NotRequired => return,
        }
        self.required += 1;
    }

    /// Share of required units that submitted, 0 to 1; none when nobody had to.
    pub fn rate(&self) -> Option<f64> {
        (self.required > 0).then(|| f64::from(self.on_time + self.late) / f64::from(self.required))
    }
}

/// Tallies per district (by code, with its name) and for the province.
pub fn tallies(rows: &[UnitStanding]) -> (BTreeMap<String, (String, Tally)>, Tally) {
    let mut districts: BTreeMap<String, (String, Tally)> = BTreeMap::new();
    let mut province = Tally::default();
    for row in rows {
        districts
            .entry(row.district_code.clone())
            .or_insert_with(|| (row.district_name.clone(), Tally::default()))
            .1
            .add(row.standing);
        province.add(row.standing);
    }
    (districts, province)
}

/// Figures and incidents of every unit over `period`'s data window, up to `now`.
///
/// A unit's figures include those of the ended units `attributed` to it (ended unit → the unit
/// answering for it, see [`attribution`]); an ended unit in the map gets empty figures, so nothing
/// is counted twice. Only measurements make figures: without an agent there is no availability,
/// observed time starts no earlier than the first enrollment of one of the unit's agents, and
/// the LAN or WAN availability needs at least one probe target of that kind in the window.
///
/// # Errors
///
/// On a database error.
pub async fn unit_figures(
    store: &Store,
    units: &[Unit],
    period: &Period,
    now: OffsetDateTime,
    attributed: &HashMap<i64, i64>,
) -> anyhow::Result<HashMap<i64, (Figures, Vec<IncidentLine>)>> {
    let (from, to) = period.window();
    let window = Window {
        start: millis(from),
        end: millis(to),
    };
    let incidents = store
        .incidents_in_window(None, window.start, window.end)
        .await?;
    let targets = store.monitored_targets(window.start, window.end).await?;
    let agents = store.agents_list(None).await?;
    let now_ms = millis(now);
    let generated_at = now
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut out = HashMap::new();
    for unit in units {
        let members: Vec<i64> = if attributed.contains_key(&unit.id) {
            Vec::new()
        } else {
            std::iter::once(unit.id)
                .chain(
                    attributed
                        .iter()
                        .filter(|(_, to)| **to == unit.id)
                        .map(|(from, _)| *from),
                )
                .collect()
        };
        let own: Vec<_> = incidents
            .iter()
            .filter(|incident| {
                members.contains(&incident.unit_id)
                    && incident.parent_unit_id != Some(incident.unit_id)
            })
            .collect();
        let outages: Vec<Outage> = own
            .iter()
            .map(|incident| Outage {
                unit_id: unit.id,
                kind: incident.kind.clone(),
                started_at: incident.started_at,
                ended_at: incident.ended_at,
            })
            .collect();
        let unit_agents: Vec<_> = agents
            .iter()
            .filter(|agent| members.contains(&agent.unit_id))
            .collect();
        let machines = unit_agents
            .iter()
            .filter(|agent| {
                agent.enrolled_at < window.end
                    && agent.revoked_at.is_none_or(|at| at > window.start)
            })
            .count();
        let mut kinds: BTreeMap<String, u32> = BTreeMap::new();
        for member in &members {
            for (kind, count) in targets.get(member).into_iter().flatten() {
                *kinds.entry(kind.clone()).or_insert(0) += count;
            }
        }
        let first_enrolled = unit_agents.iter().map(|agent| agent.enrolled_at).min();
        let span = measured_span(unit, first_enrolled);
        let all = availability::figures(window, now_ms, &span, &outages, None);
        let of_kind = |kind: &str| {
            if kinds.get(kind).copied().unwrap_or(0) == 0 || machines == 0 {
                return None;
            }
            availability::figures(window, now_ms, &span, &outages, Some(kind)).availability
        };
        let mut by_kind = BTreeMap::new();
        for incident in &own {
            *by_kind.entry(incident.kind.clone()).or_insert(0) += 1;
        }
        let figures = Figures {
            generated_at: generated_at.clone(),
            data_from: period.data_from.to_string(),
            data_to: period.data_to.to_string(),
            machines: u32::try_from(machines).unwrap_or(u32::MAX),
            monitored_targets: kinds.get("server").copied().unwrap_or(0),
            incidents: u32::try_from(own.len()).unwrap_or(u32::MAX),
            incidents_by_kind: by_kind,
            recovered: all.recovered,
            mean_time_to_recover_minutes: all.mean_time_to_recover_ms.map(round_minutes),
            longest_time_to_recover_minutes: all.longest_time_to_recover_ms.map(round_minutes),
            availability_lan_percent: of_kind("lan").map(round_percent),
            availability_wan_percent: of_kind("wan").map(round_percent),
        };
        let lines = own
            .iter()
            .map(|incident| IncidentLine {
                number: incident.number.clone().unwrap_or_default(),
                kind: incident.kind.clone(),
                title: incident.title.clone(),
                started_at: crate::store::from_millis(incident.started_at),
                ended_at: incident.ended_at.map(crate::store::from_millis),
            })
            .collect();
        out.insert(unit.id, (figures, lines));
    }
    Ok(out)
}

/// Decimals kept of a percentage (availability, rates) in every document: `99,27%`.
pub const PERCENT_DECIMALS: i32 = 2;
/// Decimals kept of a duration in minutes: `12,5 phút`.
pub const MINUTE_DECIMALS: i32 = 1;

/// A share `0..=1` as a percentage rounded to [`PERCENT_DECIMALS`]: the one rounding of
/// percentages, done once where the figure is made, so every document prints the same value.
pub fn round_percent(share: f64) -> f64 {
    let scale = 10_f64.powi(PERCENT_DECIMALS);
    (share * 100.0 * scale).round() / scale
}

/// Milliseconds as minutes rounded to [`MINUTE_DECIMALS`].
pub fn round_minutes(ms: i64) -> f64 {
    let scale = 10_f64.powi(MINUTE_DECIMALS);
    (ms as f64 / 60_000.0 * scale).round() / scale
}

/// The unit's span, starting no earlier than the first enrollment of one of its agents: time
/// before any agent watched it is not observed. Without an agent, nothing is observed.
fn measured_span(unit: &Unit, first_enrolled: Option<i64>) -> UnitSpan {
    let mut span = unit_span(unit);
    match first_enrolled {
        Some(at) => span.valid_from = Some(span.valid_from.map_or(at, |from| from.max(at))),
        None => {
            span.valid_from = Some(i64::MAX);
        }
    }
    span
}

fn unit_span(unit: &Unit) -> UnitSpan {
    let day = |text: &Option<String>| {
        text.as_deref()
            .and_then(|text| crate::domain::periods::parse_date(text).ok())
    };
    UnitSpan::from_days(unit.id, day(&unit.valid_from), day(&unit.valid_to))
}

/// The officers of `unit_id` in the role on `date` (`YYYY-MM-DD`).
pub fn active_officers<'a>(
    officers: &'a [StoredOfficer],
    unit_id: i64,
    date: &str,
) -> Vec<&'a OfficerRecord> {
    officers
        .iter()
        .filter(|officer| officer.unit_id == unit_id && officer.record.active_on(date))
        .map(|officer| &officer.record)
        .collect()
}

/// What the agents of `unit` need to draft their reports.
///
/// # Errors
///
/// On a database error.
pub async fn context(
    store: &Store,
    settings: &Settings,
    unit: &Unit,
    now: OffsetDateTime,
) -> anyhow::Result<ReportContext> {
    let overrides = store.period_overrides().await?;
    let today = now.to_offset(crate::domain::periods::VIETNAM).date();
    let officers = store.officers_all().await?;
    let officer = active_officers(&officers, unit.id, &today.to_string())
        .first()
        .map(|record| OfficerInfo {
            name: record.full_name.clone(),
            position: record.position.clone(),
            phone: record.phone.clone(),
            email: record.email.clone(),
        });
    let mut periods = Vec::new();
    for scheme in settings.required_schemes() {
        for period in scheme.open_periods(today, CONTEXT_GRACE_DAYS, &settings.holidays, &overrides)
        {
            let mut figures = unit_figures(
                store,
                std::slice::from_ref(unit),
                &period,
                now,
                &HashMap::new(),
            )
            .await?;
            let (figures, incidents) = figures.remove(&unit.id).unwrap_or_default();
            let versions = store
                .reports_of_period(&period.scheme, &period.label)
                .await?
                .iter()
                .filter(|report| report.unit_id == unit.id)
                .count();
            periods.push(ContextPeriod {
                scheme: period.scheme.clone(),
                label: period.label.clone(),
                label_vi: period.label_vi.clone(),
                due: period.due.to_string(),
                rule: period.rule.clone(),
                figures,
                incidents,
                versions: u32::try_from(versions).unwrap_or(u32::MAX),
            });
        }
    }
    Ok(ReportContext {
        unit_code: unit.code.clone(),
        unit_name: unit.name.clone(),
        officer,
        generated_at: now,
        periods,
    })
}

/// A stored report version as the Sở reads it, as blocks (title, unit, officer, period, each
/// section), for the text, HTML and DOCX renderers: the period in words, the submission time
/// and the version number come from the store, the rest from the document.
///
/// # Errors
///
/// When the stored document no longer reads (it was checked when it arrived), or on a database
/// error.
pub async fn rendered(
    store: &Store,
    settings: &Settings,
    report: &StoredReport,
    document: &str,
) -> anyhow::Result<Vec<cntt_common::report::Block>> {
    let parsed = cntt_common::report::parse(document).map_err(|problems| {
        anyhow::anyhow!("stored report {} does not read: {problems}", report.id)
    })?;
    let overrides = store.period_overrides().await?;
    let period_vi = settings
        .period(&report.period, Some(&report.scheme), &overrides)
        .map(|period| period.label_vi)
        .unwrap_or_default();
    let versions = store
        .reports_of_period(&report.scheme, &report.period)
        .await?;
    let version = versions
        .iter()
        .filter(|other| other.unit_id == report.unit_id)
        .position(|other| other.id == report.id)
        .map_or(1, |index| u32::try_from(index + 1).unwrap_or(u32::MAX));
    Ok(cntt_common::report::document_blocks(
        &parsed,
        &cntt_common::report::Submission {
            period_vi,
            submitted_at: Some(crate::store::from_millis(report.submitted_at)),
            version,
        },
    ))
}

/// Checks a submitted document against the unit and the schemes; returns the parsed report.
///
/// # Errors
///
/// The problems, in Vietnamese, as one message.
pub fn check_document(
    settings: &Settings,
    unit_code: &str,
    document: &str,
) -> Result<cntt_common::report::Report, String> {
    let report = cntt_common::report::parse(document).map_err(|problems| problems.to_string())?;
    let mut problems = Vec::new();
    if report.front.unit != unit_code {
        problems.push(format!(
            "báo cáo ghi mã đơn vị {}, nhưng người gửi thuộc đơn vị {unit_code}",
            report.front.unit
        ));
    }
    match settings.scheme(&report.front.scheme) {
        None => problems.push(format!("không có chế độ báo cáo {:?}", report.front.scheme)),
        Some(scheme) => {
            if let Err(err) = scheme.period(&report.front.period, &settings.holidays, &[]) {
                problems.push(format!(
                    "kỳ báo cáo {:?} không thuộc chế độ {}: {err}",
                    report.front.period, scheme.name
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(report)
    } else {
        Err(format!(
            "báo cáo chưa hợp lệ:\n  - {}",
            problems.join("\n  - ")
        ))
    }
}

/// A version submitted by a person (the API's `POST /api/v1/reports` and the console's form).
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The version's id.
    pub id: String,
    /// The unit's code.
    pub unit_code: String,
    /// Scheme name.
    pub scheme: String,
    /// Period label.
    pub period: String,
    /// When it was stored (its submission time), Unix ms.
    pub submitted_at: i64,
}

impl Submitted {
    /// The audit entry of this submission by `actor` from `address`, the same for every way in.
    pub fn audit_entry(&self, actor: String, address: Option<String>) -> NewAuditEntry {
        NewAuditEntry {
            actor,
            action: "report.submit".into(),
            target: format!("{}:{}:{}", self.unit_code, self.scheme, self.period),
            outcome: "ok",
            remote_addr: address,
            details: serde_json::json!({ "report": self.id }),
        }
    }
}

/// Why a person's submission was not stored.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The document does not pass the checks; the message is Vietnamese.
    #[error("{0}")]
    Invalid(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

/// Checks a document a person submits for `unit` ([`check_document`]) and stores it as a new
/// version, on time or not by its arrival `now` (people submit online). The caller has checked
/// the person's role and scope, and audits with [`Submitted::audit_entry`].
///
/// # Errors
///
/// [`SubmitError::Invalid`] when the document does not pass the checks, else a database error.
pub async fn submit(
    store: &Store,
    settings: &Settings,
    unit: &Unit,
    document: String,
    now: OffsetDateTime,
) -> Result<Submitted, SubmitError> {
    let report = check_document(settings, &unit.code, &document).map_err(SubmitError::Invalid)?;
    let id = uuid::Uuid::new_v4().to_string();
    let row = NewPeriodicReport {
        id: id.clone(),
        scheme: report.front.scheme.clone(),
        period: report.front.period.clone(),
        submitted_by: report.front.officer.clone(),
        submitted_at_agent: None,
        submitted_at: Some(millis(now)),
        not_before: None,
        document,
        sections: serde_json::to_string(&report.sections).unwrap_or_default(),
        figures: serde_json::to_string(&report.front.figures).unwrap_or_default(),
    };
    store.report_insert(unit.id, &row, now).await?;
    Ok(Submitted {
        id,
        unit_code: unit.code.clone(),
        scheme: row.scheme,
        period: row.period,
        submitted_at: millis(now),
    })
}

/// Sets the due date of one period by hand (`periods override` and the console), stored with
/// `by`; returns the period as the rule gives it and the override. The caller audits
/// (`period.override`).
///
/// # Errors
///
/// When the reason is empty, the period or date is bad, or the database fails.
#[allow(
    clippy::too_many_arguments,
    reason = "the override's fields, each named at the call"
)]
pub async fn override_due(
    store: &Store,
    settings: &Settings,
    scheme: &str,
    period: &str,
    due: &str,
    reason: &str,
    by: &str,
    now: OffsetDateTime,
) -> anyhow::Result<(Period, Override)> {
    if reason.trim().is_empty() {
        bail!("the reason must say why the due date changes (e.g. the letter that set it)");
    }
    let found = settings.period(period, Some(scheme), &[])?;
    let manual = Override {
        scheme: found.scheme.clone(),
        period: found.label.clone(),
        due: crate::domain::periods::parse_date(due)?,
        reason: reason.trim().to_owned(),
    };
    store.period_override_set(&manual, by, now).await?;
    Ok((found, manual))
}

/// Writes the reminder and overdue notices due now; returns how many were written.
///
/// # Errors
///
/// On a database error.
pub async fn plan_notices(
    store: &Store,
    settings: &Settings,
    prefix: &str,
    now: OffsetDateTime,
) -> anyhow::Result<usize> {
    let overrides = store.period_overrides().await?;
    let today = now.to_offset(crate::domain::periods::VIETNAM).date();
    let units = store.units_all().await?;
    let mut officers: Option<Vec<StoredOfficer>> = None;
    let mut contacts = None;
    let mut written = 0;
    let now_ms = millis(now);
    for scheme in settings.required_schemes() {
        for period in scheme.open_periods(today, 7, &settings.holidays, &overrides) {
            let deadline = period.deadline();
            let reminder = settings
                .reminders
                .iter()
                .filter(|step| now >= deadline - **step && now <= deadline)
                .min();
            let overdue = settings.overdue_notice
                && now > deadline + OVERDUE_AFTER
                && now - deadline <= OVERDUE_WINDOW;
            if reminder.is_none() && !overdue {
                continue;
            }
            let reports = store
                .reports_of_period(&period.scheme, &period.label)
                .await?;
            let rows = standings(&units, &reports, settings, &period, now_ms);
            if officers.is_none() {
                officers = Some(store.officers_all().await?);
                contacts = Some(store.contacts_list().await?);
            }
            let (officers, contacts) = (
                officers.as_deref().unwrap_or_default(),
                contacts.as_deref().unwrap_or_default(),
            );
            for row in &rows {
                match (row.standing, reminder) {
                    (Standing::Pending, Some(step)) => {
                        let days = (period.due - today).whole_days();
                        let step_key = step.as_secs();
                        let mut addresses: Vec<(Option<i64>, String, String)> =
                            active_officers(officers, row.unit_id, &today.to_string())
                                .into_iter()
                                .filter(|officer| !officer.email.is_empty())
                                .map(|officer| {
                                    (None, officer.email.clone(), officer.full_name.clone())
                                })
                                .collect();
                        if addresses.is_empty() {
                            addresses = contacts
                                .iter()
                                .filter(|c| c.unit_id == row.unit_id && c.role == "it_officer")
                                .filter_map(|c| {
                                    c.email
                                        .clone()
                                        .map(|email| (Some(c.id), email, c.name.clone()))
                                })
                                .collect();
                        }
                        for (contact_id, email, name) in addresses {
                            let rendered = crate::documents::notice::render_report_reminder(
                                &name, row, &period, days, prefix,
                            );
                            let key = format!(
                                "report-reminder:{}:{}:{}:{step_key}:{email}",
                                period.scheme, period.label, row.unit_code
                            );
                            written += store
                                .notice_keyed(
                                    &key,
                                    contact_id,
                                    &email,
                                    "report_reminder",
                                    days,
                                    &rendered,
                                    now_ms,
                                )
                                .await?;
                        }
                    }
                    (Standing::Missing, _) if overdue => {
                        for contact in contacts
                            .iter()
                            .filter(|c| c.unit_id == row.unit_id && c.role == "leadership")
                        {
                            let Some(email) = contact.email.clone() else {
                                continue;
                            };
                            let rendered = crate::documents::notice::render_report_overdue(
                                &contact.name,
                                &settings.organisation.at(today).name,
                                row,
                                &period,
                                prefix,
                            );
                            let key = format!(
                                "report-overdue:{}:{}:{}:{email}",
                                period.scheme, period.label, row.unit_code
                            );
                            written += store
                                .notice_keyed(
                                    &key,
                                    Some(contact.id),
                                    &email,
                                    "report_overdue",
                                    0,
                                    &rendered,
                                    now_ms,
                                )
                                .await?;
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(written)
}

/// Units of a reporting kind valid on `date` with no qualified officer, with the reason.
pub fn unqualified_units(
    units: &[Unit],
    officers: &[StoredOfficer],
    kinds: &[String],
    date: &str,
) -> Vec<(Unit, String)> {
    let mut out = Vec::new();
    for unit in units {
        if !kinds.iter().any(|kind| kind == &unit.kind) || !unit.valid_on(date) {
            continue;
        }
        let active = active_officers(officers, unit.id, date);
        if let Some(reason) = crate::domain::officers::unit_gaps(&unit.kind, &active) {
            out.push((unit.clone(), reason));
        }
    }
    out
}

/// Reads a period label with its scheme for the command line and the API.
///
/// # Errors
///
/// When the label or scheme is unknown, or on a database error.
pub async fn find_period(
    store: &Store,
    settings: &Settings,
    label: &str,
    scheme: Option<&str>,
) -> anyhow::Result<Period> {
    let overrides = store.period_overrides().await?;
    settings
        .period(label, scheme, &overrides)
        .with_context(|| format!("finding period {label}"))
}
