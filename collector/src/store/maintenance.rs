//! Maintenance windows (issue 17; rules in `domain::maintenance`): planned, listed, cancelled, and
//! the reminder before a long one ends. Rows are never deleted: a cancelled window stays, with who
//! cancelled it, so the record of what was planned is complete. The reminder's words come from
//! `documents::notice` (the same known crossing as `notices.rs`).

use anyhow::Context;
use time::OffsetDateTime;

use super::{millis, Store};
use crate::domain::maintenance::{Repeat, Scope, Window};

/// A window as stored, with its unit's code and name when it names one.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct StoredWindow {
    /// Id (uuid).
    pub id: String,
    /// `unit`, `agent`, `target` or `system`.
    pub scope_kind: String,
    /// The unit (for `unit`, and for a `target` limited to a unit).
    pub unit_id: Option<i64>,
    /// That unit's code.
    pub unit_code: Option<String>,
    /// That unit's name.
    pub unit_name: Option<String>,
    /// 1 when the units under it are covered too.
    pub subtree: i64,
    /// The agent (`agent`).
    pub agent_id: Option<String>,
    /// The target's name (`target`).
    pub target: Option<String>,
    /// The system's code (`system`).
    pub system_code: Option<String>,
    /// First start, Unix ms.
    pub starts_at: i64,
    /// Length of each occurrence, ms.
    pub duration_ms: i64,
    /// `once`, `daily`, `weekly`.
    pub recurrence: String,
    /// No occurrence starts at or after this, Unix ms.
    pub until_at: Option<i64>,
    /// Why.
    pub reason: String,
    /// Who planned it (an audit actor, e.g. `person:an`).
    pub planned_by: String,
    /// Where the reminder goes.
    pub remind_to: Option<String>,
    /// When it was planned, Unix ms.
    pub created_at: i64,
    /// When it was cancelled, Unix ms.
    pub cancelled_at: Option<i64>,
    /// Who cancelled it.
    pub cancelled_by: Option<String>,
    /// The start of the occurrence last reminded of.
    pub reminded_for: Option<i64>,
}

impl StoredWindow {
    /// The window as the rules see it.
    pub fn to_domain(&self) -> Window {
        let scope = match self.scope_kind.as_str() {
            "agent" => Scope::Agent(self.agent_id.clone().unwrap_or_default()),
            "target" => Scope::Target {
                name: self.target.clone().unwrap_or_default(),
                unit_id: self.unit_id,
            },
            "system" => Scope::System(self.system_code.clone().unwrap_or_default()),
            _ => Scope::Unit {
                unit_id: self.unit_id.unwrap_or_default(),
                subtree: self.subtree != 0,
            },
        };
        Window {
            id: self.id.clone(),
            scope,
            starts_at: self.starts_at,
            duration_ms: self.duration_ms,
            repeat: self.recurrence.parse().unwrap_or(Repeat::Once),
            until: self.until_at,
            cancelled_at: self.cancelled_at,
        }
    }

    /// What it covers, in Vietnamese, for people.
    pub fn scope_text(&self) -> String {
        let unit = || {
            self.unit_name
                .clone()
                .or_else(|| self.unit_code.clone())
                .unwrap_or_default()
        };
        match self.scope_kind.as_str() {
            "agent" => format!("máy trạm {}", self.agent_id.as_deref().unwrap_or_default()),
            "target" => match self.unit_id {
                Some(_) => format!(
                    "mục tiêu {} của {}",
                    self.target.as_deref().unwrap_or_default(),
                    unit()
                ),
                None => format!("mục tiêu {}", self.target.as_deref().unwrap_or_default()),
            },
            "system" => format!(
                "hệ thống {}",
                self.system_code.as_deref().unwrap_or_default()
            ),
            _ if self.subtree != 0 => format!("{} và các đơn vị trực thuộc", unit()),
            _ => unit(),
        }
    }
}

/// A window to plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWindow {
    /// What it covers (unit ids already resolved and checked).
    pub scope: Scope,
    /// First start, Unix ms.
    pub starts_at: i64,
    /// Length of each occurrence, ms.
    pub duration_ms: i64,
    /// How often.
    pub repeat: Repeat,
    /// Last start allowed before this, Unix ms.
    pub until: Option<i64>,
    /// Why.
    pub reason: String,
    /// Who (audit actor).
    pub planned_by: String,
    /// Reminder address.
    pub remind_to: Option<String>,
}

const SELECT: &str = "SELECT w.id, w.scope_kind, w.unit_id, u.code AS unit_code, u.name AS unit_name, w.subtree,
        w.agent_id, w.target, w.system_code, w.starts_at, w.duration_ms, w.recurrence, w.until_at, w.reason,
        w.planned_by, w.remind_to, w.created_at, w.cancelled_at, w.cancelled_by, w.reminded_for
     FROM maintenance_windows w LEFT JOIN units u ON u.id = w.unit_id";

impl Store {
    /// Stores a new window and returns it.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn maintenance_create(
        &self,
        window: &NewWindow,
        now: OffsetDateTime,
    ) -> anyhow::Result<StoredWindow> {
        let id = uuid::Uuid::new_v4().to_string();
        let (unit_id, subtree, agent_id, target, system_code) = match &window.scope {
            Scope::Unit { unit_id, subtree } => {
                (Some(*unit_id), i64::from(*subtree), None, None, None)
            }
            Scope::Agent(agent) => (None, 0, Some(agent.clone()), None, None),
            Scope::Target { name, unit_id } => (*unit_id, 1, None, Some(name.clone()), None),
            Scope::System(code) => (None, 0, None, None, Some(code.clone())),
        };
        sqlx::query(
            "INSERT INTO maintenance_windows (id, scope_kind, unit_id, subtree, agent_id, target, system_code,
                 starts_at, duration_ms, recurrence, until_at, reason, planned_by, remind_to, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(&id)
        .bind(window.scope.kind())
        .bind(unit_id)
        .bind(subtree)
        .bind(agent_id)
        .bind(target)
        .bind(system_code)
        .bind(window.starts_at)
        .bind(window.duration_ms)
        .bind(window.repeat.as_str())
        .bind(window.until)
        .bind(&window.reason)
        .bind(&window.planned_by)
        .bind(&window.remind_to)
        .bind(millis(now))
        .execute(&self.pool)
        .await
        .context("storing a maintenance window")?;
        self.maintenance_get(&id)
            .await?
            .context("the window just stored is gone")
    }

    /// One window.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn maintenance_get(&self, id: &str) -> anyhow::Result<Option<StoredWindow>> {
        sqlx::query_as::<_, StoredWindow>(&format!("{SELECT} WHERE w.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .context("reading a maintenance window")
    }

    /// Every window, newest first (they are few: a province plans a handful a week).
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn maintenance_list(&self) -> anyhow::Result<Vec<StoredWindow>> {
        sqlx::query_as::<_, StoredWindow>(&format!("{SELECT} ORDER BY w.created_at DESC, w.id"))
            .fetch_all(&self.pool)
            .await
            .context("reading maintenance windows")
    }

    /// The windows that may cover something at or after `since` (not cancelled before it, not
    /// finished before it), as the rules see them.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn maintenance_live(&self, since: i64) -> anyhow::Result<Vec<Window>> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .context("reading live maintenance windows")?;
        live_windows(&mut conn, since).await
    }

    /// Cancels a window from `now` on; returns it, or none when there is no such window or it
    /// was already cancelled.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn maintenance_cancel(
        &self,
        id: &str,
        by: &str,
        now: OffsetDateTime,
    ) -> anyhow::Result<Option<StoredWindow>> {
        let done = sqlx::query(
            "UPDATE maintenance_windows SET cancelled_at = $2, cancelled_by = $3
             WHERE id = $1 AND cancelled_at IS NULL",
        )
        .bind(id)
        .bind(millis(now))
        .bind(by)
        .execute(&self.pool)
        .await
        .context("cancelling a maintenance window")?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.maintenance_get(id).await
    }

    /// Writes the reminders owed at `now`: for each occurrence longer than `longer_than_ms` going
    /// on and ending within `before_ms`, one email to its planner's address (or, with none, to the
    /// Sở's on-duty contacts), once per occurrence. Returns how many notices it wrote.
    ///
    /// # Errors
    ///
    /// On a database error; nothing is then written.
    pub async fn maintenance_remind(
        &self,
        longer_than_ms: i64,
        before_ms: i64,
        subject_prefix: &str,
        now: OffsetDateTime,
    ) -> anyhow::Result<usize> {
        let now_ms = millis(now);
        let windows = sqlx::query_as::<_, StoredWindow>(&format!(
            "{SELECT} WHERE w.cancelled_at IS NULL AND w.duration_ms > $1"
        ))
        .bind(longer_than_ms)
        .fetch_all(&self.pool)
        .await
        .context("reading long maintenance windows")?;
        let mut written = 0;
        for window in windows {
            let Some((start, end)) = window.to_domain().occurrence_at(now_ms) else {
                continue;
            };
            if now_ms < end - before_ms || window.reminded_for == Some(start) {
                continue;
            }
            let mut tx = self.begin_write().await.context("starting a reminder")?;
            // Claimed by moving `reminded_for`: whoever moves it writes the notices, once.
            let claimed = sqlx::query(
                "UPDATE maintenance_windows SET reminded_for = $2
                 WHERE id = $1 AND (reminded_for IS NULL OR reminded_for <> $2)",
            )
            .bind(&window.id)
            .bind(start)
            .execute(&mut *tx)
            .await
            .context("marking a reminder")?;
            if claimed.rows_affected() == 0 {
                continue;
            }
            let to: Vec<(Option<i64>, String)> = match &window.remind_to {
                Some(address) if !address.is_empty() => vec![(None, address.clone())],
                _ => sqlx::query_as::<_, (i64, String)>(
                    "SELECT id, email FROM contacts
                     WHERE role = 'so_on_duty' AND active = 1 AND email IS NOT NULL AND email <> ''
                     ORDER BY id",
                )
                .fetch_all(&mut *tx)
                .await
                .context("reading the Sở's on-duty contacts")?
                .into_iter()
                .map(|(id, email)| (Some(id), email))
                .collect(),
            };
            let rendered = crate::documents::notice::render_maintenance_reminder(
                &window.scope_text(),
                &window.reason,
                &window.planned_by,
                end,
                now_ms,
                subject_prefix,
            );
            for (index, (contact_id, address)) in to.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO notices (id, incident_id, contact_id, channel, address, kind, step, subject, body_text,
                                          body_html, state, attempts, next_attempt_at, created_at)
                     VALUES ($1, NULL, $2, 'email', $3, 'maintenance_reminder', $4, $5, $6, $7, 'pending', 0, $8, $8)",
                )
                .bind(super::notices::ordered_notice_id(now_ms, index))
                .bind(contact_id)
                .bind(address)
                .bind(start)
                .bind(&rendered.subject)
                .bind(&rendered.text)
                .bind(&rendered.html)
                .bind(now_ms)
                .execute(&mut *tx)
                .await
                .context("writing a maintenance reminder")?;
                written += 1;
            }
            tx.commit().await.context("committing a reminder")?;
        }
        Ok(written)
    }
}

/// The windows that may cover something at or after `since`, read inside `conn` (a transaction).
///
/// # Errors
///
/// On a database error.
pub(super) async fn live_windows(
    conn: &mut sqlx::AnyConnection,
    since: i64,
) -> anyhow::Result<Vec<Window>> {
    let rows = sqlx::query_as::<_, StoredWindow>(&format!(
        "{SELECT} WHERE (w.cancelled_at IS NULL OR w.cancelled_at > $1)
             AND (w.recurrence <> 'once' OR w.starts_at + w.duration_ms > $1)
             AND (w.until_at IS NULL OR w.until_at + w.duration_ms > $1)"
    ))
    .bind(since)
    .fetch_all(&mut *conn)
    .await
    .context("reading live maintenance windows")?;
    Ok(rows.iter().map(StoredWindow::to_domain).collect())
}
