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
//! - **Figures** of a unit over a data window come from [`crate::availability::figures`], the same
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

use crate::availability::{self, Outage, UnitSpan, Window};
use crate::config::ReportsConfig;
use crate::officers::OfficerRecord;
use crate::organisation::Organisations;
use crate::periods::{scheme_for, Holidays, Override, Period, Scheme};
use crate::store::{millis, Store, StoredOfficer, StoredReport, Unit};

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
            if !crate::units::KINDS.contains(&kind.as_str()) {
                bail!(
                    "reports.unit_kinds: {kind:?} must be one of {}",
                    crate::units::KINDS.join(", ")
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

/// The district a unit belongs to: the nearest ancestor (or itself) of kind `district`, else the
/// top of its tree (the province).
pub fn district_of<'a>(unit: &'a Unit, by_id: &'a HashMap<i64, &'a Unit>) -> &'a Unit {
    let mut current = unit;
    let mut top = unit;
    for _ in 0..16 {
        if current.kind == "district" {
            return current;
        }
        top = current;
        match current.parent_id.and_then(|id| by_id.get(&id)) {
            Some(parent) => current = parent,
            None => break,
        }
    }
    top
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
    let mut by_unit: HashMap<i64, Vec<&StoredReport>> = HashMap::new();
    for report in reports {
        by_unit.entry(report.unit_id).or_default().push(report);
    }
    let (from, due) = (period.data_from.to_string(), period.due.to_string());
    let deadline = millis(period.deadline());
    let mut rows: Vec<UnitStanding> = units
        .iter()
        .filter(|unit| settings.unit_kinds.iter().any(|kind| kind == &unit.kind))
        .filter(|unit| {
            unit.valid_from
                .as_deref()
                .is_none_or(|start| start <= due.as_str())
                && unit
                    .valid_to
                    .as_deref()
                    .is_none_or(|end| end >= from.as_str())
        })
        .map(|unit| {
            let versions = by_unit.get(&unit.id).map(Vec::as_slice).unwrap_or_default();
            let first = versions.first().map(|report| report.submitted_at);
            let district = district_of(unit, &by_id);
            UnitStanding {
                unit_id: unit.id,
                unit_code: unit.code.clone(),
                unit_name: unit.name.clone(),
                unit_kind: unit.kind.clone(),
                district_code: district.code.clone(),
                district_name: district.name.clone(),
                standing: judge(
                    required(unit, period, &settings.unit_kinds),
                    first,
                    deadline,
                    now,
                ),
                first_submitted_at: first,
                versions: u32::try_from(versions.len()).unwrap_or(u32::MAX),
                latest_report: versions.last().map(|report| report.id.clone()),
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
/// # Errors
///
/// On a database error.
pub async fn unit_figures(
    store: &Store,
    units: &[Unit],
    period: &Period,
    now: OffsetDateTime,
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
        let own: Vec<_> = incidents
            .iter()
            .filter(|incident| {
                incident.unit_id == unit.id && incident.parent_unit_id != Some(unit.id)
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
        let span = unit_span(unit);
        let all = availability::figures(window, now_ms, &span, &outages, None);
        let of_kind =
            |kind: &str| availability::figures(window, now_ms, &span, &outages, Some(kind));
        let mut by_kind = BTreeMap::new();
        for incident in &own {
            *by_kind.entry(incident.kind.clone()).or_insert(0) += 1;
        }
        let minutes = |ms: Option<i64>| ms.map(|ms| (ms as f64 / 60_000.0 * 10.0).round() / 10.0);
        let percent = |share: Option<f64>| share.map(|s| (s * 10_000.0).round() / 100.0);
        let machines = agents
            .iter()
            .filter(|agent| {
                agent.unit_id == unit.id
                    && agent.enrolled_at < window.end
                    && agent.revoked_at.is_none_or(|at| at > window.start)
            })
            .count();
        let figures = Figures {
            generated_at: generated_at.clone(),
            data_from: period.data_from.to_string(),
            data_to: period.data_to.to_string(),
            machines: u32::try_from(machines).unwrap_or(u32::MAX),
            monitored_targets: targets.get(&unit.id).copied().unwrap_or(0),
            incidents: u32::try_from(own.len()).unwrap_or(u32::MAX),
            incidents_by_kind: by_kind,
            recovered: all.recovered,
            mean_time_to_recover_minutes: minutes(all.mean_time_to_recover_ms),
            longest_time_to_recover_minutes: minutes(all.longest_time_to_recover_ms),
            availability_lan_percent: percent(of_kind("lan").availability),
            availability_wan_percent: percent(of_kind("wan").availability),
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

fn unit_span(unit: &Unit) -> UnitSpan {
    let day = |text: &Option<String>| {
        text.as_deref()
            .and_then(|text| crate::periods::parse_date(text).ok())
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
    let today = now.to_offset(crate::periods::VIETNAM).date();
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
            let mut figures = unit_figures(store, std::slice::from_ref(unit), &period, now).await?;
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
    let today = now.to_offset(crate::periods::VIETNAM).date();
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
                            let rendered = crate::notify::render::render_report_reminder(
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
                            let rendered = crate::notify::render::render_report_overdue(
                                &contact.name,
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
        if let Some(reason) = crate::officers::unit_gaps(&unit.kind, &active) {
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
