//! The heartbeat task: at each interval, read the host and append a heartbeat to the outbox.

use std::sync::Arc;
use std::time::Duration;

use cntt_common::wire::{Event, Heartbeat, OutboxState, Payload};
use time::OffsetDateTime;
use tokio::sync::{watch, Notify};

use crate::host::HostSampler;
use crate::outbox::Class;
use crate::uplink::SharedOutbox;

/// Appends a heartbeat every `interval` until `stop` turns true, waking the uplink after each.
pub async fn run(
    interval: Duration,
    outbox: SharedOutbox,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let mut sampler = HostSampler::default();
    // CPU use is measured between two readings; give the first one a moment.
    tokio::time::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL).await;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let interval_seconds = u32::try_from(interval.as_secs()).unwrap_or(u32::MAX);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        let stats = outbox
            .lock()
            .expect("outbox lock is never poisoned")
            .stats();
        let state = OutboxState {
            pending: stats.records,
            bytes: stats.bytes,
            dropped_routine_total: stats.dropped_routine_total,
            unreadable_total: stats.unreadable_total,
        };
        let payload = Payload::Heartbeat(Heartbeat {
            interval_seconds,
            host: sampler.sample(),
            outbox: Some(state),
        });
        let at = OffsetDateTime::now_utc();
        let res = outbox
            .lock()
            .expect("outbox lock is never poisoned")
            .append(Class::Routine, |seq| {
                serde_json::to_vec(&Event::new(seq, at, &payload))
                    .expect("wire events always serialize")
            });
        match res {
            Ok(seq) => {
                tracing::debug!(seq, "heartbeat recorded");
                wake.notify_one();
            }
            Err(err) => tracing::warn!(error = %err, "could not record heartbeat"),
        }
    }
}
