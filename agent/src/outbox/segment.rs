//! One segment file of the outbox and the in-memory index of its unacknowledged records.
//!
//! The parent module decides when to create, thin, salvage or delete segments; this module does
//! the file work for one of them and keeps its counters consistent with its index.

use std::cell::Cell;
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::quarantine;
use super::record::{FRAME_HEADER_LEN, SEGMENT_HEADER_LEN, SEGMENT_MAGIC};
use super::{sync_dir, Class, OutboxError};

/// What the index keeps of a record: where it is, not what it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Entry {
    pub(super) seq: u64,
    pub(super) written_at_ms: i64,
    /// Offset of the frame in the segment file; segments stay far below 4 GiB.
    pub(super) offset: u32,
    pub(super) payload_len: u32,
    pub(super) class: Class,
}

impl Entry {
    /// Length of the frame on disk.
    pub(super) fn frame_len(&self) -> u64 {
        FRAME_HEADER_LEN as u64 + u64::from(self.payload_len)
    }
}

/// One segment file and its unacknowledged records, oldest first.
#[derive(Debug)]
pub(super) struct Segment {
    /// The seq of the first record the segment was created for; also its file name.
    pub(super) id: u64,
    pub(super) path: PathBuf,
    /// Length of the file: its header and every whole frame, acknowledged ones included.
    pub(super) size: u64,
    entries: VecDeque<Entry>,
    /// Total frame length of `entries`.
    live_bytes: u64,
    n_routine: u64,
    /// An upper bound of the write time of routine entries.
    newest_routine_ms: i64,
    /// A read found a record in this file damaged after it was indexed, so the file is set aside
    /// rather than deleted once it is no longer needed. A `Cell` because reads take `&self`.
    pub(super) tainted: Cell<bool>,
}

impl Segment {
    /// An index for an existing file of `size` bytes, with no entries yet.
    pub(super) fn new(dir: &Path, id: u64, size: u64) -> Segment {
        Segment {
            id,
            path: dir.join(file_name(id)),
            size,
            entries: VecDeque::new(),
            live_bytes: 0,
            n_routine: 0,
            newest_routine_ms: i64::MIN,
            tainted: Cell::new(false),
        }
    }

    /// Unacknowledged records, oldest first.
    pub(super) fn entries(&self) -> &VecDeque<Entry> {
        &self.entries
    }

    /// Indexes a record at the end of the file; the caller keeps `size` up to date.
    pub(super) fn push(&mut self, entry: Entry) {
        self.live_bytes += entry.frame_len();
        if entry.class == Class::Routine {
            self.n_routine += 1;
            self.newest_routine_ms = self.newest_routine_ms.max(entry.written_at_ms);
        }
        self.entries.push_back(entry);
    }

    /// Forgets the records with a seq up to `through`; returns them.
    pub(super) fn pop_through(&mut self, through: u64) -> Vec<Entry> {
        let mut popped = Vec::new();
        while let Some(entry) = self.entries.front().copied() {
            if entry.seq > through {
                break;
            }
            self.entries.pop_front();
            self.live_bytes -= entry.frame_len();
            if entry.class == Class::Routine {
                self.n_routine -= 1;
            }
            popped.push(entry);
        }
        popped
    }

    /// Replaces the whole index, after the file was rewritten.
    pub(super) fn reset(&mut self, entries: impl IntoIterator<Item = Entry>, size: u64) {
        self.entries.clear();
        self.live_bytes = 0;
        self.n_routine = 0;
        self.newest_routine_ms = i64::MIN;
        self.size = size;
        for entry in entries {
            self.push(entry);
        }
    }

    /// Number of unacknowledged routine records.
    pub(super) fn n_routine(&self) -> u64 {
        self.n_routine
    }

    /// Whether the file holds bytes no longer needed: acknowledged records.
    pub(super) fn has_dead_space(&self) -> bool {
        self.size > SEGMENT_HEADER_LEN + self.live_bytes
    }

    /// Whether every unacknowledged routine record was written before `cutoff_ms`.
    pub(super) fn routine_expired(&self, cutoff_ms: i64) -> bool {
        self.n_routine > 0 && self.newest_routine_ms < cutoff_ms
    }

    /// Deletes the file, or sets it aside when it is tainted; returns the set-aside path.
    /// A file already gone counts as deleted.
    ///
    /// # Errors
    ///
    /// When the file cannot be removed or moved.
    pub(super) fn remove_file(&self, dir: &Path) -> Result<Option<PathBuf>, OutboxError> {
        if self.tainted.get() && self.path.exists() {
            return quarantine::move_aside(dir, &self.path).map(Some);
        }
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(None),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(OutboxError::io("deleting segment", &self.path, source)),
        }
    }
}

/// File name of the segment with `id`.
pub(super) fn file_name(id: u64) -> String {
    format!("{id:020}.seg")
}

/// The id of a segment file name, or `None` if `name` is not one.
pub(super) fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    let is_id = digits.len() == 20 && digits.bytes().all(|byte| byte.is_ascii_digit());
    if !is_id {
        return None;
    }
    digits.parse().ok()
}

/// Creates the file of a new, empty segment and returns it with a handle to append to.
///
/// # Errors
///
/// When the file cannot be created, written or synced.
pub(super) fn create(dir: &Path, id: u64) -> Result<(Segment, File), OutboxError> {
    let segment = Segment::new(dir, id, SEGMENT_HEADER_LEN);
    let create = || -> io::Result<File> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&segment.path)?;
        file.write_all(&SEGMENT_MAGIC)?;
        file.sync_all()?;
        Ok(file)
    };
    let file = create().map_err(|source| {
        // Best effort: a file left with part of its header is also deleted by the next open.
        let _ = fs::remove_file(&segment.path);
        OutboxError::io("creating segment", &segment.path, source)
    })?;
    sync_dir(dir)?;
    Ok((segment, file))
}

/// Atomically replaces the segment file at `path` with one holding `frames`; returns the new
/// file's length and, if `keep_original`, where the original was copied to.
///
/// The new file is written and synced under a temporary name before it is renamed over the old
/// one, so a crash leaves either the old file or the new one, plus a temporary file that the next
/// open deletes.
///
/// # Errors
///
/// When any step fails; the original file is then still in place.
pub(super) fn rewrite(
    dir: &Path,
    path: &Path,
    frames: &[&[u8]],
    keep_original: bool,
) -> Result<(u64, Option<PathBuf>), OutboxError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let write = || -> io::Result<u64> {
        let mut file = io::BufWriter::new(File::create(&tmp)?);
        file.write_all(&SEGMENT_MAGIC)?;
        let mut size = SEGMENT_HEADER_LEN;
        for frame in frames {
            file.write_all(frame)?;
            size += frame.len() as u64;
        }
        let file = file.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        Ok(size)
    };
    let size = match write() {
        Ok(size) => size,
        Err(source) => {
            // Best effort: a leftover temporary file is also deleted by the next open.
            let _ = fs::remove_file(&tmp);
            return Err(OutboxError::io("writing compacted segment", &tmp, source));
        }
    };
    let original = match keep_original {
        true => Some(quarantine::copy_aside(dir, path)?),
        false => None,
    };
    fs::rename(&tmp, path).map_err(|source| OutboxError::io("replacing segment", path, source))?;
    sync_dir(dir)?;
    Ok((size, original))
}
