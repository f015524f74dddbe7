//! The monitor: checks every target at its own interval, records each result and every incident the
//! detector derives from it in the outbox, and keeps the status board current.
//!
//! One task per target runs its checks (so a slow target never delays another) and sends results
//! over a channel to the single detector task, which owns the [`Detector`] and is the only writer of
//! probe and incident events. Results are routine records; incidents are critical ones.

use std::sync::{Arc, Mutex};

use cntt_common::wire::{Event, Incident, Payload};
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch, Notify};
use uuid::Uuid;

use crate::detector::{Detector, Observation, TargetInfo, Thresholds};
use crate::outbox::{Class, OutboxError};
use crate::probe::{Outcome, Prober, Target};
use crate::status::Board;
use crate::uplink::SharedOutbox;

/// What the monitor task needs.
#[derive(Debug)]
pub struct Monitor {
    /// Targets to check.
    pub targets: Vec<Target>,
    /// When targets count as down and up.
    pub thresholds: Thresholds,
    /// Runs the checks.
    pub prober: Arc<Prober>,
    /// Where events go.
    pub outbox: SharedOutbox,
    /// Notified after each append so the uplink sends at once.
    pub wake: Arc<Notify>,
    /// What `cntt-agent status` shows.
    pub board: Arc<Mutex<Board>>,
}

/// A target's info for the detector.
pub fn target_info(target: &Target) -> TargetInfo {
    TargetInfo {
        name: target.name.clone(),
        kind: target.kind,
        check: target.check.kind(),
        address: target.check.address(),
        gateway: target.gateway,
        system: target.system.clone(),
    }
}

/// Appends one event to the outbox and wakes the uplink.
///
/// # Errors
///
/// When the outbox refuses it (disk full, over budget for routine records).
pub fn record(
    outbox: &SharedOutbox,
    wake: &Notify,
    class: Class,
    at: OffsetDateTime,
    payload: &Payload,
) -> Result<u64, OutboxError> {
    let res = outbox
        .lock()
        .expect("outbox lock is never poisoned")
        .append(class, |seq| {
            serde_json::to_vec(&Event::new(seq, at, payload)).expect("wire events always serialize")
        });
    wake.notify_one();
    res
}

/// Records an incident (critical); a failure is logged loudly, since it is the one thing that must
/// not be lost.
pub fn record_incident(outbox: &SharedOutbox, wake: &Notify, incident: Incident) {
    let at = OffsetDateTime::now_utc();
    tracing::warn!(id = %incident.incident_id, phase = ?incident.phase, kind = ?incident.kind, title = %incident.title, "incident");
    if let Err(err) = record(
        outbox,
        wake,
        Class::Critical,
        at,
        &Payload::Incident(Box::new(incident)),
    ) {
        tracing::error!(error = %err, "could not record an incident in the outbox");
    }
}

impl Monitor {
    /// Checks targets until `stop` turns true.
    pub async fn run(self, stop: watch::Receiver<bool>) {
        let (results_tx, mut results) = mpsc::channel::<(usize, OffsetDateTime, Outcome)>(256);
        let mut checkers = tokio::task::JoinSet::new();
        for (index, target) in self.targets.iter().cloned().enumerate() {
            let (prober, results_tx, mut stop) =
                (self.prober.clone(), results_tx.clone(), stop.clone());
            checkers.spawn(async move {
                let mut ticker = tokio::time::interval(target.interval);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = ticker.tick() => {}
                        _ = stop.changed() => return,
                    }
                    let at = OffsetDateTime::now_utc();
                    let outcome = tokio::select! {
                        outcome = prober.probe(&target.check, target.timeout) => outcome,
                        _ = stop.changed() => return,
                    };
                    if results_tx.send((index, at, outcome)).await.is_err() {
                        return;
                    }
                }
            });
        }
        drop(results_tx);
        let infos = self.targets.iter().map(target_info).collect();
        let mut detector = Detector::new(infos, self.thresholds);
        let mut stop = stop;
        loop {
            let (index, at, outcome) = tokio::select! {
                received = results.recv() => match received {
                    Some(received) => received,
                    None => break,
                },
                _ = stop.changed() => break,
            };
            let target = &self.targets[index];
            let result = target.result(&outcome);
            if let Err(err) = record(
                &self.outbox,
                &self.wake,
                Class::Routine,
                at,
                &Payload::ProbeResult(result.clone()),
            ) {
                tracing::warn!(target = %target.name, error = %err, "could not record a probe result");
            }
            let observation = Observation {
                target: target.name.clone(),
                at,
                ok: outcome.ok,
                rtt_ms: result.rtt_ms,
                error: outcome.error.clone(),
            };
            let incidents = detector.observe(&observation, &mut Uuid::new_v4);
            for incident in incidents {
                record_incident(&self.outbox, &self.wake, incident);
            }
            let mut board = self.board.lock().expect("board lock is never poisoned");
            board.record_check(&result, at);
            board.set_detected(detector.open_incidents());
        }
        checkers.shutdown().await;
    }
}
