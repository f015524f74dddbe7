//! The register of information systems, the units' reporting profiles, and every issued version
//! of every incident report (issue 12).
//!
//! An incident report is issued once per form (`initial`, `closing`): the first time it is asked
//! for, or when the event that calls for it happens. Its facts are stored as JSON with it and never
//! change; a correction is the next version under the same number. Numbers count per issuing unit
//! and year (`incident_report_numbers`), allocated in the transaction that stores the report.

use anyhow::Context;
use time::OffsetDateTime;

use super::{millis, Store};
use crate::documents::incident::{Facts, Form};
use crate::services::systems::{InfoSystem, UnitProfile};

/// One issued version of an incident report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedReport {
    /// Version, 1 first.
    pub version: u32,
    /// Number and symbol.
    pub number: String,
    /// When issued, Unix ms.
    pub issued_at: i64,
    /// Who issued it (`system` for automatic issues).
    pub issued_by: String,
    /// Why it was issued again.
    pub reason: String,
    /// What it says.
    pub facts: Facts,
}

type ReportRow = (i64, String, i64, String, String, String);

fn issued(row: ReportRow) -> anyhow::Result<IssuedReport> {
    let (version, number, issued_at, issued_by, reason, facts) = row;
    Ok(IssuedReport {
        version: u32::try_from(version).unwrap_or(0),
        number,
        issued_at,
        issued_by,
        reason,
        facts: serde_json::from_str(&facts).context("reading a stored incident report")?,
    })
}

const SYSTEM_COLUMNS: &str =
    "u.code, s.code, s.name, s.security_level, s.purpose, s.operator, s.governing_body,
     s.connection_provider, s.security_provider, s.os, s.services, s.public_addresses, s.domains
     FROM info_systems s JOIN units u ON u.id = s.unit_id";

type SystemRow = (
    String,
    String,
    String,
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
);

fn system(row: SystemRow) -> InfoSystem {
    InfoSystem {
        unit_code: row.0,
        code: row.1,
        name: row.2,
        security_level: u8::try_from(row.3).unwrap_or(0),
        purpose: row.4,
        operator: row.5,
        governing_body: row.6,
        connection_provider: row.7,
        security_provider: row.8,
        os: row.9,
        services: row.10,
        public_addresses: row.11,
        domains: row.12,
    }
}

impl Store {
    async fn unit_id_of(
        conn: &mut sqlx::AnyConnection,
        code: &str,
        what: &str,
    ) -> anyhow::Result<i64> {
        let unit: Option<i64> = sqlx::query_scalar("SELECT id FROM units WHERE code = $1")
            .bind(code)
            .fetch_optional(&mut *conn)
            .await
            .context("looking up a unit")?;
        unit.ok_or_else(|| {
            anyhow::anyhow!(
                "nothing was imported: {what} names unit {code}, which is not in the units list"
            )
        })
    }

    /// Creates or updates information systems by code, all or nothing.
    ///
    /// # Errors
    ///
    /// When a unit code is unknown (nothing is then stored), or on a database error.
    pub async fn info_systems_import(
        &self,
        systems: &[InfoSystem],
        now: OffsetDateTime,
    ) -> anyhow::Result<usize> {
        let now = millis(now);
        let mut tx = self.begin_write().await.context("starting system import")?;
        for item in systems {
            let unit_id =
                Self::unit_id_of(&mut tx, &item.unit_code, &format!("system {}", item.code))
                    .await?;
            sqlx::query(
                "INSERT INTO info_systems (code, unit_id, name, security_level, purpose, operator, governing_body,
                     connection_provider, security_provider, os, services, public_addresses, domains, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                 ON CONFLICT (code) DO UPDATE SET unit_id = $2, name = $3, security_level = $4, purpose = $5,
                     operator = $6, governing_body = $7, connection_provider = $8, security_provider = $9,
                     os = $10, services = $11, public_addresses = $12, domains = $13, updated_at = $14",
            )
            .bind(&item.code)
            .bind(unit_id)
            .bind(&item.name)
            .bind(i64::from(item.security_level))
            .bind(&item.purpose)
            .bind(&item.operator)
            .bind(&item.governing_body)
            .bind(&item.connection_provider)
            .bind(&item.security_provider)
            .bind(&item.os)
            .bind(&item.services)
            .bind(&item.public_addresses)
            .bind(&item.domains)
            .bind(now)
            .execute(&mut *tx)
            .await
            .with_context(|| format!("storing system {}", item.code))?;
        }
        tx.commit().await.context("committing system import")?;
        Ok(systems.len())
    }

    /// Creates or updates units' reporting profiles, all or nothing.
    ///
    /// # Errors
    ///
    /// When a unit code is unknown (nothing is then stored), or on a database error.
    pub async fn unit_profiles_import(
        &self,
        profiles: &[UnitProfile],
        now: OffsetDateTime,
    ) -> anyhow::Result<usize> {
        let now = millis(now);
        let mut tx = self
            .begin_write()
            .await
            .context("starting profile import")?;
        for profile in profiles {
            let unit_id = Self::unit_id_of(&mut tx, &profile.unit_code, "a profile").await?;
            sqlx::query(
                "INSERT INTO unit_profiles (unit_id, reporting_name, governing_body, address, phone, email, symbol, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (unit_id) DO UPDATE SET reporting_name = $2, governing_body = $3, address = $4,
                     phone = $5, email = $6, symbol = $7, updated_at = $8",
            )
            .bind(unit_id)
            .bind(&profile.reporting_name)
            .bind(&profile.governing_body)
            .bind(&profile.address)
            .bind(&profile.phone)
            .bind(&profile.email)
            .bind(&profile.symbol)
            .bind(now)
            .execute(&mut *tx)
            .await
            .with_context(|| format!("storing the profile of unit {}", profile.unit_code))?;
        }
        tx.commit().await.context("committing profile import")?;
        Ok(profiles.len())
    }

    /// Every registered system, by unit code and system code.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn info_systems_list(&self) -> anyhow::Result<Vec<InfoSystem>> {
        let rows: Vec<SystemRow> =
            sqlx::query_as(&format!("SELECT {SYSTEM_COLUMNS} ORDER BY u.code, s.code"))
                .fetch_all(&self.pool)
                .await
                .context("listing systems")?;
        Ok(rows.into_iter().map(system).collect())
    }

    /// One registered system.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn info_system(&self, code: &str) -> anyhow::Result<Option<InfoSystem>> {
        let row: Option<SystemRow> =
            sqlx::query_as(&format!("SELECT {SYSTEM_COLUMNS} WHERE s.code = $1"))
                .bind(code)
                .fetch_optional(&self.pool)
                .await
                .context("reading a system")?;
        Ok(row.map(system))
    }

    /// A unit's reporting profile.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn unit_profile(&self, unit_id: i64) -> anyhow::Result<Option<UnitProfile>> {
        let row: Option<(String, String, String, String, String, String, String)> =
            sqlx::query_as(
                "SELECT u.code, p.reporting_name, p.governing_body, p.address, p.phone, p.email, p.symbol
                 FROM unit_profiles p JOIN units u ON u.id = p.unit_id WHERE p.unit_id = $1",
            )
            .bind(unit_id)
            .fetch_optional(&self.pool)
            .await
            .context("reading a unit profile")?;
        Ok(row.map(
            |(unit_code, reporting_name, governing_body, address, phone, email, symbol)| {
                UnitProfile {
                    unit_code,
                    reporting_name,
                    governing_body,
                    address,
                    phone,
                    email,
                    symbol,
                }
            },
        ))
    }

    /// Every issued version of one report of an incident, oldest first.
    ///
    /// # Errors
    ///
    /// On a database error, or when a stored report cannot be read.
    pub async fn incident_reports(
        &self,
        incident_id: &str,
        form: Form,
    ) -> anyhow::Result<Vec<IssuedReport>> {
        let rows: Vec<ReportRow> = sqlx::query_as(
            "SELECT version, number, issued_at, issued_by, reason, facts FROM incident_reports
             WHERE incident_id = $1 AND form = $2 ORDER BY version",
        )
        .bind(incident_id)
        .bind(form.as_str())
        .fetch_all(&self.pool)
        .await
        .context("reading incident reports")?;
        rows.into_iter().map(issued).collect()
    }

    /// Issues a report: version 1 with a new number of `unit_id`'s `year`, or with `reissue` the
    /// next version under the first one's number. `make` writes the facts from the number and
    /// version. Without `reissue`, a report already issued is returned as it is.
    ///
    /// # Errors
    ///
    /// On a database error.
    #[allow(clippy::too_many_arguments)]
    pub async fn incident_report_issue(
        &self,
        incident_id: &str,
        form: Form,
        unit_id: i64,
        year: i32,
        symbol: &str,
        actor: &str,
        reason: &str,
        reissue: bool,
        make: impl FnOnce(String, u32) -> Facts,
    ) -> anyhow::Result<IssuedReport> {
        let mut tx = self
            .begin_write()
            .await
            .context("starting to issue an incident report")?;
        let last: Option<ReportRow> = sqlx::query_as(
            "SELECT version, number, issued_at, issued_by, reason, facts FROM incident_reports
             WHERE incident_id = $1 AND form = $2 ORDER BY version DESC LIMIT 1",
        )
        .bind(incident_id)
        .bind(form.as_str())
        .fetch_optional(&mut *tx)
        .await
        .context("reading the last version of an incident report")?;
        let (number, version) = match last {
            Some(row) if !reissue => return issued(row),
            Some((version, number, ..)) => (number, u32::try_from(version + 1).unwrap_or(1)),
            None => {
                let current: Option<i64> = sqlx::query_scalar(
                    "SELECT last FROM incident_report_numbers WHERE unit_id = $1 AND year = $2",
                )
                .bind(unit_id)
                .bind(i64::from(year))
                .fetch_optional(&mut *tx)
                .await
                .context("reading the report counter")?;
                let next = current.unwrap_or(0) + 1;
                sqlx::query(
                    "INSERT INTO incident_report_numbers (unit_id, year, last) VALUES ($1, $2, $3)
                     ON CONFLICT (unit_id, year) DO UPDATE SET last = $3",
                )
                .bind(unit_id)
                .bind(i64::from(year))
                .bind(next)
                .execute(&mut *tx)
                .await
                .context("counting report numbers")?;
                (format!("{next:02}/BC-{symbol}"), 1)
            }
        };
        let facts = make(number.clone(), version);
        let text = serde_json::to_string(&facts).context("encoding report facts")?;
        sqlx::query(
            "INSERT INTO incident_reports (incident_id, form, version, number, issued_at, issued_by, reason, facts)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(incident_id)
        .bind(form.as_str())
        .bind(i64::from(version))
        .bind(&number)
        .bind(facts.issued_at)
        .bind(actor)
        .bind(reason)
        .bind(&text)
        .execute(&mut *tx)
        .await
        .context("storing an incident report")?;
        tx.commit().await.context("committing an incident report")?;
        Ok(IssuedReport {
            version,
            number,
            issued_at: facts.issued_at,
            issued_by: actor.to_owned(),
            reason: reason.to_owned(),
            facts,
        })
    }

    /// Incidents with an opening notice and no initial report yet: their initial report is
    /// issued when the notice goes out.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn incidents_told_without_initial_report(&self) -> anyhow::Result<Vec<String>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT n.incident_id FROM notices n
             WHERE n.kind = 'opening' AND n.incident_id IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM incident_reports r
                               WHERE r.incident_id = n.incident_id AND r.form = 'initial')",
        )
        .fetch_all(&self.pool)
        .await
        .context("finding incidents told without an initial report")?;
        Ok(ids)
    }

    /// Incidents people are told about that ended (service restored) in `[since, until)` and
    /// have no closing report yet.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn incidents_awaiting_closing_report(
        &self,
        since: i64,
        until: i64,
    ) -> anyhow::Result<Vec<String>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT i.id FROM incidents i
             WHERE i.parent_id IS NULL AND i.ended_at IS NOT NULL AND i.ended_at >= $1 AND i.ended_at < $2
               AND NOT EXISTS (SELECT 1 FROM incident_reports r
                               WHERE r.incident_id = i.id AND r.form = 'closing')
             ORDER BY i.ended_at",
        )
        .bind(since)
        .bind(until)
        .fetch_all(&self.pool)
        .await
        .context("finding incidents awaiting a closing report")?;
        Ok(ids)
    }

    /// Writes a notice about an incident once: a second call with the same `key` writes nothing.
    /// Returns how many were written (0 or 1).
    ///
    /// # Errors
    ///
    /// On a database error.
    #[allow(
        clippy::too_many_arguments,
        reason = "one row's columns, each named at the call"
    )]
    pub async fn incident_notice_keyed(
        &self,
        key: &str,
        incident_id: &str,
        contact_id: i64,
        email: &str,
        kind: &str,
        rendered: &crate::documents::notice::Rendered,
        now: i64,
    ) -> anyhow::Result<usize> {
        let res = sqlx::query(
            "INSERT INTO notices (id, incident_id, contact_id, channel, address, kind, step, subject, body_text,
                                  body_html, state, attempts, next_attempt_at, created_at, dedup_key)
             VALUES ($1, $2, $3, 'email', $4, $5, 0, $6, $7, $8, 'pending', 0, $9, $9, $10)
             ON CONFLICT (dedup_key) DO NOTHING",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(incident_id)
        .bind(contact_id)
        .bind(email)
        .bind(kind)
        .bind(&rendered.subject)
        .bind(&rendered.text)
        .bind(&rendered.html)
        .bind(now)
        .bind(key)
        .execute(&self.pool)
        .await
        .with_context(|| format!("writing notice {key}"))?;
        Ok(usize::try_from(res.rows_affected()).unwrap_or_default())
    }
}
