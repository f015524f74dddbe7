//! The heartbeat task: at each interval, read the host, append a heartbeat (with the outbox's
//! counters) to the outbox, and open or resolve host incidents (disk full, memory exhausted).
//!
//! The counters include every record lost before delivery (issue 13, L2): a heartbeat that cannot
//! be written is itself counted, and the next one that can be carries the total.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cntt_common::wire::{Heartbeat, OutboxState, Payload};
use time::OffsetDateTime;
use tokio::sync::{watch, Notify};
use uuid::Uuid;

use crate::detector::HostWatch;
use crate::host::HostSampler;
use crate::monitor::{record, record_incident};
use crate::outbox::Class;
use crate::status::Board;
use crate::uplink::SharedOutbox;

/// Appends a heartbeat every `interval` until `stop` turns true.
#[allow(
    clippy::too_many_arguments,
    reason = "one task's whole wiring, called once from lib.rs"
)]
pub async fn run(
    interval: Duration,
    mut recovery_notes: Vec<String>,
    mut watch: HostWatch,
    outbox: SharedOutbox,
    wake: Arc<Notify>,
    board: Arc<Mutex<Board>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut sampler = HostSampler::default();
    // CPU use is measured between two readings; give the first one a moment.
    tokio::time::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL).await;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let interval_seconds = u32::try_from(interval.as_secs()).unwrap_or(u32::MAX).max(1);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        let stats = {
            let mut outbox = outbox.lock().expect("outbox lock is never poisoned");
            // A segment deleted by someone else is counted before the figures are taken.
            outbox.check_files();
            outbox.stats()
        };
        let state = OutboxState {
            pending: stats.records,
            bytes: stats.bytes,
            dropped_routine_total: stats.dropped_routine_total,
            unreadable_total: stats.unreadable_total,
            lost_total: stats.lost_total,
            recovery_notes: std::mem::take(&mut recovery_notes),
        };
        let host = sampler.sample();
        let at = OffsetDateTime::now_utc();
        for incident in watch.observe(&host, at, &mut Uuid::new_v4) {
            let mut board = board.lock().expect("board lock is never poisoned");
            board
                .host_incidents
                .retain(|open| open.incident_id != incident.incident_id);
            if incident.ended_at.is_none() {
                board.host_incidents.push(incident.clone());
            }
            drop(board);
            record_incident(&outbox, &wake, incident);
        }
        let payload = Payload::Heartbeat(Heartbeat {
            interval_seconds,
            host,
            outbox: Some(Box::new(state)),
        });
        match record(&outbox, &wake, Class::Routine, at, &payload) {
            Ok(seq) => tracing::debug!(seq, "heartbeat recorded"),
            Err(err) => {
                tracing::warn!(error = %err, "could not record heartbeat");
                // The recovery notes go with the next heartbeat that can be written.
                if let Payload::Heartbeat(Heartbeat {
                    outbox: Some(state),
                    ..
                }) = payload
                {
                    recovery_notes = state.recovery_notes;
                }
            }
        }
    }
}
