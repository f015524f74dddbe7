//! Gauges per unit and district, read from the database at each scrape: agents known and
//! reporting, whether the unit is reachable, open incidents (by kind and severity, and since
//! when), availability and time to recover over fixed windows, and the health of its machines.
//!
//! Series exist for the units valid today and for any unit that still has agents; the
//! availability, time-to-recover and host series only for units with agents, since a unit nobody
//! watches has no figures. Open-incident series exist only while there are some.

use std::collections::{BTreeMap, HashMap};

use cntt_common::wire::HostSnapshot;
use prometheus::{GaugeVec, IntGaugeVec, Opts, Registry};
use time::OffsetDateTime;

use super::UnitLabels;
use crate::domain::availability::{figures, Outage, UnitSpan, Window, SERVICE_KINDS};
use crate::store::{millis, Agent, OpenIncidents, Unit};

/// The windows of availability and time to recover, with their `window` label.
pub(super) const WINDOWS: &[(&str, time::Duration)] = &[
    ("1d", time::Duration::days(1)),
    ("7d", time::Duration::days(7)),
    ("30d", time::Duration::days(30)),
];

/// Kinds whose open incident means the unit cannot be reached.
const UNREACHABLE_KINDS: &[&str] = &["lan", "wan"];

/// When an agent counts as reporting: the evaluation's silence rule (`[incidents]`). The
/// console's pages ask the same question through it.
#[derive(Debug, Clone, Copy)]
pub struct Silence {
    /// Heartbeat intervals without a batch after which an agent is silent.
    pub intervals: u32,
    /// The least silence that counts.
    pub min: std::time::Duration,
}

impl Silence {
    /// The rule of the `[incidents]` settings.
    pub fn of(config: &crate::config::IncidentsConfig) -> Silence {
        Silence {
            intervals: config.silence_intervals,
            min: config.silence_min,
        }
    }

    /// Whether `agent` has reported recently enough at `now_ms`.
    pub fn reporting(&self, agent: &Agent, now_ms: i64) -> bool {
        self.reporting_at(agent.last_seen_at, agent.heartbeat_interval, now_ms)
    }

    /// Whether an agent last seen at `last_seen_at` (Unix ms) with this heartbeat interval
    /// (seconds) has reported recently enough at `now_ms`.
    fn reporting_at(
        &self,
        last_seen_at: Option<i64>,
        heartbeat_interval: Option<i64>,
        now_ms: i64,
    ) -> bool {
        let Some(last_seen_at) = last_seen_at else {
            return false;
        };
        let interval_ms = heartbeat_interval.unwrap_or(60).max(1) * 1000;
        let min_ms = i64::try_from(self.min.as_millis()).unwrap_or(i64::MAX);
        let threshold = (i64::from(self.intervals) * interval_ms).max(min_ms);
        now_ms - last_seen_at <= threshold
    }
}

/// What a scrape keeps of one agent: a few figures, not its row (issue 15: 20,000 rows with their
/// host snapshots held tens of MiB at each scrape).
#[derive(Debug, Clone)]
pub(super) struct AgentFigures {
    pub(super) unit_id: i64,
    pub(super) enrolled_at: i64,
    pub(super) revoked: bool,
    pub(super) reporting: bool,
    /// Use of its machine from 0 to 1, from its last host snapshot, when it sent one that reads.
    usage: Option<MachineUsage>,
}

/// One machine's use from 0 to 1; `None` where the snapshot has no such figure.
#[derive(Debug, Clone, Copy)]
struct MachineUsage {
    cpu: f64,
    memory: Option<f64>,
    disk: Option<f64>,
}

impl AgentFigures {
    /// The figures of `agent` at `now_ms`.
    pub(super) fn of(agent: &Agent, silence: Silence, now_ms: i64) -> AgentFigures {
        let usage = agent
            .host_snapshot
            .as_deref()
            .and_then(|text| serde_json::from_str::<HostSnapshot>(text).ok())
            .map(|host| MachineUsage::of(&host));
        AgentFigures {
            unit_id: agent.unit_id,
            enrolled_at: agent.enrolled_at,
            revoked: agent.revoked_at.is_some(),
            reporting: silence.reporting_at(agent.last_seen_at, agent.heartbeat_interval, now_ms),
            usage,
        }
    }
}

impl MachineUsage {
    fn of(snapshot: &HostSnapshot) -> MachineUsage {
        let cpu = (f64::from(snapshot.cpu_usage_percent) / 100.0).clamp(0.0, 1.0);
        let memory = (snapshot.memory_total_bytes > 0).then(|| {
            (snapshot.memory_used_bytes as f64 / snapshot.memory_total_bytes as f64).clamp(0.0, 1.0)
        });
        let disk = snapshot
            .disks
            .iter()
            .filter(|disk| disk.total_bytes > 0)
            .map(|disk| 1.0 - disk.available_bytes as f64 / disk.total_bytes as f64)
            .fold(None, |max: Option<f64>, used| {
                Some(max.map_or(used, |max| max.max(used)))
            })
            .map(|used| used.clamp(0.0, 1.0));
        MachineUsage { cpu, memory, disk }
    }
}

/// What one refresh reads.
pub(super) struct Snapshot<'a> {
    pub(super) labels: &'a UnitLabels,
    pub(super) units: &'a [Unit],
    pub(super) agents: &'a [AgentFigures],
    pub(super) open: &'a [OpenIncidents],
    /// Incidents overlapping the longest window, of every kind.
    pub(super) outages: &'a [Outage],
    pub(super) now: OffsetDateTime,
}

/// The per-unit gauges.
#[derive(Debug, Clone)]
pub(super) struct UnitMetrics {
    info: IntGaugeVec,
    agents: IntGaugeVec,
    reporting: IntGaugeVec,
    up: IntGaugeVec,
    open_incidents: IntGaugeVec,
    open_since: GaugeVec,
    availability: GaugeVec,
    incidents: IntGaugeVec,
    time_to_recover: GaugeVec,
    host_usage: GaugeVec,
}

fn gauge(name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    GaugeVec::new(Opts::new(name, help), labels).expect("metric definition is valid")
}

fn int_gauge(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).expect("metric definition is valid")
}

/// Tallies of one unit's machines.
#[derive(Debug, Default)]
struct HostUsage {
    /// `(resource, usage from 0 to 1)` of each machine with a snapshot.
    samples: BTreeMap<&'static str, Vec<f64>>,
}

impl HostUsage {
    fn add(&mut self, usage: MachineUsage) {
        self.samples.entry("cpu").or_default().push(usage.cpu);
        if let Some(memory) = usage.memory {
            self.samples.entry("memory").or_default().push(memory);
        }
        if let Some(disk) = usage.disk {
            self.samples.entry("disk").or_default().push(disk);
        }
    }
}

impl UnitMetrics {
    /// Creates and registers the family.
    pub(super) fn new(registry: &Registry) -> UnitMetrics {
        let unit = &["district", "unit"];
        let metrics = UnitMetrics {
            info: int_gauge(
                "cntt_collector_unit_info",
                "Always 1; the labels give each unit's name and kind",
                &["district", "unit", "name", "kind"],
            ),
            agents: int_gauge(
                "cntt_collector_unit_agents",
                "Enrolled agents of a unit, revoked ones excluded",
                unit,
            ),
            reporting: int_gauge(
                "cntt_collector_unit_agents_reporting",
                "Agents of a unit heard from within the silence threshold",
                unit,
            ),
            up: int_gauge(
                "cntt_collector_unit_up",
                "1 while a unit with agents is reachable: an agent reports and no LAN or WAN incident is open",
                unit,
            ),
            open_incidents: int_gauge(
                "cntt_collector_open_incidents",
                "Open or acknowledged incidents people act on (no parent), by unit, kind and severity",
                &["district", "unit", "kind", "severity"],
            ),
            open_since: gauge(
                "cntt_collector_open_incident_start_timestamp_seconds",
                "Start of a unit's oldest open incident of a kind, Unix seconds",
                &["district", "unit", "kind"],
            ),
            availability: gauge(
                "cntt_collector_unit_availability_ratio",
                "Share of the window a unit was up, from service-affecting incidents (as GET /api/v1/availability)",
                &["district", "unit", "window"],
            ),
            incidents: int_gauge(
                "cntt_collector_unit_incidents",
                "Service-affecting incidents of a unit that count in the window",
                &["district", "unit", "window"],
            ),
            time_to_recover: gauge(
                "cntt_collector_unit_time_to_recover_seconds",
                "Mean or longest time to recover of a unit's incidents that ended in the window",
                &["district", "unit", "window", "stat"],
            ),
            host_usage: gauge(
                "cntt_collector_unit_host_usage_ratio",
                "Mean or highest use of CPU, memory or the fullest disk among a unit's machines, from 0 to 1",
                &["district", "unit", "resource", "stat"],
            ),
        };
        for collector in [
            Box::new(metrics.info.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(metrics.agents.clone()),
            Box::new(metrics.reporting.clone()),
            Box::new(metrics.up.clone()),
            Box::new(metrics.open_incidents.clone()),
            Box::new(metrics.open_since.clone()),
            Box::new(metrics.availability.clone()),
            Box::new(metrics.incidents.clone()),
            Box::new(metrics.time_to_recover.clone()),
            Box::new(metrics.host_usage.clone()),
        ] {
            registry
                .register(collector)
                .expect("each metric is registered once");
        }
        metrics
    }

    /// Replaces every series with the figures of `snapshot`.
    pub(super) fn set(&self, snapshot: &Snapshot<'_>) {
        self.info.reset();
        self.agents.reset();
        self.reporting.reset();
        self.up.reset();
        self.open_incidents.reset();
        self.open_since.reset();
        self.availability.reset();
        self.incidents.reset();
        self.time_to_recover.reset();
        self.host_usage.reset();

        let now_ms = millis(snapshot.now);
        let today = snapshot
            .now
            .to_offset(time::macros::offset!(+7))
            .date()
            .to_string();
        let mut known: HashMap<i64, i64> = HashMap::new();
        let mut reporting: HashMap<i64, i64> = HashMap::new();
        let mut hosts: HashMap<i64, HostUsage> = HashMap::new();
        // Time before a unit's first agent was enrolled was not watched: it is not observed
        // (issue 12: no figure without a measurement).
        let mut first_enrolled: HashMap<i64, i64> = HashMap::new();
        // Agents and availability of a unit that has ended count for the unit answering for
        // it today (`reports::attribution`), so nothing leaves the dashboards when units merge.
        let attributed = crate::services::reports::attribution(snapshot.units, &today);
        let answer = |unit_id: i64| attributed.get(&unit_id).copied().unwrap_or(unit_id);
        for agent in snapshot.agents {
            let first = first_enrolled
                .entry(answer(agent.unit_id))
                .or_insert(agent.enrolled_at);
            *first = (*first).min(agent.enrolled_at);
        }
        for agent in snapshot.agents.iter().filter(|a| !a.revoked) {
            *known.entry(answer(agent.unit_id)).or_default() += 1;
            let counted = reporting.entry(answer(agent.unit_id)).or_default();
            if agent.reporting {
                *counted += 1;
            }
            if let Some(usage) = agent.usage {
                hosts.entry(answer(agent.unit_id)).or_default().add(usage);
            }
        }
        let mut unreachable: HashMap<i64, bool> = HashMap::new();
        for open in snapshot.open {
            let Some(label) = snapshot.labels.get(open.unit_id) else {
                continue;
            };
            self.open_incidents
                .with_label_values(&[&label.district, &label.unit, &open.kind, &open.severity])
                .add(open.count);
            let since =
                self.open_since
                    .with_label_values(&[&label.district, &label.unit, &open.kind]);
            let started = open.oldest_started_at as f64 / 1000.0;
            if since.get() == 0.0 || started < since.get() {
                since.set(started);
            }
            if UNREACHABLE_KINDS.contains(&open.kind.as_str()) {
                unreachable.insert(answer(open.unit_id), true);
            }
        }
        let service: Vec<Outage> = snapshot
            .outages
            .iter()
            .filter(|outage| SERVICE_KINDS.contains(&outage.kind.as_str()))
            .map(|outage| Outage {
                unit_id: answer(outage.unit_id),
                ..outage.clone()
            })
            .collect();
        let date = time::macros::format_description!("[year]-[month]-[day]");
        for unit in snapshot.units {
            let n_agents = known.get(&unit.id).copied().unwrap_or(0);
            if n_agents == 0 && !unit.valid_on(&today) {
                continue;
            }
            let Some(label) = snapshot.labels.get(unit.id) else {
                continue;
            };
            let unit_labels = [label.district.as_str(), label.unit.as_str()];
            self.info
                .with_label_values(&[&label.district, &label.unit, &unit.name, &unit.kind])
                .set(1);
            self.agents.with_label_values(&unit_labels).set(n_agents);
            let n_reporting = reporting.get(&unit.id).copied().unwrap_or(0);
            self.reporting
                .with_label_values(&unit_labels)
                .set(n_reporting);
            if n_agents == 0 {
                continue;
            }
            let reachable = n_reporting > 0 && !unreachable.contains_key(&unit.id);
            self.up
                .with_label_values(&unit_labels)
                .set(i64::from(reachable));
            let day = |text: &Option<String>| {
                text.as_deref()
                    .and_then(|text| time::Date::parse(text, &date).ok())
            };
            let mut span = UnitSpan::from_days(unit.id, day(&unit.valid_from), day(&unit.valid_to));
            if let Some(first) = first_enrolled.get(&unit.id) {
                span.valid_from = Some(span.valid_from.map_or(*first, |from| from.max(*first)));
            }
            for (window_label, length) in WINDOWS {
                let window = Window {
                    start: now_ms - length.whole_milliseconds() as i64,
                    end: now_ms,
                };
                let unit_figures = figures(window, now_ms, &span, &service, None);
                let labels = [label.district.as_str(), label.unit.as_str(), window_label];
                if let Some(availability) = unit_figures.availability {
                    self.availability
                        .with_label_values(&labels)
                        .set(availability);
                }
                self.incidents
                    .with_label_values(&labels)
                    .set(i64::from(unit_figures.incidents));
                let stats = [
                    ("mean", unit_figures.mean_time_to_recover_ms),
                    ("max", unit_figures.longest_time_to_recover_ms),
                ];
                for (stat, value) in stats {
                    if let Some(ms) = value {
                        self.time_to_recover
                            .with_label_values(&[
                                label.district.as_str(),
                                &label.unit,
                                window_label,
                                stat,
                            ])
                            .set(ms as f64 / 1000.0);
                    }
                }
            }
            if let Some(usage) = hosts.get(&unit.id) {
                for (resource, samples) in &usage.samples {
                    let max = samples.iter().copied().fold(0.0, f64::max);
                    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
                    for (stat, value) in [("max", max), ("mean", mean)] {
                        self.host_usage
                            .with_label_values(&[
                                label.district.as_str(),
                                &label.unit,
                                resource,
                                stat,
                            ])
                            .set(value);
                    }
                }
            }
        }
    }
}
