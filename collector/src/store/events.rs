//! Events from agents, stored exactly once by id, and the agent state a batch updates.
//!
//! A batch is one transaction: its events, the typed rows of its new probe results
//! ([`super::probe_results`]), its new incident phases applied to `incidents`
//! ([`super::incidents`]) and the agent's last contact either all land or none do.

use std::collections::HashSet;

use anyhow::Context;
use serde::Serialize;
use time::OffsetDateTime;

use super::incidents::{self, Applied, NewIncidentPhase};
use super::probe_results::{self, NewProbeResult};
use super::{millis, Store};

/// An event to store, already checked by the ingest handler.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Globally unique id from the agent.
    pub id: String,
    /// Per-agent sequence number.
    pub seq: i64,
    /// Kind as sent.
    pub kind: String,
    /// When it happened.
    pub occurred_at: OffsetDateTime,
    /// `ok`, `unknown_kind` or `invalid`.
    pub status: &'static str,
    /// Why it is invalid, when it is.
    pub error: Option<String>,
    /// The payload as JSON text.
    pub data: String,
}

/// What a stored batch changes on its agent.
#[derive(Debug, Clone)]
pub struct HeartbeatUpdate {
    /// The newest heartbeat's interval, seconds.
    pub interval_seconds: i64,
    /// The newest heartbeat's host snapshot as JSON text.
    pub host_snapshot: String,
}

/// One agent's batch to store.
#[derive(Debug, Clone, Copy)]
pub struct BatchWrite<'a> {
    /// The agent, from its credential.
    pub agent_id: &'a str,
    /// Its unit, from its credential.
    pub unit_id: i64,
    /// The events.
    pub events: &'a [NewEvent],
    /// The newest heartbeat of the batch, if any.
    pub heartbeat: Option<&'a HeartbeatUpdate>,
    /// The agent's software version.
    pub agent_version: &'a str,
    /// Where the batch came from.
    pub address: Option<&'a str>,
    /// When it arrived.
    pub now: OffsetDateTime,
}

/// The typed payloads of a batch's events, each naming its event; only those of events stored for
/// the first time are written.
#[derive(Debug, Clone, Copy, Default)]
pub struct BatchPayloads<'a> {
    /// Probe results, one per `probe_result` event.
    pub probe_results: &'a [NewProbeResult],
    /// Incident phases, one per `incident` event.
    pub incident_phases: &'a [NewIncidentPhase],
    /// Periodic reports, one per `periodic_report` event that passed the checks; `id` is the event's.
    pub periodic_reports: &'a [super::reports::NewPeriodicReport],
    /// Collector time minus the agent's time when it sent the batch, ms; stored on the agent and
    /// used to correct the reports' submission times.
    pub clock_offset_ms: Option<i64>,
}

/// How many events a batch added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestCounts {
    /// Stored now for the first time.
    pub accepted: u32,
    /// Already stored earlier.
    pub duplicates: u32,
    /// New probe results that passed.
    pub probe_results_ok: u32,
    /// New probe results that failed.
    pub probe_results_failed: u32,
    /// New events stored but flagged `invalid` by the store, e.g. a phase of another agent's
    /// incident.
    pub flagged: Vec<FlaggedEvent>,
}

/// An event the store kept but flagged invalid, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlaggedEvent {
    /// Event id.
    pub id: String,
    /// Its sequence number.
    pub seq: i64,
    /// Why, for the agent's log.
    pub reason: String,
}

/// An event as read back.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct StoredEvent {
    /// Event id.
    pub id: String,
    /// Agent id.
    pub agent_id: String,
    /// Sequence number.
    pub seq: i64,
    /// Kind.
    pub kind: String,
    /// When it happened, Unix ms.
    pub occurred_at: i64,
    /// When the collector stored it, Unix ms.
    pub received_at: i64,
    /// `ok`, `unknown_kind` or `invalid`.
    pub status: String,
    /// Payload JSON text.
    pub data: String,
}

impl Store {
    /// Stores a batch of one agent's events in one transaction. An event whose id is already stored
    /// is counted as a duplicate and left untouched, so re-sending a batch changes nothing.
    ///
    /// Typed payloads are not written: [`Store::events_ingest_with`] does that.
    ///
    /// # Errors
    ///
    /// On a database error, in which case nothing of the batch is stored.
    pub async fn events_ingest(&self, batch: &BatchWrite<'_>) -> anyhow::Result<IngestCounts> {
        self.events_ingest_with(batch, &BatchPayloads::default())
            .await
    }

    /// Stores a batch like [`Store::events_ingest`] and, in the same transaction, the typed
    /// payloads of its new events: a row per probe result and each incident phase applied to its
    /// incident (see the design note in `incidents.rs`). A phase of an incident that belongs to
    /// another agent is not applied; its event is kept with status `invalid` and listed in
    /// [`IngestCounts::flagged`].
    ///
    /// # Errors
    ///
    /// On a database error, in which case nothing of the batch is stored.
    pub async fn events_ingest_with(
        &self,
        batch: &BatchWrite<'_>,
        payloads: &BatchPayloads<'_>,
    ) -> anyhow::Result<IngestCounts> {
        let BatchWrite {
            agent_id,
            unit_id,
            events,
            heartbeat,
            agent_version,
            address,
            now,
        } = *batch;
        let now = millis(now);
        let mut counts = IngestCounts::default();
        let mut new_ids = HashSet::new();
        let mut tx = self.begin_write().await.context("starting ingest")?;
        for event in events {
            let res = sqlx::query(
                "INSERT INTO events (id, agent_id, unit_id, seq, kind, occurred_at, received_at, status, error, data)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(&event.id)
            .bind(agent_id)
            .bind(unit_id)
            .bind(event.seq)
            .bind(&event.kind)
            .bind(millis(event.occurred_at))
            .bind(now)
            .bind(event.status)
            .bind(&event.error)
            .bind(&event.data)
            .execute(&mut *tx)
            .await
            .with_context(|| format!("storing event {}", event.id))?;
            if res.rows_affected() == 1 {
                counts.accepted += 1;
                new_ids.insert(event.id.as_str());
            } else {
                counts.duplicates += 1;
            }
        }
        for result in payloads.probe_results {
            if !new_ids.contains(result.event_id.as_str()) {
                continue;
            }
            if probe_results::insert(&mut tx, agent_id, unit_id, result).await? {
                if result.ok {
                    counts.probe_results_ok += 1;
                } else {
                    counts.probe_results_failed += 1;
                }
            }
        }
        for phase in payloads.incident_phases {
            if !new_ids.contains(phase.event_id.as_str()) {
                continue;
            }
            let applied = incidents::apply(&mut tx, agent_id, unit_id, phase, now).await?;
            if applied == Applied::Foreign {
                let reason = format!(
                    "incident {} belongs to another agent; an agent may only report its own incidents",
                    phase.incident_id
                );
                sqlx::query("UPDATE events SET status = 'invalid', error = $1 WHERE id = $2")
                    .bind(&reason)
                    .bind(&phase.event_id)
                    .execute(&mut *tx)
                    .await
                    .with_context(|| format!("flagging event {}", phase.event_id))?;
                counts.flagged.push(FlaggedEvent {
                    id: phase.event_id.clone(),
                    seq: phase.seq,
                    reason,
                });
            }
        }
        for report in payloads.periodic_reports {
            if !new_ids.contains(report.id.as_str()) {
                continue;
            }
            let offset = payloads.clock_offset_ms.unwrap_or(0);
            super::reports::insert(&mut tx, unit_id, Some(agent_id), report, offset, now).await?;
        }
        if let Some(offset) = payloads.clock_offset_ms {
            sqlx::query("UPDATE agents SET clock_offset_ms = $1 WHERE id = $2")
                .bind(offset)
                .bind(agent_id)
                .execute(&mut *tx)
                .await
                .context("storing the agent's clock offset")?;
        }
        let max_seq = events.iter().map(|event| event.seq).max();
        sqlx::query(
            "UPDATE agents SET last_seen_at = $1, agent_version = $2, last_address = COALESCE($3, last_address),
                 last_seq = CASE WHEN last_seq IS NULL OR last_seq < $4 THEN $4 ELSE last_seq END
             WHERE id = $5",
        )
        .bind(now)
        .bind(agent_version)
        .bind(address)
        .bind(max_seq)
        .bind(agent_id)
        .execute(&mut *tx)
        .await
        .context("updating agent after ingest")?;
        // Any batch, even an empty one, is contact: an "agent unreachable" incident ends.
        incidents::agent_reachable_again(&mut tx, agent_id, now).await?;
        if let Some(heartbeat) = heartbeat {
            sqlx::query(
                "UPDATE agents SET heartbeat_interval = $1, host_snapshot = $2 WHERE id = $3",
            )
            .bind(heartbeat.interval_seconds)
            .bind(&heartbeat.host_snapshot)
            .bind(agent_id)
            .execute(&mut *tx)
            .await
            .context("storing host snapshot")?;
        }
        tx.commit().await.context("committing ingest")?;
        Ok(counts)
    }

    /// One agent's events in sequence order.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn events_of_agent(&self, agent_id: &str) -> anyhow::Result<Vec<StoredEvent>> {
        let events = sqlx::query_as::<_, StoredEvent>(
            "SELECT id, agent_id, seq, kind, occurred_at, received_at, status, data
             FROM events WHERE agent_id = $1 ORDER BY seq, id",
        )
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await
        .context("listing events of agent")?;
        Ok(events)
    }
}
