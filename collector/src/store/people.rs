//! People accounts of the web console and their server-side sessions.
//!
//! Passwords are stored as argon2id hashes (`domain::password`), session secrets as SHA-256
//! hashes; nothing here sees a password or a session secret in clear. Lockout is counted in one
//! `UPDATE` per failure, so two logins racing cannot both slip under the limit.

use anyhow::Context;
use serde::Serialize;
use time::OffsetDateTime;

use super::{millis, Store};

/// A person to create.
#[derive(Debug, Clone)]
pub struct NewPerson {
    /// Login name, already normalised (`domain::password::normalise_username`).
    pub username: String,
    /// Full name, as shown.
    pub full_name: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// `admin`, `officer`, `viewer` or `leadership`.
    pub role: String,
    /// Scope unit; none for the whole province.
    pub unit_id: Option<i64>,
    /// Whether the first login must set a new password.
    pub must_change_password: bool,
    /// Who made the account (`cli:root`).
    pub created_by: String,
}

/// A person as stored.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct StoredPerson {
    /// Id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Full name.
    pub full_name: String,
    /// argon2id PHC string.
    #[serde(skip)]
    pub password_hash: String,
    /// Role.
    pub role: String,
    /// Scope unit id.
    pub unit_id: Option<i64>,
    /// Scope unit code.
    pub unit_code: Option<String>,
    /// 1 until the person sets their own password.
    pub must_change_password: i64,
    /// When the account was disabled, Unix ms.
    pub disabled_at: Option<i64>,
    /// Wrong passwords since the last success or lockout.
    pub failed_logins: i64,
    /// End of the current lockout, Unix ms.
    pub locked_until: Option<i64>,
    /// Last successful login, Unix ms.
    pub last_login_at: Option<i64>,
    /// Creation, Unix ms.
    pub created_at: i64,
    /// Creator.
    pub created_by: String,
}

impl StoredPerson {
    /// Whether a lockout is running at `now`.
    pub fn locked_at(&self, now: OffsetDateTime) -> bool {
        self.locked_until.is_some_and(|until| until > millis(now))
    }
}

/// What a wrong password did to an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginFailure {
    /// Wrong passwords counted so far (0 right after a lockout starts).
    pub failed_logins: i64,
    /// Whether this failure started a lockout.
    pub locked: bool,
    /// The lockout's end, Unix ms, when it started.
    pub locked_until: Option<i64>,
    /// Whether a lockout was already running (nothing was counted).
    pub already_locked: bool,
}

/// A session to create.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// SHA-256 of the cookie's secret.
    pub secret_hash: String,
    /// The form token.
    pub csrf_token: String,
    /// Whose.
    pub person_id: i64,
    /// Absolute end.
    pub expires_at: OffsetDateTime,
    /// Client address at login.
    pub address: Option<String>,
}

/// A session with its person, as the console resolves a cookie.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredSession {
    /// Session id.
    pub id: i64,
    /// The form token.
    pub csrf_token: String,
    /// Creation, Unix ms.
    pub created_at: i64,
    /// Last request, Unix ms.
    pub last_seen_at: i64,
    /// Absolute end, Unix ms.
    pub expires_at: i64,
    /// When it ended, if it did.
    pub ended_at: Option<i64>,
    /// Person id.
    pub person_id: i64,
    /// Login name.
    pub username: String,
    /// Full name.
    pub full_name: String,
    /// Role.
    pub role: String,
    /// Scope unit id.
    pub unit_id: Option<i64>,
    /// 1 until the person sets their own password.
    pub must_change_password: i64,
    /// When the account was disabled.
    pub disabled_at: Option<i64>,
}

/// Days an ended session stays in the table.
pub(super) const SESSION_KEEP_DAYS: i64 = 30;

const PERSON_COLUMNS: &str = "p.id, p.username, p.full_name, p.password_hash, p.role, p.unit_id,
    u.code AS unit_code, p.must_change_password, p.disabled_at, p.failed_logins, p.locked_until,
    p.last_login_at, p.created_at, p.created_by";

impl Store {
    /// Creates a person; returns the id, or `None` when the username is taken.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn person_create(
        &self,
        person: &NewPerson,
        now: OffsetDateTime,
    ) -> anyhow::Result<Option<i64>> {
        let row: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO people (username, full_name, password_hash, role, unit_id, must_change_password,
                                 password_changed_at, created_at, created_by, changed_at, changed_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $7, $8)
             ON CONFLICT (username) DO NOTHING RETURNING id",
        )
        .bind(&person.username)
        .bind(&person.full_name)
        .bind(&person.password_hash)
        .bind(&person.role)
        .bind(person.unit_id)
        .bind(i64::from(person.must_change_password))
        .bind(millis(now))
        .bind(&person.created_by)
        .fetch_optional(&self.pool)
        .await
        .context("storing a person")?;
        Ok(row.map(|(id,)| id))
    }

    /// The person with this username (already normalised), disabled or not.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn person_by_username(&self, username: &str) -> anyhow::Result<Option<StoredPerson>> {
        let sql = format!(
            "SELECT {PERSON_COLUMNS} FROM people p LEFT JOIN units u ON u.id = p.unit_id
             WHERE p.username = $1"
        );
        sqlx::query_as::<_, StoredPerson>(&sql)
            .bind(username)
            .fetch_optional(&self.pool)
            .await
            .context("looking up a person")
    }

    /// The person with this id.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn person_by_id(&self, id: i64) -> anyhow::Result<Option<StoredPerson>> {
        let sql = format!(
            "SELECT {PERSON_COLUMNS} FROM people p LEFT JOIN units u ON u.id = p.unit_id
             WHERE p.id = $1"
        );
        sqlx::query_as::<_, StoredPerson>(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .context("reading a person")
    }

    /// Every person, by username.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn people_list(&self) -> anyhow::Result<Vec<StoredPerson>> {
        let sql = format!(
            "SELECT {PERSON_COLUMNS} FROM people p LEFT JOIN units u ON u.id = p.unit_id
             ORDER BY p.username"
        );
        sqlx::query_as::<_, StoredPerson>(&sql)
            .fetch_all(&self.pool)
            .await
            .context("listing people")
    }

    /// Counts a wrong password; the `max_failures`-th in a row locks the account until
    /// `now + lockout` and starts the count again. A failure while a lockout runs (a guess racing
    /// the one that locked) counts nothing and says so (`already_locked`), so parallel guesses
    /// neither slip past the limit nor extend the lockout.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn person_login_failed(
        &self,
        id: i64,
        now: OffsetDateTime,
        max_failures: u32,
        lockout: std::time::Duration,
    ) -> anyhow::Result<LoginFailure> {
        let until = now + lockout;
        let row: Option<(i64, Option<i64>)> = sqlx::query_as(
            "UPDATE people SET
                 locked_until = CASE WHEN failed_logins + 1 >= $2 THEN $3 ELSE locked_until END,
                 failed_logins = CASE WHEN failed_logins + 1 >= $2 THEN 0 ELSE failed_logins + 1 END
             WHERE id = $1 AND (locked_until IS NULL OR locked_until <= $4)
             RETURNING failed_logins, locked_until",
        )
        .bind(id)
        .bind(i64::from(max_failures))
        .bind(millis(until))
        .bind(millis(now))
        .fetch_optional(&self.pool)
        .await
        .context("counting a failed login")?;
        let Some((failed_logins, locked_until)) = row else {
            return Ok(LoginFailure {
                failed_logins: 0,
                locked: false,
                locked_until: None,
                already_locked: true,
            });
        };
        let locked = locked_until == Some(millis(until));
        Ok(LoginFailure {
            failed_logins,
            locked,
            locked_until: locked.then_some(millis(until)),
            already_locked: false,
        })
    }

    /// Records a successful login: the failure count and any finished lockout are cleared.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn person_login_ok(&self, id: i64, now: OffsetDateTime) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE people SET failed_logins = 0, locked_until = NULL, last_login_at = $2 WHERE id = $1",
        )
        .bind(id)
        .bind(millis(now))
        .execute(&self.pool)
        .await
        .context("recording a login")?;
        Ok(())
    }

    /// Sets a new password hash, and whether the next login must change it; clears failures and
    /// lockout. Ends every session of the person except `keep` (the one that changed it), with
    /// the reason `password`.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn person_set_password(
        &self,
        id: i64,
        password_hash: &str,
        must_change: bool,
        keep: Option<i64>,
        by: &str,
        now: OffsetDateTime,
    ) -> anyhow::Result<()> {
        let mut tx = self.begin_write().await.context("starting a transaction")?;
        sqlx::query(
            "UPDATE people SET password_hash = $2, must_change_password = $3, failed_logins = 0,
                 locked_until = NULL, password_changed_at = $4, changed_at = $4, changed_by = $5
             WHERE id = $1",
        )
        .bind(id)
        .bind(password_hash)
        .bind(i64::from(must_change))
        .bind(millis(now))
        .bind(by)
        .execute(&mut *tx)
        .await
        .context("setting a password")?;
        sqlx::query(
            "UPDATE sessions SET ended_at = $2, end_reason = 'password'
             WHERE person_id = $1 AND ended_at IS NULL AND id <> $3",
        )
        .bind(id)
        .bind(millis(now))
        .bind(keep.unwrap_or(-1))
        .execute(&mut *tx)
        .await
        .context("ending sessions after a password change")?;
        tx.commit().await.context("committing a password change")?;
        Ok(())
    }

    /// Disables an account and ends its sessions; returns whether it was active.
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn person_disable(
        &self,
        id: i64,
        by: &str,
        now: OffsetDateTime,
    ) -> anyhow::Result<bool> {
        let mut tx = self.begin_write().await.context("starting a transaction")?;
        let res = sqlx::query(
            "UPDATE people SET disabled_at = $2, changed_at = $2, changed_by = $3
             WHERE id = $1 AND disabled_at IS NULL",
        )
        .bind(id)
        .bind(millis(now))
        .bind(by)
        .execute(&mut *tx)
        .await
        .context("disabling a person")?;
        sqlx::query(
            "UPDATE sessions SET ended_at = $2, end_reason = 'disabled'
             WHERE person_id = $1 AND ended_at IS NULL",
        )
        .bind(id)
        .bind(millis(now))
        .execute(&mut *tx)
        .await
        .context("ending a disabled person's sessions")?;
        tx.commit().await.context("committing a disable")?;
        Ok(res.rows_affected() == 1)
    }

    /// Stores a new session and returns its id; forgets the person's sessions that ended (or
    /// expired) more than [`SESSION_KEEP_DAYS`] days ago, so the table holds about one month of
    /// logins per person (the audit log keeps every login for its own retention).
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn session_create(
        &self,
        session: &NewSession,
        now: OffsetDateTime,
    ) -> anyhow::Result<i64> {
        let cutoff = millis(now - time::Duration::days(SESSION_KEEP_DAYS));
        sqlx::query(
            "DELETE FROM sessions WHERE person_id = $1 AND (ended_at < $2 OR expires_at < $2)",
        )
        .bind(session.person_id)
        .bind(cutoff)
        .execute(&self.pool)
        .await
        .context("forgetting old sessions")?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO sessions (secret_hash, csrf_token, person_id, created_at, last_seen_at, expires_at, address)
             VALUES ($1, $2, $3, $4, $4, $5, $6) RETURNING id",
        )
        .bind(&session.secret_hash)
        .bind(&session.csrf_token)
        .bind(session.person_id)
        .bind(millis(now))
        .bind(millis(session.expires_at))
        .bind(&session.address)
        .fetch_one(&self.pool)
        .await
        .context("storing a session")?;
        Ok(id)
    }

    /// The session whose secret has this hash, with its person; ended or not (the caller
    /// decides).
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn session_by_hash(
        &self,
        secret_hash: &str,
    ) -> anyhow::Result<Option<StoredSession>> {
        sqlx::query_as::<_, StoredSession>(
            "SELECT s.id, s.csrf_token, s.created_at, s.last_seen_at, s.expires_at, s.ended_at,
                    p.id AS person_id, p.username, p.full_name, p.role, p.unit_id,
                    p.must_change_password, p.disabled_at
             FROM sessions s JOIN people p ON p.id = s.person_id WHERE s.secret_hash = $1",
        )
        .bind(secret_hash)
        .fetch_optional(&self.pool)
        .await
        .context("looking up a session")
    }

    /// Records a request of a live session (the idle timeout counts from here).
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn session_touch(&self, id: i64, now: OffsetDateTime) -> anyhow::Result<()> {
        sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id = $1 AND ended_at IS NULL")
            .bind(id)
            .bind(millis(now))
            .execute(&self.pool)
            .await
            .context("touching a session")?;
        Ok(())
    }

    /// Ends a session with a reason (`logout`, `idle`, `absolute`, `disabled`); returns whether it
    /// was still live (so an expiry seen by two requests at once is audited once).
    ///
    /// # Errors
    ///
    /// On a database error.
    pub async fn session_end(
        &self,
        id: i64,
        reason: &str,
        now: OffsetDateTime,
    ) -> anyhow::Result<bool> {
        let res = sqlx::query(
            "UPDATE sessions SET ended_at = $2, end_reason = $3 WHERE id = $1 AND ended_at IS NULL",
        )
        .bind(id)
        .bind(millis(now))
        .bind(reason)
        .execute(&self.pool)
        .await
        .context("ending a session")?;
        Ok(res.rows_affected() == 1)
    }
}
