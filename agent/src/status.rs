//! The status board: what the running agent knows about itself, written to `status.json` in the
//! state folder so `cntt-agent status` (another process) can show it.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use cntt_common::wire::{Incident, ProbeResult};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// File name of the board in the state folder.
pub const STATUS_FILE: &str = "status.json";

/// The last check of one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetStatus {
    /// The check's result.
    pub result: ProbeResult,
    /// When it ran.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// What the running agent knows about itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Board {
    /// When the agent started.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    /// When the collector last confirmed a batch.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_delivery_at: Option<OffsetDateTime>,
    /// The last upload failure, while uploads fail.
    #[serde(default)]
    pub last_upload_error: Option<String>,
    /// Incidents detected and still open.
    #[serde(default)]
    pub open_incidents: Vec<Incident>,
    /// Host incidents still open.
    #[serde(default)]
    pub host_incidents: Vec<Incident>,
    /// The last check of each target.
    #[serde(default)]
    pub targets: BTreeMap<String, TargetStatus>,
}

impl Board {
    /// Records a check.
    pub fn record_check(&mut self, result: &ProbeResult, at: OffsetDateTime) {
        self.targets.insert(
            result.target.clone(),
            TargetStatus {
                result: result.clone(),
                at,
            },
        );
    }

    /// Replaces the open detected incidents.
    pub fn set_detected(&mut self, incidents: Vec<Incident>) {
        self.open_incidents = incidents;
    }

    /// Writes the board atomically.
    ///
    /// # Errors
    ///
    /// When the file cannot be written.
    pub fn save(&self, state_dir: &Path) -> anyhow::Result<()> {
        let path = state_dir.join(STATUS_FILE);
        let tmp = state_dir.join("status.json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(self).context("encoding status")?,
        )
        .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("replacing {}", path.display()))?;
        Ok(())
    }

    /// Reads the board, or an empty one when the agent never ran.
    ///
    /// # Errors
    ///
    /// When the file exists but cannot be read.
    pub fn load(state_dir: &Path) -> anyhow::Result<Board> {
        let path = state_dir.join(STATUS_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("reading {}", path.display())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Board::default()),
            Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
        }
    }
}
