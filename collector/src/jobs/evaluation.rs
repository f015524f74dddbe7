//! The background evaluation of incidents the collector decides itself: silent agents, inferred
//! outages and the agents' evidence (issue 4, items 2 to 4). The work is one transaction in
//! `store::inference`; this module only runs it every `evaluate_every` and logs what it did.
//!
//! Every collector process runs the loop. That is safe: evaluations of collectors sharing a
//! database take turns on a lock row, and each is all or nothing, so a collector killed at any
//! point leaves the work to the next evaluation, done once.

use time::OffsetDateTime;
use tokio::sync::watch;

use crate::config::IncidentsConfig;
use crate::domain::inference::Rules;
use crate::store::{EvaluationRules, Store};

/// The store's rules from the config.
pub fn rules(config: &IncidentsConfig) -> EvaluationRules {
    let ms =
        |duration: std::time::Duration| i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
    EvaluationRules {
        silence_intervals: i64::from(config.silence_intervals),
        silence_min_ms: ms(config.silence_min),
        inference: Rules {
            share: config.outage_share,
            unit_min_agents: config.unit_min_agents as usize,
            uplink_min_units: config.uplink_min_units as usize,
            gather_ms: ms(config.gather),
        },
        merge_slack_ms: ms(config.merge_slack),
        settle_ms: ms(config.settle),
    }
}

/// Evaluates every `config.evaluate_every` until `stop` turns true.
pub async fn run(store: Store, config: IncidentsConfig, mut stop: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(config.evaluate_every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let rules = rules(&config);
    // Names this process in the lock row, for whoever looks at the database.
    let holder = format!("{}:{}", gethostname(), std::process::id());
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        match store
            .incidents_evaluate(OffsetDateTime::now_utc(), &rules, &holder)
            .await
        {
            Ok(evaluation) if evaluation.is_empty() => {}
            Ok(evaluation) => tracing::info!(
                unreachable = ?evaluation.unreachable,
                outages = ?evaluation.outages,
                resolved = evaluation.resolved,
                reparented = evaluation.reparented,
                linked = evaluation.linked,
                corrected = evaluation.corrected,
                "incidents evaluated"
            ),
            Err(err) => tracing::error!(error = %format!("{err:#}"), "incident evaluation failed"),
        }
    }
}

fn gethostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "collector".to_owned())
}
