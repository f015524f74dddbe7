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

use crate::outbox::OutboxConfig;

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
}

impl Default for UplinkConfig {
    fn default() -> UplinkConfig {
        UplinkConfig {
            url: None,
            batch_max_events: default_batch_max_events(),
            max_backoff: default_max_backoff(),
            request_timeout: default_request_timeout(),
        }
    }
}

fn default_batch_max_events() -> usize {
    500
}

fn default_max_backoff() -> Duration {
    Duration::from_secs(300)
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
}

/// Default state folder.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/cntt-agent";

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
        if raw.heartbeat.interval < Duration::from_secs(1) {
            bail!("heartbeat.interval must be at least 1s");
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
                .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR)),
            heartbeat_interval: raw.heartbeat.interval,
            uplink: raw.uplink,
            outbox,
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
        check_error("[heartbeat]\ninterval = '10ms'", "at least 1s");
        check_error("[uplink]\nurl = 'http://x'", "must start with https://");
        check_error("[uplink]\nbatch_max_events = 5000", "between 1 and 1000");
    }

    #[test]
    fn missing_file_is_fine_only_when_allowed() {
        let path = Path::new("/nonexistent/agent.toml");
        assert!(Config::load(path, true).is_ok());
        assert!(format!("{:#}", Config::load(path, false).unwrap_err())
            .contains("/nonexistent/agent.toml"));
    }
}
