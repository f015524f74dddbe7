//! Periodic reports, IT officers and period overrides (issue 6).
//!
//! Every version of a report is a row of `periodic_reports`, never updated: resubmitting adds a
//! row, and versions are numbered by arrival when read. A report from an agent is written in the
//! ingest transaction of the batch that carried it (see `events.rs`), with the submission time
//! corrected by the agent's clock offset measured on that batch; one from the API at once.

use std::collections::{BTreeMap, HashMap};

use anyhow::{bail, Context};
use serde::Serialize;
use sqlx::AnyConnection;
use time::OffsetDateTime;

use super::{millis, Store};
use crate::domain::officers::OfficerRecord;
use crate::domain::periods::Override;

/// A report version to store.
#[derive(Debug, Clone)]
pub struct NewPeriodicReport {
    /// Event id (from an agent) or a fresh id (from the API).
    pub id: String,
    /// Scheme name.
    pub scheme: String,
    /// Period label.
    pub period: String,
    /// Who submitted it.
    pub submitted_by: String,
    /// When, by the agent's clock (Unix ms), for reports from agents.
    pub submitted_at_agent: Option<i64>,
    /// When, by the collector's clock when known (the API), Unix ms.
    pub submitted_at: Option<i64>,
    /// The earliest submission time that can be true (Unix ms): the start of the period's data
    /// window. A claimed time before it, or before the agent's enrollment, is not trusted.
    pub not_before: Option<i64>,
    /// The document.
    pub document: String,
    /// Sections as JSON.
    pub sections: String,
    /// Figures as JSON.
    pub figures: String,
}

/// A stored report version, without its document.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct StoredReport {
    /// Id.
    pub id: String,
    /// Unit.
    pub unit_id: i64,
    /// Unit code.
    pub unit_code: String,
    /// Scheme.
    pub scheme: String,
    /// Period.
    pub period: String,
    /// Agent that carried it, if any.
    pub agent_id: Option<String>,
    /// Who submitted it.
    pub submitted_by: String,
    /// Corrected submission time, Unix ms.
    pub submitted_at: i64,
    /// The agent's own clock, Unix ms.
    pub submitted_at_agent: Option<i64>,
    /// Collector minus agent clock, ms.
    pub clock_offset_ms: i64,
    /// Arrival, Unix ms.
    pub received_at: i64,
}

/// An officer as stored.
#[derive(Debug, Clone, Serialize)]
pub struct StoredOfficer {
    /// Id.
    pub id: i64,
    /// Unit id.
    pub unit_id: i64,
    /// The record, with the unit's code.
    pub record: OfficerRecord,
}

/// An incident as a report sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WindowIncident {
    /// Id.
    pub id: String,
    /// Unit.
    pub unit_id: i64,
    /// Human number.
    pub number: Option<String>,
    /// Kind.
    pub kind: String,
    /// Title.
    pub title: String,
    /// Start, Unix ms.
    pub started_at: i64,
    /// End, Unix ms.
    pub ended_at: Option<i64>,
    /// The unit of the incident that explains it, when folded under one.
    pub parent_unit_id: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct OfficerRow {
    id: i64,
    unit_id: i64,
    unit_code: String,
    full_name: String,
    position: String,
    phone: String,
    email: String,
    degree_level: String,
    degree_field: String,
    it_degree: i64,
    english_level: String,
    certificates: String,
    decision_number: String,
    decision_date: Option<String>,
    active_from: Option<String>,
    active_to: Option<String>,
    note: String,
}

const REPORT_COLUMNS: &str =
    "r.id, r.unit_id, u.code AS unit_code, r.scheme, r.period, r.agent_id, r.submitted_by,
     r.submitted_at, r.submitted_at_agent, r.clock_offset_ms, r.received_at
     FROM periodic_reports r JOIN units u ON u.id = r.unit_id";

/// Writes one report version in an open transaction. The submission time is the agent's, plus
/// `clock_offset_ms`, and never later than `received_at`. A submission time that cannot be true —
/// before the period's data window opened (`not_before`) or before the submitting agent was
/// enrolled — is not trusted: the report is then judged by its arrival (issue 13, M1; the rule is
/// in `docs/protocol.md`).
pub(super) async fn insert(
    conn: &mut AnyConnection,
    unit_id: i64,
    agent_id: Option<&str>,
    report: &NewPeriodicReport,
    clock_offset_ms: i64,
    received_at: i64,
) -> anyhow::Result<()> {
    let enrolled_at: Option<i64> = match agent_id {
        Some(agent_id) => sqlx::query_scalar("SELECT enrolled_at FROM agents WHERE id = $1")
            .bind(agent_id)
            .fetch_optional(&mut *conn)
            .await
            .context("reading the submitting agent's enrollment")?,
        None => None,
    };
    let floor = report.not_before.into_iter().chain(enrolled_at).max();
    let claimed = report.submitted_at.or(report
        .submitted_at_agent
        .map(|at| at.saturating_add(clock_offset_ms)));
    let submitted_at = match claimed {
        Some(at) if floor.is_none_or(|floor| at >= floor) => at.min(received_at),
        _ => received_at,
    };
    sqlx::query(
        "INSERT INTO periodic_reports (id, unit_id, scheme, period, agent_id, submitted_by, submitted_at,
             submitted_at_agent, clock_offset_ms, received_at, document, sections, figures)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&report.id)
    .bind(unit_id)
    .bind(&report.scheme)
    .bind(&report.period)
    .bind(agent_id)
    .bind(&report.submitted_by)
    .bind(submitted_at)
    .bind(report.submitted_at_agent)
    .bind(clock_offset_ms)
    .bind(received_at)
    .bind(&report.document)
    .bind(&report.sections)
    .bind(&report.figures)
    .execute(conn)
    .await
    .with_context(|| format!("storing periodic report {}", report.id))?;
    Ok(())
}

impl Store {
    /// Stores a report submitted through the API by a person.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn report_insert(
        &self,
        unit_id: i64,
        report: &NewPeriodicReport,
        now: OffsetDateTime,
    ) -> anyhow::Result<()> {
        let mut tx = self.begin_write().await.context("starting report insert")?;
        insert(&mut tx, unit_id, None, report, 0, millis(now)).await?;
        tx.commit().await.context("committing report")?;
        Ok(())
    }

    /// Every version of every report of one period of one scheme, oldest first.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn reports_of_period(
        &self,
        scheme: &str,
        period: &str,
    ) -> anyhow::Result<Vec<StoredReport>> {
        sqlx::query_as::<_, StoredReport>(&format!(
            "SELECT {REPORT_COLUMNS} WHERE r.scheme = $1 AND r.period = $2 ORDER BY r.received_at, r.id"
        ))
        .bind(scheme)
        .bind(period)
        .fetch_all(&self.pool)
        .await
        .context("listing reports of a period")
    }

    /// Every version of every report of one unit, newest first.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn reports_of_unit(&self, unit_id: i64) -> anyhow::Result<Vec<StoredReport>> {
        sqlx::query_as::<_, StoredReport>(&format!(
            "SELECT {REPORT_COLUMNS} WHERE r.unit_id = $1 ORDER BY r.received_at DESC, r.id DESC"
        ))
        .bind(unit_id)
        .fetch_all(&self.pool)
        .await
        .context("listing reports of a unit")
    }

    /// One report version with its document.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn report(&self, id: &str) -> anyhow::Result<Option<(StoredReport, String)>> {
        let Some(report) =
            sqlx::query_as::<_, StoredReport>(&format!("SELECT {REPORT_COLUMNS} WHERE r.id = $1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .context("reading a report")?
        else {
            return Ok(None);
        };
        let (document,): (String,) =
            sqlx::query_as("SELECT document FROM periodic_reports WHERE id = $1")
                .bind(id)
                .fetch_one(&self.pool)
                .await
                .context("reading a report's document")?;
        Ok(Some((report, document)))
    }

    /// Incidents that overlap `[from, to)`, of one unit or of all, with the unit of the incident
    /// each is folded under.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn incidents_in_window(
        &self,
        unit_id: Option<i64>,
        from: i64,
        to: i64,
    ) -> anyhow::Result<Vec<WindowIncident>> {
        sqlx::query_as::<_, WindowIncident>(
            "SELECT i.id, i.unit_id, i.number, i.kind, i.title, i.started_at, i.ended_at, p.unit_id AS parent_unit_id
             FROM incidents i LEFT JOIN incidents p ON p.id = i.parent_id
             WHERE i.started_at < $1 AND (i.ended_at IS NULL OR i.ended_at > $2)
               AND ($3 IS NULL OR i.unit_id = $3)
             ORDER BY i.started_at, i.id",
        )
        .bind(to)
        .bind(from)
        .bind(unit_id)
        .fetch_all(&self.pool)
        .await
        .context("reading incidents of a window")
    }

    /// Distinct probe targets per unit and target kind (`lan`, `wan`, `internet`, `server`)
    /// checked in `[from, to)`, from raw results and roll-ups. A kind with no target here was not
    /// measured, so no availability of that kind may be stated.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn monitored_targets(
        &self,
        from: i64,
        to: i64,
    ) -> anyhow::Result<HashMap<i64, BTreeMap<String, u32>>> {
        let rows: Vec<(i64, String, i64)> = sqlx::query_as(
            "SELECT unit_id, target_kind, COUNT(*) FROM (
                 SELECT DISTINCT unit_id, agent_id, target, target_kind FROM probe_results WHERE at >= $1 AND at < $2
                 UNION
                 SELECT DISTINCT unit_id, agent_id, target, target_kind FROM probe_rollups WHERE hour_start >= $1 AND hour_start < $2
             ) t GROUP BY unit_id, target_kind",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .context("counting monitored targets")?;
        let mut out: HashMap<i64, BTreeMap<String, u32>> = HashMap::new();
        for (unit, kind, count) in rows {
            out.entry(unit)
                .or_default()
                .insert(kind, u32::try_from(count).unwrap_or(u32::MAX));
        }
        Ok(out)
    }

    /// Creates or updates officers by unit and name; returns how many rows were written.
    ///
    /// # Errors
    ///
    /// When a unit code is unknown (every one is named, nothing is written) or on a database error.
    pub async fn officers_import(
        &self,
        records: &[OfficerRecord],
        now: OffsetDateTime,
    ) -> anyhow::Result<usize> {
        let units: HashMap<String, i64> = self
            .units_all()
            .await?
            .into_iter()
            .map(|unit| (unit.code, unit.id))
            .collect();
        let unknown: Vec<&str> = records
            .iter()
            .filter(|record| !units.contains_key(&record.unit_code))
            .map(|record| record.unit_code.as_str())
            .collect();
        if !unknown.is_empty() {
            bail!(
                "unknown unit code(s), nothing imported: {}",
                unknown.join(", ")
            );
        }
        let now = millis(now);
        let mut tx = self
            .begin_write()
            .await
            .context("starting officers import")?;
        for record in records {
            sqlx::query(
                "INSERT INTO officers (unit_id, full_name, position, phone, email, degree_level, degree_field,
                     it_degree, english_level, certificates, decision_number, decision_date, active_from,
                     active_to, note, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)
                 ON CONFLICT (unit_id, full_name) DO UPDATE SET position = $3, phone = $4, email = $5,
                     degree_level = $6, degree_field = $7, it_degree = $8, english_level = $9,
                     certificates = $10, decision_number = $11, decision_date = $12, active_from = $13,
                     active_to = $14, note = $15, updated_at = $16",
            )
            .bind(units[&record.unit_code])
            .bind(&record.full_name)
            .bind(&record.position)
            .bind(&record.phone)
            .bind(&record.email)
            .bind(&record.degree_level)
            .bind(&record.degree_field)
            .bind(i64::from(record.it_degree))
            .bind(&record.english_level)
            .bind(&record.certificates)
            .bind(&record.decision_number)
            .bind(&record.decision_date)
            .bind(&record.active_from)
            .bind(&record.active_to)
            .bind(&record.note)
            .bind(now)
            .execute(&mut *tx)
            .await
            .with_context(|| format!("storing officer {}", record.full_name))?;
        }
        tx.commit().await.context("committing officers import")?;
        Ok(records.len())
    }

    /// Every officer, by unit and name.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn officers_all(&self) -> anyhow::Result<Vec<StoredOfficer>> {
        let rows: Vec<OfficerRow> = sqlx::query_as(
            "SELECT o.id, o.unit_id, u.code AS unit_code, o.full_name, o.position, o.phone, o.email, o.degree_level,
                    o.degree_field, o.it_degree, o.english_level, o.certificates, o.decision_number,
                    o.decision_date, o.active_from, o.active_to, o.note
             FROM officers o JOIN units u ON u.id = o.unit_id ORDER BY u.code, o.full_name",
        )
        .fetch_all(&self.pool)
        .await
        .context("listing officers")?;
        Ok(rows
            .into_iter()
            .map(|row| StoredOfficer {
                id: row.id,
                unit_id: row.unit_id,
                record: OfficerRecord {
                    unit_code: row.unit_code,
                    full_name: row.full_name,
                    position: row.position,
                    phone: row.phone,
                    email: row.email,
                    degree_level: row.degree_level,
                    degree_field: row.degree_field,
                    it_degree: row.it_degree == 1,
                    english_level: row.english_level,
                    certificates: row.certificates,
                    decision_number: row.decision_number,
                    decision_date: row.decision_date,
                    active_from: row.active_from,
                    active_to: row.active_to,
                    note: row.note,
                },
            })
            .collect())
    }

    /// Sets (or replaces) the due date of one period by hand.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn period_override_set(
        &self,
        manual: &Override,
        by: &str,
        now: OffsetDateTime,
    ) -> anyhow::Result<()> {
        let due = manual.due.to_string();
        sqlx::query(
            "INSERT INTO period_overrides (scheme, period, due_date, reason, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (scheme, period) DO UPDATE SET due_date = $3, reason = $4, created_by = $5, created_at = $6",
        )
        .bind(&manual.scheme)
        .bind(&manual.period)
        .bind(&due)
        .bind(&manual.reason)
        .bind(by)
        .bind(millis(now))
        .execute(&self.pool)
        .await
        .context("storing a period override")?;
        Ok(())
    }

    /// Every period override.
    ///
    /// # Errors
    ///
    /// On a database error, or a stored date that does not parse.
    pub async fn period_overrides(&self) -> anyhow::Result<Vec<Override>> {
        let rows: Vec<(String, String, String, String)> =
            sqlx::query_as("SELECT scheme, period, due_date, reason FROM period_overrides")
                .fetch_all(&self.pool)
                .await
                .context("reading period overrides")?;
        rows.into_iter()
            .map(|(scheme, period, due, reason)| {
                Ok(Override {
                    scheme,
                    period,
                    due: crate::domain::periods::parse_date(&due)?,
                    reason,
                })
            })
            .collect()
    }
}

impl Store {
    /// Writes a notice identified by `key` unless one with that key exists; returns how many it
    /// wrote (0 or 1). The unique key makes it safe for several collectors to plan at once.
    ///
    /// # Errors
    ///
    /// On a database error.
    #[allow(
        clippy::too_many_arguments,
        reason = "one row's columns, each named at the call"
    )]
    pub async fn notice_keyed(
        &self,
        key: &str,
        contact_id: Option<i64>,
        email: &str,
        kind: &str,
        step: i64,
        rendered: &crate::documents::notice::Rendered,
        now: i64,
    ) -> anyhow::Result<usize> {
        let res = sqlx::query(
            "INSERT INTO notices (id, incident_id, contact_id, channel, address, kind, step, subject, body_text,
                                  body_html, state, attempts, next_attempt_at, created_at, dedup_key)
             VALUES ($1, NULL, $2, 'email', $3, $4, $5, $6, $7, $8, 'pending', 0, $9, $9, $10)
             ON CONFLICT (dedup_key) DO NOTHING",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(contact_id)
        .bind(email)
        .bind(kind)
        .bind(step)
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
