//! The outbox state file: the counters that must outlive the segments holding records.
//!
//! Segments are deleted once delivered, so the next sequence number, the acknowledgement cursor
//! and the counts of dropped and lost records live in a small file of their own, replaced atomically
//! (write a temporary file, fsync it, rename it over the old one, fsync the directory). The byte
//! layout is in the design note of the parent module.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use super::record::SEQ_LIMIT;
use super::sync_dir;
use super::OutboxError;

/// File name of the state file inside the outbox directory.
pub(super) const STATE_FILE: &str = "state";

/// File name the next state is written to before it is renamed over [`STATE_FILE`].
pub(super) const STATE_TMP_FILE: &str = "state.tmp";

/// Magic of the state file written since the lost-record count (issue 13, L2).
const STATE_MAGIC: [u8; 8] = *b"CNTTOST2";
const STATE_LEN: usize = 44;
/// Magic of the first version, without the lost-record count; still read.
const STATE_MAGIC_V1: [u8; 8] = *b"CNTTOST1";
const STATE_LEN_V1: usize = 36;

/// The durable counters of an outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct State {
    /// No record has been or will be written with a seq below this.
    pub(super) next_seq: u64,
    /// Every record with a seq up to this one has been delivered; 0 when none has.
    pub(super) acked_through: u64,
    /// Routine records dropped to stay within budget, over the outbox's lifetime.
    pub(super) dropped_routine_total: u64,
    /// Records that could not be written (a full disk, a failed write) or whose segment file
    /// vanished before delivery, over the outbox's lifetime.
    pub(super) lost_total: u64,
}

impl Default for State {
    fn default() -> State {
        State {
            next_seq: 1,
            acked_through: 0,
            dropped_routine_total: 0,
            lost_total: 0,
        }
    }
}

/// What was found on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Loaded {
    /// A valid state file.
    Found(State),
    /// No state file.
    Missing,
    /// A file that is not a valid state file.
    Corrupt,
}

/// The bytes of the state file holding `state`.
pub(super) fn encode(state: &State) -> [u8; STATE_LEN] {
    let mut bytes = [0; STATE_LEN];
    bytes[0..8].copy_from_slice(&STATE_MAGIC);
    bytes[8..16].copy_from_slice(&state.next_seq.to_le_bytes());
    bytes[16..24].copy_from_slice(&state.acked_through.to_le_bytes());
    bytes[24..32].copy_from_slice(&state.dropped_routine_total.to_le_bytes());
    bytes[32..40].copy_from_slice(&state.lost_total.to_le_bytes());
    let crc = crc32fast::hash(&bytes[..40]);
    bytes[40..44].copy_from_slice(&crc.to_le_bytes());
    bytes
}

/// Decodes a state file of either version, or `None` when it is not one.
pub(super) fn decode(bytes: &[u8]) -> Option<State> {
    let crc_at = match (bytes.len(), bytes.get(0..8)) {
        (STATE_LEN, Some(magic)) if magic == STATE_MAGIC => 40,
        (STATE_LEN_V1, Some(magic)) if magic == STATE_MAGIC_V1 => 32,
        _ => return None,
    };
    let field = |at: usize| {
        let mut word = [0; 8];
        word.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(word)
    };
    let mut crc = [0; 4];
    crc.copy_from_slice(&bytes[crc_at..crc_at + 4]);
    if crc32fast::hash(&bytes[..crc_at]) != u32::from_le_bytes(crc) {
        return None;
    }
    let state = State {
        next_seq: field(8),
        acked_through: field(16),
        dropped_routine_total: field(24),
        lost_total: if crc_at == 40 { field(32) } else { 0 },
    };
    let consistent =
        (1..SEQ_LIMIT).contains(&state.next_seq) && state.acked_through < state.next_seq;
    consistent.then_some(state)
}

/// Reads the state file of the outbox in `dir`.
///
/// # Errors
///
/// When the file exists but cannot be read.
pub(super) fn load(dir: &Path) -> Result<Loaded, OutboxError> {
    let path = dir.join(STATE_FILE);
    match fs::read(&path) {
        Ok(bytes) => Ok(decode(&bytes).map_or(Loaded::Corrupt, Loaded::Found)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Loaded::Missing),
        Err(source) => Err(OutboxError::io("reading outbox state", &path, source)),
    }
}

/// Durably replaces the state file of the outbox in `dir`.
///
/// # Errors
///
/// When any step fails; the previous state file is then still in place, and the temporary file
/// is removed (on a full disk it would stay behind empty).
pub(super) fn store(dir: &Path, state: &State) -> Result<(), OutboxError> {
    let tmp = dir.join(STATE_TMP_FILE);
    let write = |path: &Path| -> io::Result<()> {
        let mut file = File::create(path)?;
        file.write_all(&encode(state))?;
        file.sync_all()
    };
    if let Err(source) = write(&tmp) {
        // Best effort: a leftover temporary file is also deleted by the next open.
        let _ = fs::remove_file(&tmp);
        return Err(OutboxError::io("writing outbox state", &tmp, source));
    }
    let path = dir.join(STATE_FILE);
    fs::rename(&tmp, &path)
        .map_err(|source| OutboxError::io("replacing outbox state", &path, source))?;
    sync_dir(dir)
}
