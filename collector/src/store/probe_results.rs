//! Probe results: the typed copy of each stored `probe_result` event, for queries by agent, target
//! and time.
//!
//! Rows are written by the ingest of a batch ([`Store::ingest_group`](super::Store::ingest_group)),
//! multi-row, in the transaction that stores the batch's other events. A probe result is stored
//! once: this row is the event (its id is the event's, the key that makes a re-sent result a
//! duplicate); it is not kept in `events` too. Rows stored before issue 15 also have their event
//! in `events`, which retention deletes with the other raw events.

use anyhow::Context;
use serde::Serialize;
use time::OffsetDateTime;

use super::{millis, Store};

/// A probe result to store, converted from the wire by the ingest handler.
#[derive(Debug, Clone)]
pub struct NewProbeResult {
    /// Id of the event that carried it; the row's key.
    pub event_id: String,
    /// That event's sequence number.
    pub seq: i64,
    /// Target name in the agent's config.
    pub target: String,
    /// `lan`, `wan`, `internet` or `server`.
    pub target_kind: String,
    /// `icmp`, `tcp`, `http` or `dns`.
    pub check_kind: String,
    /// What was checked.
    pub address: String,
    /// When the check ran, by the agent's clock.
    pub at: OffsetDateTime,
    /// Whether it passed.
    pub ok: bool,
    /// Round-trip time in milliseconds.
    pub rtt_ms: Option<f64>,
    /// Why it failed.
    pub error: Option<String>,
    /// HTTP status of HTTP checks.
    pub http_status: Option<i64>,
    /// Certificate expiry of HTTPS checks.
    pub cert_not_after: Option<OffsetDateTime>,
}

/// A probe result as read back.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct StoredProbeResult {
    /// Event id.
    pub id: String,
    /// Agent id.
    pub agent_id: String,
    /// Code of the agent's unit.
    pub unit_code: String,
    /// Target name.
    pub target: String,
    /// Where the target sits.
    pub target_kind: String,
    /// How it was checked.
    pub check_kind: String,
    /// What was checked.
    pub address: String,
    /// When, Unix ms.
    pub at: i64,
    /// 1 passed, 0 failed.
    pub ok: i64,
    /// Round-trip time in milliseconds.
    pub rtt_ms: Option<f64>,
    /// Why it failed.
    pub error: Option<String>,
    /// HTTP status.
    pub http_status: Option<i64>,
    /// Certificate expiry, Unix ms.
    pub cert_not_after: Option<i64>,
}

/// Which probe results to read.
#[derive(Debug, Clone, Default)]
pub struct ProbeResultFilter {
    /// Only results of agents in these units; none means every unit.
    pub unit_ids: Option<Vec<i64>>,
    /// Only this agent's.
    pub agent_id: Option<String>,
    /// Only this target's.
    pub target: Option<String>,
    /// Only checks at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Only checks before this time.
    pub until: Option<OffsetDateTime>,
    /// At most this many, newest first.
    pub limit: i64,
}

impl Store {
    /// Probe results matching a filter, newest first.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn probe_results_list(
        &self,
        filter: &ProbeResultFilter,
    ) -> anyhow::Result<Vec<StoredProbeResult>> {
        let mut sql = String::from(
            "SELECT p.id, p.agent_id, u.code AS unit_code, p.target, p.target_kind, p.check_kind, p.address, p.at,
                    p.ok, p.rtt_ms, p.error, p.http_status, p.cert_not_after
             FROM probe_results p JOIN units u ON u.id = p.unit_id
             WHERE ($1 IS NULL OR p.agent_id = $1) AND ($2 IS NULL OR p.target = $2)
               AND ($3 IS NULL OR p.at >= $3) AND ($4 IS NULL OR p.at < $4)",
        );
        let unit_ids = filter.unit_ids.as_deref();
        if let Some(ids) = unit_ids {
            sql.push_str(&super::in_list("p.unit_id", 6, ids.len()));
        }
        sql.push_str(" ORDER BY p.at DESC, p.id LIMIT $5");
        let mut query = sqlx::query_as::<_, StoredProbeResult>(&sql)
            .bind(&filter.agent_id)
            .bind(&filter.target)
            .bind(filter.since.map(millis))
            .bind(filter.until.map(millis))
            .bind(filter.limit);
        for id in unit_ids.unwrap_or_default() {
            query = query.bind(*id);
        }
        let results = query
            .fetch_all(&self.pool)
            .await
            .context("listing probe results")?;
        Ok(results)
    }
}
