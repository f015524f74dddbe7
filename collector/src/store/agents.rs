//! Agents: enrollment (token spent and agent created in one transaction), credentials, revocation
//! and the last known state of each agent.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{millis, EnrollRefusal, Store};

/// An agent to create at enrollment.
#[derive(Debug, Clone)]
pub struct NewAgent {
    /// Fresh id.
    pub id: Uuid,
    /// Host name it reported.
    pub hostname: String,
    /// Its software version.
    pub agent_version: String,
    /// SHA-256 of its credential.
    pub credential_hash: String,
    /// Where it connected from.
    pub address: Option<String>,
}

/// What authenticating an agent credential found.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AgentAuth {
    /// Agent id (UUID text).
    pub id: String,
    /// The unit it belongs to.
    pub unit_id: i64,
    /// Its unit's code.
    pub unit_code: String,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
    /// Highest sequence number stored so far.
    pub last_seq: Option<i64>,
    /// The last day of its unit, when the unit has ended or will end (`YYYY-MM-DD`).
    pub unit_valid_to: Option<String>,
}

/// How long an agent's credential, once found valid, is taken on trust without reading the
/// database again (issue 15: one lookup per batch was a fifth of the ingest's statements). A
/// revocation on this collector takes effect at once; on another collector sharing PostgreSQL,
/// within this time.
const CREDENTIAL_TRUST: Duration = Duration::from_secs(10);

/// Entries at most; the cache is emptied when full (a flood of distinct valid credentials is
/// impossible without enrolling that many agents).
const CREDENTIAL_CACHE_MAX: usize = 200_000;

/// Agents recently authenticated, by the hash of their credential.
#[derive(Debug, Default)]
pub(super) struct CredentialCache {
    entries: std::sync::Mutex<HashMap<String, (AgentAuth, Instant)>>,
}

impl CredentialCache {
    fn get(&self, credential_hash: &str) -> Option<AgentAuth> {
        let entries = self
            .entries
            .lock()
            .expect("credential cache lock is never poisoned");
        entries
            .get(credential_hash)
            .filter(|(_, at)| at.elapsed() < CREDENTIAL_TRUST)
            .map(|(agent, _)| agent.clone())
    }

    fn put(&self, credential_hash: &str, agent: &AgentAuth) {
        let mut entries = self
            .entries
            .lock()
            .expect("credential cache lock is never poisoned");
        if entries.len() >= CREDENTIAL_CACHE_MAX {
            entries.clear();
        }
        entries.insert(credential_hash.to_owned(), (agent.clone(), Instant::now()));
    }

    fn forget(&self, agent_id: &str) {
        self.entries
            .lock()
            .expect("credential cache lock is never poisoned")
            .retain(|_, (agent, _)| agent.id != agent_id);
    }
}

/// An agent as listed by the API.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Agent {
    /// Agent id.
    pub id: String,
    /// Unit code.
    pub unit_code: String,
    /// Unit name.
    pub unit_name: String,
    /// Internal unit id, for scoping.
    #[serde(skip)]
    pub unit_id: i64,
    /// Host name.
    pub hostname: String,
    /// Software version of its last batch.
    pub agent_version: String,
    /// Enrollment time, Unix ms.
    pub enrolled_at: i64,
    /// Revocation time, Unix ms.
    pub revoked_at: Option<i64>,
    /// Last batch received, Unix ms.
    pub last_seen_at: Option<i64>,
    /// Highest sequence number stored.
    pub last_seq: Option<i64>,
    /// Address of its last request.
    pub last_address: Option<String>,
    /// Heartbeat interval it announced, seconds.
    pub heartbeat_interval: Option<i64>,
    /// Last host snapshot, JSON text.
    #[serde(skip)]
    pub host_snapshot: Option<String>,
}

impl Store {
    /// Spends one use of the enrollment token with this hash and creates the agent in the token's
    /// unit, atomically: a token with one use left enrolls exactly one agent even under races.
    ///
    /// Returns the unit id, or why the token was refused.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn agent_enroll(
        &self,
        token_hash: &str,
        agent: &NewAgent,
        now: OffsetDateTime,
    ) -> anyhow::Result<Result<i64, EnrollRefusal>> {
        let now = millis(now);
        let mut tx = self.begin_write().await.context("starting enrollment")?;
        let spent: Option<(i64, i64)> = sqlx::query_as(
            "UPDATE enroll_tokens SET uses = uses + 1
             WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2 AND uses < uses_allowed
             RETURNING id, unit_id",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .context("spending enrollment token")?;
        let Some((token_id, unit_id)) = spent else {
            let row: Option<(Option<i64>, i64, i64, i64)> = sqlx::query_as(
                "SELECT revoked_at, expires_at, uses, uses_allowed FROM enroll_tokens WHERE token_hash = $1",
            )
            .bind(token_hash)
            .fetch_optional(&mut *tx)
            .await
            .context("reading enrollment token")?;
            let refusal = match row {
                None => EnrollRefusal::Unknown,
                Some((Some(_), ..)) => EnrollRefusal::Revoked,
                Some((None, expires_at, ..)) if expires_at <= now => EnrollRefusal::Expired,
                Some(_) => EnrollRefusal::UsedUp,
            };
            return Ok(Err(refusal));
        };
        sqlx::query(
            "INSERT INTO agents (id, unit_id, hostname, agent_version, credential_hash, enroll_token_id, enrolled_at,
                                 last_address)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(agent.id.to_string())
        .bind(unit_id)
        .bind(&agent.hostname)
        .bind(&agent.agent_version)
        .bind(&agent.credential_hash)
        .bind(token_id)
        .bind(now)
        .bind(&agent.address)
        .execute(&mut *tx)
        .await
        .context("creating agent")?;
        tx.commit().await.context("committing enrollment")?;
        Ok(Ok(unit_id))
    }

    /// The agent holding the credential with this hash, revoked or not.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn agent_by_credential(
        &self,
        credential_hash: &str,
    ) -> anyhow::Result<Option<AgentAuth>> {
        if let Some(agent) = self.credentials.get(credential_hash) {
            return Ok(Some(agent));
        }
        let agent = sqlx::query_as::<_, AgentAuth>(
            "SELECT a.id, a.unit_id, u.code AS unit_code, a.revoked_at, a.last_seq, u.valid_to AS unit_valid_to
             FROM agents a JOIN units u ON u.id = a.unit_id WHERE a.credential_hash = $1",
        )
        .bind(credential_hash)
        .fetch_optional(&self.pool)
        .await
        .context("looking up agent credential")?;
        if let Some(agent) = agent.as_ref().filter(|agent| agent.revoked_at.is_none()) {
            self.credentials.put(credential_hash, agent);
        }
        Ok(agent)
    }

    /// Agents, optionally only those of the given units, ordered by unit then host name.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn agents_list(&self, unit_ids: Option<&[i64]>) -> anyhow::Result<Vec<Agent>> {
        let agents = sqlx::query_as::<_, Agent>(
            "SELECT a.id, u.code AS unit_code, u.name AS unit_name, a.unit_id, a.hostname, a.agent_version,
                    a.enrolled_at, a.revoked_at, a.last_seen_at, a.last_seq, a.last_address, a.heartbeat_interval,
                    a.host_snapshot
             FROM agents a JOIN units u ON u.id = a.unit_id
             ORDER BY u.code, a.hostname, a.id",
        )
        .fetch_all(&self.pool)
        .await
        .context("listing agents")?;
        // Scoping in Rust keeps the query the same on both databases; a province has at most a few
        // thousand agents.
        Ok(match unit_ids {
            None => agents,
            Some(ids) => agents
                .into_iter()
                .filter(|agent| ids.contains(&agent.unit_id))
                .collect(),
        })
    }

    /// Every agent, revoked or not, handed to `each` one at a time as the rows arrive, in no
    /// particular order: for readers of the whole fleet (a `/metrics` scrape) that keep a few
    /// figures per agent, where [`Store::agents_list`] would hold every row and its host
    /// snapshot at once (tens of MiB at 20,000 agents, issue 15).
    ///
    /// # Errors
    ///
    /// On a database error; `each` has then seen some agents.
    pub async fn agents_for_each(&self, mut each: impl FnMut(Agent)) -> anyhow::Result<()> {
        use futures_util::TryStreamExt;
        let mut rows = sqlx::query_as::<_, Agent>(
            "SELECT a.id, u.code AS unit_code, u.name AS unit_name, a.unit_id, a.hostname, a.agent_version,
                    a.enrolled_at, a.revoked_at, a.last_seen_at, a.last_seq, a.last_address, a.heartbeat_interval,
                    a.host_snapshot
             FROM agents a JOIN units u ON u.id = a.unit_id",
        )
        .fetch(&self.pool);
        while let Some(agent) = rows.try_next().await.context("listing agents")? {
            each(agent);
        }
        Ok(())
    }

    /// One agent by id, revoked or not.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn agent(&self, id: &str) -> anyhow::Result<Option<Agent>> {
        let agent = sqlx::query_as::<_, Agent>(
            "SELECT a.id, u.code AS unit_code, u.name AS unit_name, a.unit_id, a.hostname, a.agent_version,
                    a.enrolled_at, a.revoked_at, a.last_seen_at, a.last_seq, a.last_address, a.heartbeat_interval,
                    a.host_snapshot
             FROM agents a JOIN units u ON u.id = a.unit_id
             WHERE a.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .with_context(|| format!("reading agent {id}"))?;
        Ok(agent)
    }

    /// Revokes an agent's credential; returns whether it existed and was not yet revoked.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn agent_revoke(&self, id: &str, now: OffsetDateTime) -> anyhow::Result<bool> {
        let res =
            sqlx::query("UPDATE agents SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(millis(now))
                .bind(id)
                .execute(&self.pool)
                .await
                .context("revoking agent")?;
        self.credentials.forget(id);
        Ok(res.rows_affected() == 1)
    }
}
