//! `cntt-agent simulate`: a fleet of simulated agents for load tests and dashboards.
//!
//! Each simulated agent is a real agent minus its sensors: it enrolls with
//! [`identity::enroll`](crate::identity::enroll), keeps its own state folder and
//! [`Outbox`](crate::outbox::Outbox), runs its own [`Uplink`](crate::uplink::Uplink) (all of them
//! share one pinned HTTPS client, hence a few hundred connections at most, unless
//! `--client-per-agent` gives each its own client, connections and TLS sessions, as real agents
//! have), and turns probe results
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
//!
//! Agents are spread over the check interval (agent `i` checks in slot `i` of the interval's
//! quarter-second slots), as a real fleet is, rather than all at the same instant.
//!
//! `--backlog CODE:LENGTH` starts the agents of `CODE` as if they came back from a WAN cut of
//! `LENGTH` (e.g. a day): before the run, their outboxes are filled with what they would have
//! recorded meanwhile at their intervals (checks with the WAN failing, heartbeats, the incident
//! the cut opened), dated in the past. `--drain` waits at the end until the outboxes are empty, so
//! what was recorded can be compared with what the collector stored; `--summary FILE` writes the
//! figures (events recorded, pending, lost; the round trips the agents saw, per minute; when the
//! backlogs were delivered) as JSON.

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
use crate::uplink::{SharedOutbox, Timings, Uplink};

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
    /// Agents that start with a backlog, as after a WAN cut.
    pub backlog: Option<Backlog>,
    /// At the end, how long to wait for the outboxes to empty.
    pub drain: Duration,
    /// Where to write the figures of the run as JSON.
    pub summary: Option<PathBuf>,
    /// Each agent gets its own HTTPS client (its own connections and TLS sessions), as real
    /// agents have; otherwise all share one, which needs far fewer connections.
    pub client_per_agent: bool,
}

/// Agents of a unit or district that come back from a WAN cut: `CODE:LENGTH` (e.g. `663:24h`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backlog {
    /// Unit or district code of the agents.
    pub code: String,
    /// How long the cut lasted: their outboxes hold this long of records.
    pub length: Duration,
}

impl std::str::FromStr for Backlog {
    type Err = String;

    fn from_str(text: &str) -> Result<Backlog, String> {
        let usage = || format!("{text:?} is not CODE:LENGTH, e.g. 663:24h");
        let (code, length) = text.split_once(':').ok_or_else(usage)?;
        if code.is_empty() {
            return Err(usage());
        }
        Ok(Backlog {
            code: code.to_owned(),
            length: humantime::parse_duration(length).map_err(|_| usage())?,
        })
    }
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
    /// The HTTPS client its uplink sends through: its own, or the fleet's shared one.
    client: Option<reqwest::Client>,
    disk_used: f64,
    noise: Noise,
    /// Rounds of checks done, backlog included.
    rounds: u64,
    /// Whether it started with a backlog.
    backlogged: bool,
    /// Its outbox counters when the run started: next seq, lost and dropped records.
    start: (u64, u64, u64),
    /// Its last backlog record's seq, until the outbox has acknowledged it.
    backlog_through: Option<u64>,
    /// When the collector had all of its backlog, from the start of the run.
    drained_after: Option<Duration>,
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
    /// Starts the uplink on the agent's `client`, set before the first start.
    fn start_uplink(&mut self, timings: &Arc<Timings>) {
        let Some(client) = self.client.clone() else {
            return;
        };
        let (stop, stopped) = watch::channel(false);
        let uplink = Uplink {
            client,
            server: self.identity.server.clone(),
            credential: self.identity.credential.clone(),
            outbox: self.outbox.clone(),
            wake: self.wake.clone(),
            config: UplinkConfig::default(),
            rejected_dir: self.state_dir.join("rejected"),
            board: Arc::new(Mutex::new(Board::default())),
            timings: Some(timings.clone()),
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
        client: None,
        disk_used: 0.4,
        noise: Noise(0x9e37_79b9_7f4a_7c15 ^ (index as u64 + 1).wrapping_mul(0x1000_0000_01b3)),
        rounds: 0,
        backlogged: false,
        start: (0, 0, 0),
        backlog_through: None,
        drained_after: None,
    })
}

impl SimAgent {
    fn stats(&self) -> crate::outbox::Stats {
        self.outbox
            .lock()
            .expect("outbox lock is never poisoned")
            .stats()
    }

    /// Whether this round is also a heartbeat's.
    fn heartbeat_due(&self, fleet: &Fleet) -> bool {
        let every = (fleet.heartbeat.as_millis() / fleet.probe_every.as_millis().max(1)).max(1);
        u128::from(self.rounds) % every == 0
    }

    /// Fills the outbox with `length` of records, dated in the past, made with the WAN line cut.
    fn fill_backlog(&mut self, fleet: &Fleet, length: Duration, now: OffsetDateTime) {
        let rounds = (length.as_millis() / fleet.probe_every.as_millis().max(1)) as u64;
        let first = now - length;
        for round in 0..rounds {
            let at = first + fleet.probe_every * u32::try_from(round).unwrap_or(u32::MAX);
            let heartbeat = self.heartbeat_due(fleet);
            self.check_round(true, false, at);
            if heartbeat {
                self.heartbeat(false, fleet.heartbeat, at);
            }
            self.rounds += 1;
        }
        self.backlogged = true;
        self.backlog_through = Some(self.stats().next_seq - 1);
    }
}

/// Length of a slot of the check interval: agents are spread over the slots.
const SLOT: Duration = Duration::from_millis(250);

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
    if fleet.probe_every.is_zero() || fleet.heartbeat.is_zero() {
        bail!("--probe-every and --heartbeat must be longer than zero");
    }
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
            if agents.len() % 1000 == 0 {
                tracing::info!(
                    ready = agents.len(),
                    of = fleet.agents,
                    "enrolling simulated agents"
                );
            }
        }
    }
    agents.sort_by_key(|(index, _)| *index);
    let mut agents: Vec<SimAgent> = agents.into_iter().map(|(_, agent)| agent).collect();
    tracing::info!(
        agents = agents.len(),
        units = units.len(),
        "simulated fleet enrolled"
    );
    for agent in &mut agents {
        let stats = agent.stats();
        agent.start = (
            stats.next_seq,
            stats.lost_total,
            stats.dropped_routine_total,
        );
    }
    let mut backlog_until = None;
    if let Some(backlog) = &fleet.backlog {
        let now = OffsetDateTime::now_utc();
        let hit: Vec<&mut SimAgent> = agents
            .iter_mut()
            .filter(|agent| agent.unit == backlog.code || agent.district == backlog.code)
            .collect();
        if hit.is_empty() {
            bail!(
                "--backlog {}: no simulated agent is in that unit or district",
                backlog.code
            );
        }
        let count = hit.len();
        for (done, agent) in hit.into_iter().enumerate() {
            agent.fill_backlog(&fleet, backlog.length, now);
            agent
                .outbox
                .lock()
                .expect("outbox lock is never poisoned")
                .release_writer();
            if (done + 1) % 20 == 0 || done + 1 == count {
                tracing::info!(agents = done + 1, of = count, "backlogs written");
            }
        }
        backlog_until = Some(OffsetDateTime::now_utc());
    }

    let tls = identity::pinned_tls(&fleet.ca)?;
    let timeout = UplinkConfig::default().request_timeout;
    let shared = identity::client_with(tls.clone(), timeout)?;
    let live_timings = Arc::new(Timings::default());
    let backlog_timings = Arc::new(Timings::default());
    let started = tokio::time::Instant::now();
    for agent in &mut agents {
        let timings = if agent.backlogged {
            &backlog_timings
        } else {
            &live_timings
        };
        agent.client = if fleet.client_per_agent {
            // A client of its own, with its own TLS session cache, as a real agent has.
            let mut own = tls.clone();
            own.resumption = rustls::client::Resumption::in_memory_sessions(4);
            Some(identity::client_with(own, timeout)?)
        } else {
            Some(shared.clone())
        };
        agent.start_uplink(timings);
    }
    let slots = (fleet.probe_every.as_millis() / SLOT.as_millis()).max(1) as usize;
    let mut ticker = tokio::time::interval(SLOT.min(fleet.probe_every));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tick = 0usize;
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
        let at = OffsetDateTime::now_utc();
        for (index, agent) in agents.iter_mut().enumerate() {
            if agent.drained_after.is_none() {
                if let Some(through) = agent.backlog_through {
                    if agent.stats().acked_through >= through {
                        agent.drained_after = Some(elapsed);
                    }
                }
            }
            if index % slots != tick % slots {
                continue;
            }
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
            let timings = if agent.backlogged {
                &backlog_timings
            } else {
                &live_timings
            };
            match (link_down, agent.uplink_stop.is_some()) {
                (true, true) => agent.cut_uplink(),
                (false, false) => agent.start_uplink(timings),
                _ => {}
            }
            let heartbeat = agent.heartbeat_due(&fleet);
            agent.check_round(link_down, server_down, at);
            if heartbeat {
                agent.heartbeat(disk_filling, fleet.heartbeat, at);
            }
            agent.rounds += 1;
            // Thousands of outboxes may not each hold a file open between rounds.
            agent
                .outbox
                .lock()
                .expect("outbox lock is never poisoned")
                .release_writer();
        }
        tick += 1;
        // Let the uplinks run between slots on a busy machine.
        tokio::task::yield_now().await;
    }
    let ran = started.elapsed();
    // Nothing is recorded any more; give the uplinks time to deliver what is left.
    if !fleet.drain.is_zero() {
        tracing::info!(within = ?fleet.drain, "draining the outboxes");
        let deadline = tokio::time::Instant::now() + fleet.drain;
        while tokio::time::Instant::now() < deadline
            && agents.iter().any(|agent| agent.stats().records > 0)
        {
            tokio::time::sleep(SLOT).await;
        }
    }
    for agent in &mut agents {
        agent.cut_uplink();
    }
    let mut figures = Figures::of(&agents, ran, started, &live_timings, &backlog_timings);
    figures.backlog_until_ms =
        backlog_until.map(|at| (at.unix_timestamp_nanos() / 1_000_000) as i64);
    figures.client_per_agent = fleet.client_per_agent;
    if let Some(path) = &fleet.summary {
        let text = serde_json::to_string_pretty(&figures).context("encoding the summary")?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    let mut line = format!(
        "simulated {} agents of {} units for {:.0} s: {} events recorded, {} still in their outboxes, {} lost, {} dropped; round trips p99 {} ms (live agents)",
        agents.len(),
        units.len(),
        ran.as_secs_f64(),
        figures.recorded,
        figures.pending,
        figures.lost,
        figures.dropped,
        figures.live.p99_ms.map_or("-".into(), |ms| format!("{ms:.1}")),
    );
    if fleet.backlog.is_some() {
        line.push_str(&format!(
            ", {} ms (agents with a backlog); backlogs delivered after {}",
            figures
                .backlog
                .p99_ms
                .map_or("-".into(), |ms| format!("{ms:.1}")),
            figures
                .backlog_drained_after_s
                .map_or("(not all delivered)".into(), |s| format!("{s:.1} s")),
        ));
    }
    line.push('\n');
    Ok(line)
}

/// The figures of a run, as `--summary` writes them.
#[derive(Debug, serde::Serialize)]
struct Figures {
    agents: usize,
    seconds: f64,
    /// Records appended to the outboxes during the run, backlogs included.
    recorded: u64,
    /// Records still in the outboxes at the end.
    pending: u64,
    /// Records that could not be appended.
    lost: u64,
    /// Routine records the outboxes thinned out.
    dropped: u64,
    backlog_agents: usize,
    backlog_records: u64,
    /// When the last backlog was wholly delivered, from the start; none if one was not.
    backlog_drained_after_s: Option<f64>,
    /// When the backlogs were written (Unix ms): every backlog record is dated before.
    backlog_until_ms: Option<i64>,
    live: RoundTrips,
    backlog: RoundTrips,
    /// Whether each agent had its own HTTPS client (`--client-per-agent`).
    client_per_agent: bool,
}

/// Round trips of delivering requests of one group of agents.
#[derive(Debug, Default, serde::Serialize)]
struct RoundTrips {
    requests: usize,
    /// Delivery attempts that failed and were retried.
    failures: u64,
    /// Requests sent again at once after their connection failed under them.
    resent: u64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    max_ms: Option<f64>,
    /// p99 of each minute of the run, from its start.
    p99_ms_per_minute: Vec<Option<f64>>,
}

impl RoundTrips {
    fn of(samples: &[(std::time::Instant, Duration)], started: tokio::time::Instant) -> RoundTrips {
        fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
            if sorted.is_empty() {
                return None;
            }
            let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
            Some(sorted[rank - 1])
        }
        let started = started.into_std();
        let mut all: Vec<f64> = samples
            .iter()
            .map(|(_, rtt)| rtt.as_secs_f64() * 1000.0)
            .collect();
        all.sort_by(f64::total_cmp);
        let mut minutes: Vec<Vec<f64>> = Vec::new();
        for (ended, rtt) in samples {
            let minute = (ended.saturating_duration_since(started).as_secs() / 60) as usize;
            if minutes.len() <= minute {
                minutes.resize(minute + 1, Vec::new());
            }
            minutes[minute].push(rtt.as_secs_f64() * 1000.0);
        }
        RoundTrips {
            requests: all.len(),
            failures: 0,
            resent: 0,
            p50_ms: quantile(&all, 0.5),
            p99_ms: quantile(&all, 0.99),
            max_ms: all.last().copied(),
            p99_ms_per_minute: minutes
                .into_iter()
                .map(|mut minute| {
                    minute.sort_by(f64::total_cmp);
                    quantile(&minute, 0.99)
                })
                .collect(),
        }
    }
}

impl Figures {
    fn of(
        agents: &[SimAgent],
        ran: Duration,
        started: tokio::time::Instant,
        live: &Timings,
        backlog: &Timings,
    ) -> Figures {
        let mut figures = Figures {
            agents: agents.len(),
            seconds: ran.as_secs_f64(),
            recorded: 0,
            pending: 0,
            lost: 0,
            dropped: 0,
            backlog_agents: 0,
            backlog_records: 0,
            backlog_drained_after_s: None,
            backlog_until_ms: None,
            live: RoundTrips {
                failures: live.failures(),
                resent: live.resent(),
                ..RoundTrips::of(&live.samples(), started)
            },
            backlog: RoundTrips {
                failures: backlog.failures(),
                resent: backlog.resent(),
                ..RoundTrips::of(&backlog.samples(), started)
            },
            client_per_agent: false,
        };
        let mut all_drained = true;
        for agent in agents {
            let stats = agent.stats();
            let (next_seq, lost, dropped) = agent.start;
            let lost = stats.lost_total - lost;
            figures.recorded += stats.next_seq - next_seq - lost;
            figures.lost += lost;
            figures.dropped += stats.dropped_routine_total - dropped;
            figures.pending += stats.records;
            if let Some(through) = agent.backlog_through {
                figures.backlog_agents += 1;
                figures.backlog_records += through + 1 - next_seq;
                match agent.drained_after {
                    Some(after) => {
                        let after = after.as_secs_f64();
                        figures.backlog_drained_after_s =
                            Some(figures.backlog_drained_after_s.unwrap_or(0.0).max(after));
                    }
                    None => all_drained = false,
                }
            }
        }
        if !all_drained {
            figures.backlog_drained_after_s = None;
        }
        figures
    }
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

    #[test]
    fn round_trips_are_summed_up_per_minute() {
        let started = tokio::time::Instant::now();
        let base = started.into_std();
        let mut samples: Vec<(std::time::Instant, Duration)> = (1..=100)
            .map(|ms| (base + Duration::from_secs(1), Duration::from_millis(ms)))
            .collect();
        samples.push((base + Duration::from_secs(130), Duration::from_millis(7)));
        let trips = RoundTrips::of(&samples, started);
        assert_eq!(trips.requests, 101);
        assert_eq!(trips.p50_ms, Some(50.0));
        assert_eq!(trips.p99_ms, Some(99.0));
        assert_eq!(trips.max_ms, Some(100.0));
        // Minute 0 holds the hundred, minute 1 nothing, minute 2 the last one.
        assert_eq!(trips.p99_ms_per_minute, vec![Some(99.0), None, Some(7.0)]);
        let none = RoundTrips::of(&[], started);
        assert_eq!((none.requests, none.p99_ms), (0, None));
    }

    #[test]
    fn backlogs_parse() {
        let backlog: Backlog = "663:24h".parse().unwrap();
        assert_eq!(backlog.code, "663");
        assert_eq!(backlog.length, Duration::from_secs(86_400));
        assert!("663".parse::<Backlog>().is_err());
        assert!(":1h".parse::<Backlog>().is_err());
        assert!("663:soon".parse::<Backlog>().is_err());
    }
}
