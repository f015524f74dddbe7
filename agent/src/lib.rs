//! `cntt-agent`: the daemon IT officers install on their agencies' machines.
//!
//! Data path: samplers ([`heartbeat`], with [`host`]) → [`outbox`] on disk → [`uplink`] over HTTPS
//! to the collector. Every event is on disk before any upload is tried, and leaves the outbox only
//! when the collector has confirmed it. [`identity`] holds enrollment and the pinned CA. `main.rs`
//! only parses the command line.

pub mod config;
pub mod heartbeat;
pub mod host;
pub mod identity;
pub mod outbox;
pub mod uplink;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{watch, Notify};

use crate::config::Config;
use crate::identity::{ca_path, pinned_client, Identity};
use crate::outbox::Outbox;
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

/// Runs the agent until `shutdown` completes.
///
/// # Errors
///
/// At start only: when the agent is not enrolled, its pinned CA is unreadable, or the outbox folder
/// cannot be opened. Once running, failures are logged and retried, never fatal.
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
    let (outbox, report) = Outbox::open(&outbox_dir, config.outbox.clone())
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
    tracing::info!(agent = %identity.agent_id, unit = %identity.unit_code, %server, "agent running");
    let outbox = Arc::new(Mutex::new(outbox));
    let wake = Arc::new(Notify::new());
    // Turning this true asks both tasks to finish; they hold receivers.
    let (stop_tx, stop_rx) = watch::channel(false);
    let heartbeat = tokio::spawn(heartbeat::run(
        config.heartbeat_interval,
        outbox.clone(),
        wake.clone(),
        stop_rx.clone(),
    ));
    let uplink = Uplink {
        client,
        server,
        credential: identity.credential.clone(),
        outbox: outbox.clone(),
        wake,
        config: config.uplink.clone(),
        rejected_dir: config.state_dir.join("rejected"),
    };
    let uplink = tokio::spawn(uplink.run(stop_rx));
    shutdown.await;
    tracing::info!("stopping");
    let _ = stop_tx.send(true);
    let joined = tokio::time::timeout(STOP_TIMEOUT, async {
        let _ = heartbeat.await;
        let _ = uplink.await;
    })
    .await;
    if joined.is_err() {
        tracing::warn!("an upload was still running at shutdown; its events stay in the outbox");
    }
    let stats = outbox
        .lock()
        .expect("outbox lock is never poisoned")
        .stats();
    tracing::info!(pending = stats.records, "agent stopped");
    Ok(())
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
