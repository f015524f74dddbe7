//! Measures how much the collector's database grows per agent per day, on SQLite and PostgreSQL,
//! raw and in the steady state the retention job keeps (`scripts/dbgrowth` runs it; method and
//! figures in `docs/footprint.md`, section "Database growth").
//!
//! It spawns a real collector in this process (the test harness), enrolls one agent and posts one
//! day of that agent's traffic at the agent's default settings through the real ingest API:
//! heartbeats at the default interval carrying real host snapshots from this machine
//! (`cntt_agent::host`), results of the three default targets (gateway, collector, resolver) at
//! the default probe interval shaped by the agent's own code, and the incidents the agent's own
//! `Detector` derives from a scripted WAN outage, a LAN outage and short resolver blips, plus one
//! security incident an officer files. It measures the database before and after (SQLite: file
//! size after `PRAGMA wal_checkpoint(TRUNCATE)`; PostgreSQL: `pg_database_size`), then runs
//! retention with `now` shifted past the raw retention and measures what stays after a vacuum.
//!
//! The day is sent for K agents at once (`--sample-agents`, 10 by default), their batches
//! interleaved in time as a collector receives them, and every figure is divided by K: the first
//! pages of each table and index are then a small share of what is measured.
//!
//! Usage: `dbgrowth [--db sqlite|postgres|both] [--sample-agents K] [--agents N] [--days D]`; N and
//! D only scale the printed projection. Progress goes to stderr, the report (Markdown) to stdout.

use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use cntt_agent::config::Config as AgentConfig;
use cntt_agent::detector::{Detector, Observation, Thresholds};
use cntt_agent::host::HostSampler;
use cntt_agent::monitor::target_info;
use cntt_agent::probe::{Check, Outcome, Target};
use cntt_collector::config::RetentionConfig;
use cntt_collector::store::{RetentionPolicy, Store};
use cntt_common::wire::{
    Event, Heartbeat, HostSnapshot, Incident, IncidentKind, IncidentPhase, IncidentSource,
    OutboxState, Payload, Severity, TargetKind,
};
use e2e::{spawn_collector, test_db, Db, TestDb};
use sqlx::any::AnyConnectOptions;
use sqlx::{ConnectOptions, Connection, Executor};
use time::OffsetDateTime;

/// The collector's host name as agents see it by default; it decides the default targets.
const COLLECTOR_HOST: &str = "collector.sotttt.daknong.gov.vn";

/// What to measure and how to project it.
struct Options {
    dbs: Vec<Db>,
    /// Agents whose day is actually sent; the figures are divided by it.
    sample_agents: usize,
    agents: u64,
    days: u64,
}

fn parse_options() -> anyhow::Result<Options> {
    let mut options = Options {
        dbs: vec![Db::Sqlite, Db::Postgres],
        sample_agents: 10,
        agents: 1,
        days: 365,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .with_context(|| format!("{name} needs a value (try --help)"))
        };
        match arg.as_str() {
            "--db" => {
                options.dbs = match value("--db")?.as_str() {
                    "sqlite" => vec![Db::Sqlite],
                    "postgres" => vec![Db::Postgres],
                    "both" => vec![Db::Sqlite, Db::Postgres],
                    other => bail!("--db {other:?}: expected sqlite, postgres or both"),
                }
            }
            "--sample-agents" => {
                options.sample_agents = value("--sample-agents")?
                    .parse()
                    .context("--sample-agents")?
            }
            "--agents" => options.agents = value("--agents")?.parse().context("--agents")?,
            "--days" => options.days = value("--days")?.parse().context("--days")?,
            "-h" | "--help" => {
                eprintln!("usage: dbgrowth [--db sqlite|postgres|both] [--sample-agents K] [--agents N] [--days D]");
                std::process::exit(0);
            }
            other => bail!("unknown option {other} (try --help)"),
        }
    }
    if options.agents == 0 || options.days == 0 || options.sample_agents == 0 {
        bail!("--sample-agents, --agents and --days must be at least 1");
    }
    Ok(options)
}

/// The default targets `cntt_agent::effective_targets` makes for an agent enrolled with
/// `https://collector.sotttt.daknong.gov.vn:8443` on a LAN whose gateway is 192.168.1.1. (That
/// function reads this machine's routing table, so the measurement spells the result out.)
fn default_targets(config: &AgentConfig) -> Vec<Target> {
    let (interval, timeout) = (config.probes.interval, config.probes.timeout);
    let target = |name: &str, kind, check, gateway| Target {
        name: name.into(),
        kind,
        check,
        interval,
        timeout,
        gateway,
        system: None,
    };
    vec![
        target(
            "gateway",
            TargetKind::Lan,
            Check::Icmp {
                host: "192.168.1.1".into(),
            },
            true,
        ),
        target(
            "collector",
            TargetKind::Wan,
            Check::Tcp {
                address: format!("{COLLECTOR_HOST}:8443"),
            },
            false,
        ),
        target(
            "resolver",
            TargetKind::Server,
            Check::Dns {
                server: None,
                query: COLLECTOR_HOST.into(),
            },
            false,
        ),
    ]
}

/// A small deterministic generator (xorshift64*), so every run sends the same day.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A round-trip time between `low` and `high` microseconds, with nanosecond detail like a
    /// measured one.
    fn rtt(&mut self, low_us: u64, high_us: u64) -> Duration {
        Duration::from_nanos(low_us * 1000 + self.next() % ((high_us - low_us) * 1000))
    }
}

/// One day of one agent's events, in recording order.
struct Day {
    events: Vec<Event>,
    heartbeats: usize,
    probe_results: u64,
    incident_phases: u64,
    incidents: u64,
}

/// Whether a target's check fails at `minute` of the day: a 20-minute WAN outage at 10:00 (the
/// collector unreachable), a 5-minute LAN outage at 14:00 (everything fails with the gateway), and
/// single failed DNS answers now and then (fewer in a row than make an incident).
fn fails(target: &str, minute: f64) -> bool {
    let wan = (600.0..620.0).contains(&minute);
    let lan = (840.0..845.0).contains(&minute);
    match target {
        "gateway" => lan,
        "collector" => wan || lan,
        _ => lan || (minute.fract() == 0.0 && (minute as u64).is_multiple_of(97)),
    }
}

/// Host snapshots of this machine, one per heartbeat of a day, shared by every sampled agent.
fn host_day(config: &AgentConfig) -> Vec<HostSnapshot> {
    let n = 86_400 / config.heartbeat_interval.as_secs().max(1);
    eprintln!("sampling this host {n} times for a day of heartbeats");
    let mut sampler = HostSampler::default();
    (0..n).map(|_| sampler.sample()).collect()
}

/// One agent's day from `start`: heartbeats, every check of the default targets (failing as
/// [`fails`] says) and the incidents the agent's detector makes of them, and one officer's report;
/// `seed` varies the round-trip times between agents.
fn one_day(config: &AgentConfig, start: OffsetDateTime, hosts: &[HostSnapshot], seed: u64) -> Day {
    let targets = default_targets(config);
    let thresholds = Thresholds {
        down_after: config.probes.down_after,
        up_after: config.probes.up_after,
    };
    let mut detector = Detector::new(targets.iter().map(target_info).collect(), thresholds);
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15 ^ seed.wrapping_mul(0x1000_0000_01b3));
    let day = Duration::from_secs(86_400);
    let heartbeat_every = config.heartbeat_interval;
    // (time, payload), gathered per source, then put in time order.
    let mut records: Vec<(OffsetDateTime, Payload)> = Vec::new();
    let mut at = Duration::ZERO;
    let mut heartbeats = 0;
    while at < day {
        let host = hosts[heartbeats % hosts.len()].clone();
        let outbox = OutboxState {
            pending: noise.next() % 4,
            bytes: 4096 + noise.next() % 60_000,
            dropped_routine_total: 0,
            unreadable_total: 0,
            lost_total: 0,
            recovery_notes: Vec::new(),
        };
        let heartbeat = Heartbeat {
            interval_seconds: u32::try_from(heartbeat_every.as_secs()).unwrap_or(u32::MAX),
            host,
            outbox: Some(Box::new(outbox)),
        };
        records.push((start + at, Payload::Heartbeat(heartbeat)));
        heartbeats += 1;
        at += heartbeat_every;
    }
    let mut probe_results = 0;
    let (mut incident_phases, mut incidents) = (0, 0);
    let mut at = Duration::ZERO;
    while at < day {
        for target in &targets {
            let when = start + at + Duration::from_millis(200 * probe_results % 1000);
            let minute = at.as_secs_f64() / 60.0;
            let outcome = if fails(&target.name, minute) {
                Outcome::down(format!("timed out after {}s", target.timeout.as_secs()))
            } else {
                let (low, high) = match target.check {
                    Check::Icmp { .. } => (300, 1_800),
                    Check::Tcp { .. } => (6_000, 35_000),
                    _ => (900, 25_000),
                };
                Outcome::up(noise.rtt(low, high))
            };
            let result = target.result(&outcome);
            let observation = Observation {
                target: target.name.clone(),
                at: when,
                ok: outcome.ok,
                rtt_ms: result.rtt_ms,
                error: outcome.error.clone(),
            };
            records.push((when, Payload::ProbeResult(result)));
            probe_results += 1;
            for incident in detector.observe(&observation, &mut uuid::Uuid::new_v4) {
                incident_phases += 1;
                if incident.phase == IncidentPhase::Opened {
                    incidents += 1;
                }
                records.push((when, Payload::Incident(Box::new(incident))));
            }
        }
        at += config.probes.interval;
    }
    // An officer files a security incident at 09:12 (`cntt-agent incident report`).
    let filed = start + Duration::from_secs(9 * 3600 + 12 * 60);
    let report = Incident {
        incident_id: uuid::Uuid::new_v4(),
        phase: IncidentPhase::Opened,
        kind: IncidentKind::Security,
        source: IncidentSource::Manual,
        severity: Severity::High,
        title: "Phát hiện mã độc trên máy kế toán".into(),
        description: "Phần mềm diệt virus cảnh báo tệp đính kèm thư điện tử; đã ngắt mạng máy."
            .into(),
        target: None,
        started_at: filed,
        ended_at: None,
        discovered_at: Some(filed),
        systems_affected: vec!["Máy kế toán 02".into()],
        evidence: Vec::new(),
        consequences: Vec::new(),
    };
    records.push((filed, Payload::Incident(Box::new(report))));
    incident_phases += 1;
    incidents += 1;
    records.sort_by_key(|(at, _)| *at);
    let events = records
        .iter()
        .enumerate()
        .map(|(i, (at, payload))| Event::new(i as u64 + 1, *at, payload))
        .collect();
    Day {
        events,
        heartbeats,
        probe_results,
        incident_phases,
        incidents,
    }
}

/// Sizes of one database at one moment.
#[derive(Debug, Clone, Default)]
struct Size {
    /// The whole database: the SQLite file (with its WAL, emptied first) or `pg_database_size`.
    total: i64,
    /// Each table with its indexes, largest first.
    tables: Vec<(String, i64)>,
}

/// A connection of our own to the collector's database, for measuring it.
struct Probe {
    conn: sqlx::AnyConnection,
    db: Db,
    file: Option<PathBuf>,
}

impl Probe {
    async fn open(test_db: &TestDb, db: Db) -> anyhow::Result<Probe> {
        let options = AnyConnectOptions::from_str(&test_db.url)?.disable_statement_logging();
        let mut conn = options.connect().await.context("connecting to measure")?;
        if db == Db::Sqlite {
            // The collector's own connections may be writing; wait for them like they wait.
            conn.execute("PRAGMA busy_timeout = 10000").await?;
        }
        let file = (db == Db::Sqlite).then(|| {
            PathBuf::from(
                test_db
                    .url
                    .trim_start_matches("sqlite://")
                    .split('?')
                    .next()
                    .unwrap_or_default(),
            )
        });
        Ok(Probe { conn, db, file })
    }

    /// Gives back the space of deleted rows: `VACUUM` (SQLite) or `VACUUM FULL` (PostgreSQL).
    async fn vacuum(&mut self) -> anyhow::Result<()> {
        let statement = match self.db {
            Db::Sqlite => "VACUUM",
            Db::Postgres => "VACUUM FULL",
        };
        self.conn.execute(statement).await.context("vacuuming")?;
        Ok(())
    }

    async fn size(&mut self) -> anyhow::Result<Size> {
        match self.db {
            Db::Sqlite => {
                self.conn
                    .execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    .await
                    .context("checkpointing the WAL")?;
                let file = self.file.as_ref().expect("SQLite has a file");
                let wal = PathBuf::from(format!("{}-wal", file.display()));
                let len = |path: &PathBuf| std::fs::metadata(path).map_or(0, |meta| meta.len());
                let total = i64::try_from(len(file) + len(&wal))?;
                // dbstat counts pages per table and index; group indexes under their table.
                let tables: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT m.tbl_name, CAST(SUM(d.pgsize) AS INTEGER) FROM dbstat d
                     JOIN sqlite_master m ON m.name = d.name GROUP BY m.tbl_name ORDER BY 2 DESC",
                )
                .fetch_all(&mut self.conn)
                .await
                .unwrap_or_default();
                Ok(Size { total, tables })
            }
            Db::Postgres => {
                let total: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
                    .fetch_one(&mut self.conn)
                    .await
                    .context("reading pg_database_size")?;
                let tables: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT relname::TEXT, pg_total_relation_size(relid) FROM pg_stat_user_tables
                     ORDER BY 2 DESC",
                )
                .fetch_all(&mut self.conn)
                .await
                .context("reading table sizes")?;
                Ok(Size { total, tables })
            }
        }
    }
}

/// What one backend measured.
struct Measured {
    db: Db,
    /// The engine's version.
    version: String,
    /// Agents whose day was sent.
    agents: i64,
    baseline: Size,
    after_day: Size,
    after_retention: Size,
    requests: usize,
    elapsed: Duration,
}

impl Measured {
    /// Bytes one agent's day added.
    fn raw_per_day(&self) -> i64 {
        (self.after_day.total - self.baseline.total) / self.agents
    }

    /// Bytes of one agent's day still there once retention rolled it up (after a vacuum).
    fn kept_per_day(&self) -> i64 {
        (self.after_retention.total - self.baseline.total) / self.agents
    }

    /// Growth of one table (with its indexes) per agent over the day, and what retention left.
    fn table(&self, name: &str) -> (i64, i64) {
        let of = |size: &Size| {
            size.tables
                .iter()
                .find(|(table, _)| table == name)
                .map_or(0, |(_, bytes)| *bytes)
        };
        let base = of(&self.baseline);
        (
            (of(&self.after_day) - base) / self.agents,
            (of(&self.after_retention) - base) / self.agents,
        )
    }
}

/// Units the sampled agents are spread over (the harness's test units).
const UNITS: [&str; 4] = ["67.S.TTTT", "663", "24700", "664"];

/// How much of an agent's day one request carries: its events of ten minutes, so the agents'
/// batches interleave in time as they reach a real collector.
const WINDOW: Duration = Duration::from_secs(600);

async fn measure(db: Db, days: &[Day]) -> anyhow::Result<Measured> {
    let name = match db {
        Db::Sqlite => "sqlite",
        Db::Postgres => "postgres",
    };
    let started = Instant::now();
    let test_db = test_db(db).await;
    let collector = spawn_collector(&test_db).await;
    let mut agents = Vec::new();
    for i in 0..days.len() {
        agents.push(collector.enroll_agent(UNITS[i % UNITS.len()]).await);
    }
    let mut probe = Probe::open(&test_db, db).await?;
    // The collector runs retention once as it starts; let that begin before the baseline.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let holder: String =
            sqlx::query_scalar("SELECT holder FROM job_locks WHERE name = 'retention'")
                .fetch_one(&mut probe.conn)
                .await?;
        if !holder.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            bail!("the collector did not run retention as it started");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let version: String = sqlx::query_scalar(match db {
        Db::Sqlite => "SELECT sqlite_version()",
        Db::Postgres => "SELECT current_setting('server_version')",
    })
    .fetch_one(&mut probe.conn)
    .await?;
    probe.vacuum().await?;
    let baseline = probe.size().await?;
    let total: usize = days.iter().map(|day| day.events.len()).sum();
    eprintln!(
        "{name}: baseline {} bytes; sending {total} events of {} agents",
        baseline.total,
        days.len()
    );
    // Each agent's day in ten-minute requests, sent window by window across the agents.
    let first = days
        .iter()
        .filter_map(|day| day.events.first())
        .map(|event| event.at)
        .min()
        .context("no events to send")?;
    let mut queues: Vec<std::collections::VecDeque<&Event>> =
        days.iter().map(|day| day.events.iter().collect()).collect();
    let (mut sent, mut requests, mut window_end) = (0, 0, first + WINDOW);
    let mut reported = Instant::now();
    while queues.iter().any(|queue| !queue.is_empty()) {
        for (agent, queue) in agents.iter().zip(queues.iter_mut()) {
            let mut events = Vec::new();
            while queue.front().is_some_and(|event| event.at < window_end) {
                events.extend(queue.pop_front().cloned());
            }
            if events.is_empty() {
                continue;
            }
            let n_events = events.len();
            let ack = collector.ingest(agent, events).await;
            if ack.accepted as usize != n_events {
                bail!(
                    "the collector accepted {} of {n_events} events",
                    ack.accepted
                );
            }
            sent += n_events;
            requests += 1;
        }
        window_end += WINDOW;
        if reported.elapsed() > Duration::from_secs(5) || sent == total {
            eprintln!("{name}: {sent}/{total} events stored in {requests} requests");
            reported = Instant::now();
        }
    }
    let after_day = probe.size().await?;
    eprintln!(
        "{name}: after one day {} bytes; running retention as if 31 days later",
        after_day.total
    );
    let later = OffsetDateTime::now_utc() + Duration::from_secs(31 * 86_400);
    let policy = RetentionPolicy::from(&RetentionConfig::default());
    let summary = collector
        .store
        .retention_run(later, &policy, "dbgrowth")
        .await?;
    eprintln!(
        "{name}: retention rolled up {} probe results into {} agent-target-hours, deleted {} events",
        summary.probe_results_rolled_up, summary.rollup_hours, summary.events_deleted
    );
    for (agent, day) in agents.iter().zip(days) {
        check_rolled_up(&collector.store, &agent.identity.agent_id.to_string(), day).await?;
    }
    probe.vacuum().await?;
    let after_retention = probe.size().await?;
    probe.conn.close().await.ok();
    collector.stop().await;
    test_db.drop_database().await;
    Ok(Measured {
        db,
        version,
        agents: i64::try_from(days.len())?,
        baseline,
        after_day,
        after_retention,
        requests,
        elapsed: started.elapsed(),
    })
}

/// Checks that the roll-ups hold every probe result of an agent's day, so the figures measure a
/// retention that did its work.
async fn check_rolled_up(store: &Store, agent_id: &str, day: &Day) -> anyhow::Result<()> {
    let rollups = store.probe_rollups_of_agent(agent_id).await?;
    let checks: i64 = rollups.iter().map(|rollup| rollup.checks).sum();
    if u64::try_from(checks)? != day.probe_results {
        bail!(
            "the roll-ups count {checks} checks; {} were sent",
            day.probe_results
        );
    }
    Ok(())
}

fn mib(bytes: i64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn gib(bytes: f64) -> String {
    format!("{:.2} GiB", bytes / (1024.0 * 1024.0 * 1024.0))
}

fn report(options: &Options, config: &AgentConfig, days: &[Day], measured: &[Measured]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let raw_days = RetentionConfig::default().raw.as_secs() / 86_400;
    let day = &days[0];
    let json_bytes: usize = days
        .iter()
        .map(|day| serde_json::to_vec(&day.events).map_or(0, |json| json.len()))
        .sum();
    let _ = writeln!(
        out,
        "One agent's day at the agent's defaults: a heartbeat every {} s with this machine's host snapshot, \
         the 3 default targets (gateway ICMP, collector TCP, resolver DNS) every {} s.",
        config.heartbeat_interval.as_secs(),
        config.probes.interval.as_secs()
    );
    let _ = writeln!(
        out,
        "Per agent: {} events ({} heartbeats, {} probe results, {} incident phases of {} incidents), {} of JSON.",
        day.events.len(),
        day.heartbeats,
        day.probe_results,
        day.incident_phases,
        day.incidents,
        mib(i64::try_from(json_bytes / days.len()).unwrap_or(i64::MAX)),
    );
    let mut by_kind: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
    for event in &day.events {
        let entry = by_kind.entry(event.kind.as_str()).or_default();
        entry.0 += 1;
        entry.1 += serde_json::to_vec(event).map_or(0, |json| json.len());
    }
    let kinds: Vec<String> = by_kind
        .iter()
        .map(|(kind, (n, bytes))| format!("{kind} {n} × {} bytes", bytes / n))
        .collect();
    let _ = writeln!(
        out,
        "Mean JSON size of an event as sent: {}.",
        kinds.join(", ")
    );
    let _ = writeln!(
        out,
        "Sent for {} agent(s) at once; every figure below is per agent (the total divided by {}).\n",
        days.len(),
        days.len()
    );
    out.push_str("| Backend | Raw growth per agent per day | Kept per agent per day after retention | Steady state per agent after a year |\n");
    out.push_str("|---|--:|--:|--:|\n");
    for m in measured {
        let steady = raw_days as i64 * m.raw_per_day() + 365 * m.kept_per_day();
        let _ = writeln!(
            out,
            "| {} | {} bytes ({}) | {} bytes | {} ({raw_days} days raw + 365 days kept) |",
            backend_name(m.db),
            m.raw_per_day(),
            mib(m.raw_per_day()),
            m.kept_per_day(),
            mib(steady),
        );
    }
    let _ = writeln!(
        out,
        "\nGrowth per agent by table (with its indexes) over the day, and what retention left of it, in bytes:\n"
    );
    let mut names: Vec<String> = Vec::new();
    for m in measured {
        for (name, _) in &m.after_day.tables {
            if !names.contains(name) && m.table(name) != (0, 0) {
                names.push(name.clone());
            }
        }
    }
    out.push_str("| Table |");
    for m in measured {
        let _ = write!(out, " {0} day | {0} kept |", backend_name(m.db));
    }
    out.push_str("\n|---|");
    for _ in measured {
        out.push_str("--:|--:|");
    }
    out.push('\n');
    for name in &names {
        let _ = write!(out, "| `{name}` |");
        for m in measured {
            let (day, kept) = m.table(name);
            let _ = write!(out, " {day} | {kept} |");
        }
        out.push('\n');
    }
    let (agents, n_days) = (options.agents, options.days);
    let _ = writeln!(
        out,
        "\nProjection for {agents} agent(s) over {n_days} day(s):\n"
    );
    out.push_str("| Backend | With retention | Without retention |\n|---|--:|--:|\n");
    for m in measured {
        let raw_kept = n_days.min(raw_days) as f64;
        let with = agents as f64
            * (raw_kept * m.raw_per_day() as f64 + n_days as f64 * m.kept_per_day() as f64);
        let without = agents as f64 * n_days as f64 * m.raw_per_day() as f64;
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            backend_name(m.db),
            gib(with),
            gib(without)
        );
    }
    let _ = writeln!(out);
    for m in measured {
        // Every probe result was deleted; a vacuum that left their pages did not see them go
        // (PostgreSQL keeps rows another session's open snapshot may still read).
        let (_, probe_results_kept) = m.table("probe_results");
        if probe_results_kept > 16_384 {
            let _ = writeln!(
                out,
                "WARNING: on {} the vacuum left {probe_results_kept} bytes per agent of deleted probe results; \
                 another session's open transaction kept them. Measure again on a quiet server.\n",
                backend_name(m.db)
            );
        }
    }
    for m in measured {
        let _ = writeln!(
            out,
            "{} {}: {} bytes before, {} after the day, {} after retention and a vacuum; {} requests; {:.1} s.",
            backend_name(m.db),
            m.version,
            m.baseline.total,
            m.after_day.total,
            m.after_retention.total,
            m.requests,
            m.elapsed.as_secs_f64()
        );
    }
    out
}

fn backend_name(db: Db) -> &'static str {
    match db {
        Db::Sqlite => "SQLite",
        Db::Postgres => "PostgreSQL",
    }
}

async fn run(options: Options) -> anyhow::Result<String> {
    let config = AgentConfig::parse("").context("the agent's default configuration")?;
    let start = OffsetDateTime::now_utc() - Duration::from_secs(86_400 + 600);
    let hosts = host_day(&config);
    let days: Vec<Day> = (0..options.sample_agents)
        .map(|i| one_day(&config, start, &hosts, i as u64))
        .collect();
    let mut measured = Vec::new();
    for db in &options.dbs {
        measured.push(measure(*db, &days).await?);
    }
    Ok(report(&options, &config, &days, &measured))
}

fn main() -> std::process::ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(err) => {
            eprintln!("error: {err:#}");
            return std::process::ExitCode::from(2);
        }
    };
    // The collector's own warnings and errors, on stderr with the progress.
    let filter = std::env::var("CNTT_LOG").unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime starts");
    match runtime.block_on(run(options)) {
        Ok(text) => {
            let _ = std::io::stdout().write_all(text.as_bytes());
            std::process::ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
