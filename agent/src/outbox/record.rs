//! Byte layout of segment files: the segment header and the record frame.
//!
//! Everything here is pure: it encodes frames into bytes and decodes and scans byte slices, so
//! the recovery rules in [`scan`] are tested without touching a disk. The layout itself is
//! documented in the design note of the parent module.

use std::ops::Range;

use super::Class;

/// The first bytes of every segment file; the last byte is the format version.
pub(super) const SEGMENT_MAGIC: [u8; 8] = *b"CNTTOBX1";

/// Length of the segment header, which is just [`SEGMENT_MAGIC`].
pub(super) const SEGMENT_HEADER_LEN: u64 = SEGMENT_MAGIC.len() as u64;

/// Length of a frame's fixed header, before the payload.
pub(super) const FRAME_HEADER_LEN: usize = 28;

/// The largest payload a record may carry.
pub(super) const MAX_PAYLOAD_BYTES: usize = 16 << 20;

/// Sequence numbers read from disk must stay below this, so that counting up from any of them
/// can never overflow.
pub(super) const SEQ_LIMIT: u64 = 1 << 62;

const CLASS_ROUTINE: u8 = 0;
const CLASS_CRITICAL: u8 = 1;

/// The fixed fields of a decoded frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FrameMeta {
    pub(super) seq: u64,
    pub(super) class: Class,
    pub(super) written_at_ms: i64,
    pub(super) payload_len: u32,
}

impl FrameMeta {
    /// Length of the whole frame on disk, header included.
    pub(super) fn frame_len(&self) -> u64 {
        FRAME_HEADER_LEN as u64 + u64::from(self.payload_len)
    }
}

/// Encodes one record as a frame.
///
/// The caller checks `payload.len() <= MAX_PAYLOAD_BYTES` first.
pub(super) fn encode(seq: u64, class: Class, written_at_ms: i64, payload: &[u8]) -> Vec<u8> {
    let payload_len =
        u32::try_from(payload.len()).expect("callers reject payloads over MAX_PAYLOAD_BYTES");
    let mut frame = Vec::with_capacity(FRAME_HEADER_LEN + payload.len());
    frame.extend_from_slice(&[0; 4]);
    frame.extend_from_slice(&payload_len.to_le_bytes());
    frame.extend_from_slice(&seq.to_le_bytes());
    frame.extend_from_slice(&written_at_ms.to_le_bytes());
    frame.push(match class {
        Class::Routine => CLASS_ROUTINE,
        Class::Critical => CLASS_CRITICAL,
    });
    frame.extend_from_slice(&[0; 3]);
    frame.extend_from_slice(payload);
    let crc = crc32fast::hash(&frame[4..]);
    frame[..4].copy_from_slice(&crc.to_le_bytes());
    frame
}

/// Why bytes are not a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Invalid {
    /// The bytes end before the frame does: what a write cut short looks like.
    Incomplete,
    /// The bytes are all there but are not a valid frame.
    Bad,
}

/// Decodes the frame at the start of `buf`, which may extend past it.
///
/// A frame is valid when its fields are in range, its checksum matches and its seq is at least
/// `min_seq` (seqs only grow within and across segments).
pub(super) fn decode(buf: &[u8], min_seq: u64) -> Result<FrameMeta, Invalid> {
    let Some(header) = buf.get(..FRAME_HEADER_LEN) else {
        return Err(Invalid::Incomplete);
    };
    // Cheap field checks come before the checksum so that scanning garbage for the next frame
    // rarely computes one.
    let crc = u32_at(header, 0);
    let payload_len = u32_at(header, 4);
    let seq = u64_at(header, 8);
    let written_at_ms = i64::from_le_bytes(u64_at(header, 16).to_le_bytes());
    let class = match header[24] {
        CLASS_ROUTINE => Class::Routine,
        CLASS_CRITICAL => Class::Critical,
        _ => return Err(Invalid::Bad),
    };
    let fields_in_range = header[25..28] == [0; 3]
        && payload_len as usize <= MAX_PAYLOAD_BYTES
        && seq >= min_seq.max(1)
        && seq < SEQ_LIMIT
        && time_in_range(written_at_ms);
    if !fields_in_range {
        return Err(Invalid::Bad);
    }
    let Some(frame) = buf.get(..FRAME_HEADER_LEN + payload_len as usize) else {
        return Err(Invalid::Incomplete);
    };
    if crc32fast::hash(&frame[4..]) != crc {
        return Err(Invalid::Bad);
    }
    Ok(FrameMeta {
        seq,
        class,
        written_at_ms,
        payload_len,
    })
}

/// What the start of a segment file says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Header {
    /// Starts with [`SEGMENT_MAGIC`].
    Valid,
    /// Holds nothing but a prefix of the magic or zeros: a segment whose creation was cut short.
    Torn,
    /// Anything else.
    Garbage,
}

/// Classifies a whole segment file by its header.
pub(super) fn header(file: &[u8]) -> Header {
    if file.starts_with(&SEGMENT_MAGIC) {
        Header::Valid
    } else if SEGMENT_MAGIC.starts_with(file) || file.iter().all(|&byte| byte == 0) {
        Header::Torn
    } else {
        Header::Garbage
    }
}

/// A valid frame found by [`scan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Found {
    /// Offset of the frame in the file.
    pub(super) offset: u64,
    pub(super) meta: FrameMeta,
}

impl Found {
    /// The frame's bytes within the file.
    pub(super) fn range(&self) -> Range<usize> {
        // Offsets come from scanning an in-memory buffer, so they fit in usize.
        let start = self.offset as usize;
        start..start + self.meta.frame_len() as usize
    }
}

/// The result of scanning a segment file with a valid header.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Scan {
    /// Valid frames in file order, with strictly increasing seqs.
    pub(super) frames: Vec<Found>,
    /// Byte ranges that are not valid frames, to be set aside.
    pub(super) bad: Vec<Range<u64>>,
    /// Where a torn tail starts, to be truncated away.
    pub(super) torn_tail: Option<u64>,
    /// The seq after the last valid frame, or the `min_seq` given.
    pub(super) next_min_seq: u64,
}

/// Scans a segment file that starts with a valid header.
///
/// Valid frames are collected in order. At an invalid frame, the scan looks for the next offset
/// where a valid frame with a larger seq starts, so a damaged record costs only itself; the
/// skipped bytes are reported in [`Scan::bad`]. When no valid frame follows, the rest of the file
/// is a torn tail if `tail_may_be_torn` (the file is the newest segment, the only one a crash can
/// leave half written) and it is either cut short or ends in a zero byte (a crash after the
/// file grew but before all its data reached the disk); otherwise it is bad.
pub(super) fn scan(file: &[u8], min_seq: u64, tail_may_be_torn: bool) -> Scan {
    let mut res = Scan {
        next_min_seq: min_seq,
        ..Scan::default()
    };
    let mut pos = SEGMENT_HEADER_LEN as usize;
    while pos < file.len() {
        let invalid = match decode(&file[pos..], res.next_min_seq) {
            Ok(meta) => {
                res.frames.push(Found {
                    offset: pos as u64,
                    meta,
                });
                res.next_min_seq = meta.seq + 1;
                pos += meta.frame_len() as usize;
                continue;
            }
            Err(invalid) => invalid,
        };
        let next = (pos + 1..file.len()).find(|&at| decode(&file[at..], res.next_min_seq).is_ok());
        match next {
            Some(next) => {
                res.bad.push(pos as u64..next as u64);
                pos = next;
            }
            None => {
                let ends_in_zero = file.last() == Some(&0);
                let torn = invalid == Invalid::Incomplete || ends_in_zero;
                if tail_may_be_torn && torn {
                    res.torn_tail = Some(pos as u64);
                } else {
                    res.bad.push(pos as u64..file.len() as u64);
                }
                break;
            }
        }
    }
    res
}

/// Whether unix milliseconds are representable as an `OffsetDateTime`.
fn time_in_range(unix_ms: i64) -> bool {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000).is_ok()
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}
