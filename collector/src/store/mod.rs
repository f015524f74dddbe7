//! Storage: every query and migration of the collector lives here.
//!
//! One [`Store`] serves both databases through `sqlx::Any`: SQLite by default (one file in WAL mode)
//! and PostgreSQL at scale. The queries are written once in the dialect both understand (`$1`
//! placeholders, `ON CONFLICT`, `RETURNING`); only the DDL differs, so each backend has its own
//! migration folder (`migrations/sqlite`, `migrations/postgres`) kept in step by hand.
//!
//! Conventions: times are Unix milliseconds in UTC (`i64`), dates are ISO `YYYY-MM-DD` text, ids of
//! agents and events are UUID text. Handlers never write SQL; they call the methods of [`Store`],
//! grouped by table in the sibling files.

mod ack_links;
mod agents;
mod audit;
mod committer;
mod events;
mod incident_reports;
mod incidents;
mod inference;
mod maintenance;
mod metrics;
mod notices;
mod people;
mod probe_results;
mod report_drafts;
mod reports;
mod retention;
mod tokens;
mod units;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use time::OffsetDateTime;

pub use ack_links::LinkedNotice;
pub use agents::{Agent, AgentAuth, NewAgent};
pub use audit::{
    chain_hash, AuditEntry, AuditFilter, AuditQuery, AuditSink, AuditTap, BreakKind, ChainBreak,
    ChainReport, NewAuditEntry, GENESIS_HASH,
};
pub use committer::{
    Committer, GROUP_ROWS, GZIP_EXPANSION, LARGE_BODIES, LARGE_BODY_BYTES, LIVE_ROWS,
};
pub use events::{
    BatchPayloads, BatchWrite, FlaggedEvent, HeartbeatUpdate, IngestBatch, IngestCounts, NewEvent,
    StoredEvent,
};
pub use incident_reports::IssuedReport;
pub use incidents::{
    Action, ActionRefusal, IncidentCount, IncidentFilter, ManualIncident, NewIncidentPhase,
    StoredIncident, TimelineEntry, INCIDENT_KINDS, INCIDENT_STATES,
};
pub use inference::{Evaluation, EvaluationRules};
pub use maintenance::{NewWindow, StoredWindow};
pub use metrics::OpenIncidents;
pub use notices::{
    AckLinks, ContactChange, ContactRecord, ContactSettings, Notice, PlanSettings, SentNotice,
    StoredContact, StoredRule,
};
pub use people::{LoginFailure, NewPerson, NewSession, StoredPerson, StoredSession};
pub use probe_results::{NewProbeResult, ProbeResultFilter, StoredProbeResult};
pub use report_drafts::ReportDraft;
pub use reports::{NewPeriodicReport, StoredOfficer, StoredReport, WindowIncident};
pub use retention::{
    ProbeRollup, RetentionPolicy, RetentionSummary, DEFAULT_BATCH_ROWS, RAW_EVENT_KINDS,
};
pub use tokens::{ApiToken, EnrollRefusal, EnrollToken, NewApiToken, NewEnrollToken};
pub use units::{Ended, ImportSummary, Unit, UnitRecord};

use crate::config::DatabaseConfig;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Which database engine a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// Handle to the database; cheap to clone (it is a pool).
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    /// On SQLite, the one connection [`Store::begin_write`] writes through, with a larger page
    /// cache than the readers' (the ends of the indexes ingest appends to stay in memory); on
    /// PostgreSQL, the same pool as `pool`.
    write_pool: AnyPool,
    backend: Backend,
    /// The queue of this process's write transactions on SQLite: [`Store::begin_write`] holds it
    /// from `BEGIN` to commit or rollback. Unused on PostgreSQL.
    write_gate: Arc<tokio::sync::Mutex<()>>,
    /// Told of every audit entry once committed (the syslog forwarder), when set.
    audit_tap: Option<AuditTap>,
    /// Agents recently authenticated (see `agents.rs`).
    credentials: Arc<agents::CredentialCache>,
}

/// A transaction that writes: derefs to the connection; commit with [`WriteTx::commit`], or drop
/// to roll back. On SQLite it holds this process's place in the write queue until then.
pub(crate) struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _gate: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTx {
    /// Commits, then leaves the queue.
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::AnyConnection;

    fn deref(&self) -> &sqlx::AnyConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }
}

/// The SQLite page cache of the connection that writes, in KiB: ingest's working set (issue 15:
/// at 2 MiB it stored 18 % fewer events a second than at 16). A cache only grows as far as used.
const WRITER_CACHE_KIB: u32 = 16 * 1024;

/// The SQLite page cache of each reading connection, in KiB. Readers scan (a `/metrics` scrape
/// reads every agent); at the writer's size, eight of them held 128 MiB between them in the fleet
/// run (issue 15), against a budget of 150 MiB for the whole collector.
const READER_CACHE_KIB: u32 = 2 * 1024;

/// A pool's options: its size, and on SQLite the pragmas every connection gets.
fn pool_options(backend: Backend, max_connections: u32, cache_kib: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    // WAL lets readers run beside the one writer; NORMAL sync is durable across
                    // process crashes and loses at most the last commits on power loss.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    conn.execute(&*format!("PRAGMA cache_size = -{cache_kib}"))
                        .await?;
                    // Ingest inserts under a savepoint (`events.rs`, `insert_sqlite`): its
                    // statement journal outgrows 64 KiB on every group and would spill to a
                    // temporary file, a write() per page; in memory it costs a few MiB at most
                    // and ingest runs about 5 % faster (`scripts/ingestbench`, 2026-12-07).
                    conn.execute("PRAGMA temp_store = MEMORY").await?;
                }
                Ok(())
            })
        })
}

impl Store {
    /// Connects, creating the SQLite file and its folder when missing, and applies pending
    /// migrations.
    ///
    /// # Errors
    ///
    /// When the database cannot be reached or opened, or a migration fails.
    pub async fn connect(config: &DatabaseConfig) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if config.url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let url = match backend {
            Backend::Sqlite => sqlite_url(&config.url)?,
            Backend::Postgres => config.url.clone(),
        };
        let options = AnyConnectOptions::from_str(&url)
            .with_context(|| format!("parsing database url {}", redact_url(&config.url)))?;
        let pool = pool_options(backend, config.max_connections, READER_CACHE_KIB)
            .connect_with(options.clone())
            .await
            .with_context(|| format!("connecting to database {}", redact_url(&config.url)))?;
        let write_pool = match backend {
            // This process's SQLite writes queue on `write_gate` anyway: one connection serves
            // them all, and only it needs the writer's cache.
            Backend::Sqlite => pool_options(backend, 1, WRITER_CACHE_KIB)
                .connect_with(options)
                .await
                .with_context(|| format!("connecting to database {}", redact_url(&config.url)))?,
            Backend::Postgres => pool.clone(),
        };
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator
            .run(&pool)
            .await
            .context("applying database migrations")?;
        Ok(Store {
            pool,
            write_pool,
            backend,
            write_gate: Arc::default(),
            audit_tap: None,
            credentials: Arc::default(),
        })
    }

    /// Starts a transaction that will write. On SQLite, this process's writers first queue here,
    /// in order, instead of all polling SQLite's one write lock side by side: under load that
    /// polling starved some uploads for seconds, long enough to make a reporting agent look
    /// silent. PostgreSQL locks rows and needs no queue.
    ///
    /// On SQLite the transaction also takes the database's write lock at once, before its first
    /// read, as `BEGIN IMMEDIATE` would: a transaction that reads first and writes later fails
    /// with `SQLITE_BUSY_SNAPSHOT` ("database is locked", code 517) if a write outside the queue
    /// (a notice claim, an audit entry) commits in between, and SQLite cannot wait that one out.
    /// Closing an incident while the notifier claimed notices failed that way (issue 12).
    pub(crate) async fn begin_write(&self) -> Result<WriteTx, sqlx::Error> {
        let gate = match self.backend {
            Backend::Sqlite => Some(self.write_gate.clone().lock_owned().await),
            Backend::Postgres => None,
        };
        let mut tx = self.write_pool.begin().await?;
        if self.backend == Backend::Sqlite {
            // A write that changes nothing still takes the write lock, waiting (busy_timeout)
            // for another process's writer if there is one.
            sqlx::query("UPDATE job_locks SET at = at WHERE 0 = 1")
                .execute(&mut *tx)
                .await?;
        }
        Ok(WriteTx { tx, _gate: gate })
    }

    /// Which engine this store uses.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks that the database answers.
    ///
    /// # Errors
    ///
    /// When it does not.
    pub async fn ping(&self) -> anyhow::Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .context("pinging database")?;
        Ok(())
    }

    /// Closes every connection; used at shutdown so SQLite checkpoints its WAL. First gives the
    /// audit tap (the syslog forwarder) up to 3 s to hand on what it holds.
    pub async fn close(&self) {
        if let Some(tap) = &self.audit_tap {
            if !tap.flush(Duration::from_secs(3)).await {
                tracing::warn!("audit entries not yet forwarded to syslog at shutdown are lost");
            }
        }
        self.pool.close().await;
    }
}

/// Adds `mode=rwc` so SQLite creates the file, and creates its folder.
fn sqlite_url(url: &str) -> anyhow::Result<String> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        anyhow::bail!("database.url {url:?} must name a file, e.g. sqlite:///var/lib/cntt-collector/collector.db");
    }
    if let Some(parent) = Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        if !parent.exists() {
            // The folder and the file are owner-only (issue 13, L4): SQLite gives its -wal and
            // -shm files the mode of the database file.
            std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
                .recursive(true)
                .create(parent)
                .with_context(|| format!("creating database folder {}", parent.display()))?;
        }
    }
    if !Path::new(path).exists() {
        std::os::unix::fs::OpenOptionsExt::mode(
            std::fs::OpenOptions::new().write(true).create(true),
            0o600,
        )
        .open(path)
        .with_context(|| format!("creating database file {path}"))?;
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    Ok(if url.contains("mode=") {
        url.to_owned()
    } else {
        format!("{url}{separator}mode=rwc")
    })
}

/// Hides the password of a database URL for logs and errors.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _password)) => {
                    format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..])
                }
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// ` AND column IN ($first, $first+1, …)` for `n` bound values, or a condition that is never true
/// when `n` is 0 (an empty scope sees nothing). Callers bind the values after the others.
fn in_list(column: &str, first: usize, n: usize) -> String {
    if n == 0 {
        return " AND 1 = 0".to_owned();
    }
    let placeholders: Vec<String> = (first..first + n).map(|i| format!("${i}")).collect();
    format!(" AND {column} IN ({})", placeholders.join(", "))
}

/// Unix milliseconds of a time.
pub fn millis(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000)
        .expect("times we store fit in i64 milliseconds")
}

/// The time of Unix milliseconds read back from the database.
pub fn from_millis(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .expect("i64 milliseconds are always a valid time")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact_url("postgres://cntt:s3cret@db:5432/cntt"),
            "postgres://cntt:***@db:5432/cntt"
        );
        assert_eq!(
            redact_url("postgres://cntt@db/cntt"),
            "postgres://cntt@db/cntt"
        );
        assert_eq!(
            redact_url("sqlite:///var/lib/x.db"),
            "sqlite:///var/lib/x.db"
        );
    }

    #[test]
    fn in_lists_number_their_placeholders() {
        assert_eq!(in_list("u.id", 3, 2), " AND u.id IN ($3, $4)");
        assert_eq!(in_list("u.id", 3, 0), " AND 1 = 0");
    }

    #[test]
    fn sqlite_urls_get_create_mode() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/sub/c.db", dir.path().display());
        assert_eq!(sqlite_url(&url).unwrap(), format!("{url}?mode=rwc"));
        assert!(dir.path().join("sub").is_dir());
        let mode = |path: &Path| {
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path).unwrap().permissions())
                & 0o777
        };
        assert_eq!(mode(&dir.path().join("sub")), 0o700, "issue 13, L4");
        assert_eq!(mode(&dir.path().join("sub/c.db")), 0o600, "issue 13, L4");
        assert!(sqlite_url("sqlite::memory:").is_err());
    }

    /// The bundled SQLite is built as `.cargo/config.toml` says (`LIBSQLITE3_FLAGS`): without the
    /// global locks on every allocation and page fetch that a profile of ingest found.
    #[tokio::test]
    async fn sqlite_is_built_without_its_global_locks() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&DatabaseConfig {
            url: format!("sqlite://{}/c.db", dir.path().display()),
            ..DatabaseConfig::default()
        })
        .await
        .unwrap();
        let options: Vec<String> = sqlx::query_scalar("PRAGMA compile_options")
            .fetch_all(&store.pool)
            .await
            .unwrap();
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "{options:?}"
        );
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "{options:?}"
        );
    }
}
