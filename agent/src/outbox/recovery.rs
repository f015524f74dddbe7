//! Recovery at open: checking and repairing segment files one at a time.
//!
//! [`Outbox::open`](super::Outbox::open) lists the directory with [`list`] and passes every
//! segment, oldest first, to [`Recovery::segment`], which rebuilds its index and records what it
//! repaired in the [`OpenReport`]. The rules are in "Recovery at open" in the parent module.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::Path;

use super::record::{self, Header, SEGMENT_HEADER_LEN, SEQ_LIMIT};
use super::segment::{self, Entry, Segment};
use super::{quarantine, state, sync_dir, OpenReport, OutboxError, MAX_SEGMENT_FILE_BYTES};

/// Rebuilds segment indexes at open; see "Recovery at open" in the module docs.
pub(super) struct Recovery<'a> {
    pub(super) dir: &'a Path,
    pub(super) acked_through: u64,
    /// Every seq seen so far is below this.
    pub(super) min_seq: u64,
    /// The largest segment name: a seq handed out.
    pub(super) seq_floor: u64,
    /// Why the largest seq handed out is unknown, if it is.
    pub(super) seqs_lost: Option<String>,
    pub(super) report: &'a mut OpenReport,
}

impl Recovery<'_> {
    /// Checks and repairs the segment file with `id`; returns its index unless nothing is left.
    pub(super) fn segment(
        &mut self,
        id: u64,
        is_newest: bool,
    ) -> Result<Option<Segment>, OutboxError> {
        let path = self.dir.join(segment::file_name(id));
        let name = segment::file_name(id);
        // The name is a seq handed out, whatever became of the file's content.
        if id < SEQ_LIMIT {
            self.seq_floor = self.seq_floor.max(id);
        }
        let bytes = match read_segment(&path) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                self.set_aside(&path, format!("{name}: too large to be a segment"))?;
                self.seqs_lost_if(is_newest, &name);
                return Ok(None);
            }
            Err(err) => {
                // A file that cannot be read (a bad sector, wrong permissions) must not stop
                // the agent: move it out of the way if at all possible.
                self.set_aside(&path, format!("{name}: unreadable ({err})"))?;
                self.seqs_lost_if(is_newest, &name);
                return Ok(None);
            }
        };
        let header = record::header(&bytes);
        if header == Header::Torn {
            fs::remove_file(&path)
                .map_err(|source| OutboxError::io("deleting torn segment", &path, source))?;
            sync_dir(self.dir)?;
            self.report.truncated_bytes += bytes.len() as u64;
            self.report.notes.push(format!(
                "{name}: creation cut short, deleted {} bytes",
                bytes.len()
            ));
            return Ok(None);
        }
        // Frames are looked for even behind a damaged header, so that one bad byte there does
        // not cost a whole segment.
        let scan = record::scan(&bytes, self.min_seq, is_newest);
        if header == Header::Garbage && scan.frames.is_empty() {
            self.set_aside(&path, format!("{name}: not a segment"))?;
            self.seqs_lost_if(is_newest, &name);
            return Ok(None);
        }
        self.min_seq = scan.next_min_seq;
        let mut segment = Segment::new(self.dir, id, bytes.len() as u64);
        let mut offsets: Vec<u64> = scan.frames.iter().map(|found| found.offset).collect();
        if header == Header::Garbage || !scan.bad.is_empty() {
            let frames: Vec<&[u8]> = scan
                .frames
                .iter()
                .map(|found| &bytes[found.range()])
                .collect();
            let (size, aside) = segment::rewrite(self.dir, &path, &frames, true)?;
            let aside = aside.expect("rewrite copies the original when asked to");
            let mut damage: Vec<String> = scan
                .bad
                .iter()
                .map(|range| format!("{}..{}", range.start, range.end))
                .collect();
            if header == Header::Garbage {
                damage.insert(0, "header".to_owned());
            }
            self.report.notes.push(format!(
                "{name}: damaged at {}, kept {} records, original copied to {}",
                damage.join(", "),
                frames.len(),
                aside.display()
            ));
            self.report.set_aside.push(aside);
            if let Some(tail) = scan.torn_tail {
                self.report.truncated_bytes += bytes.len() as u64 - tail;
            }
            let damaged_to_end = scan
                .bad
                .last()
                .is_some_and(|range| range.end == bytes.len() as u64);
            self.seqs_lost_if(is_newest && damaged_to_end, &name);
            segment.size = size;
            let mut offset = SEGMENT_HEADER_LEN;
            for (found, new_offset) in scan.frames.iter().zip(&mut offsets) {
                *new_offset = offset;
                offset += found.meta.frame_len();
            }
        } else if let Some(tail) = scan.torn_tail {
            let truncate = || -> io::Result<()> {
                let file = OpenOptions::new().write(true).open(&path)?;
                file.set_len(tail)?;
                file.sync_all()
            };
            truncate()
                .map_err(|source| OutboxError::io("truncating torn tail of", &path, source))?;
            let n_bytes = bytes.len() as u64 - tail;
            self.report.truncated_bytes += n_bytes;
            self.report.notes.push(format!(
                "{name}: truncated torn tail of {n_bytes} bytes at {tail}"
            ));
            segment.size = tail;
        }
        for (found, offset) in scan.frames.iter().zip(offsets) {
            if found.meta.seq <= self.acked_through {
                continue;
            }
            segment.push(Entry {
                seq: found.meta.seq,
                written_at_ms: found.meta.written_at_ms,
                offset: u32::try_from(offset).expect("segment files read are below 4 GiB"),
                payload_len: found.meta.payload_len,
                class: found.meta.class,
            });
        }
        Ok(Some(segment))
    }

    /// Notes that records with the largest seqs handed out may have been lost with `name`, when
    /// `lost`, so that open cannot tell where seqs stopped.
    fn seqs_lost_if(&mut self, lost: bool, name: &str) {
        if lost && self.seqs_lost.is_none() {
            self.seqs_lost = Some(format!("the end of {name} was damaged"));
        }
    }

    fn set_aside(&mut self, path: &Path, note: String) -> Result<(), OutboxError> {
        let aside = quarantine::move_aside(self.dir, path)?;
        self.report
            .notes
            .push(format!("{note}, moved to {}", aside.display()));
        self.report.set_aside.push(aside);
        Ok(())
    }
}

/// Reads a whole segment file, or `None` if it is too large to be one.
///
/// # Errors
///
/// When the file cannot be opened or read.
pub(super) fn read_segment(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    if len > MAX_SEGMENT_FILE_BYTES {
        return Ok(None);
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

/// What the outbox directory holds, with leftover temporary files removed.
pub(super) struct Listing {
    /// Ids of segment files, ascending.
    pub(super) segment_ids: Vec<u64>,
    pub(super) has_corrupt_dir: bool,
}

/// Lists the outbox directory, deleting leftover temporary files.
///
/// # Errors
///
/// When the directory cannot be listed or a temporary file cannot be deleted.
pub(super) fn list(dir: &Path) -> Result<Listing, OutboxError> {
    let list_err = |source| OutboxError::io("listing outbox directory", dir, source);
    let mut listing = Listing {
        segment_ids: Vec::new(),
        has_corrupt_dir: false,
    };
    for entry in fs::read_dir(dir).map_err(list_err)? {
        let entry = entry.map_err(list_err)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let is_tmp = name == state::STATE_TMP_FILE
            || name
                .strip_suffix(".tmp")
                .and_then(segment::parse_file_name)
                .is_some();
        if let Some(id) = segment::parse_file_name(name) {
            listing.segment_ids.push(id);
        } else if is_tmp {
            let path = entry.path();
            fs::remove_file(&path).map_err(|source| {
                OutboxError::io("deleting leftover temporary file", &path, source)
            })?;
            tracing::debug!(path = %path.display(), "deleted leftover temporary file");
        } else if name == quarantine::CORRUPT_DIR {
            listing.has_corrupt_dir = true;
        } else if name != state::STATE_FILE {
            tracing::debug!(name, "ignoring unknown file in outbox directory");
        }
    }
    listing.segment_ids.sort_unstable();
    Ok(listing)
}
