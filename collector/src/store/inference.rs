//! The collector's own incidents: silent agents, inferred outages and their evidence, decided in
//! one evaluation transaction (issue 4, items 2 to 4 and 8).
//!
//! Design note. [`Store::incidents_evaluate`] runs, in ONE transaction:
//!
//! 1. the lock: an update of the `incidents` row of `job_locks`. Collectors sharing a database take
//!    turns (PostgreSQL holds the row lock, SQLite the write lock, until commit), and a collector
//!    killed mid-evaluation loses its connection, so its transaction rolls back and the lock goes:
//!    an evaluation happens wholly or not at all, never twice at once;
//! 2. the silence sweep: an "agent unreachable" incident for every agent silent too long. The agent's
//!    row is touched first under the condition that `last_seen_at` is still the value read, so an
//!    ingest committing in between (which updates that row, then resolves the agent's incident)
//!    either makes the sweep skip the agent or waits for it and then resolves what it opened;
//! 3. the plan of [`crate::domain::inference::plan`]: outages opened, resolved, incidents folded and released;
//! 4. evidence: agents' WAN/LAN incidents linked to the inferred incident that covers them, and the
//!    inferred incidents' start and end corrected by [`crate::domain::inference::correct`].
//!
//! Each evaluation first runs the same steps without the lock and without writing, and takes the
//! lock only when they find work, so an idle collector never blocks ingest.
//!
//! Ingest never waits for the lock; it only touches its agent's row and incidents. Partial unique
//! indexes (one open unreachable incident per agent, one open outage per unit and scope) back the
//! lock up should anything else ever write these rows.

use std::collections::{BTreeMap, HashMap};

use anyhow::Context;
use sqlx::AnyConnection;
use time::OffsetDateTime;

use super::incidents::{assign_number, timeline};
use super::{millis, Store};
use crate::domain::inference::{
    self, AgentState, Evidence, Managed, OpenOutage, Parent, Rules, Scope, SettlingOutage,
};
use crate::domain::maintenance;
use crate::domain::vi;

/// How far back evidence and corrections look: agents buffer at most this long a useful window.
const LOOKBACK_MS: i64 = 7 * 24 * 3600 * 1000;

/// What to evaluate with, from `[incidents]` in the config.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvaluationRules {
    /// Missed heartbeat intervals before an agent is unreachable.
    pub silence_intervals: i64,
    /// Never unreachable sooner than this, ms.
    pub silence_min_ms: i64,
    /// The inference thresholds.
    pub inference: Rules,
    /// Evidence this close to an outage is linked to it, ms.
    pub merge_slack_ms: i64,
    /// How long after an outage ends its agents may take to come back, ms.
    pub settle_ms: i64,
}

/// What one evaluation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evaluation {
    /// Numbers of the "agent unreachable" incidents opened.
    pub unreachable: Vec<String>,
    /// Numbers of the outages opened.
    pub outages: Vec<String>,
    /// Outages resolved.
    pub resolved: usize,
    /// Incidents folded under another or released.
    pub reparented: usize,
    /// Agents' incidents linked as evidence.
    pub linked: usize,
    /// Outages whose times the evidence corrected.
    pub corrected: usize,
}

impl Evaluation {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        *self == Evaluation::default()
    }
}

#[derive(Debug, sqlx::FromRow)]
struct AgentRow {
    id: String,
    unit_id: i64,
    hostname: String,
    last_seen_at: i64,
    heartbeat_interval: Option<i64>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct IncidentRow {
    id: String,
    number: Option<String>,
    agent_id: Option<String>,
    unit_id: i64,
    kind: String,
    source: String,
    scope: Option<String>,
    state: String,
    started_at: i64,
    ended_at: Option<i64>,
    parent_id: Option<String>,
    created_at: i64,
}

const INCIDENT_ROW: &str =
    "SELECT id, number, agent_id, unit_id, kind, source, scope, state, started_at, ended_at, parent_id, created_at
     FROM incidents";

impl Store {
    /// Runs one evaluation: silence sweep, inference, evidence; see the module's design note.
    /// `holder` names this collector in `job_locks`.
    ///
    /// # Errors
    ///
    /// On a database error; nothing of the evaluation is then kept.
    pub async fn incidents_evaluate(
        &self,
        now: OffsetDateTime,
        rules: &EvaluationRules,
        holder: &str,
    ) -> anyhow::Result<Evaluation> {
        let now = millis(now);
        let mut evaluation = Evaluation::default();
        // Look without the lock first. Most evaluations find nothing to do, and the lock is a
        // write: on SQLite it is the database's one writer slot, and taking it every few seconds
        // for nothing makes agents' uploads wait (issue 4: a 3 s stall made a reporting agent
        // look silent).
        {
            let mut conn = self
                .pool
                .acquire()
                .await
                .context("connecting for incident evaluation")?;
            if !steps(&mut conn, now, rules, true, &mut evaluation).await? {
                return Ok(evaluation);
            }
        }
        let mut tx = self
            .begin_write()
            .await
            .context("starting incident evaluation")?;
        sqlx::query("UPDATE job_locks SET holder = $1, at = $2 WHERE name = 'incidents'")
            .bind(holder)
            .bind(now)
            .execute(&mut *tx)
            .await
            .context("taking the incident evaluation lock")?;
        steps(&mut tx, now, rules, false, &mut evaluation).await?;
        tx.commit()
            .await
            .context("committing incident evaluation")?;
        Ok(evaluation)
    }
}

/// The evaluation's steps. With `dry`, nothing is written: the first step that would write stops
/// and `true` says there is work.
async fn steps(
    conn: &mut AnyConnection,
    now: i64,
    rules: &EvaluationRules,
    dry: bool,
    evaluation: &mut Evaluation,
) -> anyhow::Result<bool> {
    Ok(sweep(conn, now, rules, dry, evaluation).await?
        || infer(conn, now, rules, dry, evaluation).await?
        || merge(conn, now, rules.merge_slack_ms, dry, evaluation).await?)
}

/// Opens an "agent unreachable" incident for every active agent silent for longer than
/// `silence_intervals` of its own heartbeat interval, and at least `silence_min_ms`.
async fn sweep(
    conn: &mut AnyConnection,
    now: i64,
    rules: &EvaluationRules,
    dry: bool,
    evaluation: &mut Evaluation,
) -> anyhow::Result<bool> {
    let agents = sqlx::query_as::<_, AgentRow>(
        "SELECT a.id, a.unit_id, a.hostname, a.last_seen_at, a.heartbeat_interval FROM agents a
         WHERE a.revoked_at IS NULL AND a.last_seen_at IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM incidents i WHERE i.agent_id = a.id AND i.kind = 'agent_unreachable'
                           AND i.state IN ('open', 'acknowledged'))",
    )
    .fetch_all(&mut *conn)
    .await
    .context("listing agents for the silence sweep")?;
    // A revoked agent is out of service: its silence is no longer an incident.
    let revoked: Vec<String> = sqlx::query_scalar(
        "SELECT i.id FROM incidents i JOIN agents a ON a.id = i.agent_id
         WHERE i.kind = 'agent_unreachable' AND i.state IN ('open', 'acknowledged') AND a.revoked_at IS NOT NULL",
    )
    .fetch_all(&mut *conn)
    .await
    .context("listing unreachable incidents of revoked agents")?;
    if dry && !revoked.is_empty() {
        return Ok(true);
    }
    for id in revoked {
        sqlx::query(
            "UPDATE incidents SET state = 'resolved', ended_at = $1, updated_at = $1 WHERE id = $2",
        )
        .bind(now)
        .bind(&id)
        .execute(&mut *conn)
        .await
        .context("resolving an incident of a revoked agent")?;
        timeline(conn, &id, now, "collector", "resolved", vi::AGENT_REVOKED).await?;
    }
    for agent in agents {
        let interval_ms = agent.heartbeat_interval.unwrap_or(60).max(1) * 1000;
        let threshold = (rules.silence_intervals * interval_ms).max(rules.silence_min_ms);
        if now - agent.last_seen_at <= threshold {
            continue;
        }
        if dry {
            return Ok(true);
        }
        let still_silent = sqlx::query(
            "UPDATE agents SET last_seen_at = last_seen_at WHERE id = $1 AND last_seen_at = $2",
        )
        .bind(&agent.id)
        .bind(agent.last_seen_at)
        .execute(&mut *conn)
        .await
        .context("checking an agent is still silent")?;
        if still_silent.rows_affected() == 0 {
            continue;
        }
        let id = uuid::Uuid::new_v4().to_string();
        let description = vi::agent_unreachable_description(&agent.hostname, threshold / 1000);
        let created = sqlx::query(
            "INSERT INTO incidents (id, agent_id, unit_id, kind, source, scope, severity, state, title,
                                    description, started_at, created_at, updated_at)
             VALUES ($1, $2, $3, 'agent_unreachable', 'inferred', 'agent', 'medium', 'open', $4, $5, $6, $7, $7)
             ON CONFLICT DO NOTHING",
        )
        .bind(&id)
        .bind(&agent.id)
        .bind(agent.unit_id)
        .bind(vi::agent_unreachable_title(&agent.hostname))
        .bind(&description)
        .bind(agent.last_seen_at)
        .bind(now)
        .execute(&mut *conn)
        .await
        .context("opening an unreachable-agent incident")?;
        if created.rows_affected() == 1 {
            let number = assign_number(conn, &id, agent.last_seen_at).await?;
            evaluation.unreachable.push(number);
            timeline(conn, &id, now, "collector", "inferred", &description).await?;
        }
    }
    Ok(false)
}

#[derive(Debug, sqlx::FromRow)]
struct UnitRow {
    id: i64,
    uplink: Option<i64>,
    name: String,
}

/// Plans and applies the inference.
async fn infer(
    conn: &mut AnyConnection,
    now: i64,
    rules: &EvaluationRules,
    dry: bool,
    evaluation: &mut Evaluation,
) -> anyhow::Result<bool> {
    let units = sqlx::query_as::<_, UnitRow>(
        "SELECT id, COALESCE(uplink_id, parent_id) AS uplink, name FROM units",
    )
    .fetch_all(&mut *conn)
    .await
    .context("reading the topology")?;
    let names: HashMap<i64, String> = units.iter().map(|u| (u.id, u.name.clone())).collect();
    let links: Vec<inference::UnitLink> = units
        .iter()
        .map(|unit| inference::UnitLink {
            id: unit.id,
            uplink: unit.uplink,
        })
        .collect();
    let agent_rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT id, unit_id FROM agents WHERE revoked_at IS NULL AND last_seen_at IS NOT NULL",
    )
    .fetch_all(&mut *conn)
    .await
    .context("reading active agents")?;
    let open_rows = sqlx::query_as::<_, IncidentRow>(&format!(
        "{INCIDENT_ROW} WHERE scope IS NOT NULL AND state IN ('open', 'acknowledged')"
    ))
    .fetch_all(&mut *conn)
    .await
    .context("reading open inferred incidents")?;
    let returned: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "SELECT agent_id, MAX(ended_at) FROM incidents
         WHERE kind = 'agent_unreachable' AND ended_at IS NOT NULL GROUP BY agent_id",
    )
    .fetch_all(&mut *conn)
    .await
    .context("reading agents' returns")?
    .into_iter()
    .collect();
    let managed = |row: &IncidentRow| Managed {
        id: row.id.clone(),
        started_at: row.started_at,
        detected_at: row.created_at,
        parent_id: row.parent_id.clone(),
    };
    let unreachable: HashMap<&str, &IncidentRow> = open_rows
        .iter()
        .filter(|row| row.scope.as_deref() == Some("agent"))
        .filter_map(|row| row.agent_id.as_deref().map(|agent| (agent, row)))
        .collect();
    let agents: Vec<AgentState> = agent_rows
        .iter()
        .map(|(id, unit_id)| AgentState {
            id: id.clone(),
            unit_id: *unit_id,
            unreachable: unreachable.get(id.as_str()).map(|row| managed(row)),
            returned_at: returned.get(id).copied(),
        })
        .collect();
    let open: Vec<OpenOutage> = open_rows
        .iter()
        .filter_map(|row| {
            Some(OpenOutage {
                unit_id: row.unit_id,
                scope: Scope::parse(row.scope.as_deref()?)?,
                incident: managed(row),
            })
        })
        .collect();
    let settling: Vec<SettlingOutage> = sqlx::query_as::<_, (String, i64, String)>(
        "SELECT id, unit_id, scope FROM incidents
         WHERE scope IN ('unit', 'uplink') AND state = 'resolved' AND updated_at >= $1",
    )
    .bind(now - rules.settle_ms)
    .fetch_all(&mut *conn)
    .await
    .context("reading outages that just ended")?
    .into_iter()
    .filter_map(|(id, unit_id, scope)| {
        Some(SettlingOutage {
            id,
            unit_id,
            scope: Scope::parse(&scope)?,
        })
    })
    .collect();
    let plan = inference::plan(&links, &agents, &open, &settling, rules.inference, now);
    // No outage is opened for units in planned maintenance: their agents' own incidents are
    // recorded and shown, held from notices (`domain::maintenance`).
    let plan = if plan.open.is_empty() {
        plan
    } else {
        let windows = super::maintenance::live_windows(&mut *conn, now).await?;
        let parents: HashMap<i64, Option<i64>> =
            sqlx::query_as::<_, (i64, Option<i64>)>("SELECT id, parent_id FROM units")
                .fetch_all(&mut *conn)
                .await
                .context("reading units' parents")?
                .into_iter()
                .collect();
        let in_window = |unit: i64| {
            let mut chain = vec![unit];
            while let Some(Some(up)) = parents.get(chain.last().expect("starts non-empty")) {
                if chain.contains(up) || chain.len() > 64 {
                    break;
                }
                chain.push(*up);
            }
            let covered = maintenance::Covered {
                unit_chain: chain,
                ..maintenance::Covered::default()
            };
            windows
                .iter()
                .any(|window| window.covers(&covered) && window.occurrence_at(now).is_some())
        };
        plan.without_openings(|outage| {
            in_window(outage.unit_id)
                || (!outage.dark_units.is_empty()
                    && outage.dark_units.iter().all(|unit| in_window(*unit)))
        })
    };
    if plan.is_empty() {
        return Ok(false);
    }
    if dry {
        return Ok(true);
    }
    let numbers: HashMap<&str, Option<&str>> = open_rows
        .iter()
        .map(|row| (row.id.as_str(), row.number.as_deref()))
        .collect();
    let mut created: BTreeMap<(i64, Scope), (String, String)> = BTreeMap::new();
    for outage in &plan.open {
        let name = names.get(&outage.unit_id).cloned().unwrap_or_default();
        let (severity, title, description) = match outage.scope {
            Scope::Unit => (
                "high",
                vi::unit_outage_title(&name),
                vi::unit_outage_description(&name, outage.silent_agents, outage.started_at),
            ),
            Scope::Uplink => {
                let dark: Vec<String> = outage
                    .dark_units
                    .iter()
                    .map(|unit| names.get(unit).cloned().unwrap_or_default())
                    .collect();
                (
                    "critical",
                    vi::uplink_outage_title(&name, dark.len()),
                    vi::uplink_outage_description(
                        &name,
                        &dark,
                        outage.silent_agents,
                        outage.started_at,
                    ),
                )
            }
        };
        let id = uuid::Uuid::new_v4().to_string();
        let res = sqlx::query(
            "INSERT INTO incidents (id, unit_id, kind, source, scope, severity, state, title, description,
                                    started_at, created_at, updated_at)
             VALUES ($1, $2, 'wan', 'inferred', $3, $4, 'open', $5, $6, $7, $8, $8)
             ON CONFLICT DO NOTHING",
        )
        .bind(&id)
        .bind(outage.unit_id)
        .bind(outage.scope.as_str())
        .bind(severity)
        .bind(&title)
        .bind(&description)
        .bind(outage.started_at)
        .bind(now)
        .execute(&mut *conn)
        .await
        .context("opening an inferred outage")?;
        if res.rows_affected() == 0 {
            // Only possible if something bypassed the lock; the plan is then stale, so stop here
            // and let the next evaluation see the current rows.
            anyhow::bail!(
                "an open {} outage of unit {} appeared during evaluation",
                outage.scope.as_str(),
                outage.unit_id
            );
        }
        let number = assign_number(conn, &id, outage.started_at).await?;
        timeline(conn, &id, now, "collector", "inferred", &description).await?;
        evaluation.outages.push(number.clone());
        created.insert((outage.unit_id, outage.scope), (id, number));
    }
    for ended in &plan.resolve {
        sqlx::query(
            "UPDATE incidents SET state = 'resolved', ended_at = $1, updated_at = $2
             WHERE id = $3 AND state IN ('open', 'acknowledged')",
        )
        .bind(ended.ended_at)
        .bind(now)
        .bind(&ended.id)
        .execute(&mut *conn)
        .await
        .context("resolving an inferred outage")?;
        timeline(
            conn,
            &ended.id,
            now,
            "collector",
            "resolved",
            &vi::outage_over(ended.ended_at),
        )
        .await?;
        evaluation.resolved += 1;
    }
    // Numbers of parents that existed before this plan, for the timeline's words.
    let mut parent_numbers: HashMap<String, String> = HashMap::new();
    for (_, parent) in &plan.reparent {
        if let Some(Parent::Existing(id)) = parent {
            if !numbers.contains_key(id.as_str()) {
                let number: Option<String> =
                    sqlx::query_scalar("SELECT number FROM incidents WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&mut *conn)
                        .await
                        .context("reading a parent's number")?
                        .flatten();
                parent_numbers.insert(id.clone(), number.unwrap_or_default());
            }
        }
    }
    let resolve_id = |parent: &Parent| -> Option<(String, String)> {
        match parent {
            Parent::Existing(id) => {
                let number = numbers
                    .get(id.as_str())
                    .copied()
                    .flatten()
                    .map(str::to_owned)
                    .or_else(|| parent_numbers.get(id).cloned())
                    .unwrap_or_default();
                Some((id.clone(), number))
            }
            Parent::New(unit, scope) => created.get(&(*unit, *scope)).cloned(),
        }
    };
    for (child, parent) in &plan.reparent {
        let Some((child_id, _)) = resolve_id(child) else {
            continue;
        };
        let old_parent: Option<String> =
            sqlx::query_scalar("SELECT parent_id FROM incidents WHERE id = $1")
                .bind(&child_id)
                .fetch_optional(&mut *conn)
                .await
                .context("reading an incident's parent")?
                .flatten();
        let (parent_id, text) = match parent.as_ref().and_then(resolve_id) {
            Some((id, number)) => (Some(id), vi::folded_under(&number)),
            None => {
                let old_number = match &old_parent {
                    Some(old) => sqlx::query_scalar::<_, Option<String>>(
                        "SELECT number FROM incidents WHERE id = $1",
                    )
                    .bind(old)
                    .fetch_optional(&mut *conn)
                    .await
                    .context("reading the former parent's number")?
                    .flatten()
                    .unwrap_or_default(),
                    None => String::new(),
                };
                (None, vi::released_from(&old_number))
            }
        };
        sqlx::query("UPDATE incidents SET parent_id = $1, updated_at = $2 WHERE id = $3")
            .bind(&parent_id)
            .bind(now)
            .bind(&child_id)
            .execute(&mut *conn)
            .await
            .context("folding an incident")?;
        let entry = if parent_id.is_some() {
            "grouped"
        } else {
            "released"
        };
        timeline(conn, &child_id, now, "collector", entry, &text).await?;
        evaluation.reparented += 1;
    }
    Ok(false)
}

/// Links agents' WAN/LAN incidents to the inferred incidents they explain, and corrects those
/// incidents' start and end from them.
async fn merge(
    conn: &mut AnyConnection,
    now: i64,
    slack: i64,
    dry: bool,
    evaluation: &mut Evaluation,
) -> anyhow::Result<bool> {
    let since = now - LOOKBACK_MS;
    let inferred = sqlx::query_as::<_, IncidentRow>(&format!(
        "{INCIDENT_ROW} WHERE scope IS NOT NULL AND state <> 'closed'
           AND (state IN ('open', 'acknowledged') OR ended_at >= $1)"
    ))
    .bind(since)
    .fetch_all(&mut *conn)
    .await
    .context("reading recent inferred incidents")?;
    if inferred.is_empty() {
        return Ok(false);
    }
    let uplinks: HashMap<i64, Option<i64>> = sqlx::query_as::<_, (i64, Option<i64>)>(
        "SELECT id, COALESCE(uplink_id, parent_id) FROM units",
    )
    .fetch_all(&mut *conn)
    .await
    .context("reading the topology")?
    .into_iter()
    .collect();
    let chain = |unit: i64| -> Vec<i64> {
        let mut chain = vec![unit];
        while let Some(Some(up)) = uplinks.get(chain.last().expect("chain starts non-empty")) {
            if chain.contains(up) || chain.len() > 64 {
                break;
            }
            chain.push(*up);
        }
        chain
    };
    let candidates = sqlx::query_as::<_, IncidentRow>(&format!(
        "{INCIDENT_ROW} WHERE source = 'agent_detected' AND kind IN ('lan', 'wan', 'internet')
           AND parent_id IS NULL AND (ended_at IS NULL OR ended_at >= $1)"
    ))
    .bind(since)
    .fetch_all(&mut *conn)
    .await
    .context("reading agents' network incidents")?;
    let overlaps = |outage: &IncidentRow, evidence: &IncidentRow| {
        evidence.started_at <= outage.ended_at.unwrap_or(now) + slack
            && evidence.ended_at.unwrap_or(now) >= outage.started_at - slack
    };
    for evidence in &candidates {
        let Some(agent_id) = evidence.agent_id.as_deref() else {
            continue;
        };
        let path = chain(evidence.unit_id);
        // The deepest inferred incident that covers the agent: its unit's outage, else the nearest
        // uplink's, else its own "unreachable" incident; the closest in time among equals.
        let rank = |outage: &IncidentRow| -> Option<usize> {
            match outage.scope.as_deref()? {
                "unit" if outage.unit_id == evidence.unit_id => Some(0),
                "uplink" => path
                    .iter()
                    .position(|unit| *unit == outage.unit_id)
                    .map(|depth| 1 + depth),
                "agent" if outage.agent_id.as_deref() == Some(agent_id) => Some(usize::MAX),
                _ => None,
            }
        };
        let best = inferred
            .iter()
            .filter(|outage| overlaps(outage, evidence))
            .filter_map(|outage| rank(outage).map(|rank| (rank, outage)))
            .min_by_key(|(rank, outage)| (*rank, (outage.started_at - evidence.started_at).abs()));
        let Some((_, outage)) = best else {
            continue;
        };
        if dry {
            return Ok(true);
        }
        sqlx::query("UPDATE incidents SET parent_id = $1, updated_at = $2 WHERE id = $3")
            .bind(&outage.id)
            .bind(now)
            .bind(&evidence.id)
            .execute(&mut *conn)
            .await
            .context("linking evidence")?;
        let hostname: Option<String> =
            sqlx::query_scalar("SELECT hostname FROM agents WHERE id = $1")
                .bind(agent_id)
                .fetch_optional(&mut *conn)
                .await
                .context("reading the agent's host name")?;
        let outage_number = outage.number.clone().unwrap_or_default();
        timeline(
            conn,
            &evidence.id,
            now,
            "collector",
            "grouped",
            &vi::folded_under(&outage_number),
        )
        .await?;
        timeline(
            conn,
            &outage.id,
            now,
            "collector",
            "evidence",
            &vi::evidence_linked(
                evidence.number.as_deref().unwrap_or_default(),
                hostname.as_deref().unwrap_or(agent_id),
                &evidence.kind,
                evidence.started_at,
                evidence.ended_at,
            ),
        )
        .await?;
        evaluation.linked += 1;
    }
    correct_all(conn, now, &inferred, &chain, dry, evaluation).await
}

/// Recomputes every recent inferred incident's window from the evidence under it.
async fn correct_all(
    conn: &mut AnyConnection,
    now: i64,
    inferred: &[IncidentRow],
    chain: &(dyn Fn(i64) -> Vec<i64> + Sync),
    dry: bool,
    evaluation: &mut Evaluation,
) -> anyhow::Result<bool> {
    let ids: Vec<&str> = inferred.iter().map(|row| row.id.as_str()).collect();
    // Everything hanging under the recent inferred incidents, level by level.
    let mut children: HashMap<String, Vec<IncidentRow>> = HashMap::new();
    let mut frontier: Vec<String> = ids.iter().map(|id| (*id).to_owned()).collect();
    let mut depth = 0;
    while !frontier.is_empty() && depth < 8 {
        let sql = format!(
            "{INCIDENT_ROW} WHERE 1 = 1{}",
            super::in_list("parent_id", 1, frontier.len())
        );
        let mut query = sqlx::query_as::<_, IncidentRow>(&sql);
        for id in &frontier {
            query = query.bind(id);
        }
        let rows = query
            .fetch_all(&mut *conn)
            .await
            .context("reading folded incidents")?;
        frontier = rows
            .iter()
            .filter(|row| row.scope.is_some())
            .map(|row| row.id.clone())
            .collect();
        for row in rows {
            let parent = row.parent_id.clone().expect("selected by parent");
            children.entry(parent).or_default().push(row);
        }
        depth += 1;
    }
    for outage in inferred {
        let mut evidence_rows = Vec::new();
        let mut stack = vec![outage.id.clone()];
        while let Some(id) = stack.pop() {
            for child in children.get(&id).into_iter().flatten() {
                if child.source == "agent_detected" {
                    evidence_rows.push(child.clone());
                } else if child.scope.is_some() {
                    stack.push(child.id.clone());
                }
            }
        }
        if evidence_rows.is_empty() {
            continue;
        }
        let member = |unit: i64| -> i64 {
            if outage.scope.as_deref() != Some("uplink") {
                return unit;
            }
            let path = chain(unit);
            match path.iter().position(|up| *up == outage.unit_id) {
                Some(0) | None => unit,
                Some(depth) => path[depth - 1],
            }
        };
        let evidence: Vec<Evidence> = evidence_rows
            .iter()
            .map(|row| Evidence {
                agent_id: row.agent_id.clone().unwrap_or_default(),
                member: member(row.unit_id),
                started_at: row.started_at,
                ended_at: row.ended_at,
            })
            .collect();
        let Some((start, end)) = inference::correct(&evidence) else {
            continue;
        };
        // An open outage keeps no end until it is resolved; a resolved one takes the evidence's.
        let resolved = outage.state == "resolved";
        let new_end = if resolved {
            end.or(outage.ended_at)
        } else {
            outage.ended_at
        };
        let lan = outage.scope.as_deref() == Some("unit")
            && evidence_rows.iter().all(|row| row.kind == "lan");
        let kind_changes = lan && outage.kind != "lan";
        if start == outage.started_at && new_end == outage.ended_at && !kind_changes {
            continue;
        }
        if dry {
            return Ok(true);
        }
        sqlx::query(
            "UPDATE incidents SET started_at = $1, ended_at = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(start)
        .bind(new_end)
        .bind(now)
        .bind(&outage.id)
        .execute(&mut *conn)
        .await
        .context("correcting an inferred outage")?;
        if kind_changes {
            let name: String = sqlx::query_scalar("SELECT name FROM units WHERE id = $1")
                .bind(outage.unit_id)
                .fetch_one(&mut *conn)
                .await
                .context("reading the unit's name")?;
            sqlx::query("UPDATE incidents SET kind = 'lan', title = $1 WHERE id = $2")
                .bind(vi::unit_lan_outage_title(&name))
                .bind(&outage.id)
                .execute(&mut *conn)
                .await
                .context("reclassifying an outage as LAN")?;
        }
        timeline(
            conn,
            &outage.id,
            now,
            "collector",
            "corrected",
            &vi::corrected(outage.started_at, outage.ended_at, start, new_end),
        )
        .await?;
        evaluation.corrected += 1;
    }
    Ok(false)
}
