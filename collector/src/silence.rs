//! Silent agents: the background sweep that opens an "agent unreachable" incident when an agent
//! misses its heartbeats (issue 4, item 2). The incident ends when the agent reports again, in the
//! ingest transaction (`store::events`).
//!
//! Every collector process runs the sweep. That is safe: the database allows one open such incident
//! per agent (a partial unique index), so when two collectors race, one insert does nothing.

use time::OffsetDateTime;
use tokio::sync::watch;

use crate::config::IncidentsConfig;
use crate::store::Store;

/// Sweeps every `config.evaluate_every` until `stop` turns true.
pub async fn run(store: Store, config: IncidentsConfig, mut stop: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(config.evaluate_every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let min_ms = i64::try_from(config.silence_min.as_millis()).unwrap_or(i64::MAX);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        let res = store
            .agents_silence_sweep(
                OffsetDateTime::now_utc(),
                i64::from(config.silence_intervals),
                min_ms,
            )
            .await;
        match res {
            Ok(opened) if opened.is_empty() => {}
            Ok(opened) => tracing::warn!(incidents = ?opened, "agents unreachable"),
            Err(err) => tracing::error!(error = %format!("{err:#}"), "silence sweep failed"),
        }
    }
}
