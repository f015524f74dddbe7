//! Incidents: one row per incident, rebuilt from the phases agents report.
//!
//! Design note. An agent reports an incident as `incident` events (phases `opened`, `updated`,
//! `resolved`), each carrying the whole current picture and the agent's `seq`. Events can arrive
//! late, out of order and more than once, so applying a phase is idempotent and order-safe:
//!
//! - Only events stored for the first time are applied; a re-sent event changes nothing.
//! - The picture (kind, severity, title, description, target, times, evidence, consequences,
//!   systems affected) is the one of the highest `seq` seen, kept in `last_event_seq`; a phase with
//!   a lower `seq` leaves it as it is.
//! - `state` only goes from `open` to `resolved`: any `resolved` phase resolves the incident, and no
//!   `opened` or `updated` phase, older or newer, opens it again. `ended_at` is the earliest end any
//!   resolved phase reported (its `ended_at`, else the event's time).
//! - `first_event_at` is the earliest event time received for it.
//!
//! So every order of the same phases gives the same row (only `created_at` and `updated_at`, the
//! collector's own clock, differ). An incident belongs to the agent that first reported it: a phase
//! from another agent is refused, and its event is flagged invalid by the caller.
//!
//! Agent, unit and state are columns; the lists stay JSON text as they travelled, since nothing
//! queries inside them yet. Later issues add the human lifecycle (acknowledged, closed, numbers,
//! notes) and incidents the collector infers, beside these columns.

use anyhow::Context;
use serde::Serialize;
use sqlx::AnyConnection;
use time::OffsetDateTime;

use super::{millis, Store};

pub use crate::domain::incident::{INCIDENT_KINDS, INCIDENT_STATES};

/// One phase of an agent's incident to apply, converted from the wire by the ingest handler.
#[derive(Debug, Clone)]
pub struct NewIncidentPhase {
    /// Id of the event that carried it.
    pub event_id: String,
    /// The event's per-agent sequence number: the newer picture wins.
    pub seq: i64,
    /// The event's time.
    pub at: OffsetDateTime,
    /// The agent's stable incident id (UUID text).
    pub incident_id: String,
    /// Whether this phase is `resolved`.
    pub resolves: bool,
    /// `lan`, `wan`, `internet`, `server`, `host`, `security` or `other`.
    pub kind: String,
    /// `agent_detected` or `agent_manual`.
    pub source: String,
    /// `low`, `medium`, `high` or `critical`.
    pub severity: String,
    /// One line for people.
    pub title: String,
    /// More words.
    pub description: String,
    /// The failing target of detected incidents.
    pub target: Option<String>,
    /// When it started.
    pub started_at: OffsetDateTime,
    /// When it ended, as the phase says.
    pub ended_at: Option<OffsetDateTime>,
    /// When a person discovered it.
    pub discovered_at: Option<OffsetDateTime>,
    /// Systems affected, JSON array text.
    pub systems_affected: String,
    /// Evidence, JSON array text.
    pub evidence: String,
    /// Consequences, JSON array text.
    pub consequences: String,
}

/// What applying a phase did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Applied {
    /// The incident was new and is now stored.
    Created,
    /// The incident existed; the phase was merged in (which may change nothing when it is older).
    Merged,
    /// The incident belongs to another agent; nothing changed.
    Foreign,
}

/// An incident as read back, with its unit and agent.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct StoredIncident {
    /// Incident id (UUID text).
    pub id: String,
    /// Reporting agent, if an agent reported it.
    pub agent_id: Option<String>,
    /// That agent's host name.
    pub hostname: Option<String>,
    /// Internal unit id, for scoping.
    #[serde(skip)]
    pub unit_id: i64,
    /// Unit code.
    pub unit_code: String,
    /// Unit name.
    pub unit_name: String,
    /// Kind of trouble.
    pub kind: String,
    /// `agent_detected` or `agent_manual`.
    pub source: String,
    /// Severity.
    pub severity: String,
    /// `open` or `resolved`.
    pub state: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Failing target.
    pub target: Option<String>,
    /// Start, Unix ms.
    pub started_at: i64,
    /// End, Unix ms.
    pub ended_at: Option<i64>,
    /// Discovery by a person, Unix ms.
    pub discovered_at: Option<i64>,
    /// JSON array text.
    pub systems_affected: String,
    /// JSON array text.
    pub evidence: String,
    /// JSON array text.
    pub consequences: String,
    /// Earliest event time received, Unix ms.
    pub first_event_at: Option<i64>,
    /// Seq of the event whose picture is stored.
    pub last_event_seq: Option<i64>,
    /// When the collector first stored it, Unix ms.
    pub created_at: i64,
    /// Last change, Unix ms.
    pub updated_at: i64,
    /// Human number, e.g. `SC-2026-0042`.
    pub number: Option<String>,
    /// When someone acknowledged it, Unix ms.
    pub acknowledged_at: Option<i64>,
    /// Who acknowledged it.
    pub acknowledged_by: Option<String>,
    /// When it was closed, Unix ms.
    pub closed_at: Option<i64>,
    /// Who closed it.
    pub closed_by: Option<String>,
    /// Closing report: what happened.
    pub cause: String,
    /// Closing report: how it was resolved.
    pub resolution: String,
    /// Closing report: lessons learned.
    pub lessons: String,
    /// The incident this one is folded under (same cause upstream); none for incidents people
    /// are told about.
    pub parent_id: Option<String>,
    /// That incident's number.
    pub parent_number: Option<String>,
    /// For incidents the collector inferred: `agent`, `unit` or `uplink`.
    pub scope: Option<String>,
    /// The affected system's code in the register (`info_systems`).
    pub system_code: Option<String>,
    /// How a manual incident was discovered: `monitoring`, `logs`, `third_party`, `officer`.
    pub discovery: Option<String>,
    /// 1 when a person stated when service came back.
    pub interrupted: Option<i64>,
}

/// An incident filed by a person through the API.
#[derive(Debug, Clone)]
pub struct ManualIncident {
    /// The unit it happened in.
    pub unit_id: i64,
    /// One of [`INCIDENT_KINDS`] except `agent_unreachable`.
    pub kind: String,
    /// `low`, `medium`, `high` or `critical`.
    pub severity: String,
    /// One line.
    pub title: String,
    /// What happened.
    pub description: String,
    /// When it started.
    pub started_at: OffsetDateTime,
    /// When someone discovered it.
    pub discovered_at: OffsetDateTime,
    /// Systems affected.
    pub systems_affected: Vec<String>,
    /// The affected system's code in the register.
    pub system_code: Option<String>,
    /// How it was discovered: `monitoring`, `logs`, `third_party`, `officer`.
    pub discovery: String,
}

/// Which incidents to read.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    /// Only incidents of these units; none means every unit.
    pub unit_ids: Option<Vec<i64>>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Only this state.
    pub state: Option<String>,
    /// Only incidents not ended before this time (open ones always qualify).
    pub since: Option<OffsetDateTime>,
    /// Only incidents started before this time.
    pub until: Option<OffsetDateTime>,
    /// Only incidents not folded under another (true) or only folded ones (false).
    pub top_level: Option<bool>,
    /// Only incidents folded directly under this one.
    pub parent_id: Option<String>,
    /// At most this many, latest started first.
    pub limit: i64,
}

/// Number of incidents of one kind in one state.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct IncidentCount {
    /// Kind.
    pub kind: String,
    /// State.
    pub state: String,
    /// How many.
    pub count: i64,
}

const INCIDENT_COLUMNS: &str =
    "i.id, i.agent_id, a.hostname, i.unit_id, u.code AS unit_code, u.name AS unit_name, i.kind, i.source,
     i.severity, i.state, i.title, i.description, i.target, i.started_at, i.ended_at, i.discovered_at,
     i.systems_affected, i.evidence, i.consequences, i.first_event_at, i.last_event_seq, i.created_at,
     i.updated_at, i.number, i.acknowledged_at, i.acknowledged_by, i.closed_at, i.closed_by, i.cause,
     i.resolution, i.lessons, i.parent_id, p.number AS parent_number, i.scope, i.system_code, i.discovery,
     i.interrupted
     FROM incidents i JOIN units u ON u.id = i.unit_id LEFT JOIN agents a ON a.id = i.agent_id
     LEFT JOIN incidents p ON p.id = i.parent_id";

/// Applies one phase inside an ingest transaction, as the module's design note says.
pub(super) async fn apply(
    conn: &mut AnyConnection,
    agent_id: &str,
    unit_id: i64,
    phase: &NewIncidentPhase,
    now: i64,
) -> anyhow::Result<Applied> {
    let ended_at = phase
        .resolves
        .then(|| millis(phase.ended_at.unwrap_or(phase.at)));
    let state = if phase.resolves { "resolved" } else { "open" };
    let at = millis(phase.at);
    let created = sqlx::query(
        "INSERT INTO incidents (id, agent_id, unit_id, kind, source, severity, state, title, description, target,
                                started_at, ended_at, discovered_at, systems_affected, evidence, consequences,
                                first_event_at, last_event_seq, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $19)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&phase.incident_id)
    .bind(agent_id)
    .bind(unit_id)
    .bind(&phase.kind)
    .bind(&phase.source)
    .bind(&phase.severity)
    .bind(state)
    .bind(&phase.title)
    .bind(&phase.description)
    .bind(&phase.target)
    .bind(millis(phase.started_at))
    .bind(ended_at)
    .bind(phase.discovered_at.map(millis))
    .bind(&phase.systems_affected)
    .bind(&phase.evidence)
    .bind(&phase.consequences)
    .bind(at)
    .bind(phase.seq)
    .bind(now)
    .execute(&mut *conn)
    .await
    .with_context(|| format!("creating incident {}", phase.incident_id))?;
    if created.rows_affected() == 1 {
        assign_number(conn, &phase.incident_id, millis(phase.started_at)).await?;
        let entry = if phase.resolves { "resolved" } else { "opened" };
        timeline(
            conn,
            &phase.incident_id,
            at,
            &format!("agent:{agent_id}"),
            entry,
            &phase.title,
        )
        .await?;
        return Ok(Applied::Created);
    }
    let owner: Option<String> = sqlx::query_scalar("SELECT agent_id FROM incidents WHERE id = $1")
        .bind(&phase.incident_id)
        .fetch_one(&mut *conn)
        .await
        .with_context(|| format!("reading owner of incident {}", phase.incident_id))?;
    if owner.as_deref() != Some(agent_id) {
        return Ok(Applied::Foreign);
    }
    // The newer picture wins; the source never changes and `ended_at` is handled below with the
    // state, so a newer non-resolved phase cannot erase an end.
    sqlx::query(
        "UPDATE incidents SET kind = $1, severity = $2, title = $3, description = $4, target = $5,
             started_at = $6, discovered_at = $7, systems_affected = $8, evidence = $9, consequences = $10,
             last_event_seq = $11
         WHERE id = $12 AND (last_event_seq IS NULL OR last_event_seq < $11)",
    )
    .bind(&phase.kind)
    .bind(&phase.severity)
    .bind(&phase.title)
    .bind(&phase.description)
    .bind(&phase.target)
    .bind(millis(phase.started_at))
    .bind(phase.discovered_at.map(millis))
    .bind(&phase.systems_affected)
    .bind(&phase.evidence)
    .bind(&phase.consequences)
    .bind(phase.seq)
    .bind(&phase.incident_id)
    .execute(&mut *conn)
    .await
    .with_context(|| format!("updating incident {}", phase.incident_id))?;
    sqlx::query(
        "UPDATE incidents SET
             state = CASE WHEN $1 = 1 AND state IN ('open', 'acknowledged') THEN 'resolved' ELSE state END,
             ended_at = CASE WHEN $1 = 1 AND (ended_at IS NULL OR $2 < ended_at) THEN $2 ELSE ended_at END,
             first_event_at = CASE WHEN first_event_at IS NULL OR $3 < first_event_at THEN $3 ELSE first_event_at END,
             updated_at = $4
         WHERE id = $5",
    )
    .bind(i64::from(phase.resolves))
    .bind(ended_at)
    .bind(at)
    .bind(now)
    .bind(&phase.incident_id)
    .execute(&mut *conn)
    .await
    .with_context(|| format!("resolving incident {}", phase.incident_id))?;
    let entry = if phase.resolves {
        "resolved"
    } else {
        "updated"
    };
    timeline(
        conn,
        &phase.incident_id,
        at,
        &format!("agent:{agent_id}"),
        entry,
        &phase.description,
    )
    .await?;
    Ok(Applied::Merged)
}

/// Gives a new incident the next human number of its year (Vietnam time): `SC-2026-0042`.
pub(super) async fn assign_number(
    conn: &mut AnyConnection,
    incident_id: &str,
    started_at: i64,
) -> anyhow::Result<String> {
    let year = i64::from(
        super::from_millis(started_at)
            .to_offset(time::UtcOffset::from_hms(7, 0, 0).expect("+07:00 is a valid offset"))
            .year(),
    );
    let last: i64 = sqlx::query_scalar(
        "INSERT INTO incident_counters (year, last) VALUES ($1, 1)
         ON CONFLICT (year) DO UPDATE SET last = incident_counters.last + 1
         RETURNING last",
    )
    .bind(year)
    .fetch_one(&mut *conn)
    .await
    .context("counting incident numbers")?;
    let number = format!("SC-{year}-{last:04}");
    sqlx::query("UPDATE incidents SET number = $1 WHERE id = $2")
        .bind(&number)
        .bind(incident_id)
        .execute(&mut *conn)
        .await
        .with_context(|| format!("numbering incident {incident_id}"))?;
    Ok(number)
}

/// Appends a timeline entry.
pub(super) async fn timeline(
    conn: &mut AnyConnection,
    incident_id: &str,
    at: i64,
    actor: &str,
    entry: &str,
    text: &str,
) -> anyhow::Result<()> {
    sqlx::query("INSERT INTO incident_timeline (incident_id, at, actor, entry, text) VALUES ($1, $2, $3, $4, $5)")
        .bind(incident_id)
        .bind(at)
        .bind(actor)
        .bind(entry)
        .bind(text)
        .execute(&mut *conn)
        .await
        .with_context(|| format!("writing the timeline of incident {incident_id}"))?;
    Ok(())
}

/// Ends the "agent unreachable" incidents of agents that have just been heard from, each at the
/// time given with it.
pub(super) async fn agents_reachable_again(
    conn: &mut AnyConnection,
    contacts: &[(&str, i64)],
) -> anyhow::Result<()> {
    for chunk in contacts.chunks(256) {
        let sql = format!(
            "SELECT id, agent_id FROM incidents WHERE kind = 'agent_unreachable' AND state IN ('open', 'acknowledged'){}",
            super::in_list("agent_id", 1, chunk.len())
        );
        let mut query = sqlx::query_as::<_, (String, String)>(&sql);
        for (agent_id, _) in chunk {
            query = query.bind(*agent_id);
        }
        let open = query
            .fetch_all(&mut *conn)
            .await
            .context("looking for unreachable-agent incidents")?;
        for (id, agent_id) in open {
            let now = chunk
                .iter()
                .find(|(contact, _)| *contact == agent_id)
                .map(|(_, at)| *at)
                .expect("the incident was selected by one of these agents");
            sqlx::query(
                "UPDATE incidents SET state = 'resolved', ended_at = $1, updated_at = $1 WHERE id = $2",
            )
            .bind(now)
            .bind(&id)
            .execute(&mut *conn)
            .await
            .context("resolving an unreachable-agent incident")?;
            timeline(
                conn,
                &id,
                now,
                "collector",
                "resolved",
                crate::domain::vi::AGENT_BACK,
            )
            .await?;
        }
    }
    Ok(())
}

/// One entry of an incident's timeline.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct TimelineEntry {
    /// When, Unix ms.
    pub at: i64,
    /// Who: `agent:<uuid>`, `collector` or `api-token:<id>`.
    pub actor: String,
    /// `opened`, `updated`, `resolved`, `inferred`, `acknowledged`, `note` or `closed`.
    pub entry: String,
    /// Words.
    pub text: String,
}

/// A person's action on an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Someone is handling it.
    Acknowledge,
    /// A handling note.
    Note(String),
    /// Ends a manual or inferred incident by hand.
    Resolve {
        /// How it was resolved.
        resolution: String,
        /// When service came back, Unix ms, as the person states it; none: now.
        restored_at: Option<i64>,
    },
    /// States when service came back, for a resolved incident filed by a person (the end of
    /// incidents the monitoring saw is the agents' evidence).
    Restore {
        /// When, Unix ms.
        at: i64,
    },
    /// Closes a resolved incident with the closing report's fields.
    Close {
        /// What happened.
        cause: String,
        /// How it was resolved.
        resolution: String,
        /// Lessons learned.
        lessons: String,
    },
}

/// Why an action was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionRefusal {
    /// No such incident.
    #[error("no such incident")]
    NotFound,
    /// The incident is not in a state that allows it.
    #[error("{0}")]
    WrongState(String),
}

impl Store {
    /// The timeline of an incident, oldest first.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn incident_timeline(&self, id: &str) -> anyhow::Result<Vec<TimelineEntry>> {
        let entries = sqlx::query_as::<_, TimelineEntry>(
            "SELECT at, actor, entry, text FROM incident_timeline WHERE incident_id = $1 ORDER BY at, id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .with_context(|| format!("reading the timeline of incident {id}"))?;
        Ok(entries)
    }

    /// Applies a person's action, checking the state machine: open → acknowledged → resolved →
    /// closed; notes at any time; only incidents the agent did not detect itself (manual or
    /// inferred) may be resolved by hand.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn incident_act(
        &self,
        id: &str,
        action: &Action,
        actor: &str,
        now: OffsetDateTime,
    ) -> anyhow::Result<Result<(), ActionRefusal>> {
        let now = millis(now);
        let mut tx = self
            .begin_write()
            .await
            .context("starting incident action")?;
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT state, source FROM incidents WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .context("reading incident state")?;
        let Some((state, source)) = row else {
            return Ok(Err(ActionRefusal::NotFound));
        };
        let refuse = |why: String| Ok(Err(ActionRefusal::WrongState(why)));
        let (entry, text) = match action {
            Action::Acknowledge => {
                if state != "open" {
                    return refuse(format!(
                        "only an open incident can be acknowledged; this one is {state}"
                    ));
                }
                sqlx::query(
                    "UPDATE incidents SET state = 'acknowledged', acknowledged_at = $1, acknowledged_by = $2,
                         updated_at = $1 WHERE id = $3",
                )
                .bind(now)
                .bind(actor)
                .bind(id)
                .execute(&mut *tx)
                .await
                .context("acknowledging incident")?;
                ("acknowledged", String::new())
            }
            Action::Note(text) => ("note", text.clone()),
            Action::Resolve {
                resolution,
                restored_at,
            } => {
                if source == "agent_detected" {
                    return refuse(
                        "an incident the agent detected ends when its checks pass again; add a note instead".into(),
                    );
                }
                if source == "inferred" {
                    return refuse(
                        "an incident the collector inferred ends when its agents report again; add a note, or revoke an agent that was taken out of service".into(),
                    );
                }
                if !matches!(state.as_str(), "open" | "acknowledged") {
                    return refuse(format!("only an open or acknowledged incident can be resolved; this one is {state}"));
                }
                // The end is when service came back, not when someone pressed the button.
                sqlx::query(
                    "UPDATE incidents SET state = 'resolved', ended_at = $1, resolution = $2, updated_at = $3,
                         interrupted = $4 WHERE id = $5",
                )
                .bind(restored_at.unwrap_or(now))
                .bind(resolution)
                .bind(now)
                .bind(restored_at.map(|_| 1_i64))
                .bind(id)
                .execute(&mut *tx)
                .await
                .context("resolving incident")?;
                ("resolved", resolution.clone())
            }
            Action::Restore { at } => {
                if !matches!(source.as_str(), "manual" | "agent_manual") {
                    return refuse(
                        "the end of an incident the monitoring saw is the agents' evidence; add a note instead".into(),
                    );
                }
                if state != "resolved" {
                    return refuse(format!(
                        "service can be stated as restored for a resolved incident; this one is {state}"
                    ));
                }
                sqlx::query(
                    "UPDATE incidents SET ended_at = $1, interrupted = 1, updated_at = $2 WHERE id = $3",
                )
                .bind(at)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await
                .context("stating when service came back")?;
                ("restored", crate::documents::incident::time_text(*at))
            }
            Action::Close {
                cause,
                resolution,
                lessons,
            } => {
                if state != "resolved" {
                    return refuse(format!(
                        "only a resolved incident can be closed; this one is {state}"
                    ));
                }
                sqlx::query(
                    "UPDATE incidents SET state = 'closed', closed_at = $1, closed_by = $2, cause = $3,
                         resolution = $4, lessons = $5, updated_at = $1 WHERE id = $6",
                )
                .bind(now)
                .bind(actor)
                .bind(cause)
                .bind(resolution)
                .bind(lessons)
                .bind(id)
                .execute(&mut *tx)
                .await
                .context("closing incident")?;
                ("closed", lessons.clone())
            }
        };
        timeline(&mut tx, id, now, actor, entry, &text).await?;
        tx.commit().await.context("committing incident action")?;
        Ok(Ok(()))
    }

    /// Files an incident by hand (source `manual`): a security incident an officer learnt of, or
    /// anything the monitoring cannot see. It gets a number and enters the same lifecycle.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn incident_file(
        &self,
        incident: &ManualIncident,
        actor: &str,
        now: OffsetDateTime,
    ) -> anyhow::Result<String> {
        let now = millis(now);
        let id = uuid::Uuid::new_v4().to_string();
        let mut tx = self
            .begin_write()
            .await
            .context("starting manual incident")?;
        sqlx::query(
            "INSERT INTO incidents (id, unit_id, kind, source, severity, state, title, description, started_at,
                                    discovered_at, systems_affected, created_at, updated_at, system_code, discovery)
             VALUES ($1, $2, $3, 'manual', $4, 'open', $5, $6, $7, $8, $9, $10, $10, $11, $12)",
        )
        .bind(&id)
        .bind(incident.unit_id)
        .bind(&incident.kind)
        .bind(&incident.severity)
        .bind(&incident.title)
        .bind(&incident.description)
        .bind(millis(incident.started_at))
        .bind(millis(incident.discovered_at))
        .bind(serde_json::to_string(&incident.systems_affected).context("encoding systems")?)
        .bind(now)
        .bind(&incident.system_code)
        .bind(&incident.discovery)
        .execute(&mut *tx)
        .await
        .context("filing a manual incident")?;
        assign_number(&mut tx, &id, millis(incident.started_at)).await?;
        timeline(&mut tx, &id, now, actor, "opened", &incident.title).await?;
        tx.commit().await.context("committing manual incident")?;
        Ok(id)
    }

    /// Every incident overlapping `[since, until)`, as outages for availability figures.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn incident_outages(
        &self,
        since: i64,
        until: i64,
    ) -> anyhow::Result<Vec<crate::domain::availability::Outage>> {
        let rows: Vec<(i64, String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT unit_id, kind, started_at, ended_at FROM incidents
             WHERE started_at < $1 AND (ended_at IS NULL OR ended_at > $2)",
        )
        .bind(until)
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .context("reading incidents for availability")?;
        Ok(rows
            .into_iter()
            .map(
                |(unit_id, kind, started_at, ended_at)| crate::domain::availability::Outage {
                    unit_id,
                    kind,
                    started_at,
                    ended_at,
                },
            )
            .collect())
    }

    /// Incidents matching a filter, latest started first.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn incidents_list(
        &self,
        filter: &IncidentFilter,
    ) -> anyhow::Result<Vec<StoredIncident>> {
        let mut sql = format!(
            "SELECT {INCIDENT_COLUMNS}
             WHERE ($1 IS NULL OR i.kind = $1) AND ($2 IS NULL OR i.state = $2)
               AND ($3 IS NULL OR i.ended_at IS NULL OR i.ended_at >= $3) AND ($4 IS NULL OR i.started_at < $4)
               AND ($6 IS NULL OR ($6 = 1 AND i.parent_id IS NULL) OR ($6 = 0 AND i.parent_id IS NOT NULL))
               AND ($7 IS NULL OR i.parent_id = $7)"
        );
        let unit_ids = filter.unit_ids.as_deref();
        if let Some(ids) = unit_ids {
            sql.push_str(&super::in_list("i.unit_id", 8, ids.len()));
        }
        sql.push_str(" ORDER BY i.started_at DESC, i.id LIMIT $5");
        let mut query = sqlx::query_as::<_, StoredIncident>(&sql)
            .bind(&filter.kind)
            .bind(&filter.state)
            .bind(filter.since.map(millis))
            .bind(filter.until.map(millis))
            .bind(filter.limit)
            .bind(filter.top_level.map(i64::from))
            .bind(&filter.parent_id);
        for id in unit_ids.unwrap_or_default() {
            query = query.bind(*id);
        }
        let incidents = query
            .fetch_all(&self.pool)
            .await
            .context("listing incidents")?;
        Ok(incidents)
    }

    /// One incident by id.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn incident(&self, id: &str) -> anyhow::Result<Option<StoredIncident>> {
        let incident = sqlx::query_as::<_, StoredIncident>(&format!(
            "SELECT {INCIDENT_COLUMNS} WHERE i.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .with_context(|| format!("reading incident {id}"))?;
        Ok(incident)
    }

    /// How many incidents there are of each kind in each state, for the metrics.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn incidents_count(&self) -> anyhow::Result<Vec<IncidentCount>> {
        let counts = sqlx::query_as::<_, IncidentCount>(
            "SELECT kind, state, COUNT(*) AS count FROM incidents GROUP BY kind, state ORDER BY kind, state",
        )
        .fetch_all(&self.pool)
        .await
        .context("counting incidents")?;
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use cntt_common::wire::IncidentKind;

    use super::*;

    #[test]
    fn incident_kinds_are_the_wire_kinds() {
        use IncidentKind::*;
        // This match stops compiling when a kind is added to the wire, so the list follows it.
        let every = [Lan, Wan, Internet, Server, Host, Security, Other];
        for kind in every {
            match kind {
                Lan | Wan | Internet | Server | Host | Security | Other => {}
            }
        }
        let names: Vec<String> = every
            .iter()
            .map(|kind| {
                serde_json::to_value(kind)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        // The wire's kinds, then the ones only the collector infers.
        assert_eq!(names, INCIDENT_KINDS[..every.len()]);
        assert_eq!(INCIDENT_KINDS[every.len()..], ["agent_unreachable"]);
    }
}
