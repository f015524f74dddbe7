//! Durable outbox: every event the agent records is appended here, on local disk, before any
//! upload; the uplink reads the oldest unacknowledged records, uploads them, and acknowledges them
//! once the collector has stored them.
//!
//! # Design
//!
//! ## Constraints
//!
//! - The WAN may be down for days, so records accumulate on disk within a budget
//!   ([`OutboxConfig`]); the defaults hold well over a week of heartbeats and probe results.
//! - The machine may lose power mid-write or the process may be killed at any instruction.
//!   Once [`Outbox::append`] has returned a seq, that record survives both.
//! - A damaged file must never stop the agent from starting or recording: [`Outbox::open`] fails
//!   only on real I/O errors (an unreadable directory, a full disk while repairing), never on bad
//!   content, which it repairs, sets aside and describes in an [`OpenReport`].
//! - Memory stays small: payloads stay on disk; the index holds 32 bytes per unacknowledged
//!   record (seq, time, offset, length, class), about 30 MiB for a full 512 MiB outbox.
//! - One `Outbox` per directory, used by one thread at a time: the caller wraps it in a mutex.
//!   Nothing guards against a second process opening the same directory, whose recovery could
//!   cut a record being written; other processes use the read-only [`Outbox::inspect`].
//!
//! ## Files
//!
//! ```text
//! <dir>/state                      durable counters, replaced atomically
//! <dir>/00000000000000000001.seg   segments, named by the seq they were created for (20 digits)
//! <dir>/00000000000000001342.seg   the newest segment is the only one appended to
//! <dir>/corrupt/                   damaged files set aside by recovery, never read again
//! <dir>/*.tmp                      files being replaced; deleted by the next open
//! ```
//!
//! Any other file in the directory is ignored. All integers are little-endian.
//!
//! A segment file is an 8-byte header, the magic `CNTTOBX1` (the last byte is the format
//! version), followed by frames, one per record, with strictly increasing seqs:
//!
//! | offset | size | field                                                              |
//! |-------:|-----:|--------------------------------------------------------------------|
//! |      0 |    4 | CRC-32 (IEEE, `crc32fast`) of bytes 4 to the end of the frame      |
//! |      4 |    4 | payload length `n`, at most 16 MiB                                 |
//! |      8 |    8 | seq, from 1, below 2^62                                            |
//! |     16 |    8 | written at, signed unix milliseconds (UTC)                         |
//! |     24 |    1 | class: 0 routine, 1 critical                                       |
//! |     25 |    3 | reserved, zero                                                     |
//! |     28 |  `n` | payload, opaque bytes                                              |
//!
//! A new segment is started when appending would take the current one past
//! [`OutboxConfig::segment_bytes`] (a record bigger than that gets a segment of its own).
//!
//! The state file is 44 bytes: the magic `CNTTOST2`, then `next_seq`, `acked_through`,
//! `dropped_routine_total` and `lost_total` as `u64`, then a CRC-32 of the preceding 40 bytes.
//! The first version (`CNTTOST1`, 36 bytes, without `lost_total`) is still read.
//!
//! ## Durability
//!
//! - Append: one `write` of the whole frame at the segment's known end, then `fdatasync`;
//!   the seq is returned only after both succeed. If either fails (a full disk, an I/O error),
//!   the file is truncated back to its last whole frame before the error is returned, so no half
//!   record is ever followed by good ones.
//! - New segment: create, write the header, `fsync` the file, `fsync` the directory.
//! - State file, replaced on every ack, every thinning, every lost record and every open: write
//!   `state.tmp`, `fsync` it, rename it over `state`, `fsync` the directory.
//! - Ack: the state file is made durable first, then fully acknowledged segments are deleted
//!   (and the directory synced). A crash in between leaves acknowledged records in segments:
//!   open skips records whose seq is at most `acked_through` and deletes such segments.
//!   When the state file cannot be written (a full disk), the acknowledged records are still
//!   forgotten and their segments deleted, since the collector has them: that frees room, and
//!   the state file is written again at once, at every later ack and at every
//!   [`Outbox::save_unsaved`] (the agent calls it every second), until it succeeds. A crash
//!   before then only sends again records still on disk, which the collector stores once.
//! - Thinning or salvaging a segment: the new content is written and synced as `<name>.tmp`,
//!   then renamed over the segment (and the directory synced). A crash leaves the old or the new
//!   file; the leftover `.tmp` is deleted by the next open.
//!
//! ## Recovery at open
//!
//! Segments are read in name order, one at a time, each checked frame by frame:
//!
//! - A file holding only zeros or a prefix of the magic is a segment whose creation was cut
//!   short: it holds no record and is deleted.
//! - An invalid frame (bad checksum, field out of range, seq not above the previous one) starts
//!   a damaged range. The scan looks for the next offset where a valid frame with a larger seq
//!   starts, so one damaged record costs only itself. The same search runs behind a damaged
//!   header. If anything was damaged, the original file is copied into `corrupt/` and the
//!   segment rewritten with its valid frames.
//! - A file with no valid header and no valid frame, or too large to be a segment, or that
//!   cannot be read, is moved into `corrupt/` whole.
//! - The newest segment may end in a torn tail: a last frame cut short, or one that ends in a
//!   zero byte (a crash after the file grew but before all its data reached the disk). Such a
//!   tail never held a record whose append returned, so it is truncated away. Elsewhere, or when
//!   the invalid tail does not look torn, the same bytes count as damage.
//! - The state file is read; if it is missing or damaged (a damaged one is set aside) the
//!   counters are rebuilt, see below. Records with seq at most `acked_through` are skipped.
//!
//! Every action is listed in the [`OpenReport`], which the agent logs and reports.
//! A record damaged on disk after open is skipped by [`Outbox::peek`] (logged, and counted in
//! [`Stats::unreadable_total`]) so that one bad sector cannot stall the uplink, and its segment
//! is set aside rather than deleted once acknowledged.
//!
//! ## Sequence numbers
//!
//! Seqs are assigned by [`Outbox::append`], strictly increasing and never reused for a record
//! that was ever visible: a seq is consumed even when its append fails. At open, `next_seq` is
//! the largest of the state file's `next_seq`, one past the largest seq in any segment, and the
//! largest segment name. That is enough while the state file and the end of the newest segment
//! are intact. When either was lost (state file missing or damaged in a directory used before,
//! newest segment damaged to its end or set aside), nothing proves which seqs were handed out
//! after the surviving records, so `next_seq` also jumps to at least the current unix time in
//! milliseconds: a gap the collector tolerates (it deduplicates by event id and sees gaps from
//! thinning anyway), in exchange for never reusing a seq. Only a directory with no state, no
//! segment and no `corrupt/` is new and starts at seq 1. A record cut off by a crash mid-append
//! may have its seq handed out again: its append never returned and no one saw it. So may the
//! last record of the newest segment when damage to its length field makes it look cut off: a
//! limit of telling damage from a torn write.
//!
//! ## Lost records
//!
//! A record is lost when its append fails (a full disk, an I/O error, a routine record over
//! budget, a payload too large) or when its segment file vanishes before delivery (deleted by
//! someone else). Every lost record is counted in `lost_total`, kept in the state file and shown
//! in [`Stats`], so the agent reports it in its next heartbeat; a vanished segment is logged with
//! its name and the number of records lost with it. Appends whose caller keeps the record and
//! tries again ([`Outbox::append_uncounted`], the spool) are not counted. A vanished segment is
//! noticed when [`Outbox::peek`] or an append finds it gone, or by [`Outbox::check_files`]; one
//! deleted while the agent was stopped is not told apart from one thinned away.
//! When the count cannot be written (a full disk), it is kept in memory and written with the next
//! state file that can be; [`Stats::state_saved`] says whether the file is behind.
//!
//! ## Budget
//!
//! Routine records (samples) may be dropped to respect the budget; critical records (incidents,
//! officers' reports) never are. Before each append, while the segments take more than
//! [`OutboxConfig::max_bytes`], or while a segment holds only routine records older than
//! [`OutboxConfig::max_age`], the oldest such segment other than the one being appended to is
//! thinned: rewritten with only its unacknowledged critical records, or deleted if it has none.
//! Thinning a whole segment at a time drops about one segment of the oldest samples, and leaves
//! a hole in time rather than a sparser series; the count is kept in the state file as
//! `dropped_routine_total` and shown in [`Stats`], so the collector can be told. If thinning
//! cannot bring the outbox within budget, because what remains is critical or in the newest
//! segment, a routine append fails with [`OutboxError::Full`] while a critical append is still
//! written: the budget is soft for critical records, which only run out at a full disk.
//! The segment is thinned before the state file records the new count, so a crash between the
//! two may undercount by that segment's routine records.

mod quarantine;
mod record;
mod recovery;
mod segment;
mod state;
#[cfg(test)]
mod tests;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use time::OffsetDateTime;

use self::record::{MAX_PAYLOAD_BYTES, SEGMENT_HEADER_LEN, SEQ_LIMIT};
use self::recovery::{list, Recovery};
use self::segment::{Entry, Segment};
use self::state::{Loaded, State};

/// The largest segment file recovery reads; anything bigger was not written by the outbox.
const MAX_SEGMENT_FILE_BYTES: u64 = 2 * MAX_SEGMENT_BYTES + MAX_PAYLOAD_BYTES as u64;

/// The largest [`OutboxConfig::segment_bytes`] used, to keep segments quick to rewrite.
const MAX_SEGMENT_BYTES: u64 = 64 << 20;

/// Limits of an outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxConfig {
    /// Bytes of segment files above which routine records are dropped, oldest first.
    ///
    /// Critical records are kept beyond it; see the budget section of the module docs.
    pub max_bytes: u64,
    /// Age above which routine records are dropped, a whole segment at a time.
    pub max_age: Duration,
    /// Size at which a new segment file is started.
    ///
    /// Used as at most a quarter of `max_bytes`, so thinning has segments to choose from, and at
    /// most 64 MiB.
    pub segment_bytes: u64,
}

impl Default for OutboxConfig {
    /// Room for more than three weeks of one heartbeat and twenty probe results a minute of
    /// about 600 bytes each (about 19 MiB a day), and a month of age.
    fn default() -> OutboxConfig {
        OutboxConfig {
            max_bytes: 512 << 20,
            max_age: Duration::from_secs(30 * 24 * 60 * 60),
            segment_bytes: 8 << 20,
        }
    }
}

impl OutboxConfig {
    /// The configuration with `segment_bytes` brought within its documented bounds.
    fn effective(self) -> OutboxConfig {
        let segment_bytes = self
            .segment_bytes
            .min(self.max_bytes / 4)
            .min(MAX_SEGMENT_BYTES);
        OutboxConfig {
            segment_bytes,
            ..self
        }
    }
}

/// How much a record matters when the outbox runs out of room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// A sample (heartbeat, probe result) that may be dropped, oldest first, to stay in budget.
    Routine,
    /// An incident or a person's report: never dropped.
    Critical,
}

/// One record read back from the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The record's sequence number, assigned by [`Outbox::append`].
    pub seq: u64,
    /// The record's class.
    pub class: Class,
    /// When the record was appended, by the agent's clock, to the millisecond.
    pub written_at: OffsetDateTime,
    /// The bytes given to [`Outbox::append`].
    pub payload: Vec<u8>,
}

/// What [`Outbox::open`] found and repaired, for the agent to log and report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Unacknowledged records after recovery.
    pub records: u64,
    /// Segment files after recovery.
    pub segments: u64,
    /// Files moved or copied into `<dir>/corrupt/`.
    pub set_aside: Vec<PathBuf>,
    /// Bytes of torn tails and torn segment files removed.
    pub truncated_bytes: u64,
    /// How the durable counters were obtained.
    pub state: StateRecovery,
    /// The seq the next append gets.
    pub next_seq: u64,
    /// Routine records dropped by open itself to bring the outbox within budget.
    pub dropped_routine: u64,
    /// One sentence per recovery action, naming the file.
    pub notes: Vec<String>,
}

impl OpenReport {
    /// Whether open found everything as it was left, with nothing repaired or rebuilt.
    pub fn is_clean(&self) -> bool {
        let state_ok = matches!(self.state, StateRecovery::Loaded | StateRecovery::Fresh);
        state_ok && self.set_aside.is_empty() && self.truncated_bytes == 0 && self.notes.is_empty()
    }
}

/// How [`Outbox::open`] obtained the durable counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StateRecovery {
    /// From the state file.
    Loaded,
    /// The directory was new.
    #[default]
    Fresh,
    /// The state file was missing from a used directory; counters were rebuilt from segments.
    Missing,
    /// The state file was damaged and set aside; counters were rebuilt from segments.
    Corrupt,
}

/// Counters describing an outbox, for metrics and for reporting to the collector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Unacknowledged records.
    pub records: u64,
    /// Unacknowledged critical records.
    pub critical_records: u64,
    /// Bytes of segment files on disk, acknowledged records not yet deleted included.
    pub bytes: u64,
    /// Segment files on disk.
    pub segments: u64,
    /// Routine records dropped to stay within budget, over the outbox's lifetime.
    pub dropped_routine_total: u64,
    /// Records found damaged by [`Outbox::peek`] since open, and skipped.
    pub unreadable_total: u64,
    /// When the oldest unacknowledged record was written.
    pub oldest: Option<OffsetDateTime>,
    /// The seq the next append gets.
    pub next_seq: u64,
    /// Every record up to this seq has been acknowledged; 0 when none has.
    pub acked_through: u64,
    /// Records lost before delivery (failed appends, vanished segments), over the outbox's
    /// lifetime; see "Lost records" in the module docs.
    pub lost_total: u64,
    /// Whether the state file holds these counters; false while an acknowledgement or a count
    /// could not be written (a full disk). [`Outbox::inspect`] always says true.
    pub state_saved: bool,
}

/// Errors of the outbox.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// A file system operation failed; the outbox is left consistent.
    #[error("{op} {}", path.display())]
    Io {
        /// What was attempted, e.g. `appending record to`.
        op: &'static str,
        /// The file or directory it was attempted on.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// A routine record was refused: the outbox is over budget and has no older routine record
    /// left to drop.
    #[error(
        "refusing routine record: outbox holds {bytes} of its {max_bytes} bytes and has no \
         routine record left to drop"
    )]
    Full {
        /// Bytes of segment files.
        bytes: u64,
        /// The budget, [`OutboxConfig::max_bytes`].
        max_bytes: u64,
    },
    /// A payload was larger than a record may be.
    #[error("refusing record of {len} bytes, over the limit of {max}")]
    TooLarge {
        /// The payload's length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

impl OutboxError {
    fn io(op: &'static str, path: &Path, source: io::Error) -> OutboxError {
        OutboxError::Io {
            op,
            path: path.to_owned(),
            source,
        }
    }
}

/// The durable outbox in one directory.
///
/// Not thread-safe by itself: the agent shares it behind a `std::sync::Mutex`.
#[derive(Debug)]
pub struct Outbox {
    dir: PathBuf,
    config: OutboxConfig,
    /// Source of record times and of the seq floor; a fixed clock in tests.
    clock: fn() -> OffsetDateTime,
    /// Oldest first; only the last one is appended to.
    segments: VecDeque<Segment>,
    /// Handle on the last segment for appending, opened on first use.
    writer: Option<File>,
    /// The last segment may extend past its `size` after a failed append whose truncation also
    /// failed; the next append truncates first.
    writer_dirty: bool,
    /// The current counters, except `next_seq`, which is `self.next_seq`; the state file holds
    /// them unless `state_unsaved`.
    state: State,
    /// The last attempt to write the state file failed; retried by later acks, thinning, counts
    /// and [`Outbox::save_unsaved`].
    state_unsaved: bool,
    next_seq: u64,
    total_bytes: u64,
    n_records: u64,
    n_critical: u64,
    /// Seqs of indexed records that `peek` found damaged. Cells because `peek` takes `&self`.
    unreadable: RefCell<BTreeSet<u64>>,
    unreadable_total: Cell<u64>,
    /// Ids of segments whose file `peek` found gone; forgotten (and their records counted as
    /// lost) by the next call taking `&mut self`. A cell because `peek` takes `&self`.
    vanished: RefCell<BTreeSet<u64>>,
}

impl Outbox {
    /// Opens the outbox in `dir`, creating the directory if needed and repairing what a crash or
    /// a damaged disk left behind; the report says what was repaired.
    ///
    /// # Errors
    ///
    /// [`OutboxError::Io`], naming the path, when the directory or a file cannot be created,
    /// listed, read, written or synced. Damaged content is never an error.
    pub fn open(dir: &Path, config: OutboxConfig) -> Result<(Outbox, OpenReport), OutboxError> {
        Outbox::open_with_clock(dir, config, OffsetDateTime::now_utc)
    }

    fn open_with_clock(
        dir: &Path,
        config: OutboxConfig,
        clock: fn() -> OffsetDateTime,
    ) -> Result<(Outbox, OpenReport), OutboxError> {
        let config = config.effective();
        if !dir.is_dir() {
            fs::create_dir_all(dir)
                .map_err(|source| OutboxError::io("creating outbox directory", dir, source))?;
            // Make the new directory's own entry durable, or a power cut could lose it whole.
            match dir.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent)?,
                _ => sync_dir(Path::new("."))?,
            }
        }
        let listing = list(dir)?;
        let mut report = OpenReport::default();

        let loaded = state::load(dir)?;
        let used_before = listing.has_corrupt_dir || !listing.segment_ids.is_empty();
        report.state = match loaded {
            Loaded::Found(_) => StateRecovery::Loaded,
            Loaded::Missing if used_before => StateRecovery::Missing,
            Loaded::Missing => StateRecovery::Fresh,
            Loaded::Corrupt => StateRecovery::Corrupt,
        };
        if loaded == Loaded::Corrupt {
            let path = dir.join(state::STATE_FILE);
            let aside = quarantine::move_aside(dir, &path)?;
            report
                .notes
                .push(format!("state file damaged, moved to {}", aside.display()));
            report.set_aside.push(aside);
        }
        let known = match loaded {
            Loaded::Found(state) => Some(state),
            Loaded::Missing | Loaded::Corrupt => None,
        };

        let mut recovery = Recovery {
            dir,
            acked_through: known.map_or(0, |state| state.acked_through),
            min_seq: 1,
            seq_floor: 1,
            seqs_lost: None,
            report: &mut report,
        };
        let mut segments = VecDeque::new();
        for (index, &id) in listing.segment_ids.iter().enumerate() {
            let is_newest = index + 1 == listing.segment_ids.len();
            if let Some(segment) = recovery.segment(id, is_newest)? {
                segments.push_back(segment);
            }
        }
        let acked_through = recovery.acked_through;
        let mut next_seq = recovery.min_seq.max(recovery.seq_floor);
        let mut seqs_lost = recovery.seqs_lost;
        match known {
            Some(state) => next_seq = next_seq.max(state.next_seq),
            None if report.state == StateRecovery::Fresh => {}
            None => seqs_lost = Some("the state file was lost".to_owned()),
        }
        if let Some(reason) = seqs_lost {
            let clock_floor = unix_ms(clock()).clamp(1, SEQ_LIMIT as i64 / 2) as u64;
            if clock_floor > next_seq {
                report.notes.push(format!(
                    "{reason}: next seq raised from {next_seq} to {clock_floor} \
                     (unix milliseconds) so that no seq is reused"
                ));
                next_seq = clock_floor;
            }
        }
        let state = State {
            next_seq,
            acked_through,
            dropped_routine_total: known.map_or(0, |state| state.dropped_routine_total),
            lost_total: known.map_or(0, |state| state.lost_total),
        };

        // Finish deletions that a crash interrupted after an ack.
        let mut n_segments = segments.len();
        let mut deleted = false;
        segments.retain(|segment| {
            n_segments -= 1;
            let keep = n_segments == 0 || !segment.entries().is_empty();
            if !keep {
                match fs::remove_file(&segment.path) {
                    Ok(()) => deleted = true,
                    Err(err) => {
                        tracing::warn!(
                            path = %segment.path.display(),
                            error = %err,
                            "could not delete delivered segment",
                        );
                        return true;
                    }
                }
            }
            keep
        });
        if deleted {
            sync_dir(dir)?;
        }
        state::store(dir, &state)?;

        let mut outbox = Outbox {
            dir: dir.to_owned(),
            config,
            clock,
            writer: None,
            writer_dirty: false,
            state,
            state_unsaved: false,
            next_seq,
            total_bytes: segments.iter().map(|segment| segment.size).sum(),
            n_records: 0,
            n_critical: 0,
            segments,
            unreadable: RefCell::new(BTreeSet::new()),
            unreadable_total: Cell::new(0),
            vanished: RefCell::new(BTreeSet::new()),
        };
        for entry in outbox.segments.iter().flat_map(|segment| segment.entries()) {
            outbox.n_records += 1;
            outbox.n_critical += u64::from(entry.class == Class::Critical);
        }
        report.dropped_routine = outbox.enforce_budget(unix_ms(clock()), 0);
        report.records = outbox.n_records;
        report.segments = outbox.segments.len() as u64;
        report.next_seq = outbox.next_seq;
        Ok((outbox, report))
    }

    /// Appends a record durably and returns its seq.
    ///
    /// Assigns the next seq (strictly increasing, never reused, kept across restarts even once
    /// every record is acknowledged and deleted), calls `make(seq)` for the payload, writes it
    /// and syncs it to disk. May first drop old routine records to stay within budget.
    ///
    /// # Errors
    ///
    /// - [`OutboxError::Full`] for a routine record when the budget is spent on records that
    ///   cannot be dropped.
    /// - [`OutboxError::TooLarge`] for a payload over 16 MiB.
    /// - [`OutboxError::Io`] when writing or syncing fails, e.g. on a full disk; the partial
    ///   record is removed so the outbox stays readable.
    ///
    /// The seq passed to `make` is consumed even when the append then fails, and the record is
    /// counted as lost ([`Stats::lost_total`]).
    pub fn append(
        &mut self,
        class: Class,
        make: impl FnOnce(u64) -> Vec<u8>,
    ) -> Result<u64, OutboxError> {
        let now = (self.clock)();
        self.append_at(class, now, make)
    }

    /// Like [`Outbox::append`], but a failure is not counted as a lost record: for a caller that
    /// keeps the record and tries again later (the spool of officers' reports).
    ///
    /// # Errors
    ///
    /// As [`Outbox::append`].
    pub fn append_uncounted(
        &mut self,
        class: Class,
        make: impl FnOnce(u64) -> Vec<u8>,
    ) -> Result<u64, OutboxError> {
        let now = (self.clock)();
        self.append_inner(class, now, make)
    }

    fn append_at(
        &mut self,
        class: Class,
        written_at: OffsetDateTime,
        make: impl FnOnce(u64) -> Vec<u8>,
    ) -> Result<u64, OutboxError> {
        let res = self.append_inner(class, written_at, make);
        if let Err(err) = &res {
            self.state.lost_total += 1;
            tracing::warn!(
                ?class,
                lost_total = self.state.lost_total,
                error = %err,
                "record lost: it could not be written to the outbox",
            );
            // On a full disk this fails too; the count stays in memory and is written later.
            let _ = self.save_state();
        }
        res
    }

    fn append_inner(
        &mut self,
        class: Class,
        written_at: OffsetDateTime,
        make: impl FnOnce(u64) -> Vec<u8>,
    ) -> Result<u64, OutboxError> {
        self.forget_vanished();
        let seq = self.next_seq;
        self.next_seq = seq
            .checked_add(1)
            .expect("seqs start below 2^62 and grow by one per append");
        let payload = make(seq);
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(OutboxError::TooLarge {
                len: payload.len(),
                max: MAX_PAYLOAD_BYTES,
            });
        }
        let written_at_ms = unix_ms(written_at);
        let frame = record::encode(seq, class, written_at_ms, &payload);
        let frame_len = frame.len() as u64;
        self.enforce_budget(unix_ms((self.clock)()), frame_len);
        if self.total_bytes + frame_len > self.config.max_bytes {
            if class == Class::Routine {
                return Err(OutboxError::Full {
                    bytes: self.total_bytes,
                    max_bytes: self.config.max_bytes,
                });
            }
            tracing::warn!(
                seq,
                bytes = self.total_bytes,
                max_bytes = self.config.max_bytes,
                "outbox over budget, keeping critical record anyway"
            );
        }
        self.write(seq, class, written_at_ms, &frame)?;
        Ok(seq)
    }

    /// Closes the segment file kept open for appending; the next append opens it again. For a
    /// process holding thousands of outboxes (`cntt-agent simulate`), where each would otherwise
    /// hold a file descriptor between appends.
    pub fn release_writer(&mut self) {
        self.writer = None;
    }

    /// Writes an encoded frame at the end of the newest segment, starting one if needed.
    fn write(
        &mut self,
        seq: u64,
        class: Class,
        written_at_ms: i64,
        frame: &[u8],
    ) -> Result<(), OutboxError> {
        let frame_len = frame.len() as u64;
        self.check_newest_segment();
        let roll = match self.segments.back() {
            None => true,
            Some(last) => {
                last.size > SEGMENT_HEADER_LEN && last.size + frame_len > self.config.segment_bytes
            }
        };
        if roll {
            let (segment, file) = segment::create(&self.dir, seq)?;
            self.total_bytes += segment.size;
            self.segments.push_back(segment);
            self.writer = Some(file);
            self.writer_dirty = false;
        }
        let last = self
            .segments
            .back_mut()
            .expect("a segment exists after rolling");
        if self.writer.is_none() {
            let file = OpenOptions::new()
                .write(true)
                .open(&last.path)
                .map_err(|source| OutboxError::io("opening segment", &last.path, source))?;
            self.writer = Some(file);
        }
        let file = self.writer.as_mut().expect("the writer was just opened");
        let offset = last.size;
        let dirty = self.writer_dirty;
        let res = (|| -> io::Result<()> {
            if dirty {
                file.set_len(offset)?;
            }
            file.seek(SeekFrom::Start(offset))?;
            file.write_all(frame)?;
            file.sync_data()
        })();
        if let Err(source) = res {
            // Cut the file back to its last whole frame so that the bytes of this append never
            // read as a half record, e.g. after a full disk. Should that fail too, the next
            // append overwrites them, and open would treat them as a torn tail.
            let undo = file.set_len(offset).and_then(|()| file.sync_data());
            self.writer_dirty = undo.is_err();
            return Err(OutboxError::io("appending record to", &last.path, source));
        }
        self.writer_dirty = false;
        last.size += frame_len;
        last.push(Entry {
            seq,
            written_at_ms,
            offset: u32::try_from(offset).expect("segments stay far below 4 GiB"),
            payload_len: u32::try_from(frame_len - record::FRAME_HEADER_LEN as u64)
                .expect("payloads are at most 16 MiB"),
            class,
        });
        self.total_bytes += frame_len;
        self.n_records += 1;
        self.n_critical += u64::from(class == Class::Critical);
        Ok(())
    }

    /// Reads the oldest unacknowledged records, oldest first: at most `max_records`, and no
    /// more payload bytes than `max_bytes` except that the first record is always included.
    ///
    /// A record damaged on disk since open is skipped and logged (see [`Stats::unreadable_total`]).
    ///
    /// # Errors
    ///
    /// [`OutboxError::Io`] when a segment cannot be opened or read.
    pub fn peek(&self, max_records: usize, max_bytes: usize) -> Result<Vec<Record>, OutboxError> {
        self.peek_where(max_records, max_bytes, |_seq, _class| true)
    }

    /// Like [`Outbox::peek`], but only records for which `keep(seq, class)` is true, still oldest
    /// first. The uplink uses it to send critical records ahead of a routine backlog and to skip
    /// records it has already delivered out of order.
    ///
    /// # Errors
    ///
    /// As [`Outbox::peek`].
    pub fn peek_where(
        &self,
        max_records: usize,
        max_bytes: usize,
        keep: impl Fn(u64, Class) -> bool,
    ) -> Result<Vec<Record>, OutboxError> {
        let mut records = Vec::new();
        let mut n_bytes = 0;
        for segment in &self.segments {
            let mut reader = None;
            for entry in segment.entries() {
                if !keep(entry.seq, entry.class) {
                    continue;
                }
                let len = entry.payload_len as usize;
                if records.len() >= max_records
                    || (!records.is_empty() && n_bytes + len > max_bytes)
                {
                    return Ok(records);
                }
                if self.unreadable.borrow().contains(&entry.seq) {
                    continue;
                }
                if reader.is_none() {
                    let file = match File::open(&segment.path) {
                        Ok(file) => file,
                        Err(err) if err.kind() == io::ErrorKind::NotFound => {
                            // Someone deleted it: counted and logged by the next `&mut` call.
                            self.vanished.borrow_mut().insert(segment.id);
                            break;
                        }
                        Err(source) => {
                            return Err(OutboxError::io("opening segment", &segment.path, source))
                        }
                    };
                    reader = Some(SegmentReader {
                        file: BufReader::with_capacity(64 << 10, file),
                        pos: 0,
                    });
                }
                let reader = reader.as_mut().expect("the reader was just opened");
                match reader.read(entry) {
                    Ok(Some(payload)) => {
                        n_bytes += len;
                        records.push(Record {
                            seq: entry.seq,
                            class: entry.class,
                            written_at: from_unix_ms(entry.written_at_ms),
                            payload,
                        });
                    }
                    Ok(None) => {
                        tracing::error!(
                            path = %segment.path.display(),
                            offset = entry.offset,
                            seq = entry.seq,
                            "skipping record damaged on disk",
                        );
                        segment.tainted.set(true);
                        self.unreadable.borrow_mut().insert(entry.seq);
                        self.unreadable_total.set(self.unreadable_total.get() + 1);
                    }
                    Err(source) => {
                        return Err(OutboxError::io("reading segment", &segment.path, source));
                    }
                }
            }
        }
        Ok(records)
    }

    /// Durably marks every record with a seq up to `through` as delivered, then deletes the
    /// segments holding only delivered records (except the newest, which is appended to).
    ///
    /// Acknowledging an already acknowledged seq does nothing; `through` past the last seq
    /// handed out counts as the last one.
    ///
    /// # Errors
    ///
    /// [`OutboxError::Io`] when the state file cannot be written (a full disk). The records are
    /// acknowledged in memory all the same, and their segments deleted to free room; the state
    /// file is written again by the next ack (of any seq) or [`Outbox::save_unsaved`]. See
    /// "Durability" in the module docs. A segment that cannot be deleted is logged and retried at
    /// the next ack or open.
    pub fn ack(&mut self, through: u64) -> Result<(), OutboxError> {
        self.forget_vanished();
        let through = through.min(self.next_seq - 1);
        if through <= self.state.acked_through {
            return match self.state_unsaved {
                true => self.save_state(),
                false => Ok(()),
            };
        }
        self.state.acked_through = through;
        let saved = self.save_state();

        for segment in &mut self.segments {
            let popped = segment.pop_through(through);
            self.n_records -= popped.len() as u64;
            self.n_critical -= popped
                .iter()
                .filter(|entry| entry.class == Class::Critical)
                .count() as u64;
            if !segment.entries().is_empty() {
                // Later segments hold only larger seqs.
                break;
            }
        }
        self.unreadable.borrow_mut().retain(|&seq| seq > through);

        let mut deleted = false;
        while self.segments.len() > 1 && self.segments[0].entries().is_empty() {
            match self.segments[0].remove_file(&self.dir) {
                Ok(aside) => {
                    if let Some(aside) = aside {
                        tracing::warn!(
                            path = %aside.display(),
                            "set aside delivered segment that had damaged records",
                        );
                    }
                    deleted = true;
                    let segment = self.segments.pop_front().expect("checked non-empty");
                    self.total_bytes -= segment.size;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "could not delete delivered segment, will retry");
                    break;
                }
            }
        }
        if deleted {
            if let Err(err) = sync_dir(&self.dir) {
                tracing::warn!(
                    error = %err,
                    "could not sync outbox directory after deleting segments",
                );
            }
        }
        match saved {
            // Deleting delivered segments may have freed the room the state file needs.
            Err(_) if deleted => self.save_state(),
            saved => saved,
        }
    }

    /// Writes the state file if the last attempt failed (an acknowledgement or a count not yet
    /// durable); returns whether it wrote one. The agent calls it every second.
    ///
    /// # Errors
    ///
    /// [`OutboxError::Io`] when the state file still cannot be written.
    pub fn save_unsaved(&mut self) -> Result<bool, OutboxError> {
        self.forget_vanished();
        if !self.state_unsaved {
            return Ok(false);
        }
        self.save_state()?;
        tracing::info!(
            acked_through = self.state.acked_through,
            lost_total = self.state.lost_total,
            "outbox state written again after a failure",
        );
        Ok(true)
    }

    /// Looks for segment files deleted by someone else; their unacknowledged records are counted
    /// as lost and logged with the file's name. Returns the number of records lost now.
    ///
    /// The agent calls it before each heartbeat, so the count travels in the next one.
    pub fn check_files(&mut self) -> u64 {
        for segment in &self.segments {
            let gone = matches!(
                fs::symlink_metadata(&segment.path),
                Err(err) if err.kind() == io::ErrorKind::NotFound
            );
            if gone {
                self.vanished.borrow_mut().insert(segment.id);
            }
        }
        self.forget_vanished()
    }

    /// Forgets the segments found gone; returns the number of unacknowledged records lost.
    fn forget_vanished(&mut self) -> u64 {
        let ids = std::mem::take(&mut *self.vanished.borrow_mut());
        let mut n_lost_now = 0;
        for id in ids {
            let Some(index) = self.segments.iter().position(|segment| segment.id == id) else {
                continue;
            };
            let segment = self
                .segments
                .remove(index)
                .expect("the index was just found");
            if index == self.segments.len() {
                // It was the newest: the next append starts a new segment.
                self.writer = None;
                self.writer_dirty = false;
            }
            let n_lost = segment.entries().len() as u64;
            let n_critical = segment
                .entries()
                .iter()
                .filter(|entry| entry.class == Class::Critical)
                .count() as u64;
            if let (Some(first), Some(last)) = (segment.entries().front(), segment.entries().back())
            {
                let (first, last) = (first.seq, last.seq);
                self.unreadable
                    .borrow_mut()
                    .retain(|seq| !(first..=last).contains(seq));
            }
            self.n_records -= n_lost;
            self.n_critical -= n_critical;
            self.total_bytes -= segment.size;
            self.state.lost_total += n_lost;
            n_lost_now += n_lost;
            if n_lost == 0 {
                tracing::info!(
                    path = %segment.path.display(),
                    "outbox segment vanished; it held no undelivered record",
                );
                continue;
            }
            tracing::warn!(
                path = %segment.path.display(),
                records_lost = n_lost,
                critical_lost = n_critical,
                lost_total = self.state.lost_total,
                "outbox segment vanished before delivery; its records are lost",
            );
        }
        if n_lost_now > 0 {
            // On a full disk this fails too; the count stays in memory and is written later.
            let _ = self.save_state();
        }
        n_lost_now
    }

    /// Treats the newest segment as vanished when its file is gone (deleted under the open
    /// writer, whose appends would otherwise go to a file no one can read).
    fn check_newest_segment(&mut self) {
        let Some(last) = self.segments.back() else {
            return;
        };
        let path_gone = matches!(
            fs::symlink_metadata(&last.path),
            Err(err) if err.kind() == io::ErrorKind::NotFound
        );
        #[cfg(unix)]
        let unlinked = {
            use std::os::unix::fs::MetadataExt;
            self.writer
                .as_ref()
                .and_then(|file| file.metadata().ok())
                .is_some_and(|meta| meta.nlink() == 0)
        };
        #[cfg(not(unix))]
        let unlinked = false;
        if path_gone || unlinked {
            self.vanished.borrow_mut().insert(last.id);
            self.forget_vanished();
        }
    }

    /// Writes the current counters to the state file, noting whether it worked.
    fn save_state(&mut self) -> Result<(), OutboxError> {
        let state = State {
            next_seq: self.next_seq,
            ..self.state
        };
        let res = state::store(&self.dir, &state);
        self.state_unsaved = res.is_err();
        if res.is_ok() {
            self.state = state;
        }
        res
    }

    /// Counts what the outbox in `dir` holds without changing anything: for a status command
    /// run while the agent, the only process that may [`open`](Outbox::open) the outbox, is
    /// using it.
    ///
    /// The figures are as of the files on disk: a record being written, or damage that `open`
    /// would repair, may or may not be counted, and [`Stats::unreadable_total`] is 0.
    ///
    /// # Errors
    ///
    /// [`OutboxError::Io`] when the directory cannot be listed or a file cannot be read.
    pub fn inspect(dir: &Path) -> Result<Stats, OutboxError> {
        let known = match state::load(dir)? {
            Loaded::Found(state) => state,
            Loaded::Missing | Loaded::Corrupt => State::default(),
        };
        let list_err = |source| OutboxError::io("listing outbox directory", dir, source);
        let mut ids = Vec::new();
        for entry in fs::read_dir(dir).map_err(list_err)? {
            let name = entry.map_err(list_err)?.file_name();
            if let Some(id) = name.to_str().and_then(segment::parse_file_name) {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        let mut stats = Stats {
            records: 0,
            critical_records: 0,
            bytes: 0,
            segments: 0,
            dropped_routine_total: known.dropped_routine_total,
            unreadable_total: 0,
            oldest: None,
            next_seq: known.next_seq,
            acked_through: known.acked_through,
            lost_total: known.lost_total,
            state_saved: true,
        };
        let mut min_seq = 1;
        for (index, &id) in ids.iter().enumerate() {
            let path = dir.join(segment::file_name(id));
            let bytes = match recovery::read_segment(&path) {
                Ok(Some(bytes)) => bytes,
                Ok(None) => continue,
                // The owner deletes segments as they are acknowledged.
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => return Err(OutboxError::io("reading segment", &path, source)),
            };
            stats.segments += 1;
            stats.bytes += bytes.len() as u64;
            let is_newest = index + 1 == ids.len();
            let scan = record::scan(&bytes, min_seq, is_newest);
            min_seq = scan.next_min_seq;
            let unacked = scan
                .frames
                .iter()
                .filter(|found| found.meta.seq > known.acked_through);
            for found in unacked {
                stats.records += 1;
                stats.critical_records += u64::from(found.meta.class == Class::Critical);
                if stats.oldest.is_none() {
                    stats.oldest = Some(from_unix_ms(found.meta.written_at_ms));
                }
            }
        }
        stats.next_seq = stats.next_seq.max(min_seq);
        Ok(stats)
    }

    /// Current counters.
    pub fn stats(&self) -> Stats {
        let oldest = self
            .segments
            .iter()
            .find_map(|segment| segment.entries().front())
            .map(|entry| from_unix_ms(entry.written_at_ms));
        Stats {
            records: self.n_records,
            critical_records: self.n_critical,
            bytes: self.total_bytes,
            segments: self.segments.len() as u64,
            dropped_routine_total: self.state.dropped_routine_total,
            unreadable_total: self.unreadable_total.get(),
            oldest,
            next_seq: self.next_seq,
            acked_through: self.state.acked_through,
            lost_total: self.state.lost_total,
            state_saved: !self.state_unsaved,
        }
    }

    /// Thins old segments until the outbox, with `incoming` more bytes, is within budget or
    /// nothing more can be dropped; returns the number of routine records dropped.
    ///
    /// Failures are logged, not returned: the append that triggered thinning goes on, and may
    /// then fail on its own.
    fn enforce_budget(&mut self, now_ms: i64, incoming: u64) -> u64 {
        let max_age_ms = i64::try_from(self.config.max_age.as_millis()).unwrap_or(i64::MAX);
        let cutoff_ms = now_ms.saturating_sub(max_age_ms);
        let mut n_dropped = 0;
        loop {
            let over_budget = self.total_bytes + incoming > self.config.max_bytes;
            let n_candidates = self.segments.len().saturating_sub(1);
            let candidate = self.segments.iter().take(n_candidates).position(|segment| {
                let reclaimable = segment.n_routine() > 0 || segment.has_dead_space();
                segment.routine_expired(cutoff_ms) || (over_budget && reclaimable)
            });
            let Some(index) = candidate else {
                return n_dropped;
            };
            match self.thin(index) {
                Ok(n) => n_dropped += n,
                Err(err) => {
                    tracing::warn!(error = %err, "could not thin outbox segment");
                    return n_dropped;
                }
            }
        }
    }

    /// Rewrites the segment at `index` with only its unacknowledged critical records, or deletes
    /// it if it has none; returns the number of routine records dropped.
    fn thin(&mut self, index: usize) -> Result<u64, OutboxError> {
        let segment = &self.segments[index];
        let gone = matches!(
            fs::symlink_metadata(&segment.path),
            Err(err) if err.kind() == io::ErrorKind::NotFound
        );
        if gone {
            self.vanished.borrow_mut().insert(segment.id);
            self.forget_vanished();
            return Ok(0);
        }
        let segment = &self.segments[index];
        let n_dropped = segment.n_routine();
        let keep: Vec<Entry> = segment
            .entries()
            .iter()
            .filter(|entry| entry.class == Class::Critical)
            .copied()
            .collect();
        let old_size = segment.size;
        let id = segment.id;
        if keep.is_empty() {
            if let Some(aside) = segment.remove_file(&self.dir)? {
                tracing::warn!(
                    path = %aside.display(),
                    "set aside thinned segment that had damaged records",
                );
            }
            sync_dir(&self.dir)?;
            self.segments.remove(index);
            self.total_bytes -= old_size;
        } else {
            let bytes = fs::read(&segment.path)
                .map_err(|source| OutboxError::io("reading segment", &segment.path, source))?;
            let mut frames = Vec::with_capacity(keep.len());
            let mut entries = Vec::with_capacity(keep.len());
            let mut offset = SEGMENT_HEADER_LEN;
            for entry in &keep {
                let start = entry.offset as usize;
                let frame = bytes.get(start..start + entry.frame_len() as usize);
                let valid = frame.filter(|frame| {
                    record::decode(frame, entry.seq).is_ok_and(|meta| meta.seq == entry.seq)
                });
                let Some(frame) = valid else {
                    tracing::error!(
                        path = %segment.path.display(),
                        offset = entry.offset,
                        seq = entry.seq,
                        "critical record damaged on disk, lost while thinning",
                    );
                    segment.tainted.set(true);
                    continue;
                };
                frames.push(frame);
                entries.push(Entry {
                    offset: u32::try_from(offset).expect("segments stay far below 4 GiB"),
                    ..*entry
                });
                offset += entry.frame_len();
            }
            let n_lost = (keep.len() - entries.len()) as u64;
            let (size, aside) =
                segment::rewrite(&self.dir, &segment.path, &frames, segment.tainted.get())?;
            if let Some(aside) = aside {
                tracing::warn!(
                    path = %aside.display(),
                    "copied aside thinned segment that had damaged records",
                );
            }
            let segment = &mut self.segments[index];
            segment.tainted.set(false);
            segment.reset(entries, size);
            self.total_bytes = self.total_bytes - old_size + size;
            self.n_records -= n_lost;
            self.n_critical -= n_lost;
            self.state.lost_total += n_lost;
        }
        self.n_records -= n_dropped;
        if n_dropped == 0 {
            return Ok(0);
        }
        self.state.dropped_routine_total += n_dropped;
        tracing::info!(
            segment = id,
            n_dropped,
            dropped_routine_total = self.state.dropped_routine_total,
            "dropped old routine records to stay within the outbox budget"
        );
        self.save_state()?;
        Ok(n_dropped)
    }
}

/// Reads frames of one segment in order, seeking only when they are not contiguous.
struct SegmentReader {
    file: BufReader<File>,
    pos: u64,
}

impl SegmentReader {
    /// The payload of `entry`, or `None` if the bytes on disk are no longer its frame.
    fn read(&mut self, entry: &Entry) -> io::Result<Option<Vec<u8>>> {
        let offset = u64::from(entry.offset);
        if self.pos != offset {
            self.file.seek(SeekFrom::Start(offset))?;
            self.pos = offset;
        }
        let mut frame = vec![0; entry.frame_len() as usize];
        match self.file.read_exact(&mut frame) {
            Ok(()) => self.pos += entry.frame_len(),
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => {
                // Force a seek next time: the position after a short read is unknown.
                self.pos = u64::MAX;
                return Ok(None);
            }
            Err(err) => {
                self.pos = u64::MAX;
                return Err(err);
            }
        }
        let matches = record::decode(&frame, entry.seq).is_ok_and(|meta| {
            meta.seq == entry.seq
                && meta.class == entry.class
                && meta.payload_len == entry.payload_len
        });
        if !matches {
            return Ok(None);
        }
        Ok(Some(frame.split_off(record::FRAME_HEADER_LEN)))
    }
}

/// Makes the creation, deletion and renaming of files in `dir` durable.
///
/// # Errors
///
/// When the directory cannot be opened or synced.
fn sync_dir(dir: &Path) -> Result<(), OutboxError> {
    crate::platform::sync_dir(dir)
        .map_err(|source| OutboxError::io("syncing directory", dir, source))
}

fn unix_ms(at: OffsetDateTime) -> i64 {
    // Milliseconds of any OffsetDateTime fit in i64.
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

fn from_unix_ms(unix_ms: i64) -> OffsetDateTime {
    // Record times come from a clock or were checked when read from disk, so they are in range.
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
