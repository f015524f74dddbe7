//! The status board: what the running agent knows about itself, written to `status.json` in the
//! state folder so `cntt-agent status` (another process) can show it.
//!
//! The board must stay true on a full disk (issue 13, L2), when the usual atomic replacement
//! (write `status.json.tmp`, rename it) cannot get a block. So the file is kept padded with
//! spaces (valid JSON whitespace) to more than twice its content, and when the replacement
//! fails, the board is written over the existing file in place, which needs no new block. A
//! reader may then catch a write half done; [`Board::load`] reads again when the text does not
//! parse. The board also carries the running outbox's own counters, which are true even while
//! the outbox's state file cannot be written.

use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use cntt_common::wire::{Incident, ProbeResult};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::outbox::Stats;

/// File name of the board in the state folder.
pub const STATUS_FILE: &str = "status.json";

/// The smallest size `status.json` is padded to.
const MIN_FILE_BYTES: usize = 8 << 10;

/// The outbox's counters as the running agent has them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxStatus {
    /// Records waiting for upload.
    pub records: u64,
    /// Of which critical.
    pub critical_records: u64,
    /// Bytes of segment files.
    pub bytes: u64,
    /// Routine records dropped to stay within budget, over the outbox's lifetime.
    pub dropped_routine_total: u64,
    /// Records lost before delivery, over the outbox's lifetime.
    pub lost_total: u64,
    /// Records found damaged on disk since the agent started.
    pub unreadable_total: u64,
    /// Whether the outbox's state file is up to date (false while an acknowledgement cannot be
    /// saved).
    pub state_saved: bool,
}

impl From<&Stats> for OutboxStatus {
    fn from(stats: &Stats) -> OutboxStatus {
        OutboxStatus {
            records: stats.records,
            critical_records: stats.critical_records,
            bytes: stats.bytes,
            dropped_routine_total: stats.dropped_routine_total,
            lost_total: stats.lost_total,
            unreadable_total: stats.unreadable_total,
            state_saved: stats.state_saved,
        }
    }
}

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
    /// When the running agent last wrote the board.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
    /// The outbox's counters as the running agent has them.
    #[serde(default)]
    pub outbox: Option<OutboxStatus>,
    /// The last failure to write to the state folder (the outbox or this board), while it lasts.
    #[serde(default)]
    pub disk_error: Option<String>,
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

    /// Writes the board: atomically, or, when that fails (a full disk), over the existing file
    /// in place; see the module docs.
    ///
    /// # Errors
    ///
    /// When neither way works; the error names both failures.
    pub fn save(&self, state_dir: &Path) -> anyhow::Result<()> {
        let path = state_dir.join(STATUS_FILE);
        let tmp = state_dir.join("status.json.tmp");
        let mut bytes = serde_json::to_vec_pretty(self).context("encoding status")?;
        let json_len = bytes.len();
        bytes.resize((json_len * 2).max(MIN_FILE_BYTES), b' ');
        let replaced = std::fs::write(&tmp, &bytes)
            .with_context(|| format!("writing {}", tmp.display()))
            .and_then(|()| {
                std::fs::rename(&tmp, &path)
                    .with_context(|| format!("replacing {}", path.display()))
            });
        let Err(replace_err) = replaced else {
            return Ok(());
        };
        // On a full disk the temporary file would stay behind, empty or cut short.
        let _ = std::fs::remove_file(&tmp);
        bytes.truncate(json_len);
        overwrite_in_place(&path, &mut bytes)
            .with_context(|| format!("{replace_err:#}; writing over {} in place", path.display()))
    }

    /// Reads the board, or an empty one when the agent never ran.
    ///
    /// # Errors
    ///
    /// When the file exists but cannot be read, or does not parse even when read again (a write
    /// in place may be caught half done).
    pub fn load(state_dir: &Path) -> anyhow::Result<Board> {
        let path = state_dir.join(STATUS_FILE);
        let mut n_tries = 0;
        loop {
            n_tries += 1;
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    return Ok(Board::default())
                }
                Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
            };
            match serde_json::from_slice(&bytes) {
                Ok(board) => return Ok(board),
                Err(_) if n_tries < 5 => std::thread::sleep(Duration::from_millis(50)),
                Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
            }
        }
    }
}

/// Writes `bytes`, padded with spaces to the file's length, over the file at `path` without
/// truncating or growing it.
fn overwrite_in_place(path: &Path, bytes: &mut Vec<u8>) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .context("opening")?;
    let len = file.metadata().context("reading its size")?.len();
    let len = usize::try_from(len).context("file too large")?;
    anyhow::ensure!(
        bytes.len() <= len,
        "the board needs {} bytes and the file has {len}",
        bytes.len()
    );
    bytes.resize(len, b' ');
    file.seek(SeekFrom::Start(0)).context("seeking")?;
    file.write_all(bytes).context("writing")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// When the atomic replacement fails (here a folder stands where the temporary file goes;
    /// on a full disk it is the lack of a block), the board is written over the padded file in
    /// place and reads back whole (issue 13, L2).
    #[test]
    fn board_is_written_in_place_when_it_cannot_be_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let mut board = Board {
            last_upload_error: Some("first".into()),
            ..Board::default()
        };
        board.save(dir.path()).unwrap();
        let len = std::fs::metadata(dir.path().join(STATUS_FILE))
            .unwrap()
            .len();
        assert!(len >= MIN_FILE_BYTES as u64, "padded: {len}");
        std::fs::create_dir(dir.path().join("status.json.tmp")).unwrap();
        board.last_upload_error = Some("second, longer than the first".into());
        board.outbox = Some(OutboxStatus {
            lost_total: 42,
            ..OutboxStatus::default()
        });
        board.save(dir.path()).expect("written in place");
        assert_eq!(Board::load(dir.path()).unwrap(), board);
        let after = std::fs::metadata(dir.path().join(STATUS_FILE))
            .unwrap()
            .len();
        assert_eq!(after, len, "the file neither grew nor shrank");

        board.last_upload_error = Some("x".repeat(MIN_FILE_BYTES));
        let err = board.save(dir.path()).unwrap_err();
        assert!(format!("{err:#}").contains("in place"), "{err:#}");
    }
}
