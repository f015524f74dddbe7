//! Enrollment tokens (for agents) and API tokens (for people). Only SHA-256 hashes are stored.

use anyhow::Context;
use serde::Serialize;
use time::OffsetDateTime;

use super::{millis, Store};

/// An enrollment token to create.
#[derive(Debug, Clone)]
pub struct NewEnrollToken {
    /// SHA-256 of the token.
    pub token_hash: String,
    /// The unit agents enrolled with it belong to.
    pub unit_id: i64,
    /// How many enrollments it allows.
    pub uses_allowed: i64,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
    /// Who made it.
    pub created_by: String,
    /// Free text.
    pub note: String,
}

/// An enrollment token as listed.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct EnrollToken {
    /// Id, for revocation.
    pub id: i64,
    /// Unit code.
    pub unit_code: String,
    /// Allowed uses.
    pub uses_allowed: i64,
    /// Uses so far.
    pub uses: i64,
    /// Expiry, Unix ms.
    pub expires_at: i64,
    /// Creation, Unix ms.
    pub created_at: i64,
    /// Creator.
    pub created_by: String,
    /// Revocation, Unix ms.
    pub revoked_at: Option<i64>,
    /// Free text.
    pub note: String,
}

/// Why an enrollment token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnrollRefusal {
    /// No such token.
    #[error("the enrollment token is not known")]
    Unknown,
    /// Revoked by an administrator.
    #[error("the enrollment token was revoked")]
    Revoked,
    /// Past its expiry.
    #[error("the enrollment token has expired")]
    Expired,
    /// All its uses are spent.
    #[error("the enrollment token has been used up")]
    UsedUp,
}

/// An API token to create.
#[derive(Debug, Clone)]
pub struct NewApiToken {
    /// SHA-256 of the token.
    pub token_hash: String,
    /// A name to recognise it by, e.g. the person's name.
    pub name: String,
    /// `admin`, `officer` or `viewer`.
    pub role: String,
    /// Scope: the unit (and its children) the token may see; none for the whole province.
    pub unit_id: Option<i64>,
    /// Expiry.
    pub expires_at: Option<OffsetDateTime>,
    /// Who made it.
    pub created_by: String,
}

/// An API token as stored.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ApiToken {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Scope unit id.
    #[serde(skip)]
    pub unit_id: Option<i64>,
    /// Scope unit code.
    pub unit_code: Option<String>,
    /// Creation, Unix ms.
    pub created_at: i64,
    /// Creator.
    pub created_by: String,
    /// Expiry, Unix ms.
    pub expires_at: Option<i64>,
    /// Revocation, Unix ms.
    pub revoked_at: Option<i64>,
    /// Last successful use, Unix ms.
    pub last_used_at: Option<i64>,
}

impl Store {
    /// Stores a new enrollment token and returns its id.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn enroll_token_create(
        &self,
        token: &NewEnrollToken,
        now: OffsetDateTime,
    ) -> anyhow::Result<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO enroll_tokens (token_hash, unit_id, uses_allowed, expires_at, created_at, created_by, note)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(&token.token_hash)
        .bind(token.unit_id)
        .bind(token.uses_allowed)
        .bind(millis(token.expires_at))
        .bind(millis(now))
        .bind(&token.created_by)
        .bind(&token.note)
        .fetch_one(&self.pool)
        .await
        .context("storing enrollment token")?;
        Ok(id)
    }

    /// Every enrollment token, newest first.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn enroll_tokens_list(&self) -> anyhow::Result<Vec<EnrollToken>> {
        let tokens = sqlx::query_as::<_, EnrollToken>(
            "SELECT t.id, u.code AS unit_code, t.uses_allowed, t.uses, t.expires_at, t.created_at, t.created_by,
                    t.revoked_at, t.note
             FROM enroll_tokens t JOIN units u ON u.id = t.unit_id ORDER BY t.id DESC",
        )
        .fetch_all(&self.pool)
        .await
        .context("listing enrollment tokens")?;
        Ok(tokens)
    }

    /// Revokes an enrollment token; returns whether it existed and was not yet revoked.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn enroll_token_revoke(&self, id: i64, now: OffsetDateTime) -> anyhow::Result<bool> {
        let res = sqlx::query(
            "UPDATE enroll_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(millis(now))
        .bind(id)
        .execute(&self.pool)
        .await
        .context("revoking enrollment token")?;
        Ok(res.rows_affected() == 1)
    }

    /// Stores a new API token and returns its id.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn api_token_create(
        &self,
        token: &NewApiToken,
        now: OffsetDateTime,
    ) -> anyhow::Result<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO api_tokens (token_hash, name, role, unit_id, created_at, created_by, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(&token.token_hash)
        .bind(&token.name)
        .bind(&token.role)
        .bind(token.unit_id)
        .bind(millis(now))
        .bind(&token.created_by)
        .bind(token.expires_at.map(millis))
        .fetch_one(&self.pool)
        .await
        .context("storing API token")?;
        Ok(id)
    }

    /// The API token with this hash, revoked or not (the caller decides and audits).
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn api_token_by_hash(&self, token_hash: &str) -> anyhow::Result<Option<ApiToken>> {
        let token = sqlx::query_as::<_, ApiToken>(
            "SELECT t.id, t.name, t.role, t.unit_id, u.code AS unit_code, t.created_at, t.created_by, t.expires_at,
                    t.revoked_at, t.last_used_at
             FROM api_tokens t LEFT JOIN units u ON u.id = t.unit_id WHERE t.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .context("looking up API token")?;
        Ok(token)
    }

    /// Records a successful use of an API token, at most once a minute per token to spare writes.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn api_token_touch(&self, id: i64, now: OffsetDateTime) -> anyhow::Result<()> {
        let now = millis(now);
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)")
            .bind(now)
            .bind(id)
            .bind(now - 60_000)
            .execute(&self.pool)
            .await
            .context("recording API token use")?;
        Ok(())
    }

    /// Every API token, newest first.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn api_tokens_list(&self) -> anyhow::Result<Vec<ApiToken>> {
        let tokens = sqlx::query_as::<_, ApiToken>(
            "SELECT t.id, t.name, t.role, t.unit_id, u.code AS unit_code, t.created_at, t.created_by, t.expires_at,
                    t.revoked_at, t.last_used_at
             FROM api_tokens t LEFT JOIN units u ON u.id = t.unit_id ORDER BY t.id DESC",
        )
        .fetch_all(&self.pool)
        .await
        .context("listing API tokens")?;
        Ok(tokens)
    }

    /// Revokes an API token; returns whether it existed and was not yet revoked.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn api_token_revoke(&self, id: i64, now: OffsetDateTime) -> anyhow::Result<bool> {
        let res = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(millis(now))
        .bind(id)
        .execute(&self.pool)
        .await
        .context("revoking API token")?;
        Ok(res.rows_affected() == 1)
    }
}
