//! Incident detection: turns check results into incidents, and tells LAN from WAN from server
//! trouble on the spot.
//!
//! Per target, a small state machine: a target is *down* after `down_after` failed checks in a row
//! and *up* again after `up_after` good ones, so one lost packet is no incident and a flapping link
//! is one incident, not twenty. A down target's incident starts at its first failed check and ends
//! at the first good check of its recovery.
//!
//! Across targets, local root cause ([`Detector::observe`] re-derives it after every check):
//! - a LAN target down → one LAN incident; every other target down with it is a *consequence*;
//! - LAN up and every WAN target down → one WAN (transmission line) incident; Internet and server
//!   targets down with it are its consequences;
//! - otherwise each WAN or server target down is an incident of its own, and Internet targets down
//!   together are one Internet incident.
//!
//! Targets are checked at different moments, so a WAN check may cross its threshold a little before
//! the gateway's does. While a possible cause is *suspect* (failing, not yet down) the decision on
//! what depends on it waits, instead of opening an incident that would have to be taken back.
//!
//! Host trouble (disk full, memory exhausted) is watched by [`HostWatch`] with the same state
//! machine, fed by host samples instead of checks. Everything here is pure: times come in with the
//! observations, ids are made by the caller's random source, and tests feed synthetic sequences.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use cntt_common::wire::{
    CheckKind, Evidence, HostSnapshot, Incident, IncidentKind, IncidentPhase, IncidentSource,
    Severity, TargetKind,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::vi;

/// How many checks make a target down, and how many bring it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Failed checks in a row before a target is down.
    pub down_after: u32,
    /// Good checks in a row before a down target is up.
    pub up_after: u32,
}

/// What the detector needs to know of a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetInfo {
    /// Unique name.
    pub name: String,
    /// Where it sits.
    pub kind: TargetKind,
    /// How it is checked.
    pub check: CheckKind,
    /// What is checked.
    pub address: String,
    /// A LAN target that is the agency's gateway.
    pub gateway: bool,
    /// Code of the information system it checks, in the collector's register.
    pub system: Option<String>,
}

/// The result of one check, as the detector sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Target name.
    pub target: String,
    /// When the check ran.
    pub at: OffsetDateTime,
    /// Whether it passed.
    pub ok: bool,
    /// Round-trip time in milliseconds.
    pub rtt_ms: Option<f64>,
    /// Why it failed.
    pub error: Option<String>,
}

/// The state machine of one target (or host resource).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    Up,
    /// Failing, not yet down.
    Suspect {
        first_failure: OffsetDateTime,
        failures: u32,
    },
    Down {
        since: OffsetDateTime,
    },
    /// Down, with good checks that are not yet enough.
    Recovering {
        since: OffsetDateTime,
        first_success: OffsetDateTime,
        successes: u32,
    },
}

/// What a transition did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    None,
    WentDown,
    CameUp { at: OffsetDateTime },
}

impl Health {
    fn is_down(self) -> bool {
        matches!(self, Health::Down { .. } | Health::Recovering { .. })
    }

    fn is_suspect(self) -> bool {
        matches!(self, Health::Suspect { .. })
    }

    fn since(self) -> Option<OffsetDateTime> {
        match self {
            Health::Down { since } | Health::Recovering { since, .. } => Some(since),
            Health::Up | Health::Suspect { .. } => None,
        }
    }

    fn step(self, ok: bool, at: OffsetDateTime, thresholds: Thresholds) -> (Health, Change) {
        match (self, ok) {
            (Health::Up, true) => (Health::Up, Change::None),
            (Health::Up, false) => Health::Suspect {
                first_failure: at,
                failures: 0,
            }
            .step(false, at, thresholds),
            (
                Health::Suspect {
                    first_failure,
                    failures,
                },
                false,
            ) => {
                let failures = failures + 1;
                if failures >= thresholds.down_after {
                    (
                        Health::Down {
                            since: first_failure,
                        },
                        Change::WentDown,
                    )
                } else {
                    (
                        Health::Suspect {
                            first_failure,
                            failures,
                        },
                        Change::None,
                    )
                }
            }
            (Health::Suspect { .. }, true) => (Health::Up, Change::None),
            (Health::Down { since }, true) => Health::Recovering {
                since,
                first_success: at,
                successes: 0,
            }
            .step(true, at, thresholds),
            (Health::Down { since }, false) => (Health::Down { since }, Change::None),
            (
                Health::Recovering {
                    since,
                    first_success,
                    successes,
                },
                true,
            ) => {
                let successes = successes + 1;
                if successes >= thresholds.up_after {
                    (Health::Up, Change::CameUp { at: first_success })
                } else {
                    (
                        Health::Recovering {
                            since,
                            first_success,
                            successes,
                        },
                        Change::None,
                    )
                }
            }
            // A failure during recovery: still the same outage.
            (Health::Recovering { since, .. }, false) => (Health::Down { since }, Change::None),
        }
    }
}

/// How many recent checks of a target are kept as evidence.
const EVIDENCE_DEPTH: usize = 5;

#[derive(Debug)]
struct TargetState {
    info: TargetInfo,
    health: Health,
    recent: VecDeque<Evidence>,
    /// The first good check of the last recovery: when its outage ended.
    recovered_at: Option<OffsetDateTime>,
}

/// Which incident a set of failures belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Lan,
    Wan,
    Internet,
    Target(String),
}

#[derive(Debug)]
struct OpenIncident {
    id: Uuid,
    kind: IncidentKind,
    started_at: OffsetDateTime,
    evidence: BTreeSet<String>,
    consequences: BTreeSet<String>,
}

#[derive(Debug)]
struct Desired {
    kind: IncidentKind,
    evidence: BTreeSet<String>,
    consequences: BTreeSet<String>,
}

/// Incident detection with local root cause over a fixed set of targets.
#[derive(Debug)]
pub struct Detector {
    thresholds: Thresholds,
    targets: BTreeMap<String, TargetState>,
    open: BTreeMap<Key, OpenIncident>,
}

impl Detector {
    /// A detector for these targets; all start up.
    pub fn new(targets: Vec<TargetInfo>, thresholds: Thresholds) -> Detector {
        let targets = targets
            .into_iter()
            .map(|info| {
                let state = TargetState {
                    info: info.clone(),
                    health: Health::Up,
                    recent: VecDeque::new(),
                    recovered_at: None,
                };
                (info.name, state)
            })
            .collect();
        Detector {
            thresholds,
            targets,
            open: BTreeMap::new(),
        }
    }

    /// Takes one check result and returns the incident events it causes, in order.
    /// Results for unknown targets are ignored.
    pub fn observe(
        &mut self,
        observation: &Observation,
        new_id: &mut impl FnMut() -> Uuid,
    ) -> Vec<Incident> {
        let Some(state) = self.targets.get_mut(&observation.target) else {
            return Vec::new();
        };
        if state.recent.len() == EVIDENCE_DEPTH {
            state.recent.pop_front();
        }
        state.recent.push_back(Evidence {
            target: state.info.name.clone(),
            target_kind: state.info.kind,
            check: state.info.check,
            address: state.info.address.clone(),
            at: observation.at,
            ok: observation.ok,
            error: observation.error.clone(),
            rtt_ms: observation.rtt_ms,
        });
        let (health, change) = state
            .health
            .step(observation.ok, observation.at, self.thresholds);
        state.health = health;
        if let Change::CameUp { at } = change {
            state.recovered_at = Some(at);
        }
        self.reconcile(observation.at, new_id)
    }

    /// The incidents open now, as their latest `updated` picture.
    pub fn open_incidents(&self) -> Vec<Incident> {
        self.open
            .values()
            .map(|open| self.incident(open, IncidentPhase::Updated, None))
            .collect()
    }

    /// Names of the targets that are down now.
    pub fn down_targets(&self) -> Vec<String> {
        self.targets
            .values()
            .filter(|state| state.health.is_down())
            .map(|state| state.info.name.clone())
            .collect()
    }

    fn names(&self, pick: impl Fn(&TargetState) -> bool) -> BTreeSet<String> {
        self.targets
            .values()
            .filter(|state| pick(state))
            .map(|state| state.info.name.clone())
            .collect()
    }

    fn is_down(&self, name: &str) -> bool {
        self.targets
            .get(name)
            .is_some_and(|state| state.health.is_down())
    }

    /// Decides which incidents should be open now.
    ///
    /// An open incident stays what it is until every target of its evidence has recovered (its
    /// lists only grow), so a WAN outage whose targets come back one by one remains one incident.
    /// Down targets no open incident covers are then classified by the root-cause rules; those
    /// whose possible cause is still suspect wait.
    fn desired(&self) -> BTreeMap<Key, Desired> {
        let mut desired: BTreeMap<Key, Desired> = BTreeMap::new();
        let mut covered = BTreeSet::new();
        for (key, open) in &self.open {
            if open.evidence.iter().any(|name| self.is_down(name)) {
                covered.extend(open.evidence.iter().cloned());
                covered.extend(open.consequences.iter().cloned());
                let carried = Desired {
                    kind: open.kind,
                    evidence: open.evidence.clone(),
                    consequences: open.consequences.clone(),
                };
                desired.insert(key.clone(), carried);
            }
        }
        let down = |kind: TargetKind| {
            self.names(|state| {
                state.info.kind == kind
                    && state.health.is_down()
                    && !covered.contains(&state.info.name)
            })
        };
        let lan_down = down(TargetKind::Lan);
        let lan_open = desired.contains_key(&Key::Lan);
        // The LAN as a root cause: the gateway when one is marked, else every LAN target together.
        // Another LAN target failing (an internal server, a switch) is trouble of its own.
        let gateways = self.names(|state| state.info.kind == TargetKind::Lan && state.info.gateway);
        let every_lan = gateways.is_empty();
        let causes = if every_lan {
            self.names(|state| state.info.kind == TargetKind::Lan)
        } else {
            gateways
        };
        let down_now = |name: &String| self.is_down(name);
        let failing = |name: &String| {
            self.targets
                .get(name)
                .is_some_and(|state| state.health.is_down() || state.health.is_suspect())
        };
        let cause_down = if every_lan {
            !causes.is_empty() && causes.iter().all(down_now)
        } else {
            causes.iter().any(down_now)
        };
        let lan_suspect = !cause_down
            && if every_lan {
                !causes.is_empty() && causes.iter().all(failing)
            } else {
                causes.iter().any(|name| failing(name) && !down_now(name))
            };
        let wan_total = self.names(|state| state.info.kind == TargetKind::Wan).len();
        let wan_all_down = wan_total > 0
            && self
                .names(|state| state.info.kind == TargetKind::Wan && state.health.is_down())
                .len()
                == wan_total;
        let wan_all_failing = wan_total > 0
            && self
                .names(|state| {
                    state.info.kind == TargetKind::Wan
                        && (state.health.is_down() || state.health.is_suspect())
                })
                .len()
                == wan_total;
        let wan_down = down(TargetKind::Wan);
        let internet_down = down(TargetKind::Internet);
        let server_down = down(TargetKind::Server);
        let non_lan_down: BTreeSet<String> = wan_down
            .iter()
            .chain(&internet_down)
            .chain(&server_down)
            .cloned()
            .collect();

        let mut add = |key: Key,
                       kind: IncidentKind,
                       evidence: BTreeSet<String>,
                       consequences: BTreeSet<String>| {
            let entry = desired.entry(key).or_insert_with(|| Desired {
                kind,
                evidence: BTreeSet::new(),
                consequences: BTreeSet::new(),
            });
            entry.evidence.extend(evidence);
            entry.consequences.extend(consequences);
        };
        if cause_down || lan_open {
            add(Key::Lan, IncidentKind::Lan, lan_down, non_lan_down);
            return desired;
        }
        if lan_suspect {
            // Wait: the gateway (or the whole LAN) may be about to explain these failures.
            return desired;
        }
        for name in lan_down {
            add(
                Key::Target(name.clone()),
                IncidentKind::Lan,
                BTreeSet::from([name]),
                BTreeSet::new(),
            );
        }
        if wan_all_down {
            let consequences = internet_down.iter().chain(&server_down).cloned().collect();
            add(Key::Wan, IncidentKind::Wan, wan_down, consequences);
        } else if wan_all_failing {
            // Wait: every WAN target is failing and some are not yet down; it may be the whole line.
        } else {
            for name in wan_down {
                add(
                    Key::Target(name.clone()),
                    IncidentKind::Wan,
                    BTreeSet::from([name]),
                    BTreeSet::new(),
                );
            }
            if !internet_down.is_empty() {
                add(
                    Key::Internet,
                    IncidentKind::Internet,
                    internet_down,
                    BTreeSet::new(),
                );
            }
            for name in server_down {
                add(
                    Key::Target(name.clone()),
                    IncidentKind::Server,
                    BTreeSet::from([name]),
                    BTreeSet::new(),
                );
            }
        }
        desired
    }

    fn reconcile(
        &mut self,
        now: OffsetDateTime,
        new_id: &mut impl FnMut() -> Uuid,
    ) -> Vec<Incident> {
        // When a cause has recovered, what failed only because of it starts afresh: it becomes an
        // incident of its own only if it keeps failing now that the cause is gone. Without this, a
        // WAN target still marked down (its next check not yet run) would open an incident in the
        // very moment the gateway comes back.
        let recovered_consequences: Vec<String> = self
            .open
            .values()
            .filter(|open| open.evidence.iter().all(|name| !self.is_down(name)))
            .flat_map(|open| open.consequences.iter().cloned())
            .collect();
        for name in recovered_consequences {
            if let Some(state) = self.targets.get_mut(&name) {
                if state.health.is_down() {
                    state.health = Health::Up;
                }
            }
        }
        let desired = self.desired();
        let mut events = Vec::new();

        // Incidents no longer wanted have recovered: they end at the last first-good-check.
        let gone: Vec<Key> = self
            .open
            .keys()
            .filter(|key| !desired.contains_key(*key))
            .cloned()
            .collect();
        for key in gone {
            let open = self.open.remove(&key).expect("key was listed from the map");
            let ended_at = open
                .evidence
                .iter()
                .filter_map(|name| self.targets.get(name)?.recovered_at)
                .max()
                .unwrap_or(now);
            events.push(self.incident(&open, IncidentPhase::Resolved, Some(ended_at)));
        }

        for (key, wanted) in desired {
            match self.open.get_mut(&key) {
                None => {
                    let started_at = wanted
                        .evidence
                        .iter()
                        .filter_map(|name| self.targets.get(name)?.health.since())
                        .min()
                        .unwrap_or(now);
                    let open = OpenIncident {
                        id: new_id(),
                        kind: wanted.kind,
                        started_at,
                        evidence: wanted.evidence,
                        consequences: wanted.consequences,
                    };
                    events.push(self.incident(&open, IncidentPhase::Opened, None));
                    self.open.insert(key, open);
                }
                Some(open)
                    if open.evidence != wanted.evidence
                        || open.consequences != wanted.consequences =>
                {
                    open.evidence = wanted.evidence;
                    open.consequences = wanted.consequences;
                    let open = &self.open[&key];
                    events.push(self.incident(open, IncidentPhase::Updated, None));
                }
                Some(_) => {}
            }
        }
        events
    }

    fn incident(
        &self,
        open: &OpenIncident,
        phase: IncidentPhase,
        ended_at: Option<OffsetDateTime>,
    ) -> Incident {
        let infos: Vec<&TargetInfo> = open
            .evidence
            .iter()
            .filter_map(|name| Some(&self.targets.get(name)?.info))
            .collect();
        let evidence = open
            .evidence
            .iter()
            .filter_map(|name| self.targets.get(name))
            .flat_map(|state| state.recent.iter().cloned())
            .collect();
        let target = match &infos[..] {
            [single] => Some(single.name.clone()),
            _ => None,
        };
        let mut description = vi::detected_description(&infos, self.thresholds.down_after);
        if !open.consequences.is_empty() {
            description.push(' ');
            description.push_str(&vi::consequences(&open.consequences));
        }
        Incident {
            incident_id: open.id,
            phase,
            kind: open.kind,
            source: IncidentSource::Detected,
            severity: match open.kind {
                IncidentKind::Internet => Severity::Medium,
                _ => Severity::High,
            },
            title: vi::detected_title(open.kind, &infos),
            description,
            target,
            started_at: open.started_at,
            ended_at,
            discovered_at: None,
            // The registered systems the failing targets check: the collector's reports name them.
            systems_affected: infos
                .iter()
                .filter_map(|info| info.system.clone())
                .collect(),
            evidence,
            consequences: open.consequences.iter().cloned().collect(),
        }
    }
}

/// Host resources with thresholds: each disk, and memory.
#[derive(Debug)]
pub struct HostWatch {
    thresholds: Thresholds,
    disk_full_percent: f64,
    memory_full_percent: f64,
    /// Per resource (`disk:/`, `memory`): its health and, while down, its incident id.
    resources: BTreeMap<String, (Health, Option<Uuid>, OffsetDateTime)>,
}

impl HostWatch {
    /// A watch with these limits.
    pub fn new(
        thresholds: Thresholds,
        disk_full_percent: f64,
        memory_full_percent: f64,
    ) -> HostWatch {
        HostWatch {
            thresholds,
            disk_full_percent,
            memory_full_percent,
            resources: BTreeMap::new(),
        }
    }

    /// Takes one host sample and returns the host incident events it causes.
    pub fn observe(
        &mut self,
        host: &HostSnapshot,
        at: OffsetDateTime,
        new_id: &mut impl FnMut() -> Uuid,
    ) -> Vec<Incident> {
        let mut readings: Vec<(String, f64, f64)> = host
            .disks
            .iter()
            .filter(|disk| disk.total_bytes > 0)
            .map(|disk| {
                let used = disk.total_bytes.saturating_sub(disk.available_bytes) as f64 * 100.0
                    / disk.total_bytes as f64;
                (
                    format!("disk:{}", disk.mount_point),
                    used,
                    self.disk_full_percent,
                )
            })
            .collect();
        if host.memory_total_bytes > 0 {
            let used = host.memory_used_bytes as f64 * 100.0 / host.memory_total_bytes as f64;
            readings.push(("memory".to_owned(), used, self.memory_full_percent));
        }
        let mut events = Vec::new();
        for (resource, used, limit) in readings {
            let ok = used < limit;
            let entry = self
                .resources
                .entry(resource.clone())
                .or_insert((Health::Up, None, at));
            let (health, change) = entry.0.step(ok, at, self.thresholds);
            entry.0 = health;
            let (title, description) = vi::host_problem(&resource, used, limit);
            let mut incident = Incident {
                incident_id: Uuid::nil(),
                phase: IncidentPhase::Opened,
                kind: IncidentKind::Host,
                source: IncidentSource::Detected,
                severity: Severity::High,
                title,
                description,
                target: Some(resource.clone()),
                started_at: at,
                ended_at: None,
                discovered_at: None,
                systems_affected: Vec::new(),
                evidence: Vec::new(),
                consequences: Vec::new(),
            };
            match change {
                Change::WentDown => {
                    let id = new_id();
                    let since = health.since().unwrap_or(at);
                    *entry = (health, Some(id), since);
                    incident.incident_id = id;
                    incident.started_at = since;
                    events.push(incident);
                }
                Change::CameUp { at: ended } => {
                    if let Some(id) = entry.1.take() {
                        incident.incident_id = id;
                        incident.phase = IncidentPhase::Resolved;
                        incident.started_at = entry.2;
                        incident.ended_at = Some(ended);
                        events.push(incident);
                    }
                }
                Change::None => {}
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{expect, Expect};
    use time::Duration;

    use super::*;

    fn target(name: &str, kind: TargetKind) -> TargetInfo {
        TargetInfo {
            name: name.into(),
            kind,
            check: CheckKind::Tcp,
            address: format!("{name}:80"),
            gateway: name == "gateway",
            system: None,
        }
    }

    const T0: OffsetDateTime = time::macros::datetime!(2026-11-23 01:00 UTC);

    /// Runs a script of rounds: each round is one check per target, `+` passing, `-` failing, in
    /// target order, 30 s apart. Prints every incident event as one line.
    fn check(targets: &[TargetInfo], rounds: &[&str], expect: Expect) {
        let mut detector = Detector::new(
            targets.to_vec(),
            Thresholds {
                down_after: 3,
                up_after: 2,
            },
        );
        let mut next = 0u128;
        let mut new_id = || {
            next += 1;
            Uuid::from_u128(next)
        };
        let mut out = String::new();
        for (round, marks) in rounds.iter().enumerate() {
            let at = T0 + Duration::seconds(30 * round as i64);
            for (target, mark) in targets.iter().zip(marks.chars()) {
                let observation = Observation {
                    target: target.name.clone(),
                    at,
                    ok: mark == '+',
                    rtt_ms: (mark == '+').then_some(1.0),
                    error: (mark == '-').then(|| "connection refused".to_owned()),
                };
                for event in detector.observe(&observation, &mut new_id) {
                    let time = |t: OffsetDateTime| {
                        format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
                    };
                    out.push_str(&format!(
                        "round {round}: {:?} #{} {:?} {} start {} end {} evidence {:?} consequences {:?}\n",
                        event.phase,
                        event.incident_id.as_u128(),
                        event.kind,
                        event.title,
                        time(event.started_at),
                        event.ended_at.map_or_else(|| "-".to_owned(), time),
                        event.evidence.iter().map(|e| &e.target).collect::<BTreeSet<_>>(),
                        event.consequences,
                    ));
                }
            }
        }
        expect.assert_eq(&out);
    }

    #[test]
    fn target_down_four_checks_opens_one_incident_with_first_failure_and_first_success() {
        check(
            &[target("portal", TargetKind::Server)],
            &["+", "-", "-", "-", "-", "+", "+", "+"],
            expect![[r#"
                round 3: Opened #1 Server Máy chủ/dịch vụ không phản hồi: portal (portal:80) start 01:00:30 end - evidence {"portal"} consequences []
                round 6: Resolved #1 Server Máy chủ/dịch vụ không phản hồi: portal (portal:80) start 01:00:30 end 01:02:30 evidence {"portal"} consequences []
            "#]],
        );
    }

    #[test]
    fn flapping_and_single_losses_open_nothing() {
        check(
            &[target("portal", TargetKind::Server)],
            &["-", "+", "-", "+", "-", "-", "+", "-", "+"],
            expect![[""]],
        );
    }

    #[test]
    fn a_good_check_inside_an_outage_does_not_end_it() {
        check(
            &[target("portal", TargetKind::Server)],
            &["-", "-", "-", "+", "-", "-", "+", "+"],
            expect![[r#"
                round 2: Opened #1 Server Máy chủ/dịch vụ không phản hồi: portal (portal:80) start 01:00:00 end - evidence {"portal"} consequences []
                round 7: Resolved #1 Server Máy chủ/dịch vụ không phản hồi: portal (portal:80) start 01:00:00 end 01:03:00 evidence {"portal"} consequences []
            "#]],
        );
    }

    #[test]
    fn lan_down_takes_wan_and_servers_as_consequences() {
        let targets = [
            target("gateway", TargetKind::Lan),
            target("so-tttt", TargetKind::Wan),
            target("portal", TargetKind::Server),
        ];
        check(
            &targets,
            &["+++", "---", "---", "---", "---", "+++", "+++"],
            expect![[r#"
                round 3: Opened #1 Lan Mất kết nối mạng nội bộ (LAN): gateway (gateway:80) start 01:00:30 end - evidence {"gateway"} consequences []
                round 3: Updated #1 Lan Mất kết nối mạng nội bộ (LAN): gateway (gateway:80) start 01:00:30 end - evidence {"gateway"} consequences ["so-tttt"]
                round 3: Updated #1 Lan Mất kết nối mạng nội bộ (LAN): gateway (gateway:80) start 01:00:30 end - evidence {"gateway"} consequences ["portal", "so-tttt"]
                round 6: Resolved #1 Lan Mất kết nối mạng nội bộ (LAN): gateway (gateway:80) start 01:00:30 end 01:02:30 evidence {"gateway"} consequences ["portal", "so-tttt"]
            "#]],
        );
    }

    #[test]
    fn wan_targets_crossing_first_wait_for_a_suspect_gateway() {
        // The WAN target starts failing a round earlier than the gateway: no WAN incident in between.
        let targets = [
            target("so-tttt", TargetKind::Wan),
            target("gateway", TargetKind::Lan),
        ];
        check(
            &targets,
            &["++", "-+", "--", "--", "--", "++", "++"],
            expect![[r#"
                round 4: Opened #1 Lan Mất kết nối mạng nội bộ (LAN): gateway (gateway:80) start 01:01:00 end - evidence {"gateway"} consequences ["so-tttt"]
                round 6: Resolved #1 Lan Mất kết nối mạng nội bộ (LAN): gateway (gateway:80) start 01:01:00 end 01:02:30 evidence {"gateway"} consequences ["so-tttt"]
            "#]],
        );
    }

    #[test]
    fn every_wan_target_down_with_lan_up_is_one_wan_incident() {
        let targets = [
            target("gateway", TargetKind::Lan),
            target("so-tttt", TargetKind::Wan),
            target("collector", TargetKind::Wan),
            target("portal", TargetKind::Server),
        ];
        check(
            &targets,
            &[
                "++++", "+--+", "+---", "+---", "+---", "+++-", "+++-", "++++", "++++",
            ],
            expect![[r#"
                round 3: Opened #1 Wan Mất kết nối mạng diện rộng (WAN) start 01:00:30 end - evidence {"collector", "so-tttt"} consequences []
                round 4: Updated #1 Wan Mất kết nối mạng diện rộng (WAN) start 01:00:30 end - evidence {"collector", "so-tttt"} consequences ["portal"]
                round 6: Resolved #1 Wan Mất kết nối mạng diện rộng (WAN) start 01:00:30 end 01:02:30 evidence {"collector", "so-tttt"} consequences ["portal"]
            "#]],
        );
    }

    #[test]
    fn one_wan_target_of_two_down_is_its_own_wan_incident() {
        let targets = [
            target("gateway", TargetKind::Lan),
            target("so-tttt", TargetKind::Wan),
            target("collector", TargetKind::Wan),
        ];
        check(
            &targets,
            &["+++", "++-", "++-", "++-", "+++", "+++"],
            expect![[r#"
                round 3: Opened #1 Wan Mất kết nối mạng diện rộng (WAN): collector (collector:80) start 01:00:30 end - evidence {"collector"} consequences []
                round 5: Resolved #1 Wan Mất kết nối mạng diện rộng (WAN): collector (collector:80) start 01:00:30 end 01:02:00 evidence {"collector"} consequences []
            "#]],
        );
    }

    #[test]
    fn an_internal_lan_server_failing_alone_explains_nothing_else() {
        // The gateway is up; the internal DNS server (LAN) and the portal fail independently.
        let targets = [
            target("gateway", TargetKind::Lan),
            target("dns-noi-bo", TargetKind::Lan),
            target("portal", TargetKind::Server),
        ];
        check(
            &targets,
            &["+++", "+--", "+--", "+--", "+++", "+++"],
            expect![[r#"
                round 3: Opened #1 Lan Thiết bị/máy chủ mạng nội bộ không phản hồi: dns-noi-bo (dns-noi-bo:80) start 01:00:30 end - evidence {"dns-noi-bo"} consequences []
                round 3: Opened #2 Server Máy chủ/dịch vụ không phản hồi: portal (portal:80) start 01:00:30 end - evidence {"portal"} consequences []
                round 5: Resolved #1 Lan Thiết bị/máy chủ mạng nội bộ không phản hồi: dns-noi-bo (dns-noi-bo:80) start 01:00:30 end 01:02:00 evidence {"dns-noi-bo"} consequences []
                round 5: Resolved #2 Server Máy chủ/dịch vụ không phản hồi: portal (portal:80) start 01:00:30 end 01:02:00 evidence {"portal"} consequences []
            "#]],
        );
    }

    #[test]
    fn without_a_marked_gateway_only_every_lan_target_down_is_the_lan() {
        let targets = [
            target("switch-1", TargetKind::Lan),
            target("switch-2", TargetKind::Lan),
            target("portal", TargetKind::Server),
        ];
        check(
            &targets,
            &["+++", "---", "---", "---", "+++", "+++"],
            expect![[r#"
                round 3: Opened #1 Lan Mất kết nối mạng nội bộ (LAN) start 01:00:30 end - evidence {"switch-1", "switch-2"} consequences []
                round 3: Updated #1 Lan Mất kết nối mạng nội bộ (LAN) start 01:00:30 end - evidence {"switch-1", "switch-2"} consequences ["portal"]
                round 5: Resolved #1 Lan Mất kết nối mạng nội bộ (LAN) start 01:00:30 end 01:02:00 evidence {"switch-1", "switch-2"} consequences ["portal"]
            "#]],
        );
    }

    #[test]
    fn host_resources_open_and_resolve() {
        let mut watch = HostWatch::new(
            Thresholds {
                down_after: 2,
                up_after: 1,
            },
            90.0,
            95.0,
        );
        let host = |available: u64| HostSnapshot {
            hostname: "pc".into(),
            os_name: String::new(),
            os_version: String::new(),
            kernel_version: String::new(),
            arch: String::new(),
            uptime_seconds: 0,
            cpu_count: 1,
            cpu_usage_percent: 0.0,
            load_average: None,
            memory_total_bytes: 100,
            memory_used_bytes: 10,
            swap_total_bytes: 0,
            swap_used_bytes: 0,
            disks: vec![cntt_common::wire::Disk {
                mount_point: "/".into(),
                file_system: "ext4".into(),
                total_bytes: 100,
                available_bytes: available,
            }],
            interfaces: vec![],
        };
        let mut id = || Uuid::from_u128(7);
        let mut phases = Vec::new();
        for (minute, available) in [50u64, 5, 4, 3, 40].into_iter().enumerate() {
            let at = T0 + Duration::minutes(minute as i64);
            for event in watch.observe(&host(available), at, &mut id) {
                phases.push(format!(
                    "{minute} {:?} {} {}",
                    event.phase, event.title, event.description
                ));
            }
        }
        expect![[r#"
            [
                "2 Opened Ổ đĩa sắp đầy: / Ổ đĩa / đã dùng 96,0%, vượt ngưỡng 90%.",
                "4 Resolved Ổ đĩa sắp đầy: / Ổ đĩa / đã dùng 60,0%, dưới ngưỡng 90%.",
            ]
        "#]]
        .assert_debug_eq(&phases);
    }
}
