//! The key that signs notices' acknowledgement links and the links already used (issue 17;
//! rules in `domain::ack_link`). The key is made on first use from the OS random source and never
//! leaves the database; a link acts once, whoever uses it.

use anyhow::Context;
use time::OffsetDateTime;

use super::{millis, Store};

/// A notice a link points to: its incident and kind.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LinkedNotice {
    /// The notice.
    pub id: String,
    /// Its incident, if it is about one.
    pub incident_id: Option<String>,
    /// `opening`, `escalation`, …
    pub kind: String,
    /// Where it went.
    pub address: String,
}

impl Store {
    /// The link key, made on first use.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn ack_link_key(&self) -> anyhow::Result<Vec<u8>> {
        let mut fresh = [0u8; 32];
        getrandom::fill(&mut fresh)
            .map_err(|err| anyhow::anyhow!("the OS random source failed: {err}"))?;
        let hex: String = fresh.iter().map(|byte| format!("{byte:02x}")).collect();
        sqlx::query(
            "INSERT INTO link_keys (purpose, key, created_at) VALUES ('ack', $1, $2)
             ON CONFLICT (purpose) DO NOTHING",
        )
        .bind(&hex)
        .bind(millis(OffsetDateTime::now_utc()))
        .execute(&self.pool)
        .await
        .context("making the link key")?;
        let key: String = sqlx::query_scalar("SELECT key FROM link_keys WHERE purpose = 'ack'")
            .fetch_one(&self.pool)
            .await
            .context("reading the link key")?;
        Ok(key.into_bytes())
    }

    /// The notice a link names, if it exists.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn linked_notice(&self, notice_id: &str) -> anyhow::Result<Option<LinkedNotice>> {
        sqlx::query_as::<_, LinkedNotice>(
            "SELECT id, incident_id, kind, address FROM notices WHERE id = $1",
        )
        .bind(notice_id)
        .fetch_optional(&self.pool)
        .await
        .context("reading a linked notice")
    }

    /// Whether the link of `notice_id` was used already, and by whom.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn ack_link_used(&self, notice_id: &str) -> anyhow::Result<Option<String>> {
        sqlx::query_scalar("SELECT used_by FROM ack_link_uses WHERE notice_id = $1")
            .bind(notice_id)
            .fetch_optional(&self.pool)
            .await
            .context("reading a link's use")
    }

    /// Marks the link of `notice_id` used by `by`; false when it already was (by anyone).
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn ack_link_use(
        &self,
        notice_id: &str,
        by: &str,
        now: OffsetDateTime,
    ) -> anyhow::Result<bool> {
        let done = sqlx::query(
            "INSERT INTO ack_link_uses (notice_id, used_at, used_by) VALUES ($1, $2, $3)
             ON CONFLICT (notice_id) DO NOTHING",
        )
        .bind(notice_id)
        .bind(millis(now))
        .bind(by)
        .execute(&self.pool)
        .await
        .context("using a link")?;
        Ok(done.rows_affected() == 1)
    }
}
