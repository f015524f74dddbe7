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

/// A page of the audit log as the console reads it: newest first, filtered, from before an entry.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only actors containing this text (`person:an`, `api-token:3`).
    pub actor: Option<String>,
    /// Only actions starting with this text (`incident.` or `incident.close`).
    pub action: Option<String>,
    /// Only entries at or after this time, Unix ms.
    pub since: Option<i64>,
    /// Only entries before this time, Unix ms.
    pub until: Option<i64>,
    /// Only entries older than this one (the next page).
    pub before_id: Option<i64>,
    /// At most this many.
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

    /// Reads a page of entries, newest first (the console's "Nhật ký").
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn audit_search(&self, query: &AuditQuery) -> anyhow::Result<Vec<AuditEntry>> {
        let actor = query
            .actor
            .as_ref()
            .map(|actor| format!("%{}%", like_escaped(actor)));
        let action = query
            .action
            .as_ref()
            .map(|action| format!("{}%", like_escaped(action)));
        let entries = sqlx::query_as::<_, AuditEntry>(
            "SELECT id, at, actor, action, target, outcome, remote_addr, details FROM audit_log
             WHERE ($1 IS NULL OR actor LIKE $1 ESCAPE '\\') AND ($2 IS NULL OR action LIKE $2 ESCAPE '\\')
               AND ($3 IS NULL OR at >= $3) AND ($4 IS NULL OR at < $4) AND ($5 IS NULL OR id < $5)
             ORDER BY id DESC LIMIT $6",
        )
        .bind(actor)
        .bind(action)
        .bind(query.since)
        .bind(query.until)
        .bind(query.before_id)
        .bind(query.limit)
        .fetch_all(&self.pool)
        .await
        .context("searching the audit log")?;
        Ok(entries)
    }
}

/// `text` with the `LIKE` wildcards and the escape character escaped.
fn like_escaped(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
