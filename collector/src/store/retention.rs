//! Retention: raw data kept a set time, then rolled up or deleted; the audit log and closed
//! incidents kept per policy.
//!
//! Design note.
//!
//! - **What goes.** Probe results older than `raw` are rolled up into `probe_rollups` (one row per
//!   agent, target and UTC hour: checks, failures, round-trip count, sum, min and max) and deleted.
//!   Raw `events` older than `raw` go only for the routine kinds, `heartbeat` and `probe_result`
//!   ([`RAW_EVENT_KINDS`]): incident phases, officers' reports and unknown kinds stay. Audit entries
//!   older than `audit` go, but never one younger than 365 days by the database's clock: its
//!   trigger refuses those (migration 0005), and the job does not ask. They go as a prefix by id,
//!   and the hash chain's anchor moves past them in the same transaction (`audit.rs`).
//!   Closed incidents closed longer ago than `incidents`, when set, go with their timeline and issued reports; an
//!   incident that still has children (`parent_id`) waits until they are gone, so the children
//!   go first and nothing is left pointing at a deleted parent.
//! - **Bounded batches.** Each step works in transactions of at most `batch_rows` rows (5,000 by
//!   default), so SQLite's one writer is never held for long and ingest carries on in between.
//! - **Exactly once.** A roll-up batch is one statement `DELETE … RETURNING` whose returned rows
//!   are summed into the roll-ups in the same transaction: what is counted is exactly what was
//!   deleted, so a crash (the transaction rolls back) or a second collector never counts a result
//!   twice. Upserts add counts and sums and keep the smaller minimum and larger maximum.
//! - **Turns.** Every transaction first updates the `retention` row of `job_locks`, so collectors
//!   sharing a PostgreSQL database take turns (the row lock lasts until commit and goes with a
//!   killed collector's connection); on SQLite that first write takes the database's write lock.
//! - **Idempotent.** A second run at the same time finds nothing older than the cut-offs and
//!   changes nothing but the lock row's holder and time.
//!
//! Through `sqlx::Any`, round-trip figures always travel as `f64` with a count saying whether they
//! exist, never as a NULL `Option<f64>` (see `probe_results.rs`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Serialize;
use sqlx::AnyConnection;
use time::OffsetDateTime;

use super::{millis, Backend, Store};
use crate::config::RetentionConfig;

/// Event kinds deleted once older than the raw retention; every other kind is kept.
pub const RAW_EVENT_KINDS: &[&str] = &["heartbeat", "probe_result"];

/// Rows per transaction unless a policy says otherwise.
pub const DEFAULT_BATCH_ROWS: i64 = 5_000;

/// Length of a roll-up bucket: one hour, in milliseconds.
const HOUR_MS: i64 = 3_600_000;

/// What to keep, as the retention job applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Probe results and raw routine events older than this are rolled up or deleted.
    pub raw: Duration,
    /// Audit entries older than this are deleted (the database refuses below 365 days).
    pub audit: Duration,
    /// Closed incidents closed longer ago than this are deleted; none when absent.
    pub incidents: Option<Duration>,
    /// Most rows one transaction touches.
    pub batch_rows: i64,
}

impl From<&RetentionConfig> for RetentionPolicy {
    fn from(config: &RetentionConfig) -> RetentionPolicy {
        RetentionPolicy {
            raw: config.raw,
            audit: config.audit,
            incidents: config.incidents,
            batch_rows: DEFAULT_BATCH_ROWS,
        }
    }
}

/// What a retention run did, or what a preview found it would do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RetentionSummary {
    /// Probe results added to the roll-ups and deleted.
    pub probe_results_rolled_up: u64,
    /// Distinct agent-target-hours those results fell in (roll-up rows added or added to).
    pub rollup_hours: u64,
    /// Raw heartbeat and probe_result events deleted.
    pub events_deleted: u64,
    /// Audit entries deleted.
    pub audit_deleted: u64,
    /// Closed incidents deleted.
    pub incidents_deleted: u64,
    /// Timeline entries of those incidents deleted.
    pub timeline_deleted: u64,
    /// Transactions committed (0 for a preview).
    pub transactions: u64,
}

impl RetentionSummary {
    /// Whether nothing was (or would be) removed.
    pub fn is_empty(&self) -> bool {
        self.probe_results_rolled_up == 0
            && self.events_deleted == 0
            && self.audit_deleted == 0
            && self.incidents_deleted == 0
            && self.timeline_deleted == 0
    }
}

/// One hour of one agent's checks of one target, as rolled up.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct ProbeRollup {
    /// Agent id.
    pub agent_id: String,
    /// Target name.
    pub target: String,
    /// Start of the UTC hour, Unix ms.
    pub hour_start: i64,
    /// Internal unit id.
    pub unit_id: i64,
    /// Where the target sits.
    pub target_kind: String,
    /// How it was checked.
    pub check_kind: String,
    /// Checks in the hour.
    pub checks: i64,
    /// Failed checks.
    pub failures: i64,
    /// Checks with a round-trip time.
    pub rtt_count: i64,
    /// Sum of those round-trip times, ms.
    pub rtt_sum_ms: f64,
    /// Shortest round-trip time, ms.
    pub rtt_min_ms: Option<f64>,
    /// Longest round-trip time, ms.
    pub rtt_max_ms: Option<f64>,
}

/// A probe result as the roll-up deletes it.
#[derive(Debug, sqlx::FromRow)]
struct RawResult {
    agent_id: String,
    unit_id: i64,
    target: String,
    target_kind: String,
    check_kind: String,
    at: i64,
    ok: i64,
    rtt_ms: Option<f64>,
}

/// One roll-up row's share of a batch.
#[derive(Debug)]
struct Bucket {
    unit_id: i64,
    target_kind: String,
    check_kind: String,
    /// Time of the newest result, whose unit and kinds the bucket keeps.
    newest_at: i64,
    checks: i64,
    failures: i64,
    rtt_count: i64,
    rtt_sum_ms: f64,
    rtt_min_ms: f64,
    rtt_max_ms: f64,
}

impl Bucket {
    fn new(result: &RawResult) -> Bucket {
        Bucket {
            unit_id: result.unit_id,
            target_kind: result.target_kind.clone(),
            check_kind: result.check_kind.clone(),
            newest_at: result.at,
            checks: 0,
            failures: 0,
            rtt_count: 0,
            rtt_sum_ms: 0.0,
            rtt_min_ms: f64::INFINITY,
            rtt_max_ms: f64::NEG_INFINITY,
        }
    }

    fn add(&mut self, result: &RawResult) {
        if result.at > self.newest_at {
            self.newest_at = result.at;
            self.unit_id = result.unit_id;
            self.target_kind.clone_from(&result.target_kind);
            self.check_kind.clone_from(&result.check_kind);
        }
        self.checks += 1;
        if result.ok == 0 {
            self.failures += 1;
        }
        if let Some(rtt) = result.rtt_ms {
            self.rtt_count += 1;
            self.rtt_sum_ms += rtt;
            self.rtt_min_ms = self.rtt_min_ms.min(rtt);
            self.rtt_max_ms = self.rtt_max_ms.max(rtt);
        }
    }
}

/// Key of a roll-up row: agent, target, hour start.
type BucketKey = (String, String, i64);

/// The cut-off time, Unix ms, for data older than `keep`.
fn cutoff(now: i64, keep: Duration) -> i64 {
    now.saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX))
}

/// The newest audit time the database lets go (Unix ms, 365 days before its own clock), in its
/// dialect. Its trigger uses the same clock, so a collector whose clock runs ahead never asks for a
/// deletion the trigger would refuse.
fn audit_floor(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "(CAST(strftime('%s', 'now') AS INTEGER) - 365 * 86400) * 1000",
        Backend::Postgres => "(EXTRACT(EPOCH FROM now()) * 1000)::BIGINT - 365::BIGINT * 86400000",
    }
}

/// The start of the UTC hour of a time, Unix ms.
fn hour_start(at: i64) -> i64 {
    at.div_euclid(HOUR_MS) * HOUR_MS
}

/// Which incidents a run would delete: closed long enough ago, and every child deletable too.
fn deletable_incidents(
    candidates: &HashSet<String>,
    children: &HashMap<String, Vec<String>>,
) -> HashSet<String> {
    fn deletable(
        id: &str,
        candidates: &HashSet<String>,
        children: &HashMap<String, Vec<String>>,
        depth: usize,
    ) -> bool {
        // Folding is a few levels deep (agent, unit, uplink); a cycle would be a bug, so stop.
        depth < 32
            && candidates.contains(id)
            && children.get(id).is_none_or(|kids| {
                kids.iter()
                    .all(|kid| deletable(kid, candidates, children, depth + 1))
            })
    }
    candidates
        .iter()
        .filter(|id| deletable(id, candidates, children, 0))
        .cloned()
        .collect()
}

impl Store {
    /// Applies a retention policy as of `now`, in transactions of at most `policy.batch_rows` rows
    /// that each first take the `retention` job lock as `holder`; see the module's design note.
    ///
    /// # Errors
    ///
    /// On a database error; batches committed before it stay done, and the next run carries on.
    pub async fn retention_run(
        &self,
        now: OffsetDateTime,
        policy: &RetentionPolicy,
        holder: &str,
    ) -> anyhow::Result<RetentionSummary> {
        if policy.batch_rows < 1 {
            bail!("a retention batch must hold at least one row");
        }
        let now = millis(now);
        let raw_cutoff = cutoff(now, policy.raw);
        let mut summary = RetentionSummary::default();
        let mut hours = HashSet::new();
        loop {
            let mut tx = self.retention_begin(holder, now).await?;
            let n_rows = roll_up_batch(&mut tx, raw_cutoff, policy.batch_rows, &mut hours).await?;
            tx.commit().await.context("committing a roll-up batch")?;
            summary.transactions += 1;
            summary.probe_results_rolled_up += n_rows;
            if n_rows < policy.batch_rows as u64 {
                break;
            }
        }
        summary.rollup_hours = hours.len() as u64;
        for kind in RAW_EVENT_KINDS {
            // The kinds are our constants, so they go into the text rather than a parameter.
            let sql = format!(
                "DELETE FROM events WHERE id IN
                     (SELECT id FROM events WHERE kind = '{kind}' AND occurred_at < $1 ORDER BY occurred_at LIMIT $2)"
            );
            summary.events_deleted += self
                .retention_delete(
                    holder,
                    now,
                    policy.batch_rows,
                    &sql,
                    raw_cutoff,
                    &mut summary.transactions,
                )
                .await
                .with_context(|| format!("deleting {kind} events"))?;
        }
        // The database's own clock decides the legal floor, as its trigger does, so a collector
        // whose clock runs ahead never asks for a deletion the trigger would refuse.
        let floor = audit_floor(self.backend);
        // The oldest entries go as a prefix by id, moving the hash chain's anchor in the same
        // transaction (design note in `audit.rs`).
        let audit_cutoff = cutoff(now, policy.audit);
        loop {
            let mut tx = self.retention_begin(holder, now).await?;
            let n_rows =
                super::audit::delete_oldest(&mut tx, audit_cutoff, floor, policy.batch_rows)
                    .await
                    .context("deleting audit entries")?;
            tx.commit()
                .await
                .context("committing an audit deletion batch")?;
            summary.transactions += 1;
            summary.audit_deleted += n_rows;
            if n_rows < policy.batch_rows as u64 {
                break;
            }
        }
        if let Some(keep) = policy.incidents {
            let closed_before = cutoff(now, keep);
            // Each pass deletes incidents without children; their parents qualify in the next.
            let batch = policy.batch_rows.min(500);
            loop {
                let mut tx = self.retention_begin(holder, now).await?;
                let (n_incidents, n_timeline) =
                    delete_incidents_batch(&mut tx, closed_before, batch).await?;
                tx.commit()
                    .await
                    .context("committing an incident deletion batch")?;
                summary.transactions += 1;
                summary.incidents_deleted += n_incidents;
                summary.timeline_deleted += n_timeline;
                if n_incidents == 0 {
                    break;
                }
            }
        }
        Ok(summary)
    }

    /// One agent's roll-ups, by target and hour.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn probe_rollups_of_agent(&self, agent_id: &str) -> anyhow::Result<Vec<ProbeRollup>> {
        let rollups = sqlx::query_as::<_, ProbeRollup>(
            "SELECT agent_id, target, hour_start, unit_id, target_kind, check_kind, checks, failures, rtt_count,
                    rtt_sum_ms, rtt_min_ms, rtt_max_ms
             FROM probe_rollups WHERE agent_id = $1 ORDER BY target, hour_start",
        )
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await
        .context("reading probe roll-ups")?;
        Ok(rollups)
    }

    /// What [`Store::retention_run`] would remove as of `now`, changing nothing.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn retention_preview(
        &self,
        now: OffsetDateTime,
        policy: &RetentionPolicy,
    ) -> anyhow::Result<RetentionSummary> {
        let now = millis(now);
        let raw_cutoff = cutoff(now, policy.raw);
        let count = |sql: String, before: i64| async move {
            let n: i64 = sqlx::query_scalar(&sql)
                .bind(before)
                .fetch_one(&self.pool)
                .await
                .with_context(|| format!("counting for retention: {sql}"))?;
            anyhow::Ok(u64::try_from(n).unwrap_or(0))
        };
        let mut summary = RetentionSummary {
            probe_results_rolled_up: count(
                "SELECT COUNT(*) FROM probe_results WHERE at < $1".into(),
                raw_cutoff,
            )
            .await?,
            rollup_hours: count(
                format!(
                    "SELECT COUNT(*) FROM (SELECT DISTINCT agent_id, target, at / {HOUR_MS} AS hour
                                           FROM probe_results WHERE at < $1) hours"
                ),
                raw_cutoff,
            )
            .await?,
            events_deleted: count(
                format!(
                    "SELECT COUNT(*) FROM events WHERE kind IN ('{}') AND occurred_at < $1",
                    RAW_EVENT_KINDS.join("', '")
                ),
                raw_cutoff,
            )
            .await?,
            audit_deleted: count(
                format!(
                    "SELECT COUNT(*) FROM audit_log WHERE at < $1 AND at <= {}",
                    audit_floor(self.backend)
                ),
                cutoff(now, policy.audit),
            )
            .await?,
            ..RetentionSummary::default()
        };
        if let Some(keep) = policy.incidents {
            let closed_before = cutoff(now, keep);
            let candidates: Vec<(String, i64)> = sqlx::query_as(
                "SELECT i.id, (SELECT COUNT(*) FROM incident_timeline t WHERE t.incident_id = i.id)
                 FROM incidents i WHERE i.state = 'closed' AND i.closed_at < $1",
            )
            .bind(closed_before)
            .fetch_all(&self.pool)
            .await
            .context("listing closed incidents for retention")?;
            let edges: Vec<(String, String)> =
                sqlx::query_as("SELECT parent_id, id FROM incidents WHERE parent_id IS NOT NULL")
                    .fetch_all(&self.pool)
                    .await
                    .context("listing folded incidents for retention")?;
            let mut children: HashMap<String, Vec<String>> = HashMap::new();
            for (parent, child) in edges {
                children.entry(parent).or_default().push(child);
            }
            let ids = candidates.iter().map(|(id, _)| id.clone()).collect();
            let deletable = deletable_incidents(&ids, &children);
            for (id, n_timeline) in &candidates {
                if deletable.contains(id) {
                    summary.incidents_deleted += 1;
                    summary.timeline_deleted += u64::try_from(*n_timeline).unwrap_or(0);
                }
            }
        }
        Ok(summary)
    }

    /// Starts a retention transaction by taking the job lock.
    async fn retention_begin(&self, holder: &str, now: i64) -> anyhow::Result<super::WriteTx> {
        let mut tx = self
            .begin_write()
            .await
            .context("starting a retention batch")?;
        let res = sqlx::query("UPDATE job_locks SET holder = $1, at = $2 WHERE name = 'retention'")
            .bind(holder)
            .bind(now)
            .execute(&mut *tx)
            .await
            .context("taking the retention job lock")?;
        if res.rows_affected() != 1 {
            bail!("job_locks has no 'retention' row; the database schema is damaged");
        }
        Ok(tx)
    }

    /// Runs a bounded `DELETE` (binding `$1` the cut-off and `$2` the batch size) in locked
    /// transactions until a batch comes back short; returns the rows deleted.
    async fn retention_delete(
        &self,
        holder: &str,
        now: i64,
        batch_rows: i64,
        sql: &str,
        before: i64,
        transactions: &mut u64,
    ) -> anyhow::Result<u64> {
        let mut deleted = 0;
        loop {
            let mut tx = self.retention_begin(holder, now).await?;
            let res = sqlx::query(sql)
                .bind(before)
                .bind(batch_rows)
                .execute(&mut *tx)
                .await
                .context("deleting a batch")?;
            tx.commit().await.context("committing a deletion batch")?;
            *transactions += 1;
            deleted += res.rows_affected();
            if res.rows_affected() < batch_rows as u64 {
                return Ok(deleted);
            }
        }
    }
}

/// Deletes up to `batch_rows` of the oldest probe results before `before` and adds them to the
/// roll-ups, inside the caller's transaction; returns how many it deleted and notes their hours.
async fn roll_up_batch(
    conn: &mut AnyConnection,
    before: i64,
    batch_rows: i64,
    hours: &mut HashSet<BucketKey>,
) -> anyhow::Result<u64> {
    let rows: Vec<RawResult> = sqlx::query_as(
        "DELETE FROM probe_results WHERE id IN
             (SELECT id FROM probe_results WHERE at < $1 ORDER BY at LIMIT $2)
         RETURNING agent_id, unit_id, target, target_kind, check_kind, at, ok, rtt_ms",
    )
    .bind(before)
    .bind(batch_rows)
    .fetch_all(&mut *conn)
    .await
    .context("taking a batch of old probe results")?;
    let mut buckets: BTreeMap<BucketKey, Bucket> = BTreeMap::new();
    for row in &rows {
        buckets
            .entry((row.agent_id.clone(), row.target.clone(), hour_start(row.at)))
            .or_insert_with(|| Bucket::new(row))
            .add(row);
    }
    for ((agent_id, target, hour), bucket) in &buckets {
        // Min and max are bound as plain f64 and nulled in SQL when nothing was measured.
        let measured = bucket.rtt_count > 0;
        sqlx::query(
            "INSERT INTO probe_rollups (agent_id, target, hour_start, unit_id, target_kind, check_kind, checks,
                                        failures, rtt_count, rtt_sum_ms, rtt_min_ms, rtt_max_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
                     CASE WHEN $9 > 0 THEN $11 ELSE NULL END, CASE WHEN $9 > 0 THEN $12 ELSE NULL END)
             ON CONFLICT (agent_id, target, hour_start) DO UPDATE SET
                 unit_id = excluded.unit_id,
                 target_kind = excluded.target_kind,
                 check_kind = excluded.check_kind,
                 checks = probe_rollups.checks + excluded.checks,
                 failures = probe_rollups.failures + excluded.failures,
                 rtt_count = probe_rollups.rtt_count + excluded.rtt_count,
                 rtt_sum_ms = probe_rollups.rtt_sum_ms + excluded.rtt_sum_ms,
                 rtt_min_ms = CASE WHEN excluded.rtt_min_ms IS NULL THEN probe_rollups.rtt_min_ms
                                   WHEN probe_rollups.rtt_min_ms IS NULL OR excluded.rtt_min_ms < probe_rollups.rtt_min_ms
                                   THEN excluded.rtt_min_ms ELSE probe_rollups.rtt_min_ms END,
                 rtt_max_ms = CASE WHEN excluded.rtt_max_ms IS NULL THEN probe_rollups.rtt_max_ms
                                   WHEN probe_rollups.rtt_max_ms IS NULL OR excluded.rtt_max_ms > probe_rollups.rtt_max_ms
                                   THEN excluded.rtt_max_ms ELSE probe_rollups.rtt_max_ms END",
        )
        .bind(agent_id)
        .bind(target)
        .bind(*hour)
        .bind(bucket.unit_id)
        .bind(&bucket.target_kind)
        .bind(&bucket.check_kind)
        .bind(bucket.checks)
        .bind(bucket.failures)
        .bind(bucket.rtt_count)
        .bind(bucket.rtt_sum_ms)
        .bind(if measured { bucket.rtt_min_ms } else { 0.0 })
        .bind(if measured { bucket.rtt_max_ms } else { 0.0 })
        .execute(&mut *conn)
        .await
        .with_context(|| format!("rolling up probe results of {agent_id} {target} at {hour}"))?;
    }
    hours.extend(buckets.into_keys());
    Ok(rows.len() as u64)
}

/// Deletes up to `batch` closed incidents closed before `closed_before` that have no children,
/// timeline first, inside the caller's transaction; returns incidents and timeline entries deleted.
async fn delete_incidents_batch(
    conn: &mut AnyConnection,
    closed_before: i64,
    batch: i64,
) -> anyhow::Result<(u64, u64)> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT i.id FROM incidents i
         WHERE i.state = 'closed' AND i.closed_at < $1
           AND NOT EXISTS (SELECT 1 FROM incidents c WHERE c.parent_id = i.id)
         ORDER BY i.closed_at LIMIT $2",
    )
    .bind(closed_before)
    .bind(batch)
    .fetch_all(&mut *conn)
    .await
    .context("choosing closed incidents to delete")?;
    if ids.is_empty() {
        return Ok((0, 0));
    }
    // An incident's issued reports (frozen documents) go with it; they have no foreign key.
    let mut deleted = [0; 3];
    for (i, table) in [
        ("incident_timeline", "incident_id"),
        ("incidents", "id"),
        ("incident_reports", "incident_id"),
    ]
    .iter()
    .enumerate()
    {
        let sql = format!(
            "DELETE FROM {} WHERE 1 = 1{}",
            table.0,
            super::in_list(table.1, 1, ids.len())
        );
        let mut query = sqlx::query(&sql);
        for id in &ids {
            query = query.bind(id);
        }
        deleted[i] = query
            .execute(&mut *conn)
            .await
            .with_context(|| format!("deleting old closed incidents from {}", table.0))?
            .rows_affected();
    }
    Ok((deleted[1], deleted[0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_start_on_the_utc_hour() {
        assert_eq!(hour_start(0), 0);
        assert_eq!(hour_start(3_599_999), 0);
        assert_eq!(hour_start(3_600_000), 3_600_000);
        // 2026-11-23 10:59:59.999 UTC.
        assert_eq!(hour_start(1_795_431_599_999), 1_795_428_000_000);
    }

    #[test]
    fn cutoffs_never_overflow() {
        assert_eq!(cutoff(10_000, Duration::from_secs(3)), 7_000);
        assert_eq!(cutoff(0, Duration::MAX), -i64::MAX);
    }

    fn check_deletable(candidates: &[&str], edges: &[(&str, &str)], expected: &[&str]) {
        let candidates = candidates.iter().map(|id| (*id).to_owned()).collect();
        let mut children: HashMap<String, Vec<String>> = HashMap::new();
        for (parent, child) in edges {
            children
                .entry((*parent).to_owned())
                .or_default()
                .push((*child).to_owned());
        }
        let mut got: Vec<String> = deletable_incidents(&candidates, &children)
            .into_iter()
            .collect();
        got.sort();
        assert_eq!(got, expected);
    }

    #[test]
    fn incidents_go_only_with_all_their_children() {
        // An uplink incident over two unit incidents, each over agents' incidents.
        let edges = [("up", "u1"), ("up", "u2"), ("u1", "a1"), ("u2", "a2")];
        check_deletable(
            &["up", "u1", "u2", "a1", "a2"],
            &edges,
            &["a1", "a2", "u1", "u2", "up"],
        );
        // a2 is still open (not a candidate): u2 and the uplink stay; u1's branch goes.
        check_deletable(&["up", "u1", "u2", "a1"], &edges, &["a1", "u1"]);
        check_deletable(&[], &edges, &[]);
    }
}
