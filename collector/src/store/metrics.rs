//! Read-only queries behind the scrape-time gauges of `collector::exposition`: they mirror the
//! database, so several collectors on one database report the same figures.

use anyhow::Context;

use super::Store;

/// Open top-level incidents of one unit, kind and severity.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OpenIncidents {
    /// Internal unit id.
    pub unit_id: i64,
    /// One of [`super::INCIDENT_KINDS`].
    pub kind: String,
    /// `low`, `medium`, `high` or `critical`.
    pub severity: String,
    /// How many are open or acknowledged.
    pub count: i64,
    /// Start of the oldest of them, Unix ms.
    pub oldest_started_at: i64,
}

impl Store {
    /// Open and acknowledged incidents without a parent (those people act on), grouped by unit,
    /// kind and severity.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn metrics_open_incidents(&self) -> anyhow::Result<Vec<OpenIncidents>> {
        sqlx::query_as::<_, OpenIncidents>(
            "SELECT unit_id, kind, severity, COUNT(*) AS count, MIN(started_at) AS oldest_started_at
             FROM incidents
             WHERE state IN ('open', 'acknowledged') AND parent_id IS NULL
             GROUP BY unit_id, kind, severity
             ORDER BY unit_id, kind, severity",
        )
        .fetch_all(&self.pool)
        .await
        .context("counting open incidents for the metrics")
    }

    /// Time one trivial query takes, in seconds: the database latency seen by this collector.
    ///
    /// # Errors
    ///
    /// When the database does not answer.
    pub async fn metrics_ping_seconds(&self) -> anyhow::Result<f64> {
        let started = std::time::Instant::now();
        self.ping().await?;
        Ok(started.elapsed().as_secs_f64())
    }
}
