//! `cntt-agent simulate`: a fleet of simulated agents for load tests and dashboards.
//!
//! Each simulated agent is a real agent minus its sensors: it enrolls with
//! [`identity::enroll`](crate::identity::enroll), keeps its own state folder and
//! [`Outbox`](crate::outbox::Outbox), runs its own [`Uplink`](crate::uplink::Uplink) (all of them
//! share one pinned HTTPS client, as many agents behind one NAT would), and turns probe results
//! and host samples into incidents with the agent's own [`Detector`] and [`HostWatch`]. Only the
//! readings are made up: round-trip times of a gateway (LAN), a WAN peer and a server, and a host
//! snapshot, with scripted outages:
//!
//! - `link:CODE@START+LENGTH`: the WAN line of every agent whose unit or district is `CODE` is cut:
//!   their uplinks stop (events wait in the outbox, as on a real cut line) and their WAN checks fail.
//! - `server:CODE@START+LENGTH`: the server target of those agents stops answering.
//! - `disk:CODE@START+LENGTH`: their system disk fills up to 97 %, then is cleaned.
//!
//! The units file is CSV with a header, `unit,token[,district]`: an enrollment token (with enough
//! uses) per unit; agents are spread over the units in turn.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use cntt_common::wire::{
    CheckKind, Disk, Heartbeat, HostSnapshot, Payload, ProbeResult, TargetKind,
};
use cntt_common::Secret;
use time::OffsetDateTime;
use tokio::sync::{watch, Notify};
use uuid::Uuid;

use crate::config::UplinkConfig;
use crate::detector::{Detector, HostWatch, Observation, TargetInfo, Thresholds};
use crate::identity::{self, Identity};
use crate::monitor::{record, record_incident};
use crate::outbox::{Class, Outbox, OutboxConfig};
use crate::status::Board;
use crate::uplink::{SharedOutbox, Uplink};

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// How many agents.
    pub agents: usize,
    /// `unit,token[,district]` CSV.
    pub units_file: PathBuf,
    /// Collector URL.
    pub server: String,
    /// The collector's CA.
    pub ca: PathBuf,
    /// Where each agent's state folder goes (`agent-N`); agents found there are reused.
    pub state_dir: PathBuf,
    /// Heartbeat interval.
    pub heartbeat: Duration,
    /// Interval between two rounds of checks.
    pub probe_every: Duration,
    /// How long to run; until `shutdown` when none.
    pub duration: Option<Duration>,
    /// Scripted outages.
    pub outages: Vec<Outage>,
}

/// What a scripted outage breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutageKind {
    /// The WAN line: no uploads, WAN checks fail.
    Link,
    /// The server target.
    Server,
    /// The system disk fills.
    Disk,
}

/// One scripted outage, from `KIND:CODE@START+LENGTH` (e.g. `link:663@2m+5m`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outage {
    /// What breaks.
    pub kind: OutageKind,
    /// Unit or district code of the agents it hits.
    pub code: String,
    /// When it starts, from the start of the simulation.
    pub start: Duration,
    /// How long it lasts.
    pub length: Duration,
}

impl std::str::FromStr for Outage {
    type Err = String;

    fn from_str(text: &str) -> Result<Outage, String> {
        let usage = || format!("{text:?} is not KIND:CODE@START+LENGTH, e.g. link:663@2m+5m");
        let (kind, rest) = text.split_once(':').ok_or_else(usage)?;
        let (code, times) = rest.split_once('@').ok_or_else(usage)?;
        let (start, length) = times.split_once('+').ok_or_else(usage)?;
        let kind = match kind {
            "link" => OutageKind::Link,
            "server" => OutageKind::Server,
            "disk" => OutageKind::Disk,
            _ => return Err(format!("{kind:?} is not link, server or disk")),
        };
        let duration = |text: &str| humantime::parse_duration(text).map_err(|_| usage());
        Ok(Outage {
            kind,
            code: code.to_owned(),
            start: duration(start)?,
            length: duration(length)?,
        })
    }
}

impl Outage {
    fn hits(&self, agent: &SimAgent, kind: OutageKind, elapsed: Duration) -> bool {
        self.kind == kind
            && (self.code == agent.unit || self.code == agent.district)
            && elapsed >= self.start
            && elapsed < self.start + self.length
    }
}

/// A unit of the units file.
#[derive(Debug, Clone)]
struct UnitEntry {
    unit: String,
    token: String,
    district: String,
}

fn read_units(path: &Path) -> anyhow::Result<Vec<UnitEntry>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut units = Vec::new();
    for (number, line) in text.lines().enumerate().skip(1) {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        match fields.as_slice() {
            [""] => continue,
            [unit, token] => units.push(UnitEntry {
                unit: (*unit).to_owned(),
                token: (*token).to_owned(),
                district: (*unit).to_owned(),
            }),
            [unit, token, district, ..] => units.push(UnitEntry {
                unit: (*unit).to_owned(),
                token: (*token).to_owned(),
                district: (*district).to_owned(),
            }),
            _ => bail!(
                "{} line {}: expected unit,token[,district]",
                path.display(),
                number + 1
            ),
        }
    }
    if units.is_empty() {
        bail!(
            "{} lists no units (header unit,token[,district], then one line per unit)",
            path.display()
        );
    }
    Ok(units)
}

/// A small deterministic generator, so runs are repeatable without a dependency.
#[derive(Debug, Clone)]
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One simulated agent.
struct SimAgent {
    unit: String,
    district: String,
    identity: Identity,
    state_dir: PathBuf,
    outbox: SharedOutbox,
    wake: Arc<Notify>,
    detector: Detector,
    host_watch: HostWatch,
    /// Turning it true stops the running uplink; none while the link is cut.
    uplink_stop: Option<watch::Sender<bool>>,
    disk_used: f64,
    noise: Noise,
}

const GATEWAY: &str = "gateway";
const WAN_PEER: &str = "wan-peer";
const SERVER: &str = "server";

fn targets() -> Vec<TargetInfo> {
    [
        (GATEWAY, TargetKind::Lan, "192.168.1.1:443", true),
        (WAN_PEER, TargetKind::Wan, "10.67.0.1:443", false),
        (SERVER, TargetKind::Server, "192.168.1.10:443", false),
    ]
    .into_iter()
    .map(|(name, kind, address, gateway)| TargetInfo {
        name: name.to_owned(),
        kind,
        check: CheckKind::Tcp,
        address: address.to_owned(),
        gateway,
        system: None,
    })
    .collect()
}

impl SimAgent {
    fn start_uplink(&mut self, client: &reqwest::Client) {
        let (stop, stopped) = watch::channel(false);
        let uplink = Uplink {
            client: client.clone(),
            server: self.identity.server.clone(),
            credential: self.identity.credential.clone(),
            outbox: self.outbox.clone(),
            wake: self.wake.clone(),
            config: UplinkConfig::default(),
            rejected_dir: self.state_dir.join("rejected"),
            board: Arc::new(Mutex::new(Board::default())),
        };
        tokio::spawn(uplink.run(stopped));
        self.uplink_stop = Some(stop);
    }

    fn cut_uplink(&mut self) {
        if let Some(stop) = self.uplink_stop.take() {
            let _ = stop.send(true);
        }
    }

    /// One round of checks: records each result and the incidents the detector finds.
    fn check_round(&mut self, link_down: bool, server_down: bool, at: OffsetDateTime) {
        for info in targets() {
            let (ok, base_ms) = match info.kind {
                TargetKind::Lan => (true, 0.6),
                TargetKind::Wan => (!link_down, 12.0),
                _ => (!server_down, 2.5),
            };
            let rtt_ms = ok.then(|| base_ms * (0.7 + self.noise.next()));
            let error = (!ok).then(|| "connection timed out".to_owned());
            let result = ProbeResult {
                target: info.name.clone(),
                target_kind: info.kind,
                check: info.check,
                address: info.address.clone(),
                ok,
                rtt_ms,
                error: error.clone(),
                http_status: None,
                cert_not_after: None,
            };
            if let Err(err) = record(
                &self.outbox,
                &self.wake,
                Class::Routine,
                at,
                &Payload::ProbeResult(result),
            ) {
                tracing::warn!(error = %err, "could not record a probe result");
            }
            let observation = Observation {
                target: info.name,
                at,
                ok,
                rtt_ms,
                error,
            };
            for incident in self.detector.observe(&observation, &mut Uuid::new_v4) {
                record_incident(&self.outbox, &self.wake, incident);
            }
        }
    }

    /// A heartbeat with a made-up host, and the host incidents it causes.
    fn heartbeat(&mut self, disk_filling: bool, interval: Duration, at: OffsetDateTime) {
        self.disk_used = if disk_filling {
            (self.disk_used + 0.08).min(0.97)
        } else {
            0.35 + 0.2 * self.noise.next()
        };
        let total = 256u64 << 30;
        let memory_total = 8u64 << 30;
        let host = HostSnapshot {
            hostname: format!("sim-{}", self.identity.agent_id.simple()),
            os_name: "Windows".into(),
            os_version: "10".into(),
            kernel_version: String::new(),
            arch: "x86_64".into(),
            uptime_seconds: 86_400,
            cpu_count: 4,
            cpu_usage_percent: (5.0 + 60.0 * self.noise.next()) as f32,
            load_average: None,
            memory_total_bytes: memory_total,
            memory_used_bytes: (memory_total as f64 * (0.4 + 0.3 * self.noise.next())) as u64,
            swap_total_bytes: 0,
            swap_used_bytes: 0,
            disks: vec![Disk {
                mount_point: "C:\\".into(),
                file_system: "NTFS".into(),
                total_bytes: total,
                available_bytes: (total as f64 * (1.0 - self.disk_used)) as u64,
            }],
            interfaces: Vec::new(),
        };
        for incident in self.host_watch.observe(&host, at, &mut Uuid::new_v4) {
            record_incident(&self.outbox, &self.wake, incident);
        }
        let heartbeat = Heartbeat {
            interval_seconds: u32::try_from(interval.as_secs()).unwrap_or(u32::MAX).max(1),
            host,
            outbox: None,
        };
        if let Err(err) = record(
            &self.outbox,
            &self.wake,
            Class::Routine,
            at,
            &Payload::Heartbeat(heartbeat),
        ) {
            tracing::warn!(error = %err, "could not record a heartbeat");
        }
    }
}

/// Enrolls (or reloads) agent `index` of `unit`.
async fn prepare(fleet: &Fleet, index: usize, unit: &UnitEntry) -> anyhow::Result<SimAgent> {
    let state_dir = fleet.state_dir.join(format!("agent-{index}"));
    let identity = match Identity::load(&state_dir) {
        Ok(identity) => identity,
        Err(_) => identity::enroll(
            &fleet.server,
            &Secret::new(unit.token.clone()),
            &fleet.ca,
            &state_dir,
            false,
        )
        .await
        .with_context(|| format!("enrolling simulated agent {index} of unit {}", unit.unit))?,
    };
    let (outbox, _report) = Outbox::open(&state_dir.join("outbox"), OutboxConfig::default())
        .with_context(|| format!("opening the outbox of simulated agent {index}"))?;
    let thresholds = Thresholds {
        down_after: 3,
        up_after: 2,
    };
    Ok(SimAgent {
        unit: unit.unit.clone(),
        district: unit.district.clone(),
        identity,
        state_dir,
        outbox: Arc::new(Mutex::new(outbox)),
        wake: Arc::new(Notify::new()),
        detector: Detector::new(targets(), thresholds),
        host_watch: HostWatch::new(thresholds, 90.0, 95.0),
        uplink_stop: None,
        disk_used: 0.4,
        noise: Noise(0x9e37_79b9_7f4a_7c15 ^ (index as u64 + 1).wrapping_mul(0x1000_0000_01b3)),
    })
}

/// Runs the fleet until `duration` passes or `shutdown` completes; returns a summary line.
///
/// # Errors
///
/// When the units file is unusable, or an agent cannot enroll or open its outbox.
pub async fn run(
    fleet: Fleet,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<String> {
    let units = read_units(&fleet.units_file)?;
    std::fs::create_dir_all(&fleet.state_dir)
        .with_context(|| format!("creating {}", fleet.state_dir.display()))?;
    // Enroll a few at a time: the collector hashes each credential.
    let mut agents = Vec::with_capacity(fleet.agents);
    let fleet_ref = Arc::new(fleet.clone());
    let mut pending = tokio::task::JoinSet::new();
    let mut next = 0;
    while next < fleet.agents || !pending.is_empty() {
        while next < fleet.agents && pending.len() < 16 {
            let (fleet, unit, index) = (fleet_ref.clone(), units[next % units.len()].clone(), next);
            pending.spawn(async move { (index, prepare(&fleet, index, &unit).await) });
            next += 1;
        }
        if let Some(joined) = pending.join_next().await {
            let (index, agent) = joined.context("an enrollment task failed")?;
            agents.push((index, agent?));
        }
    }
    agents.sort_by_key(|(index, _)| *index);
    let mut agents: Vec<SimAgent> = agents.into_iter().map(|(_, agent)| agent).collect();
    tracing::info!(
        agents = agents.len(),
        units = units.len(),
        "simulated fleet enrolled"
    );

    let client = identity::pinned_client(&fleet.ca, UplinkConfig::default().request_timeout)?;
    for agent in &mut agents {
        agent.start_uplink(&client);
    }
    let started = tokio::time::Instant::now();
    let mut ticker = tokio::time::interval(fleet.probe_every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_heartbeat: Option<tokio::time::Instant> = None;
    let mut rounds = 0u64;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = &mut shutdown => break,
        }
        let elapsed = started.elapsed();
        if fleet.duration.is_some_and(|duration| elapsed >= duration) {
            break;
        }
        let heartbeat_due = last_heartbeat.is_none_or(|at| at.elapsed() >= fleet.heartbeat);
        if heartbeat_due {
            last_heartbeat = Some(tokio::time::Instant::now());
        }
        let at = OffsetDateTime::now_utc();
        for agent in &mut agents {
            let broken = |kind| {
                fleet
                    .outages
                    .iter()
                    .any(|outage| outage.hits(agent, kind, elapsed))
            };
            let (link_down, server_down, disk_filling) = (
                broken(OutageKind::Link),
                broken(OutageKind::Server),
                broken(OutageKind::Disk),
            );
            match (link_down, agent.uplink_stop.is_some()) {
                (true, true) => agent.cut_uplink(),
                (false, false) => agent.start_uplink(&client),
                _ => {}
            }
            agent.check_round(link_down, server_down, at);
            if heartbeat_due {
                agent.heartbeat(disk_filling, fleet.heartbeat, at);
            }
        }
        rounds += 1;
        // Let the uplinks run between rounds on a busy machine.
        tokio::task::yield_now().await;
    }
    for agent in &mut agents {
        agent.cut_uplink();
    }
    let pending: u64 = agents
        .iter()
        .map(|agent| {
            agent
                .outbox
                .lock()
                .expect("outbox lock is never poisoned")
                .stats()
                .records
        })
        .sum();
    Ok(format!(
        "simulated {} agents of {} units for {} rounds; {pending} events still in their outboxes\n",
        agents.len(),
        units.len(),
        rounds
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_parse() {
        let outage: Outage = "link:663@2m+5m".parse().unwrap();
        assert_eq!(
            outage,
            Outage {
                kind: OutageKind::Link,
                code: "663".into(),
                start: Duration::from_secs(120),
                length: Duration::from_secs(300),
            }
        );
        assert!("flood:663@1m+1m".parse::<Outage>().is_err());
        assert!("disk:663".parse::<Outage>().is_err());
    }
}
