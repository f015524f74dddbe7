//! Drafts of periodic reports saved from the web console (issue 14): one per unit, scheme and
//! period, replaced at each save, removed once a version is submitted. A draft never counts as a
//! report; only `periodic_reports` rows do (`reports.rs`).

use anyhow::Context;
use time::OffsetDateTime;

use super::{millis, Store};

/// A saved draft.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReportDraft {
    /// What the form held, as JSON (the console owns its shape).
    pub fields: String,
    /// Who saved it (an audit actor, e.g. `person:an`).
    pub saved_by: String,
    /// When, Unix ms.
    pub saved_at: i64,
}

impl Store {
    /// Saves (or replaces) the draft of `unit_id` for one period of one scheme.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn report_draft_save(
        &self,
        unit_id: i64,
        scheme: &str,
        period: &str,
        fields: &str,
        by: &str,
        now: OffsetDateTime,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO report_drafts (unit_id, scheme, period, fields, saved_by, saved_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (unit_id, scheme, period) DO UPDATE SET fields = $4, saved_by = $5, saved_at = $6",
        )
        .bind(unit_id)
        .bind(scheme)
        .bind(period)
        .bind(fields)
        .bind(by)
        .bind(millis(now))
        .execute(&self.pool)
        .await
        .context("saving a report draft")?;
        Ok(())
    }

    /// The draft of `unit_id` for one period of one scheme, if one is saved.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn report_draft(
        &self,
        unit_id: i64,
        scheme: &str,
        period: &str,
    ) -> anyhow::Result<Option<ReportDraft>> {
        sqlx::query_as::<_, ReportDraft>(
            "SELECT fields, saved_by, saved_at FROM report_drafts
             WHERE unit_id = $1 AND scheme = $2 AND period = $3",
        )
        .bind(unit_id)
        .bind(scheme)
        .bind(period)
        .fetch_optional(&self.pool)
        .await
        .context("reading a report draft")
    }

    /// Removes the draft of `unit_id` for one period (after a version is submitted).
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn report_draft_delete(
        &self,
        unit_id: i64,
        scheme: &str,
        period: &str,
    ) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM report_drafts WHERE unit_id = $1 AND scheme = $2 AND period = $3")
            .bind(unit_id)
            .bind(scheme)
            .bind(period)
            .execute(&self.pool)
            .await
            .context("removing a report draft")?;
        Ok(())
    }
}
