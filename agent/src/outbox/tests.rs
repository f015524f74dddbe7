//! Tests of the outbox in temporary directories, damaged files included.
//!
//! Most tests are scripts run by [`check`]: each line is a command (append, ack, reopen, damage a
//! file...) and the transcript of what the outbox answered is compared with a snapshot
//! (`UPDATE_EXPECT=1 cargo test` refreshes them). Properties that must hold at every byte offset
//! are loops of their own, and two tests (Unix only) run a writer in a child process to kill it
//! or starve it of file space.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use expect_test::{expect, Expect};
use time::macros::datetime;
use time::OffsetDateTime;

use super::record::{self, FRAME_HEADER_LEN, SEGMENT_HEADER_LEN};
use super::segment;
use super::{Class, OpenReport, Outbox, OutboxConfig, OutboxError, StateRecovery};

/// The fixed time tests run at.
fn test_now() -> OffsetDateTime {
    datetime!(2025-06-01 00:00 UTC)
}

fn test_config() -> OutboxConfig {
    OutboxConfig {
        max_bytes: 1 << 20,
        max_age: Duration::from_secs(30 * 24 * 3600),
        segment_bytes: 200,
    }
}

fn open(dir: &Path, config: &OutboxConfig) -> (Outbox, OpenReport) {
    Outbox::open_with_clock(dir, config.clone(), test_now).expect("opening test outbox")
}

/// The payload of record `seq`, `len` bytes long: its seq, then dots.
fn payload(seq: u64, len: usize) -> Vec<u8> {
    let mut payload = format!("#{seq}").into_bytes();
    payload.resize(len, b'.');
    payload
}

/// Payloads are 12 bytes unless a test says otherwise, making frames 40 bytes long.
const PAYLOAD_LEN: usize = 12;
const FRAME_LEN: u64 = FRAME_HEADER_LEN as u64 + PAYLOAD_LEN as u64;

/// Offset of the `n`th frame (from 1) of a segment holding default-sized records.
fn frame_offset(n: u64) -> u64 {
    SEGMENT_HEADER_LEN + (n - 1) * FRAME_LEN
}

/// Runs a script against an outbox in a fresh directory and compares the transcript.
///
/// Commands, one per line (`#` starts a comment):
///
/// - `config max_bytes=N segment_bytes=N max_age_days=N`: limits for the next (re)open;
/// - `reopen`: drops the outbox and opens it again, printing the report;
/// - `append routine|critical [N] [size=N] [age_days=N]`: appends N records;
/// - `peek MAX_RECORDS MAX_BYTES`: prints seqs and classes, checking every payload;
/// - `ack SEQ`, `stats`, `ls`;
/// - `inspect`: prints stats as [`Outbox::inspect`] sees them from outside;
/// - `flip FILE OFFSET`, `truncate FILE LEN`, `zeros FILE N`, `write FILE TEXT`, `rm FILE`,
///   `backup FILE`, `restore FILE`: file surgery, where `FILE` is `seg:ID` for a segment,
///   or a path relative to the outbox directory.
///
/// The outbox is opened before the first command other than `config`.
fn check(script: &str, expect: Expect) {
    let dir = tempfile::tempdir().expect("creating temp dir");
    let mut script_run = Script {
        dir: dir.path().to_owned(),
        config: test_config(),
        outbox: None,
        lens: BTreeMap::new(),
        backups: BTreeMap::new(),
        out: String::new(),
    };
    for line in script.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        writeln!(script_run.out, "> {line}").expect("writing to a String");
        script_run.run(line);
    }
    // Paths print with '/' on every platform, so one snapshot holds for Windows too.
    let out = script_run
        .out
        .replace(
            &format!("{}{}", dir.path().display(), std::path::MAIN_SEPARATOR),
            "",
        )
        .replace('\\', "/");
    expect.assert_eq(&tidy(&out));
}

/// Shortens segment file names in output: `00000000000000000007.seg` becomes `seg:7`.
fn tidy(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(".seg") {
        let start = at.saturating_sub(20);
        match segment::parse_file_name(&rest[start..at + 4]) {
            Some(id) => {
                out.push_str(&rest[..start]);
                write!(out, "seg:{id}").expect("writing to a String");
            }
            None => out.push_str(&rest[..at + 4]),
        }
        rest = &rest[at + 4..];
    }
    out.push_str(rest);
    out
}

struct Script {
    dir: PathBuf,
    config: OutboxConfig,
    outbox: Option<Outbox>,
    /// Payload length of every record appended, to check what peek returns.
    lens: BTreeMap<u64, usize>,
    backups: BTreeMap<PathBuf, Vec<u8>>,
    out: String,
}

impl Script {
    fn run(&mut self, line: &str) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let arg = |index: usize| -> u64 {
            words
                .get(index)
                .and_then(|word| word.parse().ok())
                .unwrap_or_else(|| panic!("`{line}`: argument {index} must be a number"))
        };
        let option = |name: &str| -> Option<u64> {
            words.iter().find_map(|word| {
                let value = word.strip_prefix(name)?.strip_prefix('=')?;
                Some(value.parse().expect("options are numbers"))
            })
        };
        match words[0] {
            "config" => {
                if let Some(max_bytes) = option("max_bytes") {
                    self.config.max_bytes = max_bytes;
                }
                if let Some(segment_bytes) = option("segment_bytes") {
                    self.config.segment_bytes = segment_bytes;
                }
                if let Some(days) = option("max_age_days") {
                    self.config.max_age = Duration::from_secs(days * 24 * 3600);
                }
            }
            "reopen" => {
                self.outbox = None;
                let (outbox, report) = open(&self.dir, &self.config);
                self.outbox = Some(outbox);
                self.print_report(&report);
            }
            "append" => {
                let class = match words[1] {
                    "routine" => Class::Routine,
                    "critical" => Class::Critical,
                    other => panic!("unknown class {other}"),
                };
                let count = words.get(2).and_then(|word| word.parse().ok()).unwrap_or(1);
                let len = option("size").map_or(PAYLOAD_LEN, |size| size as usize);
                let age = Duration::from_secs(option("age_days").unwrap_or(0) * 24 * 3600);
                let mut results = Vec::new();
                for _ in 0..count {
                    let res = self
                        .outbox()
                        .append_at(class, test_now() - age, |seq| payload(seq, len));
                    match res {
                        Ok(seq) => {
                            self.lens.insert(seq, len);
                            results.push(seq.to_string());
                        }
                        Err(err) => results.push(format!("error: {}", error_chain(&err))),
                    }
                }
                writeln!(self.out, "  {}", results.join(" ")).expect("writing to a String");
            }
            "peek" => {
                let records = self
                    .outbox()
                    .peek(arg(1) as usize, arg(2) as usize)
                    .expect("peek");
                let mut seqs = Vec::new();
                for record in &records {
                    let len = self.lens.get(&record.seq).copied().unwrap_or(PAYLOAD_LEN);
                    assert_eq!(
                        record.payload,
                        payload(record.seq, len),
                        "payload of {}",
                        record.seq
                    );
                    let class = match record.class {
                        Class::Routine => "r",
                        Class::Critical => "c",
                    };
                    seqs.push(format!("{}{class}", record.seq));
                }
                writeln!(self.out, "  [{}]", seqs.join(" ")).expect("writing to a String");
            }
            "ack" => {
                let res = self.outbox().ack(arg(1));
                if let Err(err) = res {
                    writeln!(self.out, "  error: {}", error_chain(&err)).expect("writing");
                }
            }
            "stats" | "inspect" => {
                let stats = match words[0] {
                    "stats" => self.outbox().stats(),
                    _ => Outbox::inspect(&self.dir).expect("inspecting outbox"),
                };
                let oldest = stats.oldest.map_or("none".to_owned(), |oldest| {
                    format!("-{}", test_now() - oldest)
                });
                writeln!(
                    self.out,
                    "  records={} critical={} bytes={} segments={} dropped={} unreadable={} \
                     oldest={oldest} next_seq={} acked={}",
                    stats.records,
                    stats.critical_records,
                    stats.bytes,
                    stats.segments,
                    stats.dropped_routine_total,
                    stats.unreadable_total,
                    stats.next_seq,
                    stats.acked_through,
                )
                .expect("writing to a String");
            }
            "ls" => {
                let mut lines = Vec::new();
                list_files(&self.dir, &self.dir, &mut lines);
                lines.sort();
                for line in lines {
                    writeln!(self.out, "  {line}").expect("writing to a String");
                }
            }
            "flip" => {
                let path = self.file(words[1]);
                let mut bytes = fs::read(&path).expect("reading file to flip");
                bytes[arg(2) as usize] ^= 0xff;
                fs::write(&path, bytes).expect("writing flipped file");
            }
            "truncate" => {
                let path = self.file(words[1]);
                let file = fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .expect("open");
                file.set_len(arg(2)).expect("truncating file");
            }
            "zeros" => {
                let path = self.file(words[1]);
                let mut file = fs::OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .expect("open");
                file.write_all(&vec![0; arg(2) as usize])
                    .expect("appending zeros");
            }
            "write" => {
                let text = line.splitn(3, ' ').nth(2).unwrap_or_default();
                fs::write(self.file(words[1]), text).expect("writing file");
            }
            "rm" => fs::remove_file(self.file(words[1])).expect("removing file"),
            "backup" => {
                let path = self.file(words[1]);
                let bytes = fs::read(&path).expect("reading file to back up");
                self.backups.insert(path, bytes);
            }
            "restore" => {
                let path = self.file(words[1]);
                fs::write(&path, &self.backups[&path]).expect("restoring file");
            }
            other => panic!("unknown command {other}"),
        }
    }

    fn outbox(&mut self) -> &mut Outbox {
        if self.outbox.is_none() {
            let (outbox, report) = open(&self.dir, &self.config);
            assert_eq!(report.state, StateRecovery::Fresh);
            self.outbox = Some(outbox);
        }
        self.outbox.as_mut().expect("just opened")
    }

    fn file(&self, name: &str) -> PathBuf {
        match name.strip_prefix("seg:") {
            Some(id) => self.dir.join(segment::file_name(
                id.parse().expect("segment ids are numbers"),
            )),
            None => self.dir.join(name),
        }
    }

    fn print_report(&mut self, report: &OpenReport) {
        let out = &mut self.out;
        writeln!(
            out,
            "  {:?} records={} segments={} next_seq={} truncated={} dropped={}{}",
            report.state,
            report.records,
            report.segments,
            report.next_seq,
            report.truncated_bytes,
            report.dropped_routine,
            if report.is_clean() { " clean" } else { "" },
        )
        .expect("writing to a String");
        for path in &report.set_aside {
            writeln!(out, "  set aside: {}", path.display()).expect("writing to a String");
        }
        for note in &report.notes {
            writeln!(out, "  note: {note}").expect("writing to a String");
        }
    }
}

fn list_files(root: &Path, dir: &Path, lines: &mut Vec<String>) {
    for entry in fs::read_dir(dir).expect("listing dir") {
        let entry = entry.expect("listing dir");
        let path = entry.path();
        if path.is_dir() {
            list_files(root, &path, lines);
            continue;
        }
        let len = entry.metadata().expect("stat").len();
        let name = path.strip_prefix(root).expect("under root").display();
        lines.push(format!("{name} {len}").replace('\\', "/"));
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        write!(text, ": {cause}").expect("writing to a String");
        source = cause.source();
    }
    text
}

#[test]
fn append_peek_ack_round_trip() {
    check(
        "
        append routine 2
        append critical
        append routine
        peek 10 1000
        peek 2 1000
        peek 10 20  # at least one record, however small max_bytes
        peek 10 0
        peek 0 1000
        ack 2
        peek 10 1000
        stats
        inspect     # the same, read from the files by another process
        ack 1       # already acknowledged: nothing happens
        ack 99      # past the last seq: counts as the last
        peek 10 1000
        stats
        reopen
        peek 10 1000
        append routine
        peek 10 1000
        ",
        expect![[r#"
            > append routine 2
              1 2
            > append critical
              3
            > append routine
              4
            > peek 10 1000
              [1r 2r 3c 4r]
            > peek 2 1000
              [1r 2r]
            > peek 10 20
              [1r]
            > peek 10 0
              [1r]
            > peek 0 1000
              []
            > ack 2
            > peek 10 1000
              [3c 4r]
            > stats
              records=2 critical=1 bytes=168 segments=1 dropped=0 unreadable=0 oldest=-0s next_seq=5 acked=2
            > inspect
              records=2 critical=1 bytes=168 segments=1 dropped=0 unreadable=0 oldest=-0s next_seq=5 acked=2
            > ack 1
            > ack 99
            > peek 10 1000
              []
            > stats
              records=0 critical=0 bytes=168 segments=1 dropped=0 unreadable=0 oldest=none next_seq=5 acked=4
            > reopen
              Loaded records=0 segments=1 next_seq=5 truncated=0 dropped=0 clean
            > peek 10 1000
              []
            > append routine
              5
            > peek 10 1000
              [5r]
        "#]],
    );
}

#[test]
fn segments_roll_over_and_acked_ones_are_deleted() {
    check(
        "
        append routine 11  # 200-byte segments hold 4 records of 40 bytes after the header
        ls
        stats
        ack 5
        ls
        ack 8
        ls
        ack 11  # the newest segment stays, to be appended to
        ls
        stats
        append routine 3  # into the newest segment, then a new one
        ls
        ack 14
        ls
        ",
        expect![[r#"
            > append routine 11
              1 2 3 4 5 6 7 8 9 10 11
            > ls
              seg:1 168
              seg:5 168
              seg:9 128
              state 44
            > stats
              records=11 critical=0 bytes=464 segments=3 dropped=0 unreadable=0 oldest=-0s next_seq=12 acked=0
            > ack 5
            > ls
              seg:5 168
              seg:9 128
              state 44
            > ack 8
            > ls
              seg:9 128
              state 44
            > ack 11
            > ls
              seg:9 128
              state 44
            > stats
              records=0 critical=0 bytes=128 segments=1 dropped=0 unreadable=0 oldest=none next_seq=12 acked=11
            > append routine 3
              12 13 14
            > ls
              seg:9 168
              seg:13 88
              state 44
            > ack 14
            > ls
              seg:13 88
              state 44
        "#]],
    );
}

#[test]
fn seq_survives_restarts() {
    check(
        "
        append routine 3
        reopen
        append routine
        ack 4
        reopen
        append critical
        ack 5
        rm seg:5   # even with every segment gone
        reopen
        append routine
        ",
        expect![[r#"
            > append routine 3
              1 2 3
            > reopen
              Loaded records=3 segments=1 next_seq=4 truncated=0 dropped=0 clean
            > append routine
              4
            > ack 4
            > reopen
              Loaded records=0 segments=1 next_seq=5 truncated=0 dropped=0 clean
            > append critical
              5
            > ack 5
            > rm seg:5
            > reopen
              Loaded records=0 segments=0 next_seq=6 truncated=0 dropped=0 clean
            > append routine
              6
        "#]],
    );
}

#[test]
fn lost_or_damaged_state_is_rebuilt_without_reusing_seqs() {
    // Without a state file, records come back unacknowledged (delivered again, which the
    // collector deduplicates), and seqs jump to the clock in milliseconds.
    check(
        "
        append routine 3
        ack 2
        rm state
        reopen
        peek 10 1000
        append routine
        ",
        expect![[r#"
            > append routine 3
              1 2 3
            > ack 2
            > rm state
            > reopen
              Missing records=3 segments=1 next_seq=1748736000000 truncated=0 dropped=0
              note: the state file was lost: next seq raised from 4 to 1748736000000 (unix milliseconds) so that no seq is reused
            > peek 10 1000
              [1r 2r 3r]
            > append routine
              1748736000000
        "#]],
    );
    check(
        "
        append critical 2
        flip state 12
        reopen
        ls
        reopen
        write state not a state file
        reopen
        ",
        expect![[r#"
            > append critical 2
              1 2
            > flip state 12
            > reopen
              Corrupt records=2 segments=1 next_seq=1748736000000 truncated=0 dropped=0
              set aside: corrupt/state
              note: state file damaged, moved to corrupt/state
              note: the state file was lost: next seq raised from 3 to 1748736000000 (unix milliseconds) so that no seq is reused
            > ls
              seg:1 88
              corrupt/state 44
              state 44
            > reopen
              Loaded records=2 segments=1 next_seq=1748736000000 truncated=0 dropped=0 clean
            > write state not a state file
            > reopen
              Corrupt records=2 segments=1 next_seq=1748736000000 truncated=0 dropped=0
              set aside: corrupt/state.1
              note: state file damaged, moved to corrupt/state.1
              note: the state file was lost: next seq raised from 3 to 1748736000000 (unix milliseconds) so that no seq is reused
        "#]],
    );
}

#[test]
fn crash_between_ack_and_delete_skips_delivered_records() {
    check(
        "
        append routine 6
        backup seg:1
        ack 5
        ls
        restore seg:1   # as if the crash came before the delete
        reopen
        ls
        peek 10 1000
        ",
        expect![[r#"
            > append routine 6
              1 2 3 4 5 6
            > backup seg:1
            > ack 5
            > ls
              seg:5 88
              state 44
            > restore seg:1
            > reopen
              Loaded records=1 segments=1 next_seq=7 truncated=0 dropped=0 clean
            > ls
              seg:5 88
              state 44
            > peek 10 1000
              [6r]
        "#]],
    );
}

#[test]
fn damaged_segments_are_set_aside() {
    // A flipped byte in the second record of an older segment: the others survive.
    check(
        "
        append routine 6
        flip seg:1 60
        reopen
        peek 10 1000
        ls
        append critical
        reopen
        peek 10 1000
        ",
        expect![[r#"
            > append routine 6
              1 2 3 4 5 6
            > flip seg:1 60
            > reopen
              Loaded records=5 segments=2 next_seq=7 truncated=0 dropped=0
              set aside: corrupt/seg:1
              note: seg:1: damaged at 48..88, kept 3 records, original copied to corrupt/seg:1
            > peek 10 1000
              [1r 3r 4r 5r 6r]
            > ls
              seg:1 128
              seg:5 88
              corrupt/seg:1 168
              state 44
            > append critical
              7
            > reopen
              Loaded records=6 segments=2 next_seq=8 truncated=0 dropped=0 clean
            > peek 10 1000
              [1r 3r 4r 5r 6r 7c]
        "#]],
    );
    // Garbage where a segment should be, and a segment-like name with nothing after it.
    check(
        "
        append routine 2
        write seg:100 this is not a segment at all
        write seg:200 CNT
        write notes.txt unknown files are left alone
        reopen
        ls
        append routine
        peek 10 1000
        ",
        expect![[r#"
            > append routine 2
              1 2
            > write seg:100 this is not a segment at all
            > write seg:200 CNT
            > write notes.txt unknown files are left alone
            > reopen
              Loaded records=2 segments=1 next_seq=200 truncated=3 dropped=0
              set aside: corrupt/seg:100
              note: seg:100: not a segment, moved to corrupt/seg:100
              note: seg:200: creation cut short, deleted 3 bytes
            > ls
              seg:1 88
              corrupt/seg:100 28
              notes.txt 28
              state 44
            > append routine
              200
            > peek 10 1000
              [1r 2r 200r]
        "#]],
    );
    // A damaged middle record of the newest segment is set aside, not mistaken for a torn tail.
    check(
        "
        append critical 3
        flip seg:1 70
        reopen
        peek 10 1000
        ",
        expect![[r#"
            > append critical 3
              1 2 3
            > flip seg:1 70
            > reopen
              Loaded records=2 segments=1 next_seq=4 truncated=0 dropped=0
              set aside: corrupt/seg:1
              note: seg:1: damaged at 48..88, kept 2 records, original copied to corrupt/seg:1
            > peek 10 1000
              [1c 3c]
        "#]],
    );
}

#[test]
fn torn_tails_are_truncated() {
    check(
        "
        append routine 3
        truncate seg:1 120   # the third record cut short
        reopen
        peek 10 1000
        append routine
        zeros seg:1 100      # the file grew but its data never reached the disk
        reopen
        peek 10 1000
        ls
        ",
        expect![[r#"
            > append routine 3
              1 2 3
            > truncate seg:1 120
            > reopen
              Loaded records=2 segments=1 next_seq=3 truncated=32 dropped=0
              note: seg:1: truncated torn tail of 32 bytes at 88
            > peek 10 1000
              [1r 2r]
            > append routine
              3
            > zeros seg:1 100
            > reopen
              Loaded records=3 segments=1 next_seq=4 truncated=100 dropped=0
              note: seg:1: truncated torn tail of 100 bytes at 128
            > peek 10 1000
              [1r 2r 3r]
            > ls
              seg:1 128
              state 44
        "#]],
    );
}

#[test]
fn record_damaged_after_open_is_skipped_by_peek() {
    check(
        "
        append routine 6
        flip seg:1 100
        peek 10 1000
        peek 10 1000
        stats
        ack 6
        ls
        ",
        expect![[r#"
            > append routine 6
              1 2 3 4 5 6
            > flip seg:1 100
            > peek 10 1000
              [1r 2r 4r 5r 6r]
            > peek 10 1000
              [1r 2r 4r 5r 6r]
            > stats
              records=6 critical=0 bytes=256 segments=2 dropped=0 unreadable=1 oldest=-0s next_seq=7 acked=0
            > ack 6
            > ls
              seg:5 88
              corrupt/seg:1 168
              state 44
        "#]],
    );
}

#[test]
fn budget_drops_oldest_routine_records_never_critical() {
    check(
        "
        config max_bytes=800 segment_bytes=200
        append routine 3
        append critical
        append routine 12
        stats
        peek 100 10000
        append routine 3  # exactly at the budget
        stats
        append routine    # over it: the oldest segment loses its routine records
        stats
        peek 100 10000
        append routine 6  # the next oldest segments go entirely
        stats
        inspect
        peek 100 10000
        reopen
        stats
        ",
        expect![[r#"
            > config max_bytes=800 segment_bytes=200
            > append routine 3
              1 2 3
            > append critical
              4
            > append routine 12
              5 6 7 8 9 10 11 12 13 14 15 16
            > stats
              records=16 critical=1 bytes=672 segments=4 dropped=0 unreadable=0 oldest=-0s next_seq=17 acked=0
            > peek 100 10000
              [1r 2r 3r 4c 5r 6r 7r 8r 9r 10r 11r 12r 13r 14r 15r 16r]
            > append routine 3
              17 18 19
            > stats
              records=19 critical=1 bytes=800 segments=5 dropped=0 unreadable=0 oldest=-0s next_seq=20 acked=0
            > append routine
              20
            > stats
              records=17 critical=1 bytes=720 segments=5 dropped=3 unreadable=0 oldest=-0s next_seq=21 acked=0
            > peek 100 10000
              [4c 5r 6r 7r 8r 9r 10r 11r 12r 13r 14r 15r 16r 17r 18r 19r 20r]
            > append routine 6
              21 22 23 24 25 26
            > stats
              records=15 critical=1 bytes=640 segments=5 dropped=11 unreadable=0 oldest=-0s next_seq=27 acked=0
            > inspect
              records=15 critical=1 bytes=640 segments=5 dropped=11 unreadable=0 oldest=-0s next_seq=27 acked=0
            > peek 100 10000
              [4c 13r 14r 15r 16r 17r 18r 19r 20r 21r 22r 23r 24r 25r 26r]
            > reopen
              Loaded records=15 segments=5 next_seq=27 truncated=0 dropped=0 clean
            > stats
              records=15 critical=1 bytes=640 segments=5 dropped=11 unreadable=0 oldest=-0s next_seq=27 acked=0
        "#]],
    );
}

#[test]
fn budget_spent_on_critical_records_refuses_routine_ones() {
    check(
        "
        config max_bytes=400 segment_bytes=100
        append critical 9
        append routine
        append critical 2
        stats
        ack 5
        append routine
        stats
        ",
        expect![[r#"
            > config max_bytes=400 segment_bytes=100
            > append critical 9
              1 2 3 4 5 6 7 8 9
            > append routine
              error: refusing routine record: outbox holds 400 of its 400 bytes and has no routine record left to drop
            > append critical 2
              11 12
            > stats
              records=11 critical=11 bytes=488 segments=6 dropped=0 unreadable=0 oldest=-0s next_seq=13 acked=0
            > ack 5
            > append routine
              13
            > stats
              records=7 critical=6 bytes=352 segments=4 dropped=0 unreadable=0 oldest=-0s next_seq=14 acked=5
        "#]],
    );
}

#[test]
fn routine_records_older_than_max_age_are_dropped() {
    check(
        "
        config max_age_days=30
        append routine 3 age_days=40
        append critical age_days=40
        append routine 4 age_days=20
        append routine
        stats
        peek 100 10000
        reopen
        ",
        expect![[r#"
            > config max_age_days=30
            > append routine 3 age_days=40
              1 2 3
            > append critical age_days=40
              4
            > append routine 4 age_days=20
              5 6 7 8
            > append routine
              9
            > stats
              records=6 critical=1 bytes=264 segments=3 dropped=3 unreadable=0 oldest=-40d next_seq=10 acked=0
            > peek 100 10000
              [4c 5r 6r 7r 8r 9r]
            > reopen
              Loaded records=6 segments=3 next_seq=10 truncated=0 dropped=0 clean
        "#]],
    );
}

#[test]
fn oversized_payloads_are_refused() {
    check(
        "
        append critical size=16777217
        append critical size=100
        peek 10 1000
        ",
        expect![[r#"
            > append critical size=16777217
              error: refusing record of 16777217 bytes, over the limit of 16777216
            > append critical size=100
              2
            > peek 10 1000
              [2c]
        "#]],
    );
}

#[test]
fn frame_layout() {
    let frame = record::encode(258, Class::Critical, 1_700_000_000_123, b"hi");
    let hex: Vec<String> = frame.iter().map(|byte| format!("{byte:02x}")).collect();
    expect![[r#"
        crc      d5 9f 64 43
        len      02 00 00 00
        seq      02 01 00 00 00 00 00 00
        time     7b 68 e5 cf 8b 01 00 00
        class    01
        reserved 00 00 00
        payload  68 69"#]]
    .assert_eq(&format!(
        "crc      {}\nlen      {}\nseq      {}\ntime     {}\nclass    {}\nreserved {}\npayload  {}",
        hex[0..4].join(" "),
        hex[4..8].join(" "),
        hex[8..16].join(" "),
        hex[16..24].join(" "),
        hex[24],
        hex[25..28].join(" "),
        hex[28..].join(" "),
    ));
}

/// Builds an outbox with `n` default-sized records in one segment; returns its directory.
fn outbox_with(n: u64, config: &OutboxConfig) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("creating temp dir");
    let (mut outbox, _) = open(dir.path(), config);
    for _ in 0..n {
        outbox
            .append(Class::Routine, |seq| payload(seq, PAYLOAD_LEN))
            .expect("append");
    }
    dir
}

fn copy_dir(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().expect("creating temp dir");
    for entry in fs::read_dir(from).expect("listing dir") {
        let entry = entry.expect("listing dir");
        fs::copy(entry.path(), to.path().join(entry.file_name())).expect("copying file");
    }
    to
}

fn all_seqs(outbox: &Outbox) -> Vec<u64> {
    let records = outbox.peek(usize::MAX, usize::MAX).expect("peek");
    for record in &records {
        assert_eq!(record.payload, payload(record.seq, PAYLOAD_LEN));
    }
    records.iter().map(|record| record.seq).collect()
}

/// Cuts the newest segment at every byte of its last record, or zeroes that record's bytes from
/// every offset on: the earlier records survive, the tail is truncated, and appends carry on.
#[test]
fn torn_tail_at_every_offset_keeps_earlier_records() {
    let config = OutboxConfig {
        segment_bytes: 1 << 20,
        ..test_config()
    };
    let base = outbox_with(5, &config);
    let seg = segment::file_name(1);
    let last = frame_offset(5);
    for cut in last..last + FRAME_LEN {
        for zeroed in [false, true] {
            let dir = copy_dir(base.path());
            let path = dir.path().join(&seg);
            let mut bytes = fs::read(&path).expect("reading segment");
            match zeroed {
                true => bytes[cut as usize..].fill(0),
                false => bytes.truncate(cut as usize),
            }
            fs::write(&path, &bytes).expect("writing segment");
            let context = format!("cut at {cut}, zeroed {zeroed}");

            let (mut outbox, report) = open(dir.path(), &config);
            assert_eq!(all_seqs(&outbox), [1, 2, 3, 4], "{context}");
            assert_eq!(report.set_aside, Vec::<PathBuf>::new(), "{context}");
            assert_eq!(
                report.truncated_bytes,
                bytes.len() as u64 - last,
                "{context}"
            );
            let seq = outbox
                .append(Class::Critical, |seq| payload(seq, PAYLOAD_LEN))
                .expect("append after recovery");
            drop(outbox);
            let (outbox, report) = open(dir.path(), &config);
            assert!(report.is_clean(), "{context}: {report:?}");
            assert_eq!(all_seqs(&outbox), [1, 2, 3, 4, seq], "{context}");
        }
    }
}

/// Flips every byte of an older segment and of the newest one in turn: only the record holding
/// that byte is lost (none for a header byte), what is damaged is set aside or truncated, and
/// appends carry on without reusing a seq.
#[test]
fn flipped_byte_at_every_offset_loses_only_its_record() {
    let config = OutboxConfig {
        segment_bytes: frame_offset(6),
        ..test_config()
    };
    // Segment 1 holds records 1 to 5, segment 6 holds 6 to 10.
    let base = outbox_with(10, &config);
    for (id, first_seq) in [(1, 1), (6, 6)] {
        let seg = segment::file_name(id);
        let len = fs::metadata(base.path().join(&seg)).expect("stat").len();
        for offset in 0..len {
            let dir = copy_dir(base.path());
            let path = dir.path().join(&seg);
            let mut bytes = fs::read(&path).expect("reading segment");
            bytes[offset as usize] ^= 0x55;
            fs::write(&path, &bytes).expect("writing segment");
            let context = format!("segment {id}, offset {offset}");

            // A damaged header costs no record: frames are found behind it.
            let lost: Vec<u64> = match offset.checked_sub(SEGMENT_HEADER_LEN) {
                None => vec![],
                Some(in_body) => vec![first_seq + in_body / FRAME_LEN],
            };
            let expected: Vec<u64> = (1..=10).filter(|seq| !lost.contains(seq)).collect();
            let (mut outbox, report) = open(dir.path(), &config);
            assert_eq!(all_seqs(&outbox), expected, "{context}");
            let repaired = report.set_aside.len() == 1 || report.truncated_bytes > 0;
            assert!(repaired, "{context}: {report:?}");
            let seq = outbox
                .append(Class::Critical, |seq| payload(seq, PAYLOAD_LEN))
                .expect("append after recovery");
            assert!(seq >= 10, "{context}: seq {seq} reused");
            drop(outbox);
            let (outbox, report) = open(dir.path(), &config);
            assert!(report.is_clean(), "{context}: {report:?}");
            let mut expected = expected;
            expected.push(seq);
            assert_eq!(all_seqs(&outbox), expected, "{context}");
        }
    }
}

/// A failed append whose clean-up also failed leaves bytes after the last record; the next
/// append truncates them first.
#[test]
fn append_after_failed_cleanup_overwrites_partial_record() {
    let config = test_config();
    let dir = outbox_with(2, &config);
    let (mut outbox, _) = open(dir.path(), &config);
    let path = dir.path().join(segment::file_name(1));
    let mut file = fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open");
    file.write_all(&[0xab; 100]).expect("writing junk");
    outbox.writer_dirty = true;
    let seq = outbox
        .append(Class::Routine, |seq| payload(seq, PAYLOAD_LEN))
        .expect("append");
    drop(outbox);
    let (outbox, report) = open(dir.path(), &config);
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(all_seqs(&outbox), [1, 2, seq]);
}

/// Directory of the outbox a child process writes to, in [`child_writer`].
const CHILD_DIR_VAR: &str = "CNTT_OUTBOX_TEST_CHILD_DIR";

/// Segment size of the outbox a child process writes to, in [`child_writer`].
const CHILD_SEGMENT_BYTES_VAR: &str = "CNTT_OUTBOX_TEST_CHILD_SEGMENT_BYTES";

/// Not a test on its own: a child process of the tests below, which runs it with
/// [`CHILD_DIR_VAR`] set. It appends in a loop, printing each seq once its append returned,
/// and acknowledges every 50 records all but the last 20; an append error ends it.
#[test]
fn child_writer() {
    let Some(dir) = std::env::var_os(CHILD_DIR_VAR) else {
        return;
    };
    let segment_bytes = std::env::var(CHILD_SEGMENT_BYTES_VAR)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(2048);
    let config = OutboxConfig {
        max_bytes: 1 << 30,
        max_age: Duration::from_secs(3600),
        segment_bytes,
    };
    let (mut outbox, _) = Outbox::open(Path::new(&dir), config).expect("child opening outbox");
    let mut stdout = std::io::stdout().lock();
    for n in 0u64.. {
        let class = match n % 7 {
            0 => Class::Critical,
            _ => Class::Routine,
        };
        let seq = match outbox.append(class, |seq| payload(seq, PAYLOAD_LEN)) {
            Ok(seq) => seq,
            Err(err) => {
                writeln!(stdout, "error: {}", error_chain(&err)).expect("writing to stdout");
                return;
            }
        };
        writeln!(stdout, "appended {seq}").expect("writing to stdout");
        stdout.flush().expect("flushing stdout");
        if seq % 50 == 0 {
            outbox.ack(seq - 20).expect("child acknowledging");
            writeln!(stdout, "acked {}", seq - 20).expect("writing to stdout");
        }
    }
}

/// Starts [`child_writer`] on `dir`, through `sh` so that the caller can add shell commands.
#[cfg(unix)]
fn spawn_child_writer(dir: &Path, segment_bytes: u64, shell_prefix: &str) -> std::process::Child {
    let exe = std::env::current_exe().expect("finding the test binary");
    // Test names lack the crate name that module paths start with.
    let module = module_path!()
        .split_once("::")
        .map_or("", |(_, module)| module);
    use std::process::{Command, Stdio};

    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{shell_prefix} exec \"$0\" \"$1\" --exact --nocapture --test-threads=1"
        ))
        .arg(exe)
        .arg(format!("{module}::child_writer"))
        .env(CHILD_DIR_VAR, dir)
        .env(CHILD_SEGMENT_BYTES_VAR, segment_bytes.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawning child writer")
}

/// Kills a writer with SIGKILL mid-loop, several times over the same directory: after each,
/// every seq whose append returned is there, seqs are contiguous from the acknowledgement
/// cursor, and nothing else is.
#[cfg(unix)]
#[test]
fn killed_writer_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("creating temp dir");
    let mut appended = Vec::new();
    for round in 0..6u64 {
        let mut child = spawn_child_writer(dir.path(), 2048, "");
        let stdout = child.stdout.take().expect("child stdout is piped");
        let n_before_kill = 150 + round * 97 % 200;
        let mut n_seen = 0;
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
            let line = line.expect("reading child stdout");
            if let Some(seq) = line.strip_prefix("appended ") {
                appended.push(seq.parse::<u64>().expect("child prints seqs"));
                n_seen += 1;
                if n_seen == n_before_kill {
                    // `Child::kill` sends SIGKILL on Unix.
                    child.kill().expect("killing child writer");
                    break;
                }
            }
        }
        child.wait().expect("reaping child writer");
        assert_eq!(
            n_seen, n_before_kill,
            "round {round}: the child stopped early"
        );

        let (outbox, report) = open(dir.path(), &test_config());
        assert!(report.set_aside.is_empty(), "round {round}: {report:?}");
        let stats = outbox.stats();
        let present = all_seqs(&outbox);
        let expected: Vec<u64> = (stats.acked_through + 1..stats.next_seq).collect();
        assert_eq!(present, expected, "round {round}: {report:?}");
        let last_appended = *appended.last().expect("child appended");
        assert!(last_appended < stats.next_seq, "round {round}");
        assert!(
            appended.windows(2).all(|pair| pair[0] < pair[1]),
            "round {round}: seqs must strictly increase across restarts"
        );
    }
}

/// Starves a writer of file size (`ulimit -f`, the same failure as a full disk for a write):
/// the append fails cleanly and the outbox opens clean with every appended record.
#[cfg(unix)]
#[test]
fn write_failure_mid_record_leaves_outbox_consistent() {
    let dir = tempfile::tempdir().expect("creating temp dir");
    // SIGXFSZ would kill the child; a signal ignored by the shell stays ignored after exec.
    // 16 blocks of 512 bytes each (or 1 KiB, depending on the shell) end mid-record.
    let child = spawn_child_writer(dir.path(), 1 << 20, "trap '' XFSZ; ulimit -f 16;");
    let output = child.wait_with_output().expect("running child writer");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let appended: Vec<u64> = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("appended ")?.parse().ok())
        .collect();
    let error = stdout
        .lines()
        .find(|line| line.starts_with("error: "))
        .unwrap_or_else(|| panic!("child should hit the file size limit: {stdout}"));
    assert!(error.contains("appending record to"), "{error}");
    assert!(!appended.is_empty());

    let (outbox, report) = open(dir.path(), &test_config());
    assert!(report.is_clean(), "{report:?}");
    let stats = outbox.stats();
    let expected: Vec<u64> =
        (stats.acked_through + 1..=*appended.last().expect("non-empty")).collect();
    assert_eq!(all_seqs(&outbox), expected);
}

/// The agent shares the outbox between tasks behind a `std::sync::Mutex`, which needs `Send`.
#[test]
fn outbox_can_be_shared_behind_a_mutex() {
    fn assert_sync<T: Sync + Send>() {}
    assert_sync::<std::sync::Mutex<Outbox>>();
}

#[test]
fn open_fails_clearly_on_unusable_directory() {
    let dir = tempfile::tempdir().expect("creating temp dir");
    let file = dir.path().join("not-a-dir");
    fs::write(&file, "x").expect("writing file");
    let err = Outbox::open(&file.join("outbox"), test_config()).expect_err("cannot open");
    let message = error_chain(&err).replace(&dir.path().display().to_string(), "<tmp>");
    expect![[r#"creating outbox directory <tmp>/not-a-dir/outbox: Not a directory (os error 20)"#]]
        .assert_eq(&message);
    assert!(matches!(err, OutboxError::Io { .. }));
}

/// Runs `f` with tracing's output captured, and returns it with `f`'s result.
fn with_logs<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone)]
    struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Capture {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .expect("log buffer lock")
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let capture = Capture(Default::default());
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .without_time()
        .with_ansi(false)
        .finish();
    let res = tracing::subscriber::with_default(subscriber, f);
    let logs = String::from_utf8_lossy(&capture.0.lock().expect("log buffer lock")).into_owned();
    (res, logs)
}

/// Every failed append is counted as lost, in memory at once and in the state file when it can
/// be written; an append whose caller keeps the record (the spool) is not (issue 13, L2).
#[test]
fn failed_appends_are_counted_as_lost() {
    let config = test_config();
    let dir = tempfile::tempdir().expect("creating temp dir");
    let (mut outbox, _) = open(dir.path(), &config);
    for _ in 0..4 {
        outbox
            .append(Class::Routine, |seq| payload(seq, PAYLOAD_LEN))
            .expect("append");
    }
    // The fifth record needs a new segment, and a folder stands where its file goes: the same
    // failure as a full disk for the outbox (a file it cannot create).
    let in_the_way = dir.path().join(segment::file_name(5));
    fs::create_dir(&in_the_way).expect("creating folder");
    let (res, logs) = with_logs(|| outbox.append(Class::Critical, |seq| payload(seq, PAYLOAD_LEN)));
    assert!(res.is_err());
    assert!(
        logs.contains("record lost") && logs.contains("lost_total=1"),
        "{logs}"
    );
    assert!(outbox
        .append_uncounted(Class::Critical, |_| vec![0; 17 << 20])
        .is_err());
    assert!(outbox
        .append(Class::Routine, |_| vec![0; 17 << 20])
        .is_err());
    let stats = outbox.stats();
    assert_eq!(
        (stats.lost_total, stats.records, stats.state_saved),
        (2, 4, true)
    );
    fs::remove_dir(&in_the_way).expect("removing folder");
    assert_eq!(Outbox::inspect(dir.path()).expect("inspect").lost_total, 2);
    let seq = outbox
        .append(Class::Routine, |seq| payload(seq, PAYLOAD_LEN))
        .expect("append");
    assert_eq!(seq, 8, "failed appends consumed seqs 5 to 7");
    drop(outbox);
    let (outbox, report) = open(dir.path(), &config);
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(outbox.stats().lost_total, 2, "kept across restarts");
    assert_eq!(all_seqs(&outbox), [1, 2, 3, 4, 8]);
}

/// An acknowledgement whose state file cannot be written still frees the delivered segments and
/// is written again later, by `save_unsaved` or the next ack (issue 13, L2).
#[test]
fn unsaved_acknowledgement_is_retried() {
    let config = test_config();
    let dir = outbox_with(10, &config);
    let (mut outbox, _) = open(dir.path(), &config);
    // A folder where the state file's temporary copy goes makes every write of it fail.
    let in_the_way = dir.path().join("state.tmp");
    fs::create_dir(&in_the_way).expect("creating folder");
    let err = outbox.ack(8).expect_err("the state file cannot be written");
    assert!(error_chain(&err).contains("writing outbox state"), "{err}");
    let stats = outbox.stats();
    assert_eq!(
        (
            stats.records,
            stats.acked_through,
            stats.state_saved,
            stats.segments
        ),
        (2, 8, false, 1),
        "acknowledged in memory, delivered segments deleted"
    );
    assert_eq!(all_seqs(&outbox), [9, 10]);
    assert!(outbox.save_unsaved().is_err());
    assert!(outbox.ack(3).is_err(), "an older ack retries the save too");
    fs::remove_dir(&in_the_way).expect("removing folder");
    assert!(outbox.save_unsaved().expect("saved"));
    assert!(!outbox.save_unsaved().expect("nothing to save"));
    assert!(outbox.stats().state_saved);
    drop(outbox);
    let (outbox, report) = open(dir.path(), &config);
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(outbox.stats().acked_through, 8);
    assert_eq!(all_seqs(&outbox), [9, 10]);
}

/// The same retry by the next ack of a later seq.
#[test]
fn unsaved_acknowledgement_is_saved_by_the_next_ack() {
    let config = test_config();
    let dir = outbox_with(10, &config);
    let (mut outbox, _) = open(dir.path(), &config);
    let in_the_way = dir.path().join("state.tmp");
    fs::create_dir(&in_the_way).expect("creating folder");
    assert!(outbox.ack(4).is_err());
    fs::remove_dir(&in_the_way).expect("removing folder");
    outbox.ack(6).expect("ack");
    drop(outbox);
    let (outbox, _) = open(dir.path(), &config);
    assert_eq!(outbox.stats().acked_through, 6);
    assert_eq!(all_seqs(&outbox), [7, 8, 9, 10]);
}

/// A segment file deleted under a running outbox: a warning names it and the records lost with
/// it, the lost counter grows, and the rest of the outbox works on (issue 13, L2).
#[test]
fn vanished_segment_is_reported() {
    let config = test_config();
    let dir = outbox_with(10, &config);
    let (mut outbox, _) = open(dir.path(), &config);
    let first = dir.path().join(segment::file_name(1));
    fs::remove_file(&first).expect("deleting segment");
    let (n_lost, logs) = with_logs(|| outbox.check_files());
    assert_eq!(n_lost, 4);
    assert!(logs.contains("WARN"), "{logs}");
    assert!(logs.contains("outbox segment vanished"), "{logs}");
    assert!(logs.contains(&first.display().to_string()), "{logs}");
    assert!(logs.contains("records_lost=4"), "{logs}");
    let stats = outbox.stats();
    assert_eq!((stats.lost_total, stats.records), (4, 6));
    assert_eq!(all_seqs(&outbox), [5, 6, 7, 8, 9, 10]);

    // Found by peek: skipped at once, counted by the next call that changes the outbox.
    fs::remove_file(dir.path().join(segment::file_name(5))).expect("deleting segment");
    let seqs: Vec<u64> = outbox
        .peek(100, 1 << 20)
        .expect("peek")
        .iter()
        .map(|record| record.seq)
        .collect();
    assert_eq!(seqs, [9, 10]);
    outbox.ack(9).expect("ack");
    assert_eq!(outbox.stats().lost_total, 8);

    // The newest segment, deleted under the open writer: the next append notices, counts its
    // undelivered record and starts a new segment.
    fs::remove_file(dir.path().join(segment::file_name(9))).expect("deleting segment");
    let seq = outbox
        .append(Class::Critical, |seq| payload(seq, PAYLOAD_LEN))
        .expect("append");
    let stats = outbox.stats();
    assert_eq!((stats.lost_total, stats.records), (9, 1));
    assert_eq!(all_seqs(&outbox), [seq]);
    drop(outbox);
    let (outbox, report) = open(dir.path(), &config);
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(outbox.stats().lost_total, 9, "kept across restarts");
    assert_eq!(all_seqs(&outbox), [seq]);
}

/// State files of the first version, without the lost count, are still read.
#[test]
fn first_version_state_file_is_read() {
    let state = super::state::State {
        next_seq: 42,
        acked_through: 40,
        dropped_routine_total: 7,
        lost_total: 0,
    };
    let mut v1 = Vec::from(*b"CNTTOST1");
    for field in [42u64, 40, 7] {
        v1.extend_from_slice(&field.to_le_bytes());
    }
    let crc = crc32fast::hash(&v1);
    v1.extend_from_slice(&crc.to_le_bytes());
    assert_eq!(super::state::decode(&v1), Some(state));
    let v2 = super::state::encode(&super::state::State {
        lost_total: 3,
        ..state
    });
    assert_eq!(
        super::state::decode(&v2).map(|state| state.lost_total),
        Some(3)
    );
}
