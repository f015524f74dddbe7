//! The append-only audit log: authentication failures, refusals, token, unit and agent changes.
//!
//! The database refuses `UPDATE` on `audit_log`, and `DELETE` of any entry younger than 365 days
//! (triggers in the migrations, 0005 for the floor), so even a bug in the collector cannot rewrite
//! history; only the retention job (`retention.rs`) removes entries, past `retention.audit`.

use anyhow::Context;
use serde::Serialize;
use time::OffsetDateTime;

use super::{millis, Store};

/// An entry to append.
#[derive(Debug, Clone, Default)]
pub struct NewAuditEntry {
    /// Who acted: `cli:root`, `api-token:3`, `agent:<uuid>`, `anonymous`.
    pub actor: String,
    /// What was attempted, dotted: `agent.enroll`, `api_token.create`, `auth.failed`.
    pub action: String,
    /// What it was done to, e.g. a unit code or agent id.
    pub target: String,
    /// `ok` or `denied`.
    pub outcome: &'static str,
    /// Client address, when it came over the network.
    pub remote_addr: Option<String>,
    /// More facts as a JSON object; never secrets.
    pub details: serde_json::Value,
}

/// An entry as read back.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AuditEntry {
    /// Position in the log.
    pub id: i64,
    /// Time, Unix ms.
    pub at: i64,
    /// Actor.
    pub actor: String,
    /// Action.
    pub action: String,
    /// Target.
    pub target: String,
    /// Outcome.
    pub outcome: String,
    /// Client address.
    pub remote_addr: Option<String>,
    /// JSON details.
    pub details: String,
}

/// Which entries to read.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this action.
    pub action: Option<String>,
    /// At most this many, newest first.
    pub limit: i64,
}

impl Store {
    /// Appends an entry.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn audit(&self, entry: &NewAuditEntry, now: OffsetDateTime) -> anyhow::Result<()> {
        let details = if entry.details.is_null() {
            "{}".to_owned()
        } else {
            entry.details.to_string()
        };
        sqlx::query(
            "INSERT INTO audit_log (at, actor, action, target, outcome, remote_addr, details)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(millis(now))
        .bind(&entry.actor)
        .bind(&entry.action)
        .bind(&entry.target)
        .bind(entry.outcome)
        .bind(&entry.remote_addr)
        .bind(details)
        .execute(&self.pool)
        .await
        .with_context(|| format!("writing audit entry {}", entry.action))?;
        Ok(())
    }

    /// Reads entries, newest first.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn audit_list(&self, filter: &AuditFilter) -> anyhow::Result<Vec<AuditEntry>> {
        let entries = sqlx::query_as::<_, AuditEntry>(
            "SELECT id, at, actor, action, target, outcome, remote_addr, details FROM audit_log
             WHERE ($1 IS NULL OR action = $1) ORDER BY id DESC LIMIT $2",
        )
        .bind(&filter.action)
        .bind(filter.limit)
        .fetch_all(&self.pool)
        .await
        .context("reading audit log")?;
        Ok(entries)
    }
}
