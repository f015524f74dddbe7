//! Test harness: real databases, a real collector over TLS on a free port, real agents.
//!
//! Every helper starts the real thing: [`sqlite_db`] makes a file in a temporary folder,
//! [`postgres_db`] creates a fresh database on the PostgreSQL server that `scripts/test` keeps
//! running (a missing server is a failure that says how to start it, never a silent skip), and
//! [`spawn_collector`] runs `cntt_collector::build` with a freshly made CA on a free loopback port
//! below the ephemeral range, so a paused collector finds its port again.
//! Notification tests get a real SMTP server ([`mail::SmtpServer`], Python's aiosmtpd as a child
//! process) and a real HTTP receiver ([`webhook::WebhookReceiver`]); Zalo and SMS tests a local
//! bot API speaking the Zalo Bot Platform's shapes ([`zalo::ZaloBot`]) and a local SMS gateway
//! ([`sms::SmsGateway`]).

pub mod browser;
pub mod console;
pub mod mail;
pub mod prometheus;
pub mod sms;
pub mod targets;
pub mod webhook;
pub mod zalo;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use cntt_agent::config::Config as AgentConfig;
use cntt_collector::config::Config;
use cntt_collector::domain::auth::Role;
use cntt_collector::store::Store;
use sqlx::any::AnyConnectOptions;
use sqlx::{ConnectOptions, Connection, Executor};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Where tests find PostgreSQL unless `CNTT_TEST_POSTGRES_URL` says otherwise.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The database engines the suites run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    /// A SQLite file.
    Sqlite,
    /// A fresh database on the test PostgreSQL server.
    Postgres,
}

/// A database made for one test; a PostgreSQL one is dropped by [`TestDb::drop_database`].
#[derive(Debug)]
pub struct TestDb {
    /// URL to give the collector.
    pub url: String,
    postgres: Option<(String, String)>,
    _dir: Option<TempDir>,
}

/// A fresh database of the given engine.
pub async fn test_db(db: Db) -> TestDb {
    match db {
        Db::Sqlite => sqlite_db(),
        Db::Postgres => postgres_db().await,
    }
}

/// A fresh SQLite file in a temporary folder.
pub fn sqlite_db() -> TestDb {
    let dir = tempfile::tempdir().expect("temporary folder");
    let url = format!("sqlite://{}", dir.path().join("collector.db").display());
    TestDb {
        url,
        postgres: None,
        _dir: Some(dir),
    }
}

/// A fresh, empty database on the test PostgreSQL server.
///
/// # Panics
///
/// When the server cannot be reached, with the way to start it.
pub async fn postgres_db() -> TestDb {
    sqlx::any::install_default_drivers();
    let admin_url =
        std::env::var("CNTT_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
    let name = format!("cntt_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = connect(&admin_url).await;
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("creating test database");
    conn.close().await.ok();
    let url = match admin_url.rsplit_once('/') {
        Some((base, _db)) => format!("{base}/{name}"),
        None => panic!("CNTT_TEST_POSTGRES_URL {admin_url:?} must end with /DATABASE"),
    };
    TestDb {
        url,
        postgres: Some((admin_url, name)),
        _dir: None,
    }
}

async fn connect(url: &str) -> sqlx::AnyConnection {
    let options = AnyConnectOptions::from_str(url)
        .expect("valid PostgreSQL url")
        .disable_statement_logging();
    match options.connect().await {
        Ok(conn) => conn,
        Err(err) => panic!(
            "PostgreSQL is not reachable at {url}: {err}\n\
             Run the tests with scripts/test, which starts (or installs) PostgreSQL, \
             or set CNTT_TEST_POSTGRES_URL to a server where this user may CREATE DATABASE."
        ),
    }
}

impl TestDb {
    /// Drops a PostgreSQL test database; SQLite files go with their folder.
    pub async fn drop_database(self) {
        if let Some((admin_url, name)) = &self.postgres {
            let mut conn = connect(admin_url).await;
            conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                .await
                .ok();
            conn.close().await.ok();
        }
    }

    /// A store on this database (migrations applied).
    pub async fn store(&self) -> Store {
        let config = cntt_collector::config::DatabaseConfig {
            url: self.url.clone(),
            max_connections: 4,
        };
        Store::connect(&config)
            .await
            .expect("connecting test store")
    }
}

/// A small unit tree for tests: province 67, the Sở TT&TT, two districts and a commune.
pub const TEST_UNITS_CSV: &str =
    "code,name,kind,parent_code,valid_from,valid_to,successor_codes,note
67,Tỉnh Đắk Nông,province,,2004-01-01,,,
67.S.TTTT,Sở Thông tin và Truyền thông,department,67,,,,
663,Huyện Đắk Mil,district,67,,,,
24700,Thị trấn Đắk Mil,commune,663,,,,
664,Huyện Krông Nô,district,67,,,,
";

/// A running collector.
#[derive(Debug)]
pub struct TestCollector {
    /// `https://127.0.0.1:PORT`.
    pub base_url: String,
    /// The CA agents must trust.
    pub ca_pem: PathBuf,
    /// The collector's config file.
    pub config_path: PathBuf,
    /// The collector's database, for direct checks.
    pub store: Store,
    /// Folder of config and certificates.
    pub dir: TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Extra settings for [`spawn_collector_with`].
#[derive(Debug, Clone, Default)]
pub struct CollectorOptions {
    /// `ingest.max_body_bytes`, when not the default.
    pub max_body_bytes: Option<usize>,
    /// More configuration, appended as TOML (e.g. an `[incidents]` table).
    pub extra_config: String,
    /// More keys of the `[listen]` table, as TOML lines (e.g. `scrape_token_file = "…"`).
    pub listen_extra: String,
}

/// Starts a collector on `db` with a fresh CA and the [`TEST_UNITS_CSV`] units.
pub async fn spawn_collector(db: &TestDb) -> TestCollector {
    spawn_collector_with(db, &CollectorOptions::default()).await
}

/// Sends the logs of everything a test runs to the test's output when `CNTT_TEST_LOG` holds a
/// filter (e.g. `CNTT_TEST_LOG=cntt_collector=debug`); silent otherwise.
pub fn init_test_logs() {
    if let Ok(filter) = std::env::var("CNTT_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
}

/// Starts a collector with options.
pub async fn spawn_collector_with(db: &TestDb, options: &CollectorOptions) -> TestCollector {
    init_test_logs();
    let dir = tempfile::tempdir().expect("temporary folder");
    let tls_dir = dir.path().join("tls");
    let hosts = ["localhost".to_owned(), "127.0.0.1".to_owned()];
    let files = cntt_collector::config::tls::init(&tls_dir, &hosts, false)
        .expect("making test certificates");
    let mut ingest = options.max_body_bytes.map_or_else(String::new, |limit| {
        format!("[ingest]\nmax_body_bytes = {limit}\n")
    });
    ingest.push_str(&options.extra_config);
    let config_text = format!(
        "[listen]\naddress = \"127.0.0.1:0\"\n{}\n[database]\nurl = \"{}\"\n[tls]\ncert = \"tls/server.pem\"\nkey = \"tls/server-key.pem\"\n{ingest}",
        options.listen_extra, db.url
    );
    let config_path = dir.path().join("collector.toml");
    std::fs::write(&config_path, config_text).expect("writing test config");
    let mut config = Config::load(&config_path).expect("test config is valid");
    let (server, store) = build_on_a_fixed_port(&mut config).await;
    let units_path = dir.path().join("units.csv");
    std::fs::write(&units_path, TEST_UNITS_CSV).expect("writing units");
    cntt_collector::admin::units_import(&store, &units_path)
        .await
        .expect("importing test units");
    let address = server.local_addr().expect("bound address");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    TestCollector {
        base_url: format!("https://127.0.0.1:{}", address.port()),
        ca_pem: files.ca_cert,
        config_path,
        store,
        dir,
        stop: Some(stop),
        task: Some(task),
    }
}

/// Ports test collectors listen on: below Linux's ephemeral range (32768–60999), from which
/// outgoing connections take their local ports. A collector that [`TestCollector::pause`]s and
/// resumes must find its port free again; with a port of the ephemeral range, another test's
/// outgoing connection could hold it meanwhile ("Address already in use").
const TEST_PORTS: std::ops::Range<u16> = 20_000..32_000;

fn address_in_use(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::AddrInUse)
            || cause.to_string().contains("Address already in use")
    })
}

/// Builds the collector of `config` on a free port of [`TEST_PORTS`], set in `config.listen`.
async fn build_on_a_fixed_port(
    config: &mut Config,
) -> (cntt_collector::http::server::Server, Store) {
    let span = u128::from(TEST_PORTS.end - TEST_PORTS.start);
    for _ in 0..100 {
        let offset = u16::try_from(uuid::Uuid::new_v4().as_u128() % span).expect("below the span");
        config.listen = std::net::SocketAddr::from(([127, 0, 0, 1], TEST_PORTS.start + offset));
        match cntt_collector::build(config).await {
            Ok(built) => return built,
            Err(err) if address_in_use(&err) => continue,
            Err(err) => panic!("starting collector: {err:?}"),
        }
    }
    panic!("no free port for a test collector in {TEST_PORTS:?}");
}

impl TestCollector {
    /// Creates an enrollment token for a unit and returns the secret.
    pub async fn enroll_token(&self, unit: &str, uses: u32, ttl: Duration) -> String {
        let output =
            cntt_collector::admin::enroll_token_create(&self.store, unit, uses, ttl, "test")
                .await
                .expect("creating enrollment token");
        first_line(&output)
    }

    /// Creates an API token and returns the secret.
    pub async fn api_token(&self, role: Role, unit: Option<&str>) -> String {
        let output = cntt_collector::admin::api_token_create(&self.store, role, unit, "test", None)
            .await
            .expect("creating API token");
        first_line(&output)
    }

    /// `/metrics` as the holder of `token` (an admin API token or the scrape token) reads it.
    pub async fn metrics(&self, token: &str) -> String {
        self.client()
            .get(format!("{}/metrics", self.base_url))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("reading /metrics")
    }

    /// An HTTPS client that trusts only this collector's CA.
    pub fn client(&self) -> reqwest::Client {
        cntt_agent::identity::pinned_client(&self.ca_pem, Duration::from_secs(30))
            .expect("pinned client")
    }

    /// Posts `events` as one batch with `agent`'s credential and returns the acknowledgement.
    ///
    /// # Panics
    ///
    /// When the collector does not answer 200 with an acknowledgement.
    pub async fn ingest(
        &self,
        agent: &TestAgent,
        events: Vec<cntt_common::wire::Event>,
    ) -> cntt_common::wire::Ack {
        let batch = cntt_common::wire::Batch {
            version: cntt_common::wire::PROTOCOL_VERSION,
            agent_version: "0.1.0".into(),
            sent_at: time::OffsetDateTime::now_utc(),
            events,
        };
        self.client()
            .post(format!("{}/api/v1/ingest", self.base_url))
            .bearer_auth(agent.identity.credential.expose())
            .json(&batch)
            .send()
            .await
            .expect("collector reachable")
            .error_for_status()
            .expect("batch accepted")
            .json()
            .await
            .expect("acknowledgement is JSON")
    }

    /// Imports more units (CSV text in the import format) beside [`TEST_UNITS_CSV`].
    pub async fn import_units(&self, csv: &str) {
        let path = self.dir.path().join("more-units.csv");
        std::fs::write(&path, csv).expect("writing units");
        cntt_collector::admin::units_import(&self.store, &path)
            .await
            .expect("importing units");
    }

    /// Moves `agent`'s enrollment back to `at`, for tests of reports submitted in a past period:
    /// the collector does not trust a submission time before the agent's enrollment (issue 13,
    /// M1), and a real agent of a past period was enrolled then.
    pub async fn backdate_enrollment(&self, agent: &TestAgent, at: time::OffsetDateTime) {
        sqlx::any::install_default_drivers();
        let config = Config::load(&self.config_path).expect("the test collector's config");
        let mut conn = AnyConnectOptions::from_str(&config.database.url)
            .expect("the test database url")
            .disable_statement_logging()
            .connect()
            .await
            .expect("connecting to the test database");
        let at_ms = i64::try_from(at.unix_timestamp_nanos() / 1_000_000).expect("a time in range");
        sqlx::query("UPDATE agents SET enrolled_at = $1 WHERE id = $2")
            .bind(at_ms)
            .bind(agent.identity.agent_id.to_string())
            .execute(&mut conn)
            .await
            .expect("backdating an enrollment");
        conn.close().await.ok();
    }

    /// Enrolls a new agent of `unit` in a fresh state folder and returns its config.
    pub async fn enroll_agent(&self, unit: &str) -> TestAgent {
        let token = self.enroll_token(unit, 1, Duration::from_secs(3600)).await;
        let state = tempfile::tempdir().expect("temporary folder");
        // Tests touch loopback only: no default targets (the real default gateway is off limits).
        let config_text = format!(
            "state_dir = \"{}\"\n[heartbeat]\ninterval = \"1s\"\n[probes]\ndefaults = false\n",
            state.path().display()
        );
        let config = AgentConfig::parse(&config_text).expect("agent config is valid");
        let identity = cntt_agent::identity::enroll(
            &self.base_url,
            &cntt_common::Secret::new(token),
            &self.ca_pem,
            state.path(),
            false,
        )
        .await
        .expect("enrolling test agent");
        TestAgent {
            config,
            identity,
            state,
        }
    }

    /// Stops serving, as if the collector vanished; [`TestCollector::resume`] brings it back on
    /// the same address with the same database and certificate.
    pub async fn pause(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("collector task did not panic")
                .expect("collector stopped cleanly");
        }
    }

    /// Serves again after [`TestCollector::pause`], on the same port.
    pub async fn resume(&mut self) {
        let mut config = Config::load(&self.config_path).expect("test config is valid");
        let port: u16 = self
            .base_url
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .expect("base url has a port");
        config.listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        // The port is outside the ephemeral range (see TEST_PORTS), so it is free again unless a
        // just-closed socket lingers: retry for a while.
        let mut attempts = 0;
        let (server, _store) = loop {
            match cntt_collector::build(&config).await {
                Ok(built) => break built,
                Err(err) if address_in_use(&err) && attempts < 100 => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(err) => panic!("restarting collector: {err:?}"),
            }
        };
        let (stop, stopped) = oneshot::channel::<()>();
        self.task = Some(tokio::spawn(server.run(async {
            let _ = stopped.await;
        })));
        self.stop = Some(stop);
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("collector task did not panic")
                .expect("collector stopped cleanly");
        }
        self.store.close().await;
    }
}

/// A real agent (`cntt_agent::run`) running in this process, stopped like `SIGTERM` would.
#[derive(Debug)]
pub struct RunningAgent {
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

/// Starts an agent with `config` in this process.
pub fn start_agent(config: AgentConfig) -> RunningAgent {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(cntt_agent::run(config, async {
        let _ = stopped.await;
    }));
    RunningAgent { stop, task }
}

impl RunningAgent {
    /// Asks the agent to stop and waits until it has.
    ///
    /// # Panics
    ///
    /// When the agent panicked or stopped with an error.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task
            .await
            .expect("agent did not panic")
            .expect("agent stopped cleanly");
    }
}

/// A child process killed (`kill -9`) and reaped when dropped, so a failing test leaves no
/// collector or agent running behind it.
#[derive(Debug)]
pub struct ChildGuard(pub std::process::Child);

impl ChildGuard {
    /// Kills it now (`kill -9`) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Where a child process's log goes: nowhere, unless `E2E_CHILD_LOGS` is set (when debugging a
/// test, `E2E_CHILD_LOGS=1 cargo test … -- --nocapture`).
pub fn child_stderr() -> std::process::Stdio {
    if std::env::var_os("E2E_CHILD_LOGS").is_some() {
        std::process::Stdio::inherit()
    } else {
        std::process::Stdio::null()
    }
}

/// Starts `collector-under-test` (a real collector process) on a collector's config file, so it
/// shares its database.
pub fn spawn_collector_process(binary: &str, config: &Path) -> ChildGuard {
    ChildGuard(
        std::process::Command::new(binary)
            .arg(config)
            .stdout(std::process::Stdio::null())
            .stderr(child_stderr())
            .spawn()
            .expect("starting collector-under-test"),
    )
}

/// An enrolled agent's files.
#[derive(Debug)]
pub struct TestAgent {
    /// Its config (heartbeat every second).
    pub config: AgentConfig,
    /// What enrollment saved.
    pub identity: cntt_agent::identity::Identity,
    /// Its state folder.
    pub state: TempDir,
}

fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .expect("command printed the secret first")
        .trim()
        .to_owned()
}

/// A heartbeat event as an agent on a small office PC sends it, announcing `interval_seconds`.
pub fn heartbeat_event(seq: u64, interval_seconds: u32) -> cntt_common::wire::Event {
    let host = cntt_common::wire::HostSnapshot {
        hostname: "pc-van-thu".into(),
        os_name: "Windows".into(),
        os_version: "10".into(),
        kernel_version: String::new(),
        arch: "x86_64".into(),
        uptime_seconds: 1,
        cpu_count: 2,
        cpu_usage_percent: 1.0,
        load_average: None,
        memory_total_bytes: 1 << 30,
        memory_used_bytes: 1 << 29,
        swap_total_bytes: 0,
        swap_used_bytes: 0,
        disks: vec![],
        interfaces: vec![],
    };
    let heartbeat = cntt_common::wire::Heartbeat {
        interval_seconds,
        host,
        outbox: None,
    };
    cntt_common::wire::Event::new(
        seq,
        time::OffsetDateTime::now_utc(),
        &cntt_common::wire::Payload::Heartbeat(heartbeat),
    )
}

/// TLS settings of a client that trusts only the CA in `ca_pem`, for tests that speak raw HTTP
/// over TLS (slow bodies, hostile clients, keep-alive).
pub fn tls_client_config(ca_pem: &Path) -> rustls::ClientConfig {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca_pem).expect("CA file") {
        roots.add(cert.expect("CA certificate")).expect("usable CA");
    }
    rustls::ClientConfig::builder_with_provider(cntt_collector::config::tls::provider())
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// Polls `check` every 100 ms until it returns `Some`, or panics after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads a file of the repository, for tests that use shipped data.
pub fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}
