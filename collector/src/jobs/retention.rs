//! The retention job: every `retention.run_every` (and once at start) it applies the retention
//! policy through [`Store::retention_run`], which holds the rules and the design note
//! (`store/retention.rs`); `cntt-collector retention run` runs it once by hand (`admin.rs`).
//!
//! Every collector process runs the job. That is safe: each of its transactions takes the
//! `retention` job lock first, and a roll-up counts exactly the rows it deletes, so two collectors
//! on one database take turns and never count a probe result twice.

use std::sync::Arc;

use time::OffsetDateTime;
use tokio::sync::watch;

use crate::config::RetentionConfig;
use crate::metrics::Metrics;
use crate::store::{NewAuditEntry, RetentionPolicy, RetentionSummary, Store};

/// Runs the policy every `config.run_every`, the first time at once, until `stop` turns true. A
/// run in progress when `stop` turns is abandoned: its open batch rolls back, the committed ones
/// stay, and the next start carries on.
pub async fn run(
    store: Store,
    config: RetentionConfig,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    let policy = RetentionPolicy::from(&config);
    let holder = format!("collector pid {}", std::process::id());
    let mut ticker = tokio::time::interval(config.run_every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        let started = std::time::Instant::now();
        let res = tokio::select! {
            res = store.retention_run(OffsetDateTime::now_utc(), &policy, &holder) => res,
            _ = stop.changed() => return,
        };
        match res {
            Ok(summary) => {
                record(&metrics, &summary);
                tracing::info!(
                    probe_results_rolled_up = summary.probe_results_rolled_up,
                    rollup_hours = summary.rollup_hours,
                    events_deleted = summary.events_deleted,
                    audit_deleted = summary.audit_deleted,
                    incidents_deleted = summary.incidents_deleted,
                    timeline_deleted = summary.timeline_deleted,
                    transactions = summary.transactions,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "retention run"
                );
                if !summary.is_empty() {
                    audit(&store, "collector", &summary).await;
                }
            }
            Err(err) => tracing::error!(error = %format!("{err:#}"), "retention run failed"),
        }
    }
}

/// Adds a run's figures to the metrics.
pub fn record(metrics: &Metrics, summary: &RetentionSummary) {
    for (table, rows) in [
        ("probe_results", summary.probe_results_rolled_up),
        ("events", summary.events_deleted),
        ("audit_log", summary.audit_deleted),
        ("incidents", summary.incidents_deleted),
        ("incident_timeline", summary.timeline_deleted),
    ] {
        metrics
            .retention_rows
            .with_label_values(&[table])
            .inc_by(rows);
    }
}

/// Writes a run that removed something to the audit log, so deletions are on record too; a
/// failure to audit is logged, not fatal.
pub async fn audit(store: &Store, actor: &str, summary: &RetentionSummary) {
    let entry = NewAuditEntry {
        actor: actor.to_owned(),
        action: "retention.run".into(),
        target: String::new(),
        outcome: "ok",
        remote_addr: None,
        details: serde_json::to_value(summary).unwrap_or_default(),
    };
    if let Err(err) = store.audit(&entry, OffsetDateTime::now_utc()).await {
        tracing::error!(error = %format!("{err:#}"), "could not write audit entry");
    }
}
