//! The uplink: reads records from the outbox, uploads them gzip-compressed, and acknowledges them
//! in the outbox only once the collector has confirmed they are stored.
//!
//! Order: critical records (incidents, officers' reports) go first, ahead of any routine backlog, so
//! after a long outage a fresh incident does not wait behind a day of samples. The outbox only knows
//! a cumulative acknowledgement ("everything up to seq N"), so records delivered ahead of older ones
//! are remembered in memory (`delivered`) and the acknowledgement moves up to the first record not
//! yet delivered. If the agent dies before that, those records are sent again after a restart; the
//! collector stores each event id once, so nothing is duplicated.
//!
//! Nothing is deleted on a failure we can outlive: network errors, timeouts, 5xx, 429, an unknown or
//! revoked credential and an unsupported protocol version all leave the records in place and retry
//! with exponential backoff (with jitter, capped, and never sooner than a `Retry-After`). Only a
//! batch the collector declares malformed (400/422) is moved out of the way, into `rejected/` in the
//! state folder, so one poison batch cannot block every later event; it stays on disk for an
//! officer to inspect.
//!
//! An acknowledgement the outbox could not make durable (a full disk) is retried with the same
//! backoff while nothing else is left to send, instead of idling until the next record arrives
//! (issue 13, L2); the daemon also retries it every second (`Outbox::save_unsaved`).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use cntt_common::wire::{Ack, Batch, ErrorBody, Event, INGEST_PATH, PROTOCOL_VERSION};
use cntt_common::Secret;
use reqwest::StatusCode;
use time::OffsetDateTime;
use tokio::sync::{watch, Notify};

use crate::config::UplinkConfig;
use crate::outbox::{Class, Outbox, Record};
use crate::status::Board;

/// Largest batch body we try to build, in bytes of payload before compression.
const MAX_BATCH_BYTES: usize = 4 << 20;

/// How long the uplink idles when the outbox is empty and nobody wakes it.
const IDLE_POLL: Duration = Duration::from_secs(30);

/// The longest `Retry-After` we honour.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The outbox as shared between producers and the uplink.
pub type SharedOutbox = Arc<Mutex<Outbox>>;

/// Uploads the outbox to the collector.
#[derive(Debug)]
pub struct Uplink {
    /// HTTPS client that trusts only the pinned CA.
    pub client: reqwest::Client,
    /// Collector base URL.
    pub server: String,
    /// The agent's credential.
    pub credential: Secret,
    /// The outbox to drain.
    pub outbox: SharedOutbox,
    /// Producers notify it after each append so uploads start at once.
    pub wake: Arc<Notify>,
    /// Settings.
    pub config: UplinkConfig,
    /// Where refused batches are kept.
    pub rejected_dir: PathBuf,
    /// Where the last delivery and the last error are shown.
    pub board: Arc<Mutex<Board>>,
    /// Where the round trip of each delivering request is noted, when someone measures
    /// (`cntt-agent simulate`); none in the daemon.
    pub timings: Option<Arc<Timings>>,
}

/// Round trips of the requests that delivered records, with when they ended: what
/// `cntt-agent simulate` reports as the latency agents saw.
#[derive(Debug, Default)]
pub struct Timings {
    samples: Mutex<Vec<(std::time::Instant, Duration)>>,
    /// Delivery attempts that failed and were retried (unreachable, refused, cut off).
    failures: std::sync::atomic::AtomicU64,
    /// Requests sent again at once after their connection failed under them.
    resent: std::sync::atomic::AtomicU64,
}

impl Timings {
    /// How many requests were sent again at once after their connection failed under them.
    pub fn resent(&self) -> u64 {
        self.resent.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many delivery attempts failed so far.
    pub fn failures(&self) -> u64 {
        self.failures.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn note(&self, ended: std::time::Instant, round_trip: Duration) {
        self.samples
            .lock()
            .expect("timings lock is never poisoned")
            .push((ended, round_trip));
    }

    /// The round trips noted so far, each with the instant its request ended.
    pub fn samples(&self) -> Vec<(std::time::Instant, Duration)> {
        self.samples
            .lock()
            .expect("timings lock is never poisoned")
            .clone()
    }
}

/// What one delivery attempt came to.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The outbox had nothing to send.
    Empty,
    /// Records were stored by the collector.
    Delivered(usize),
    /// The collector found the batch too large: send fewer events.
    TooLarge,
    /// The collector did not understand a compressed body (an older collector): send plain JSON.
    Uncompressed,
    /// The batch was refused as malformed and set aside.
    SetAside(usize),
    /// Nothing changed; try again later, not before `after` if given.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
}

fn retry(reason: String) -> Outcome {
    Outcome::Retry {
        reason,
        after: None,
    }
}

impl Uplink {
    /// Uploads until `stop` turns true; a request in flight is finished first.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut backoff = Backoff::new(self.config.max_backoff);
        let mut batch_limit = self.config.batch_max_events;
        // Seqs stored by the collector but not yet covered by the outbox's cumulative ack.
        let mut delivered = BTreeSet::new();
        // Gzip until a collector shows it cannot read it.
        let mut compress = true;
        while !*stop.borrow() {
            let outcome = self
                .deliver_once(batch_limit, compress, &mut delivered)
                .await;
            let pause = match outcome {
                Outcome::Empty => Some(IDLE_POLL),
                Outcome::Delivered(n) => {
                    tracing::debug!(events = n, "batch delivered");
                    if backoff.failures > 0 {
                        tracing::info!(
                            after_failures = backoff.failures,
                            "collector reachable again"
                        );
                    }
                    backoff.reset();
                    batch_limit = (batch_limit * 2).min(self.config.batch_max_events);
                    let mut board = self.board.lock().expect("board lock is never poisoned");
                    board.last_delivery_at = Some(OffsetDateTime::now_utc());
                    board.last_upload_error = None;
                    None
                }
                Outcome::Uncompressed => {
                    tracing::warn!(
                        "the collector does not accept gzip bodies; sending plain JSON from now on"
                    );
                    compress = false;
                    None
                }
                Outcome::TooLarge => {
                    batch_limit = (batch_limit / 2).max(1);
                    tracing::warn!(
                        batch_limit,
                        "collector says the batch is too large; sending fewer events"
                    );
                    None
                }
                Outcome::SetAside(n) => {
                    backoff.reset();
                    tracing::error!(events = n, dir = %self.rejected_dir.display(), "collector refused a batch as malformed; kept in the rejected folder");
                    None
                }
                Outcome::Retry { reason, after } => {
                    if let Some(timings) = &self.timings {
                        timings
                            .failures
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    let delay = backoff
                        .next_delay()
                        .max(after.unwrap_or_default().min(MAX_RETRY_AFTER));
                    tracing::warn!(%reason, retry_in = ?delay, failures = backoff.failures, "upload failed; events stay in the outbox");
                    self.board
                        .lock()
                        .expect("board lock is never poisoned")
                        .last_upload_error = Some(reason);
                    Some(delay)
                }
            };
            match pause {
                Some(IDLE_POLL) => {
                    tokio::select! {
                        () = tokio::time::sleep(IDLE_POLL) => {}
                        () = self.wake.notified() => {
                            // Let a burst gather so it travels as one request.
                            tokio::time::sleep(self.config.linger).await;
                        }
                        _ = stop.changed() => {}
                    }
                }
                Some(pause) => {
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        _ = stop.changed() => {}
                    }
                }
                None => {}
            }
        }
    }

    /// Reads the next batch: undelivered critical records if any, else the oldest undelivered.
    fn next_batch(
        &self,
        batch_limit: usize,
        delivered: &BTreeSet<u64>,
    ) -> Result<Vec<Record>, String> {
        let outbox = self.outbox.lock().expect("outbox lock is never poisoned");
        let critical = outbox
            .peek_where(batch_limit, MAX_BATCH_BYTES, |seq, class| {
                class == Class::Critical && !delivered.contains(&seq)
            })
            .map_err(|err| format!("reading the outbox: {err}"))?;
        if !critical.is_empty() {
            return Ok(critical);
        }
        outbox
            .peek_where(batch_limit, MAX_BATCH_BYTES, |seq, _| {
                !delivered.contains(&seq)
            })
            .map_err(|err| format!("reading the outbox: {err}"))
    }

    async fn deliver_once(
        &self,
        batch_limit: usize,
        compress: bool,
        delivered: &mut BTreeSet<u64>,
    ) -> Outcome {
        let records = match self.next_batch(batch_limit, delivered) {
            Ok(records) => records,
            Err(reason) => return retry(reason),
        };
        if records.is_empty() {
            if delivered.is_empty() {
                return Outcome::Empty;
            }
            // Everything was delivered but the last acknowledgement failed: try it again now.
            return self.advance(delivered, Outcome::Empty);
        }
        let mut events = Vec::with_capacity(records.len());
        let mut unreadable = Vec::new();
        for record in &records {
            match serde_json::from_slice::<Event>(&record.payload) {
                Ok(event) => events.push(event),
                Err(err) => unreadable.push((record, err.to_string())),
            }
        }
        if !unreadable.is_empty() {
            // A record the agent itself cannot read would be refused forever; keep it aside.
            let kept: Vec<&Record> = unreadable.iter().map(|(record, _)| *record).collect();
            let reason = unreadable
                .iter()
                .map(|(record, err)| format!("seq {}: {err}", record.seq))
                .collect::<Vec<_>>()
                .join("; ");
            if let Err(err) = self.set_aside(&kept, "unreadable in the outbox", &reason) {
                return retry(format!("{err:#}"));
            }
            for record in &kept {
                delivered.insert(record.seq);
            }
        }
        if events.is_empty() {
            return self.advance(delivered, Outcome::SetAside(records.len()));
        }
        let batch = Batch {
            version: PROTOCOL_VERSION,
            agent_version: env!("CARGO_PKG_VERSION").into(),
            sent_at: OffsetDateTime::now_utc(),
            events,
        };
        let body = match encode(&batch, compress) {
            Ok(body) => body,
            Err(err) => return retry(format!("encoding a batch: {err:#}")),
        };
        let url = format!("{}{INGEST_PATH}", self.server);
        let request = self
            .client
            .post(&url)
            .bearer_auth(self.credential.expose())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        let request = if compress {
            request.header(reqwest::header::CONTENT_ENCODING, "gzip")
        } else {
            request
        };
        let again = request.try_clone();
        let sent = std::time::Instant::now();
        let response = match request.send().await {
            Ok(response) => response,
            // The collector closes a kept-alive connection after it has been idle for its header
            // timeout (30 s), about when an agent checking every 30 s sends again on it: the
            // request meets the closing connection. A batch is idempotent (stored once by event
            // id), so it goes again at once on a new connection, without a backoff or a warning;
            // only a second failure counts.
            Err(err) if !err.is_timeout() && again.is_some() => {
                tracing::debug!(error = %error_chain(&err), "request failed on a kept-alive connection; sending it again at once");
                if let Some(timings) = &self.timings {
                    timings
                        .resent
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                match again.expect("checked above").send().await {
                    Ok(response) => response,
                    Err(err) => return retry(format!("reaching {url}: {}", error_chain(&err))),
                }
            }
            Err(err) => return retry(format!("reaching {url}: {}", error_chain(&err))),
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        // Read with a size limit: a huge Content-Length or endless body from a hostile or broken
        // server is refused without growing memory (issue 13, L3).
        let body =
            match crate::identity::read_reply(response, crate::identity::MAX_REPLY_BYTES).await {
                Ok(body) => String::from_utf8_lossy(&body).into_owned(),
                Err(err) => return retry(format!("reading the answer from {url}: {err:#}")),
            };
        if status.is_success() {
            return match serde_json::from_str::<Ack>(&body) {
                Ok(ack) => {
                    if let Some(timings) = &self.timings {
                        let ended = std::time::Instant::now();
                        timings.note(ended, ended - sent);
                    }
                    for invalid in &ack.invalid {
                        tracing::warn!(id = %invalid.id, seq = invalid.seq, reason = %invalid.reason, "collector kept an event it could not read");
                    }
                    delivered.extend(records.iter().map(|record| record.seq));
                    // Shown even if the acknowledgement below cannot be saved: the collector has
                    // the records.
                    self.board
                        .lock()
                        .expect("board lock is never poisoned")
                        .last_delivery_at = Some(OffsetDateTime::now_utc());
                    self.advance(delivered, Outcome::Delivered(records.len()))
                }
                Err(err) => retry(format!("unreadable acknowledgement: {err}")),
            };
        }
        let error = serde_json::from_str::<ErrorBody>(&body).unwrap_or_else(|_| ErrorBody {
            error: "unknown".into(),
            message: body.chars().take(200).collect(),
        });
        match status {
            StatusCode::PAYLOAD_TOO_LARGE if batch_limit > 1 => Outcome::TooLarge,
            // An older collector reads the gzip body as broken JSON or refuses the encoding.
            StatusCode::BAD_REQUEST | StatusCode::UNSUPPORTED_MEDIA_TYPE
                if compress && matches!(error.error.as_str(), "invalid_json" | "unsupported_media_type" | "unsupported_encoding") =>
            {
                Outcome::Uncompressed
            }
            StatusCode::BAD_REQUEST if error.error == "unsupported_version" => {
                retry(format!("the collector does not speak our protocol yet: {}", error.message))
            }
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY | StatusCode::PAYLOAD_TOO_LARGE => {
                let all: Vec<&Record> = records.iter().collect();
                if let Err(err) = self.set_aside(&all, &format!("refused with {status}"), &error.message) {
                    return retry(format!("{err:#}"));
                }
                delivered.extend(records.iter().map(|record| record.seq));
                self.advance(delivered, Outcome::SetAside(records.len()))
            }
            StatusCode::UNAUTHORIZED => retry(format!(
                "the collector refused this agent's credential ({}); if the agent was revoked, enroll it again",
                error.message
            )),
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => Outcome::Retry {
                reason: format!("collector asks to slow down ({status}): {}", error.message),
                after: retry_after,
            },
            _ => retry(format!("collector answered {status}: {}", error.message)),
        }
    }

    /// Acknowledges in the outbox everything up to the first record not yet delivered.
    fn advance(&self, delivered: &mut BTreeSet<u64>, outcome: Outcome) -> Outcome {
        let mut outbox = self.outbox.lock().expect("outbox lock is never poisoned");
        let first_pending = match outbox.peek_where(1, 1, |seq, _| !delivered.contains(&seq)) {
            Ok(records) => records.first().map(|record| record.seq),
            Err(err) => return retry(format!("reading the outbox: {err}")),
        };
        let through = match first_pending {
            Some(seq) => seq.saturating_sub(1),
            None => delivered.last().copied().unwrap_or(0),
        };
        if through == 0 {
            return outcome;
        }
        match outbox.ack(through) {
            Ok(()) => {
                delivered.retain(|seq| *seq > through);
                outcome
            }
            // The collector has the events; re-sending them later is harmless (deduplicated).
            Err(err) => retry(format!("acknowledging in the outbox: {err}")),
        }
    }

    /// Writes records to `rejected/<time>-<first seq>-<last seq>.json` with the reason.
    fn set_aside(&self, records: &[&Record], what: &str, reason: &str) -> anyhow::Result<()> {
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return Ok(());
        };
        std::fs::create_dir_all(&self.rejected_dir)
            .with_context(|| format!("creating {}", self.rejected_dir.display()))?;
        let stamp = OffsetDateTime::now_utc().unix_timestamp();
        let path = self
            .rejected_dir
            .join(format!("{stamp}-{}-{}.json", first.seq, last.seq));
        let payloads: Vec<String> = records
            .iter()
            .map(|record| String::from_utf8_lossy(&record.payload).into_owned())
            .collect();
        let document = serde_json::json!({ "what": what, "reason": reason, "records": payloads });
        if let Err(err) = std::fs::write(&path, serde_json::to_vec_pretty(&document)?) {
            // On a full disk the file would stay behind, empty or cut short.
            let _ = std::fs::remove_file(&path);
            return Err(err).with_context(|| format!("writing {}", path.display()));
        }
        Ok(())
    }
}

/// The batch as JSON, gzip-compressed when `compress`.
fn encode(batch: &Batch, compress: bool) -> anyhow::Result<Vec<u8>> {
    let json = serde_json::to_vec(batch).context("encoding batch")?;
    if !compress {
        return Ok(json);
    }
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(json.len() / 4),
        flate2::Compression::fast(),
    );
    encoder.write_all(&json).context("compressing batch")?;
    encoder.finish().context("finishing compression")
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Exponential backoff from 1 s, doubling, capped, with ±20 % jitter so a province's agents do not
/// all return at the same second after a WAN outage.
#[derive(Debug)]
struct Backoff {
    max: Duration,
    failures: u32,
}

impl Backoff {
    fn new(max: Duration) -> Backoff {
        Backoff { max, failures: 0 }
    }

    fn reset(&mut self) {
        self.failures = 0;
    }

    fn next_delay(&mut self) -> Duration {
        let base = Duration::from_secs(1)
            .saturating_mul(1 << self.failures.min(16))
            .min(self.max);
        self.failures = self.failures.saturating_add(1);
        let jitter = f64::from(uuid::Uuid::new_v4().as_u128() as u16) / f64::from(u16::MAX); // 0..1
        base.mul_f64(0.8 + 0.4 * jitter).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap_with_jitter() {
        let mut backoff = Backoff::new(Duration::from_secs(60));
        let delays: Vec<Duration> = (0..10).map(|_| backoff.next_delay()).collect();
        assert!(
            delays[0] >= Duration::from_millis(800) && delays[0] <= Duration::from_millis(1200),
            "{delays:?}"
        );
        assert!(
            delays[3] >= Duration::from_millis(6400) && delays[3] <= Duration::from_millis(9600),
            "{delays:?}"
        );
        assert!(
            delays[9] <= Duration::from_secs(60) && delays[9] >= Duration::from_secs(48),
            "{delays:?}"
        );
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(1200));
    }
}
