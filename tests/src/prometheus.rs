//! A real Prometheus server (Debian's `prometheus` package, which `scripts/test` installs) scraping
//! a test collector over HTTPS with the collector's CA and a scrape token, on a free loopback port
//! with its own temporary data folder; and `promtool`, to check what the collector exposes.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::ChildGuard;

/// How a missing Prometheus is reported: never a silent skip.
const MISSING: &str = "is not installed: run the tests with scripts/test, which installs Debian's \
     `prometheus` package (it ships promtool), or `apt-get install prometheus`";

/// A running Prometheus, killed when dropped.
#[derive(Debug)]
pub struct Prometheus {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    _child: ChildGuard,
    /// Config, data folder and log.
    pub dir: TempDir,
}

/// A free port on 127.0.0.1 (bound, then released for the child to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

impl Prometheus {
    /// Starts Prometheus scraping `target` (`127.0.0.1:PORT`) at `/metrics` every second over
    /// HTTPS, trusting `ca_pem` and sending the token in `token_file`.
    ///
    /// # Panics
    ///
    /// When `prometheus` is missing (saying how to install it) or does not become ready.
    pub async fn start(target: &str, ca_pem: &Path, token_file: &Path) -> Prometheus {
        let dir = tempfile::tempdir().expect("temporary folder");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: cntt-collector\n    scheme: https\n    metrics_path: /metrics\n\
             \x20   tls_config:\n      ca_file: {}\n      server_name: localhost\n\
             \x20   authorization:\n      type: Bearer\n      credentials_file: {}\n\
             \x20   static_configs:\n      - targets: ['{target}']\n",
            ca_pem.display(),
            token_file.display()
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("writing prometheus.yml");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|err| panic!("prometheus {MISSING} ({err})"));
        let prometheus = Prometheus {
            base_url: format!("http://127.0.0.1:{port}"),
            _child: ChildGuard(child),
            dir,
        };
        let client = reqwest::Client::new();
        let ready = format!("{}/-/ready", prometheus.base_url);
        crate::eventually(Duration::from_secs(30), "Prometheus to be ready", || {
            let client = client.clone();
            let ready = ready.clone();
            async move {
                let response = client.get(&ready).send().await.ok()?;
                response.status().is_success().then_some(())
            }
        })
        .await;
        prometheus
    }

    /// Evaluates `query` now through the HTTP API and returns the `data` object.
    ///
    /// # Errors
    ///
    /// When Prometheus refuses the query (it does not parse, or fails); the message is its error.
    pub async fn query(&self, query: &str) -> Result<serde_json::Value, String> {
        let response = reqwest::Client::new()
            .get(format!("{}/api/v1/query", self.base_url))
            .query(&[("query", query)])
            .send()
            .await
            .map_err(|err| format!("Prometheus unreachable: {err}"))?;
        let body: serde_json::Value = response
            .json()
            .await
            .map_err(|err| format!("answer is not JSON: {err}"))?;
        if body["status"] != "success" {
            return Err(format!("{}: {}", body["errorType"], body["error"]));
        }
        Ok(body["data"].clone())
    }

    /// The log Prometheus wrote so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }
}

/// Whether a query answer holds data: a non-empty vector or matrix, or a scalar.
pub fn has_data(data: &serde_json::Value) -> bool {
    match data["resultType"].as_str() {
        Some("vector" | "matrix") => data["result"].as_array().is_some_and(|r| !r.is_empty()),
        Some("scalar" | "string") => true,
        _ => false,
    }
}

/// Runs `promtool` with `args`, feeding `stdin`; returns whether it succeeded and what it printed.
///
/// # Panics
///
/// When promtool is missing, saying how to install it.
pub fn promtool(args: &[&str], stdin: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("promtool {MISSING} ({err})"));
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin.as_bytes())
        .expect("writing to promtool");
    let output = child.wait_with_output().expect("promtool ran");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}
