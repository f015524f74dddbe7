//! The agent's configuration file: where it keeps its state and how often it reports.
//!
//! [`AgentConfig`] is what we deserialize from TOML (unknown keys are errors naming the key);
//! [`Config`] is the checked value. Every key and default is written out in `agent.example.toml`,
//! which a test keeps in step with this file. The collector's address and the agent's identity are
//! not here: enrollment saves them in the state folder.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

use cntt_common::wire::{CheckKind, TargetKind};

use crate::outbox::OutboxConfig;
use crate::probe::{Check, HttpCheck, Target};

/// The configuration file as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Folder of the credential, the pinned CA and the outbox.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// Heartbeats.
    #[serde(default)]
    pub heartbeat: HeartbeatConfig,
    /// Uploads.
    #[serde(default)]
    pub uplink: UplinkConfig,
    /// Local buffer.
    #[serde(default)]
    pub outbox: OutboxSection,
    /// Defaults of every probe and the incident thresholds.
    #[serde(default)]
    pub probes: ProbesConfig,
    /// Host health thresholds.
    #[serde(default)]
    pub host: HostConfig,
    /// Targets to probe; `[[target]]` tables.
    #[serde(default, rename = "target")]
    pub targets: Vec<TargetConfig>,
}

/// Defaults for all targets, and when a target counts as down or up.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbesConfig {
    /// Interval between checks of a target.
    #[serde(default = "default_probe_interval", with = "duration_text")]
    pub interval: Duration,
    /// Timeout of one check.
    #[serde(default = "default_probe_timeout", with = "duration_text")]
    pub timeout: Duration,
    /// Failed checks in a row before a target is down.
    #[serde(default = "default_down_after")]
    pub down_after: u32,
    /// Good checks in a row before a down target is up again.
    #[serde(default = "default_up_after")]
    pub up_after: u32,
    /// Probe the default gateway, the collector and the system resolver when no target is listed.
    #[serde(default = "default_true")]
    pub defaults: bool,
}

impl Default for ProbesConfig {
    fn default() -> ProbesConfig {
        ProbesConfig {
            interval: default_probe_interval(),
            timeout: default_probe_timeout(),
            down_after: default_down_after(),
            up_after: default_up_after(),
            defaults: true,
        }
    }
}

fn default_probe_interval() -> Duration {
    Duration::from_secs(30)
}

fn default_probe_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_down_after() -> u32 {
    3
}

fn default_up_after() -> u32 {
    2
}

fn default_true() -> bool {
    true
}

/// When the host itself is in trouble.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// A disk this full (percent used) opens a host incident.
    #[serde(default = "default_disk_full_percent")]
    pub disk_full_percent: f64,
    /// Memory this used (percent) opens a host incident.
    #[serde(default = "default_memory_full_percent")]
    pub memory_full_percent: f64,
}

impl Default for HostConfig {
    fn default() -> HostConfig {
        HostConfig {
            disk_full_percent: default_disk_full_percent(),
            memory_full_percent: default_memory_full_percent(),
        }
    }
}

fn default_disk_full_percent() -> f64 {
    90.0
}

fn default_memory_full_percent() -> f64 {
    95.0
}

/// One target as written in `[[target]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Unique name, e.g. `gateway` or `cong-thong-tin`.
    pub name: String,
    /// `lan`, `wan`, `internet` or `server`.
    pub kind: TargetKind,
    /// `icmp`, `tcp`, `http` or `dns`.
    pub check: CheckKind,
    /// icmp: host; tcp: host:port; http: URL; dns: server `ip[:port]` or `system`.
    pub address: String,
    /// Overrides `probes.interval`.
    #[serde(default, with = "duration_text_option")]
    pub interval: Option<Duration>,
    /// Overrides `probes.timeout`.
    #[serde(default, with = "duration_text_option")]
    pub timeout: Option<Duration>,
    /// http: accepted status codes; any 200–399 when empty.
    #[serde(default)]
    pub expect_status: Vec<u16>,
    /// http: text the body must contain.
    #[serde(default)]
    pub body_contains: Option<String>,
    /// http: check the server's certificate.
    #[serde(default = "default_true")]
    pub tls_verify: bool,
    /// dns: the name to resolve.
    #[serde(default)]
    pub query: Option<String>,
    /// lan: this is the agency's gateway; when it is down, every other failure is its consequence.
    #[serde(default)]
    pub gateway: bool,
    /// Code of the information system this target checks, in the collector's register
    /// (`cntt-collector systems list`): incident reports then name the system, not the target.
    #[serde(default)]
    pub system: Option<String>,
}

/// How often the agent says it is alive.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatConfig {
    /// Interval between heartbeats, e.g. `60s`.
    #[serde(default = "default_heartbeat_interval", with = "duration_text")]
    pub interval: Duration,
}

impl Default for HeartbeatConfig {
    fn default() -> HeartbeatConfig {
        HeartbeatConfig {
            interval: default_heartbeat_interval(),
        }
    }
}

fn default_heartbeat_interval() -> Duration {
    Duration::from_secs(60)
}

/// How the agent uploads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UplinkConfig {
    /// Collector URL; overrides the one saved at enrollment (e.g. after the collector moved).
    #[serde(default)]
    pub url: Option<String>,
    /// Most events per request.
    #[serde(default = "default_batch_max_events")]
    pub batch_max_events: usize,
    /// Longest wait between retries while the collector is unreachable.
    #[serde(default = "default_max_backoff", with = "duration_text")]
    pub max_backoff: Duration,
    /// Timeout of one request.
    #[serde(default = "default_request_timeout", with = "duration_text")]
    pub request_timeout: Duration,
    /// How long to gather events after the first one before sending, so a burst travels as one
    /// request.
    #[serde(default = "default_linger", with = "duration_text")]
    pub linger: Duration,
    /// How often the periodic-report context (periods, due dates, prefilled figures) is fetched
    /// and kept on disk, so `cntt-agent report draft` works while the collector is unreachable.
    #[serde(default = "default_report_context_every", with = "duration_text")]
    pub report_context_every: Duration,
}

impl Default for UplinkConfig {
    fn default() -> UplinkConfig {
        UplinkConfig {
            url: None,
            batch_max_events: default_batch_max_events(),
            max_backoff: default_max_backoff(),
            request_timeout: default_request_timeout(),
            linger: default_linger(),
            report_context_every: default_report_context_every(),
        }
    }
}

fn default_batch_max_events() -> usize {
    500
}

fn default_max_backoff() -> Duration {
    Duration::from_secs(300)
}

fn default_report_context_every() -> Duration {
    Duration::from_secs(3600)
}

fn default_linger() -> Duration {
    Duration::from_millis(500)
}

fn default_request_timeout() -> Duration {
    Duration::from_secs(30)
}

/// Bounds of the local buffer that keeps events while the collector is unreachable.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxSection {
    /// Most bytes on disk before routine samples are thinned.
    #[serde(default = "default_outbox_max_bytes")]
    pub max_bytes: u64,
    /// Routine samples older than this are dropped.
    #[serde(default = "default_outbox_max_age", with = "duration_text")]
    pub max_age: Duration,
}

impl Default for OutboxSection {
    fn default() -> OutboxSection {
        OutboxSection {
            max_bytes: default_outbox_max_bytes(),
            max_age: default_outbox_max_age(),
        }
    }
}

fn default_outbox_max_bytes() -> u64 {
    OutboxConfig::default().max_bytes
}

fn default_outbox_max_age() -> Duration {
    OutboxConfig::default().max_age
}

/// The checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// State folder.
    pub state_dir: PathBuf,
    /// Heartbeat interval.
    pub heartbeat_interval: Duration,
    /// Upload settings.
    pub uplink: UplinkConfig,
    /// Outbox bounds.
    pub outbox: OutboxConfig,
    /// Probe defaults and thresholds.
    pub probes: ProbesConfig,
    /// Host thresholds.
    pub host: HostConfig,
    /// Targets as configured (checked); empty means "use the defaults" when `probes.defaults`.
    pub targets: Vec<Target>,
}

impl Config {
    /// Reads and checks a config file. A missing file is an error unless `missing_ok`, in which
    /// case the defaults apply (so `cntt-agent enroll` works before any config exists).
    ///
    /// # Errors
    ///
    /// When the file cannot be read, is not TOML, has an unknown key, or a value out of range.
    pub fn load(path: &Path, missing_ok: bool) -> anyhow::Result<Config> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && missing_ok => String::new(),
            Err(err) => {
                return Err(err).with_context(|| format!("reading config file {}", path.display()))
            }
        };
        Config::parse(&text).with_context(|| format!("in config file {}", path.display()))
    }

    /// Parses config text.
    ///
    /// # Errors
    ///
    /// As [`Config::load`].
    pub fn parse(text: &str) -> anyhow::Result<Config> {
        let raw: AgentConfig = toml::from_str(text).map_err(|err| anyhow::anyhow!("{err}"))?;
        // Intervals below a second only make sense in tests that compress time.
        if raw.heartbeat.interval < Duration::from_millis(10) {
            bail!("heartbeat.interval must be at least 10ms");
        }
        if raw.probes.down_after == 0 || raw.probes.up_after == 0 {
            bail!("probes.down_after and probes.up_after must be at least 1");
        }
        if raw.probes.interval < Duration::from_millis(1)
            || raw.probes.timeout < Duration::from_millis(1)
        {
            bail!("probes.interval and probes.timeout must be at least 1ms");
        }
        for (name, value) in [
            ("disk_full_percent", raw.host.disk_full_percent),
            ("memory_full_percent", raw.host.memory_full_percent),
        ] {
            if !(1.0..=100.0).contains(&value) {
                bail!("host.{name} must be between 1 and 100");
            }
        }
        let mut seen = std::collections::HashSet::new();
        let mut targets = Vec::with_capacity(raw.targets.len());
        for target in &raw.targets {
            if !seen.insert(target.name.as_str()) {
                bail!(
                    "two targets are named {:?}; names must be unique",
                    target.name
                );
            }
            targets.push(
                target_from(target, &raw.probes)
                    .with_context(|| format!("in [[target]] {:?}", target.name))?,
            );
        }
        if !(1..=cntt_common::wire::MAX_EVENTS_PER_BATCH).contains(&raw.uplink.batch_max_events) {
            bail!(
                "uplink.batch_max_events must be between 1 and {}",
                cntt_common::wire::MAX_EVENTS_PER_BATCH
            );
        }
        if let Some(url) = &raw.uplink.url {
            if !url.starts_with("https://") {
                bail!("uplink.url {url:?} must start with https://: the agent talks to the collector over TLS only");
            }
        }
        if raw.outbox.max_bytes < 1 << 20 {
            bail!("outbox.max_bytes must be at least 1048576 (1 MiB)");
        }
        let outbox = OutboxConfig {
            max_bytes: raw.outbox.max_bytes,
            max_age: raw.outbox.max_age,
            ..OutboxConfig::default()
        };
        Ok(Config {
            state_dir: raw
                .state_dir
                .unwrap_or_else(crate::platform::default_state_dir),
            heartbeat_interval: raw.heartbeat.interval,
            uplink: raw.uplink,
            outbox,
            probes: raw.probes,
            host: raw.host,
            targets,
        })
    }
}

/// Checks one `[[target]]` and turns it into a probe target.
fn target_from(target: &TargetConfig, probes: &ProbesConfig) -> anyhow::Result<Target> {
    if target.name.trim().is_empty() || target.name.len() > 64 {
        bail!("name must be 1 to 64 characters");
    }
    let address = target.address.trim().to_owned();
    if address.is_empty() {
        bail!("address is empty");
    }
    let http_only =
        !target.expect_status.is_empty() || target.body_contains.is_some() || !target.tls_verify;
    if http_only && target.check != CheckKind::Http {
        bail!("expect_status, body_contains and tls_verify apply to check = \"http\" only");
    }
    if target.gateway && target.kind != TargetKind::Lan {
        bail!("gateway = true applies to kind = \"lan\" only");
    }
    if target.query.is_some() && target.check != CheckKind::Dns {
        bail!("query applies to check = \"dns\" only");
    }
    let check = match target.check {
        CheckKind::Icmp => Check::Icmp { host: address },
        CheckKind::Tcp => {
            let port_ok = address.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && port.parse::<u16>().is_ok_and(|port| port > 0)
            });
            if !port_ok {
                bail!("address {address:?} must be host:port for a tcp check");
            }
            Check::Tcp { address }
        }
        CheckKind::Http => {
            if !(address.starts_with("http://") || address.starts_with("https://")) {
                bail!("address {address:?} must be a URL starting with http:// or https://");
            }
            Check::Http(HttpCheck {
                url: address,
                expect_status: target.expect_status.clone(),
                body_contains: target.body_contains.clone(),
                tls_verify: target.tls_verify,
            })
        }
        CheckKind::Dns => {
            let Some(query) = target
                .query
                .clone()
                .filter(|query| !query.trim().is_empty())
            else {
                bail!("a dns check needs query = \"name to resolve\"");
            };
            let server = (address != "system").then_some(address);
            Check::Dns { server, query }
        }
    };
    let interval = target.interval.unwrap_or(probes.interval);
    let timeout = target.timeout.unwrap_or(probes.timeout);
    if interval < Duration::from_millis(1) || timeout < Duration::from_millis(1) {
        bail!("interval and timeout must be at least 1ms");
    }
    Ok(Target {
        name: target.name.clone(),
        kind: target.kind,
        check,
        interval,
        timeout,
        gateway: target.gateway,
        system: target
            .system
            .clone()
            .filter(|system| !system.trim().is_empty()),
    })
}

/// Optional durations written as text.
mod duration_text_option {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text).map(Some).map_err(|err| {
            serde::de::Error::custom(format!(
                "{text:?} is not a duration like 90s, 5m or 7d: {err}"
            ))
        })
    }
}

/// Durations written as text: `90s`, `5m`, `2h`, `7d`.
mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text).map_err(|err| {
            serde::de::Error::custom(format!(
                "{text:?} is not a duration like 90s, 5m or 7d: {err}"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_error(text: &str, expected: &str) {
        let err = format!("{:#}", Config::parse(text).unwrap_err());
        assert!(
            err.contains(expected),
            "error {err:?} should contain {expected:?}"
        );
    }

    #[test]
    fn example_file_is_the_defaults() {
        let example = Config::parse(include_str!("../agent.example.toml")).unwrap();
        let empty = Config::parse("").unwrap();
        assert_eq!(
            format!("{example:?}"),
            format!("{empty:?}"),
            "agent.example.toml must show the defaults"
        );
    }

    #[test]
    fn bad_files_name_the_problem() {
        check_error("colour = 'red'", "unknown field `colour`");
        check_error("[heartbeat]\ninterval = 'often'", "not a duration");
        check_error("[heartbeat]\ninterval = '1ms'", "at least 10ms");
        check_error("[probes]\ndown_after = 0", "at least 1");
        check_error(
            "[[target]]\nname = 'a'\nkind = 'lan'\ncheck = 'tcp'\naddress = '10.0.0.1'",
            "must be host:port",
        );
        check_error(
            "[[target]]\nname = 'a'\nkind = 'lan'\ncheck = 'ping'\naddress = 'x'",
            "unknown variant `ping`",
        );
        check_error(
            "[[target]]\nname = 'a'\nkind = 'lan'\ncheck = 'dns'\naddress = 'system'",
            "needs query",
        );
        check_error("[[target]]\nname = 'a'\nkind = 'lan'\ncheck = 'icmp'\naddress = 'x'\nbody_contains = 'y'", "apply to check = \"http\" only");
        check_error(
            "[[target]]\nname = 'a'\nkind = 'lan'\ncheck = 'icmp'\naddress = 'x'\n[[target]]\nname = 'a'\nkind = 'wan'\ncheck = 'icmp'\naddress = 'y'",
            "two targets are named \"a\"",
        );
        check_error("[uplink]\nurl = 'http://x'", "must start with https://");
        check_error("[uplink]\nbatch_max_events = 5000", "between 1 and 1000");
    }

    #[test]
    fn targets_take_probe_defaults_and_their_own_settings() {
        let config = Config::parse(
            "[probes]\ninterval = '10s'\n\
             [[target]]\nname = 'gateway'\nkind = 'lan'\ncheck = 'icmp'\naddress = '192.168.1.1'\n\
             [[target]]\nname = 'portal'\nkind = 'server'\ncheck = 'http'\naddress = 'https://daknong.gov.vn'\ninterval = '1m'\nexpect_status = [200]\n\
             [[target]]\nname = 'dns'\nkind = 'lan'\ncheck = 'dns'\naddress = 'system'\nquery = 'daknong.gov.vn'\n",
        )
        .unwrap();
        assert_eq!(config.targets.len(), 3);
        assert_eq!(config.targets[0].interval, Duration::from_secs(10));
        assert_eq!(config.targets[0].timeout, Duration::from_secs(5));
        assert_eq!(config.targets[1].interval, Duration::from_secs(60));
        assert_eq!(
            config.targets[2].check,
            Check::Dns {
                server: None,
                query: "daknong.gov.vn".into()
            }
        );
    }

    #[test]
    fn missing_file_is_fine_only_when_allowed() {
        let path = Path::new("/nonexistent/agent.toml");
        assert!(Config::load(path, true).is_ok());
        assert!(format!("{:#}", Config::load(path, false).unwrap_err())
            .contains("/nonexistent/agent.toml"));
    }
}
