//! `cntt-agent`: the daemon IT officers install on their agencies' machines.
//!
//! Data path: samplers ([`heartbeat`], with [`host`]) → [`outbox`] on disk → [`uplink`] over HTTPS
//! to the collector. Every event is on disk before any upload is tried, and leaves the outbox only
//! when the collector has confirmed it. [`identity`] holds enrollment and the pinned CA. `main.rs`
//! only parses the command line.

pub mod config;
pub mod detector;
pub mod heartbeat;
pub mod host;
pub mod identity;
pub mod logfile;
pub mod monitor;
pub mod outbox;
pub mod platform;
pub mod probe;
pub mod report;
pub mod reports;
pub mod simulate;
pub mod spool;
pub mod status;
pub mod uplink;
pub mod vi;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use cntt_common::wire::TargetKind;
use tokio::sync::{watch, Notify};

use crate::config::Config;
use crate::detector::{HostWatch, Thresholds};
use crate::identity::{ca_path, pinned_client, Identity};
use crate::monitor::Monitor;
use crate::outbox::Outbox;
use crate::probe::{Check, HttpCheck, IcmpMode, Prober, Target};
use crate::status::Board;
use crate::uplink::Uplink;

/// Name of the lock file that keeps two agents off one state folder.
pub const LOCK_FILE: &str = "agent.lock";

/// Takes the state folder's lock for as long as the returned file lives, so two agents (or a
/// `status` beside a running agent) never write one outbox at once.
///
/// # Errors
///
/// When another process holds the lock (the message says so) or the file cannot be opened.
pub fn lock_state_dir(state_dir: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let path = state_dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another cntt-agent is running with state folder {}; stop it first",
            state_dir.display()
        ),
        Err(std::fs::TryLockError::Error(err)) => {
            Err(err).with_context(|| format!("locking {}", path.display()))
        }
    }
}

/// How long shutdown waits for an upload in flight.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The targets the agent checks: those configured, or, when none are and `probes.defaults` is on,
/// the default gateway (LAN, when ICMP can be used), the collector (WAN: an HTTPS `GET /healthz`)
/// and the system resolver (DNS for the collector's name, when it has one).
///
/// The collector check completes the TLS handshake and asks for `/healthz`, which needs no token
/// and is never rate-limited: a bare TCP connection closed before the handshake would be audited
/// by the collector as a failed handshake, and thousands of agents checking every minute would
/// crowd real attacks out of its audit log (issue 13, M3). The check accepts the collector's
/// certificate without the system's root store (the collector's CA is private and pinned for
/// uploads); it measures reachability, and no credential is sent.
pub fn effective_targets(config: &Config, server: &str, icmp: &IcmpMode) -> Vec<Target> {
    if !config.targets.is_empty() || !config.probes.defaults {
        return config.targets.clone();
    }
    let (interval, timeout) = (config.probes.interval, config.probes.timeout);
    let mut targets = Vec::new();
    match (probe::default_gateway(), icmp) {
        (Some(gateway), IcmpMode::Unprivileged | IcmpMode::Raw | IcmpMode::System) => {
            targets.push(Target {
                name: "gateway".into(),
                kind: TargetKind::Lan,
                check: Check::Icmp {
                    host: gateway.to_string(),
                },
                interval,
                timeout,
                gateway: true,
                system: None,
            })
        }
        (Some(_), IcmpMode::Unavailable { reason }) => {
            tracing::warn!(%reason, "not checking the default gateway: ICMP is unavailable");
        }
        (None, _) => tracing::warn!("no default gateway found; not checking the LAN by default"),
    }
    let authority = server
        .split("://")
        .nth(1)
        .unwrap_or(server)
        .split('/')
        .next()
        .unwrap_or_default();
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
            (host.to_owned(), port.to_owned())
        }
        _ => (authority.to_owned(), "443".to_owned()),
    };
    if !host.is_empty() {
        targets.push(Target {
            name: "collector".into(),
            kind: TargetKind::Wan,
            check: Check::Http(HttpCheck {
                url: format!("https://{host}:{port}/healthz"),
                // 503 means the collector answers but its database does not: the WAN is up.
                expect_status: vec![200, 503],
                body_contains: None,
                tls_verify: false,
            }),
            interval,
            timeout,
            gateway: false,
            system: None,
        });
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if bare.parse::<std::net::IpAddr>().is_err() {
            targets.push(Target {
                name: "resolver".into(),
                kind: TargetKind::Server,
                check: Check::Dns {
                    server: None,
                    query: bare.to_owned(),
                },
                interval,
                timeout,
                gateway: false,
                system: None,
            });
        }
    }
    targets
}

/// How often the status board is written, the spool looked at and an unsaved outbox state (an
/// acknowledgement on a full disk) written again.
const HOUSEKEEPING: Duration = Duration::from_secs(1);

/// Runs the agent until `shutdown` completes.
///
/// # Errors
///
/// At start only: when the agent is not enrolled, another agent uses the state folder, the pinned
/// CA is unreadable, or the outbox folder cannot be opened. Once running, failures are logged and
/// retried, never fatal.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let identity = Identity::load(&config.state_dir)?;
    let _lock = lock_state_dir(&config.state_dir)?;
    let server = config
        .uplink
        .url
        .clone()
        .unwrap_or_else(|| identity.server.clone());
    let client = pinned_client(&ca_path(&config.state_dir), config.uplink.request_timeout)?;
    let outbox_dir = config.state_dir.join("outbox");
    let (mut outbox, report) = Outbox::open(&outbox_dir, config.outbox.clone())
        .with_context(|| format!("opening the outbox in {}", outbox_dir.display()))?;
    if report.is_clean() {
        tracing::info!(
            pending = report.records,
            next_seq = report.next_seq,
            "outbox opened"
        );
    } else {
        tracing::warn!(pending = report.records, set_aside = ?report.set_aside, truncated_bytes = report.truncated_bytes,
            notes = ?report.notes, "outbox recovered from damage");
    }
    if let Err(err) = spool::drain(&config.state_dir, &mut outbox) {
        tracing::error!(error = %format!("{err:#}"), "could not move spooled reports into the outbox");
    }
    let prober = Arc::new(Prober::new());
    if let IcmpMode::Unavailable { reason } = prober.icmp_mode() {
        tracing::warn!(%reason, "ICMP checks will fail");
    }
    let targets = effective_targets(&config, &server, prober.icmp_mode());
    tracing::info!(agent = %identity.agent_id, unit = %identity.unit_code, %server, targets = targets.len(), "agent running");
    let outbox = Arc::new(Mutex::new(outbox));
    let wake = Arc::new(Notify::new());
    let board = Arc::new(Mutex::new(Board {
        started_at: Some(time::OffsetDateTime::now_utc()),
        ..Board::default()
    }));
    // Turning this true asks every task to finish; they hold receivers.
    let (stop_tx, stop_rx) = watch::channel(false);
    let thresholds = Thresholds {
        down_after: config.probes.down_after,
        up_after: config.probes.up_after,
    };
    let mut tasks = tokio::task::JoinSet::new();
    let host_watch = HostWatch::new(
        thresholds,
        config.host.disk_full_percent,
        config.host.memory_full_percent,
    );
    let mut recovery_notes = report.notes.clone();
    recovery_notes.extend(
        report
            .set_aside
            .iter()
            .map(|path| format!("set aside {}", path.display())),
    );
    tasks.spawn(heartbeat::run(
        config.heartbeat_interval,
        recovery_notes,
        host_watch,
        outbox.clone(),
        wake.clone(),
        board.clone(),
        stop_rx.clone(),
    ));
    let monitor = Monitor {
        targets,
        thresholds,
        prober,
        outbox: outbox.clone(),
        wake: wake.clone(),
        board: board.clone(),
    };
    tasks.spawn(monitor.run(stop_rx.clone()));
    tasks.spawn(reports::refresh(
        client.clone(),
        server.clone(),
        identity.credential.clone(),
        config.state_dir.clone(),
        config.uplink.report_context_every,
        stop_rx.clone(),
    ));
    let uplink = Uplink {
        client,
        server,
        credential: identity.credential.clone(),
        outbox: outbox.clone(),
        wake: wake.clone(),
        config: config.uplink.clone(),
        rejected_dir: config.state_dir.join("rejected"),
        board: board.clone(),
        timings: None,
    };
    tasks.spawn(uplink.run(stop_rx.clone()));
    tasks.spawn(housekeeping(
        config.state_dir.clone(),
        outbox.clone(),
        wake,
        board.clone(),
        stop_rx,
    ));
    shutdown.await;
    tracing::info!("stopping");
    let _ = stop_tx.send(true);
    let joined = tokio::time::timeout(STOP_TIMEOUT, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if joined.is_err() {
        tracing::warn!("an upload was still running at shutdown; its events stay in the outbox");
    }
    if let Err(err) = board
        .lock()
        .expect("board lock is never poisoned")
        .save(&config.state_dir)
    {
        tracing::warn!(error = %format!("{err:#}"), "could not write the status board");
    }
    let stats = outbox
        .lock()
        .expect("outbox lock is never poisoned")
        .stats();
    tracing::info!(pending = stats.records, "agent stopped");
    Ok(())
}

/// Every second: move officers' spooled reports into the outbox, write again an outbox state that
/// could not be written (issue 13, L2), and write the status board with the outbox's counters.
async fn housekeeping(
    state_dir: std::path::PathBuf,
    outbox: uplink::SharedOutbox,
    wake: Arc<Notify>,
    board: Arc<Mutex<Board>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(HOUSEKEEPING);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        let (moved, saved, stats) = {
            let mut outbox = outbox.lock().expect("outbox lock is never poisoned");
            let moved = spool::drain(&state_dir, &mut outbox);
            let saved = outbox.save_unsaved();
            (moved, saved, outbox.stats())
        };
        let disk_error = match saved {
            Ok(_) => None,
            Err(err) => Some(format!("{err:#}")),
        };
        match moved {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(reports = n, "officer reports recorded");
                wake.notify_one();
            }
            Err(err) => {
                tracing::error!(error = %format!("{err:#}"), "could not move spooled reports into the outbox")
            }
        }
        let mut board = board.lock().expect("board lock is never poisoned");
        board.updated_at = Some(time::OffsetDateTime::now_utc());
        board.outbox = Some(status::OutboxStatus::from(&stats));
        board.disk_error = disk_error;
        if let Err(err) = board.save(&state_dir) {
            tracing::warn!(error = %format!("{err:#}"), "could not write the status board");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_agent_per_state_folder() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock_state_dir(dir.path()).unwrap();
        let err = lock_state_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("another cntt-agent is running"), "{err}");
        drop(held);
        lock_state_dir(dir.path()).expect("free again once the first agent stops");
    }
}
