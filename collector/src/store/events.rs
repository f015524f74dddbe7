//! Events from agents, stored exactly once by id, and the agent state a batch updates.
//!
//! A batch is one transaction: its events, the typed rows of its new probe results
//! ([`super::probe_results`]), its new incident phases applied to `incidents`
//! ([`super::incidents`]) and the agent's last contact either all land or none do.

use std::collections::{BTreeMap, HashSet};

use anyhow::Context;
use serde::Serialize;
use sqlx::AnyConnection;
use time::OffsetDateTime;

use super::incidents::{self, Applied, NewIncidentPhase};
use super::probe_results::NewProbeResult;
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
    /// payloads of its new events: a row per probe result (which is then not kept in `events`:
    /// each probe result is stored once) and each incident phase applied to its incident (see the
    /// design note in `incidents.rs`). A phase of an incident that belongs to another agent is not
    /// applied; its event is kept with status `invalid` and listed in [`IngestCounts::flagged`].
    ///
    /// # Errors
    ///
    /// On a database error, in which case nothing of the batch is stored.
    pub async fn events_ingest_with(
        &self,
        batch: &BatchWrite<'_>,
        payloads: &BatchPayloads<'_>,
    ) -> anyhow::Result<IngestCounts> {
        let probe_ids: HashSet<&str> = payloads
            .probe_results
            .iter()
            .map(|result| result.event_id.as_str())
            .collect();
        let owned = IngestBatch {
            agent_id: batch.agent_id.to_owned(),
            unit_id: batch.unit_id,
            events: batch
                .events
                .iter()
                .filter(|event| !probe_ids.contains(event.id.as_str()))
                .cloned()
                .collect(),
            heartbeat: batch.heartbeat.cloned(),
            agent_version: batch.agent_version.to_owned(),
            address: batch.address.map(str::to_owned),
            now: batch.now,
            probe_results: payloads.probe_results.to_vec(),
            incident_phases: payloads.incident_phases.to_vec(),
            periodic_reports: payloads.periodic_reports.to_vec(),
            clock_offset_ms: payloads.clock_offset_ms,
        };
        let mut tx = self.begin_write().await.context("starting ingest")?;
        let mut counts = write_group(&mut tx, std::slice::from_ref(&owned)).await?;
        tx.commit().await.context("committing ingest")?;
        Ok(counts.pop().expect("one count per batch written"))
    }

    /// Stores several agents' batches in one transaction (the group commit of
    /// [`super::Committer`]): one multi-row statement per table for all of them, then each
    /// batch's incident phases, reports and agent update. If the group fails, nothing of it is
    /// kept and each batch is written again alone in its own transaction, so a batch the database
    /// refuses fails alone and every other one still lands whole: all or nothing per batch.
    ///
    /// Returns one result per batch, in order.
    pub async fn ingest_group(&self, batches: &[IngestBatch]) -> Vec<anyhow::Result<IngestCounts>> {
        let group = async {
            let mut tx = self.begin_write().await.context("starting ingest")?;
            let counts = write_group(&mut tx, batches).await?;
            tx.commit().await.context("committing ingest")?;
            anyhow::Ok(counts)
        };
        match group.await {
            Ok(counts) => counts.into_iter().map(Ok).collect(),
            Err(err) if batches.len() == 1 => vec![Err(err)],
            Err(err) => {
                tracing::warn!(batches = batches.len(), error = %format!("{err:#}"), "group commit failed; writing its batches one by one");
                let mut results = Vec::with_capacity(batches.len());
                for batch in batches {
                    let alone = async {
                        let mut tx = self.begin_write().await.context("starting ingest")?;
                        let mut counts = write_group(&mut tx, std::slice::from_ref(batch)).await?;
                        tx.commit().await.context("committing ingest")?;
                        anyhow::Ok(counts.pop().expect("one count per batch written"))
                    };
                    results.push(alone.await);
                }
                results
            }
        }
    }

    /// One agent's events in sequence order, probe results included (read back from their rows).
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn events_of_agent(&self, agent_id: &str) -> anyhow::Result<Vec<StoredEvent>> {
        let mut events = sqlx::query_as::<_, StoredEvent>(
            "SELECT id, agent_id, seq, kind, occurred_at, received_at, status, data
             FROM events WHERE agent_id = $1",
        )
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await
        .context("listing events of agent")?;
        // Probe results are stored once, as typed rows (issue 15): read back as the events they
        // were, those stored before already being in `events`.
        let known: HashSet<String> = events.iter().map(|event| event.id.clone()).collect();
        let rows = sqlx::query_as::<_, ProbeEventRow>(
            "SELECT id, seq, target, target_kind, check_kind, address, at, ok,
                    CAST(CASE WHEN rtt_ms IS NULL THEN 0 ELSE 1 END AS BIGINT) AS measured, COALESCE(rtt_ms, 0.0) AS rtt_ms,
                    error, http_status, cert_not_after, received_at
             FROM probe_results WHERE agent_id = $1 AND seq IS NOT NULL AND received_at IS NOT NULL",
        )
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await
        .context("listing probe results of agent")?;
        for row in rows.into_iter().filter(|row| !known.contains(&row.id)) {
            let mut data = serde_json::json!({
                "target": row.target,
                "target_kind": row.target_kind,
                "check": row.check_kind,
                "address": row.address,
                "ok": row.ok == 1,
            });
            if row.measured == 1 {
                data["rtt_ms"] = serde_json::json!(row.rtt_ms);
            }
            if let Some(error) = row.error {
                data["error"] = serde_json::json!(error);
            }
            if let Some(status) = row.http_status {
                data["http_status"] = serde_json::json!(status);
            }
            if let Some(at) = row.cert_not_after {
                let text = super::from_millis(at)
                    .format(&time::format_description::well_known::Rfc3339)
                    .context("formatting a certificate expiry")?;
                data["cert_not_after"] = serde_json::json!(text);
            }
            events.push(StoredEvent {
                id: row.id,
                agent_id: agent_id.to_owned(),
                seq: row.seq,
                kind: "probe_result".into(),
                occurred_at: row.at,
                received_at: row.received_at,
                status: "ok".into(),
                data: data.to_string(),
            });
        }
        events.sort_by(|a, b| (a.seq, &a.id).cmp(&(b.seq, &b.id)));
        Ok(events)
    }
}

/// One agent's batch as the ingest handler hands it to the [`super::Committer`]: the events kept
/// in `events` and the typed payloads, each naming its event.
#[derive(Debug, Clone)]
pub struct IngestBatch {
    /// The agent, from its credential.
    pub agent_id: String,
    /// Its unit, from its credential.
    pub unit_id: i64,
    /// Events other than probe results: heartbeats, incident phases, reports, and whatever could
    /// not be read (kept as it came and flagged).
    pub events: Vec<NewEvent>,
    /// The newest heartbeat of the batch, if any.
    pub heartbeat: Option<HeartbeatUpdate>,
    /// The agent's software version.
    pub agent_version: String,
    /// Where the batch came from.
    pub address: Option<String>,
    /// When it arrived.
    pub now: OffsetDateTime,
    /// Probe results, each stored once in `probe_results` under its event's id.
    pub probe_results: Vec<NewProbeResult>,
    /// Incident phases, one per `incident` event (which is also in `events`).
    pub incident_phases: Vec<NewIncidentPhase>,
    /// Periodic reports, one per `periodic_report` event that passed the checks.
    pub periodic_reports: Vec<super::reports::NewPeriodicReport>,
    /// Collector time minus the agent's time when it sent the batch, ms.
    pub clock_offset_ms: Option<i64>,
}

impl IngestBatch {
    /// How many rows it adds at most: the measure of a group's size.
    pub fn rows(&self) -> usize {
        self.events.len() + self.probe_results.len()
    }

    /// The highest sequence number of its events, probe results included.
    fn max_seq(&self, probe_seqs: Option<i64>) -> Option<i64> {
        self.events
            .iter()
            .map(|event| event.seq)
            .max()
            .max(probe_seqs)
    }
}

/// Rows per statement on PostgreSQL, at most: a group's rows travel as one JSON array per table
/// and statement.
const ROWS_PER_STATEMENT: usize = 2048;

/// Whether `conn` talks to PostgreSQL (else SQLite).
fn is_postgres(conn: &AnyConnection) -> bool {
    conn.backend_name() == "PostgreSQL"
}

/// The events of a group as the JSON document [`insert_events`] binds.
#[derive(Serialize)]
struct EventRow<'a> {
    id: &'a str,
    agent_id: &'a str,
    unit_id: i64,
    seq: i64,
    kind: &'a str,
    occurred_at: i64,
    received_at: i64,
    status: &'a str,
    error: Option<&'a str>,
    data: &'a str,
}

/// A probe result as the JSON document [`insert_probe_results`] binds.
#[derive(Serialize)]
struct ProbeRow<'a> {
    id: &'a str,
    agent_id: &'a str,
    unit_id: i64,
    target: &'a str,
    target_kind: &'a str,
    check_kind: &'a str,
    address: &'a str,
    at: i64,
    ok: i64,
    rtt_ms: Option<f64>,
    error: Option<&'a str>,
    http_status: Option<i64>,
    cert_not_after: Option<i64>,
    seq: i64,
    received_at: i64,
}

/// Runs `INSERT … SELECT` over `rows`, bound as one JSON array per statement (PostgreSQL: one
/// parameter whatever the number of rows), and returns the ids stored now.
async fn insert_json<T: Serialize>(
    conn: &mut AnyConnection,
    sql: &str,
    rows: &[T],
    what: &str,
) -> anyhow::Result<HashSet<String>> {
    let mut new_ids = HashSet::with_capacity(rows.len());
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let document = serde_json::to_string(chunk).context("encoding rows")?;
        let stored: Vec<String> = sqlx::query_scalar(sql)
            .bind(document)
            .fetch_all(&mut *conn)
            .await
            .with_context(|| format!("storing {} {what}", chunk.len()))?;
        new_ids.extend(stored);
    }
    Ok(new_ids)
}

/// Rows per multi-row statement on SQLite, at most; rows go in statements of power-of-two sizes
/// up to this, so a connection prepares a handful of distinct statements and keeps them.
const SQLITE_ROWS_PER_STATEMENT: usize = 256;

/// Splits `n` rows into power-of-two chunks of at most `max` (itself a power of two).
fn chunk_sizes(mut n: usize, max: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    while n > 0 {
        let size = if n >= max {
            max
        } else {
            1 << (usize::BITS - 1 - n.leading_zeros())
        };
        sizes.push(size);
        n -= size;
    }
    sizes
}

/// A multi-row `INSERT … VALUES` on SQLite: anonymous `?` placeholders, which SQLite binds by
/// position (numbered ones, `$1`, it looks up by name, one by one: quadratic in their number).
/// No `RETURNING`: the SQLite driver hands each returned row to the async side on its own, a
/// thread wake-up per row, which cost more than the insert itself (see [`insert_sqlite`]).
fn sqlite_values(head: &str, rows: usize, row: &str) -> String {
    let mut sql = String::with_capacity(head.len() + rows * (row.len() + 2) + 48);
    sql.push_str(head);
    sql.push_str(" VALUES ");
    for index in 0..rows {
        if index > 0 {
            sql.push_str(", ");
        }
        sql.push_str(row);
    }
    sql.push_str(" ON CONFLICT (id) DO NOTHING");
    sql
}

/// What [`insert_sqlite`] needs to know of a table: its name, the head of its `INSERT` (table and
/// columns), one row's placeholders, and what its rows are called in errors.
struct SqliteTable {
    table: &'static str,
    head: &'static str,
    row: &'static str,
    what: &'static str,
}

/// A multi-row statement being bound.
type RowQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Inserts `rows` (sorted by id) on SQLite and returns the ids stored now for the first time.
///
/// The common case, every id new, costs the inserts alone: they run under a savepoint and count
/// what they stored. Only when the count falls short (an agent sent a batch again) are they rolled
/// back to the savepoint, the ids already stored looked up, and the others inserted. This is
/// exact because the caller holds the one write transaction (`Store::begin_write`): nobody else
/// can store one of these ids between the lookup and the insert. Ids repeated within `rows` are
/// inserted once, the first row of each.
async fn insert_sqlite<T>(
    conn: &mut AnyConnection,
    spec: &SqliteTable,
    rows: &[T],
    id: fn(&T) -> &str,
    bind: for<'q> fn(RowQuery<'q>, &'q T) -> RowQuery<'q>,
) -> anyhow::Result<HashSet<String>> {
    let mut unique: Vec<&T> = rows.iter().collect();
    unique.dedup_by(|later, first| id(later) == id(first));
    sqlx::query("SAVEPOINT ingest_rows")
        .execute(&mut *conn)
        .await
        .context("starting a savepoint")?;
    let mut stored = insert_sqlite_rows(conn, spec, &unique, bind).await?;
    if stored != unique.len() {
        sqlx::query("ROLLBACK TO ingest_rows")
            .execute(&mut *conn)
            .await
            .context("rolling back to the savepoint")?;
        let known = stored_ids(conn, spec.table, unique.iter().map(|item| id(item))).await?;
        unique.retain(|item| !known.contains(id(item)));
        stored = insert_sqlite_rows(conn, spec, &unique, bind).await?;
        anyhow::ensure!(
            stored == unique.len(),
            "stored {stored} of {} new {}: the write lock did not hold",
            unique.len(),
            spec.what
        );
    }
    sqlx::query("RELEASE ingest_rows")
        .execute(&mut *conn)
        .await
        .context("releasing the savepoint")?;
    Ok(unique.into_iter().map(|item| id(item).to_owned()).collect())
}

/// Binds rows to multi-row statements on SQLite, in power-of-two chunks; returns how many were
/// stored (a row whose id is already stored is not).
async fn insert_sqlite_rows<T>(
    conn: &mut AnyConnection,
    spec: &SqliteTable,
    rows: &[&T],
    bind: for<'q> fn(RowQuery<'q>, &'q T) -> RowQuery<'q>,
) -> anyhow::Result<usize> {
    let mut stored = 0;
    let mut rest = rows;
    for size in chunk_sizes(rows.len(), SQLITE_ROWS_PER_STATEMENT) {
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        let sql = sqlite_values(spec.head, size, spec.row);
        let mut query = sqlx::query(&sql);
        for item in chunk {
            query = bind(query, item);
        }
        let done = query
            .execute(&mut *conn)
            .await
            .with_context(|| format!("storing {size} {}", spec.what))?;
        stored += usize::try_from(done.rows_affected()).expect("a chunk's count fits usize");
    }
    Ok(stored)
}

/// Which of `ids` `table` already holds (SQLite; the slow path of [`insert_sqlite`]).
async fn stored_ids<'a>(
    conn: &mut AnyConnection,
    table: &str,
    ids: impl Iterator<Item = &'a str>,
) -> anyhow::Result<HashSet<String>> {
    let ids: Vec<&str> = ids.collect();
    let mut known = HashSet::new();
    let mut rest = ids.as_slice();
    for size in chunk_sizes(ids.len(), SQLITE_ROWS_PER_STATEMENT) {
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        let sql = format!(
            "SELECT id FROM {table} WHERE id IN ({})",
            vec!["?"; size].join(", ")
        );
        let mut query = sqlx::query_scalar::<_, String>(&sql);
        for id in chunk {
            query = query.bind(*id);
        }
        known.extend(
            query
                .fetch_all(&mut *conn)
                .await
                .with_context(|| format!("looking up {size} ids in {table}"))?,
        );
    }
    Ok(known)
}

/// Inserts the events of a group, sorted by id (so that concurrent writers on PostgreSQL take
/// their locks in one order), and returns the ids stored now for the first time.
async fn insert_events(
    conn: &mut AnyConnection,
    batches: &[IngestBatch],
) -> anyhow::Result<HashSet<String>> {
    let mut rows: Vec<EventRow<'_>> = batches
        .iter()
        .flat_map(|batch| {
            batch.events.iter().map(move |event| EventRow {
                id: &event.id,
                agent_id: &batch.agent_id,
                unit_id: batch.unit_id,
                seq: event.seq,
                kind: &event.kind,
                occurred_at: millis(event.occurred_at),
                received_at: millis(batch.now),
                status: event.status,
                error: event.error.as_deref(),
                data: &event.data,
            })
        })
        .collect();
    if rows.is_empty() {
        return Ok(HashSet::new());
    }
    rows.sort_by(|a, b| a.id.cmp(b.id));
    let sql = if is_postgres(conn) {
        "INSERT INTO events (id, agent_id, unit_id, seq, kind, occurred_at, received_at, status, error, data)
         SELECT id, agent_id, unit_id, seq, kind, occurred_at, received_at, status, error, data
         FROM json_to_recordset($1::json) AS r(id text, agent_id text, unit_id bigint, seq bigint, kind text,
              occurred_at bigint, received_at bigint, status text, error text, data text)
         ON CONFLICT (id) DO NOTHING RETURNING id"
    } else {
        return insert_sqlite(
            conn,
            &SqliteTable {
                table: "events",
                head: "INSERT INTO events (id, agent_id, unit_id, seq, kind, occurred_at, received_at, status, error, data)",
                row: "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                what: "events",
            },
            &rows,
            |row| row.id,
            |query, row| {
                query
                    .bind(row.id)
                    .bind(row.agent_id)
                    .bind(row.unit_id)
                    .bind(row.seq)
                    .bind(row.kind)
                    .bind(row.occurred_at)
                    .bind(row.received_at)
                    .bind(row.status)
                    .bind(row.error)
                    .bind(row.data)
            },
        )
        .await;
    };
    insert_json(conn, sql, &rows, "events").await
}

/// Inserts the probe results of a group, sorted by id, and returns the ids stored now for the
/// first time.
async fn insert_probe_results(
    conn: &mut AnyConnection,
    batches: &[IngestBatch],
) -> anyhow::Result<HashSet<String>> {
    let mut rows: Vec<ProbeRow<'_>> = batches
        .iter()
        .flat_map(|batch| {
            batch.probe_results.iter().map(move |result| ProbeRow {
                id: &result.event_id,
                agent_id: &batch.agent_id,
                unit_id: batch.unit_id,
                target: &result.target,
                target_kind: &result.target_kind,
                check_kind: &result.check_kind,
                address: &result.address,
                at: millis(result.at),
                ok: i64::from(result.ok),
                rtt_ms: result.rtt_ms,
                error: result.error.as_deref(),
                http_status: result.http_status,
                cert_not_after: result.cert_not_after.map(millis),
                seq: result.seq,
                received_at: millis(batch.now),
            })
        })
        .collect();
    if rows.is_empty() {
        return Ok(HashSet::new());
    }
    rows.sort_by(|a, b| a.id.cmp(b.id));
    let sql = if is_postgres(conn) {
        "INSERT INTO probe_results (id, agent_id, unit_id, target, target_kind, check_kind, address, at, ok,
                                    rtt_ms, error, http_status, cert_not_after, seq, received_at)
         SELECT id, agent_id, unit_id, target, target_kind, check_kind, address, at, ok, rtt_ms, error,
                http_status, cert_not_after, seq, received_at
         FROM json_to_recordset($1::json) AS r(id text, agent_id text, unit_id bigint, target text,
              target_kind text, check_kind text, address text, at bigint, ok bigint, rtt_ms double precision,
              error text, http_status bigint, cert_not_after bigint, seq bigint, received_at bigint)
         ON CONFLICT (id) DO NOTHING RETURNING id"
    } else {
        return insert_sqlite(
            conn,
            &SqliteTable {
                table: "probe_results",
                head: "INSERT INTO probe_results (id, agent_id, unit_id, target, target_kind, check_kind, address,
                                                  at, ok, rtt_ms, error, http_status, cert_not_after, seq, received_at)",
                row: "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                what: "probe results",
            },
            &rows,
            |row| row.id,
            |query, row| {
                query
                    .bind(row.id)
                    .bind(row.agent_id)
                    .bind(row.unit_id)
                    .bind(row.target)
                    .bind(row.target_kind)
                    .bind(row.check_kind)
                    .bind(row.address)
                    .bind(row.at)
                    .bind(row.ok)
                    // SQLite has no trouble with a NULL float (see `probe_results.rs` for PostgreSQL).
                    .bind(row.rtt_ms)
                    .bind(row.error)
                    .bind(row.http_status)
                    .bind(row.cert_not_after)
                    .bind(row.seq)
                    .bind(row.received_at)
            },
        )
        .await;
    };
    insert_json(conn, sql, &rows, "probe results").await
}

/// A probe result read back as its event.
#[derive(sqlx::FromRow)]
struct ProbeEventRow {
    id: String,
    seq: i64,
    target: String,
    target_kind: String,
    check_kind: String,
    address: String,
    at: i64,
    ok: i64,
    measured: i64,
    rtt_ms: f64,
    error: Option<String>,
    http_status: Option<i64>,
    cert_not_after: Option<i64>,
    received_at: i64,
}

/// What a group changes on one agent: the newest values of its batches.
struct AgentTouch<'a> {
    now: i64,
    agent_version: &'a str,
    address: Option<&'a str>,
    max_seq: Option<i64>,
    clock_offset_ms: Option<i64>,
    heartbeat: Option<&'a HeartbeatUpdate>,
}

/// An agent's row as [`touch_agents`] binds it.
#[derive(Serialize)]
struct TouchRow<'a> {
    id: &'a str,
    now: i64,
    agent_version: &'a str,
    address: Option<&'a str>,
    max_seq: Option<i64>,
    clock_offset_ms: Option<i64>,
    heartbeat_interval: Option<i64>,
    host_snapshot: Option<&'a str>,
}

/// Agents per statement on SQLite, at most (8 parameters each).
const SQLITE_AGENTS_PER_STATEMENT: usize = 256;

/// Updates the agents a group touched, in one statement per chunk rather than one per agent (on
/// SQLite each statement is a round trip to the database thread; on PostgreSQL, to the server).
/// On PostgreSQL their rows are first locked in id order, so that writers side by side never
/// wait on each other in opposite orders; `FOR NO KEY UPDATE`, the lock the UPDATE itself takes,
/// because the group's inserts already hold `FOR KEY SHARE` on the same rows (foreign keys), which
/// `FOR UPDATE` would wait on across writers (a deadlock the kill -9 test found). Both statements
/// name their agents as `id = ANY(ARRAY(…))`, which PostgreSQL looks up in the primary key: joined
/// to the JSON rows alone, it guessed 100 of them and scanned the whole table instead, every
/// agent's row on every group. With 1,000 agents the two statements took 3.1 s of the database's
/// 19.7 s over 13 s of ingest, 1.0 s after (pg_stat_statements, `scripts/ingestbench`).
async fn touch_agents(
    conn: &mut AnyConnection,
    touched: &BTreeMap<&str, AgentTouch<'_>>,
) -> anyhow::Result<()> {
    let rows: Vec<TouchRow<'_>> = touched
        .iter()
        .map(|(agent_id, touch)| TouchRow {
            id: agent_id,
            now: touch.now,
            agent_version: touch.agent_version,
            address: touch.address,
            max_seq: touch.max_seq,
            clock_offset_ms: touch.clock_offset_ms,
            heartbeat_interval: touch.heartbeat.map(|heartbeat| heartbeat.interval_seconds),
            host_snapshot: touch
                .heartbeat
                .map(|heartbeat| heartbeat.host_snapshot.as_str()),
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    const SET: &str = "last_seen_at = r.now, agent_version = r.agent_version,
             last_address = COALESCE(r.address, agents.last_address),
             last_seq = CASE WHEN agents.last_seq IS NULL OR agents.last_seq < r.max_seq
                             THEN r.max_seq ELSE agents.last_seq END,
             clock_offset_ms = COALESCE(r.clock_offset_ms, agents.clock_offset_ms),
             heartbeat_interval = COALESCE(r.heartbeat_interval, agents.heartbeat_interval),
             host_snapshot = COALESCE(r.host_snapshot, agents.host_snapshot)";
    if is_postgres(conn) {
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let document = serde_json::to_string(chunk).context("encoding agents")?;
            sqlx::query(
                "SELECT id FROM agents
                 WHERE id = ANY(ARRAY(SELECT r.id FROM json_to_recordset($1::json) AS r(id text)))
                 ORDER BY id FOR NO KEY UPDATE",
            )
            .bind(&document)
            .fetch_all(&mut *conn)
            .await
            .context("locking agents for update after ingest")?;
            sqlx::query(&format!(
                "UPDATE agents SET {SET}
                 FROM json_to_recordset($1::json) AS r(id text, now bigint, agent_version text, address text,
                      max_seq bigint, clock_offset_ms bigint, heartbeat_interval bigint, host_snapshot text)
                 WHERE agents.id = r.id
                   AND agents.id = ANY(ARRAY(SELECT k.id FROM json_to_recordset($1::json) AS k(id text)))"
            ))
            .bind(&document)
            .execute(&mut *conn)
            .await
            .context("updating agents after ingest")?;
        }
        return Ok(());
    }
    let mut rest = rows.as_slice();
    for size in chunk_sizes(rows.len(), SQLITE_AGENTS_PER_STATEMENT) {
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        let values = vec!["(?, ?, ?, ?, ?, ?, ?, ?)"; size].join(", ");
        let sql = format!(
            "WITH r(id, now, agent_version, address, max_seq, clock_offset_ms, heartbeat_interval, host_snapshot)
             AS (VALUES {values})
             UPDATE agents SET {SET} FROM r WHERE agents.id = r.id"
        );
        let mut query = sqlx::query(&sql);
        for row in chunk {
            query = query
                .bind(row.id)
                .bind(row.now)
                .bind(row.agent_version)
                .bind(row.address)
                .bind(row.max_seq)
                .bind(row.clock_offset_ms)
                .bind(row.heartbeat_interval)
                .bind(row.host_snapshot);
        }
        query
            .execute(&mut *conn)
            .await
            .with_context(|| format!("updating {size} agents after ingest"))?;
    }
    Ok(())
}

/// Writes a group of batches inside `conn`'s transaction; one count per batch, in order. When the
/// same event id comes in several batches of the group, the first batch stores it and the others
/// count it as a duplicate.
async fn write_group(
    conn: &mut AnyConnection,
    batches: &[IngestBatch],
) -> anyhow::Result<Vec<IngestCounts>> {
    let mut new_events = insert_events(conn, batches).await?;
    let mut new_probes = insert_probe_results(conn, batches).await?;
    let mut all_counts = Vec::with_capacity(batches.len());
    let mut touched: BTreeMap<&str, AgentTouch<'_>> = BTreeMap::new();
    for batch in batches {
        let mut counts = IngestCounts::default();
        let mut new_ids = HashSet::new();
        for event in &batch.events {
            if new_events.remove(&event.id) {
                counts.accepted += 1;
                new_ids.insert(event.id.as_str());
            } else {
                counts.duplicates += 1;
            }
        }
        for result in &batch.probe_results {
            if new_probes.remove(&result.event_id) {
                counts.accepted += 1;
                if result.ok {
                    counts.probe_results_ok += 1;
                } else {
                    counts.probe_results_failed += 1;
                }
            } else {
                counts.duplicates += 1;
            }
        }
        let now = millis(batch.now);
        for phase in &batch.incident_phases {
            if !new_ids.contains(phase.event_id.as_str()) {
                continue;
            }
            let applied =
                incidents::apply(conn, &batch.agent_id, batch.unit_id, phase, now).await?;
            if applied == Applied::Foreign {
                let reason = format!(
                    "incident {} belongs to another agent; an agent may only report its own incidents",
                    phase.incident_id
                );
                sqlx::query("UPDATE events SET status = 'invalid', error = $1 WHERE id = $2")
                    .bind(&reason)
                    .bind(&phase.event_id)
                    .execute(&mut *conn)
                    .await
                    .with_context(|| format!("flagging event {}", phase.event_id))?;
                counts.flagged.push(FlaggedEvent {
                    id: phase.event_id.clone(),
                    seq: phase.seq,
                    reason,
                });
            }
        }
        for report in &batch.periodic_reports {
            if !new_ids.contains(report.id.as_str()) {
                continue;
            }
            let offset = batch.clock_offset_ms.unwrap_or(0);
            super::reports::insert(
                conn,
                batch.unit_id,
                Some(&batch.agent_id),
                report,
                offset,
                now,
            )
            .await?;
        }
        let probe_seq = batch.probe_results.iter().map(|result| result.seq).max();
        let touch = touched.entry(&batch.agent_id).or_insert(AgentTouch {
            now,
            agent_version: &batch.agent_version,
            address: None,
            max_seq: None,
            clock_offset_ms: None,
            heartbeat: None,
        });
        touch.now = touch.now.max(now);
        touch.agent_version = &batch.agent_version;
        touch.address = batch.address.as_deref().or(touch.address);
        touch.max_seq = touch.max_seq.max(batch.max_seq(probe_seq));
        touch.clock_offset_ms = batch.clock_offset_ms.or(touch.clock_offset_ms);
        touch.heartbeat = batch.heartbeat.as_ref().or(touch.heartbeat);
        all_counts.push(counts);
    }
    touch_agents(conn, &touched).await?;
    // Any batch, even an empty one, is contact: an "agent unreachable" incident ends.
    let contacts: Vec<(&str, i64)> = touched
        .iter()
        .map(|(agent_id, touch)| (*agent_id, touch.now))
        .collect();
    incidents::agents_reachable_again(conn, &contacts).await?;
    Ok(all_counts)
}
