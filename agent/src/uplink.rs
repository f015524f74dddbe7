//! The uplink: reads the oldest records from the outbox, uploads them, and acknowledges them in the
//! outbox only once the collector has confirmed they are stored.
//!
//! Nothing is deleted on a failure we can outlive: network errors, timeouts, 5xx, an unknown or
//! revoked credential and an unsupported protocol version all leave the records in place and retry
//! with exponential backoff (with jitter, capped). Only a batch the collector declares malformed
//! (400/422) is moved out of the way, into `rejected/` in the state folder, so one poison batch
//! cannot block every later event; it stays on disk for an officer to inspect.

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
use crate::outbox::{Outbox, Record};

/// Largest batch body we try to build, in bytes of payload.
const MAX_BATCH_BYTES: usize = 4 << 20;

/// How long the uplink idles when the outbox is empty and nobody wakes it.
const IDLE_POLL: Duration = Duration::from_secs(30);

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
}

/// What one delivery attempt came to.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The outbox had nothing to send.
    Empty,
    /// Records were stored by the collector and acknowledged.
    Delivered(usize),
    /// The collector found the batch too large: send fewer events.
    TooLarge,
    /// The batch was refused as malformed and set aside.
    SetAside(usize),
    /// Nothing changed; try again later.
    Retry(String),
}

impl Uplink {
    /// Uploads until `stop` turns true; a request in flight is finished first.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut backoff = Backoff::new(self.config.max_backoff);
        let mut batch_limit = self.config.batch_max_events;
        while !*stop.borrow() {
            let outcome = self.deliver_once(batch_limit).await;
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
                Outcome::Retry(reason) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(%reason, retry_in = ?delay, failures = backoff.failures, "upload failed; events stay in the outbox");
                    Some(delay)
                }
            };
            if let Some(pause) = pause {
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = self.wake.notified(), if pause == IDLE_POLL => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }

    async fn deliver_once(&self, batch_limit: usize) -> Outcome {
        let records = match self
            .outbox
            .lock()
            .expect("outbox lock is never poisoned")
            .peek(batch_limit, MAX_BATCH_BYTES)
        {
            Ok(records) => records,
            Err(err) => return Outcome::Retry(format!("reading the outbox: {err}")),
        };
        let Some(last_seq) = records.last().map(|record| record.seq) else {
            return Outcome::Empty;
        };
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
                return Outcome::Retry(format!("{err:#}"));
            }
        }
        if events.is_empty() {
            return self.ack(last_seq, Outcome::SetAside(records.len()));
        }
        let batch = Batch {
            version: PROTOCOL_VERSION,
            agent_version: env!("CARGO_PKG_VERSION").into(),
            sent_at: OffsetDateTime::now_utc(),
            events,
        };
        let url = format!("{}{INGEST_PATH}", self.server);
        let response = match self
            .client
            .post(&url)
            .bearer_auth(self.credential.expose())
            .json(&batch)
            .send()
            .await
        {
            Ok(response) => response,
            Err(err) => return Outcome::Retry(format!("reaching {url}: {}", error_chain(&err))),
        };
        let status = response.status();
        let body = match response.text().await {
            Ok(body) => body,
            Err(err) => {
                return Outcome::Retry(format!(
                    "reading the answer from {url}: {}",
                    error_chain(&err)
                ))
            }
        };
        if status.is_success() {
            return match serde_json::from_str::<Ack>(&body) {
                Ok(ack) => {
                    for invalid in &ack.invalid {
                        tracing::warn!(id = %invalid.id, seq = invalid.seq, reason = %invalid.reason, "collector kept an event it could not read");
                    }
                    self.ack(last_seq, Outcome::Delivered(records.len()))
                }
                Err(err) => Outcome::Retry(format!("unreadable acknowledgement: {err}")),
            };
        }
        let error = serde_json::from_str::<ErrorBody>(&body).unwrap_or_else(|_| ErrorBody {
            error: "unknown".into(),
            message: body.chars().take(200).collect(),
        });
        match status {
            StatusCode::PAYLOAD_TOO_LARGE if batch_limit > 1 => Outcome::TooLarge,
            StatusCode::BAD_REQUEST if error.error == "unsupported_version" => {
                Outcome::Retry(format!("the collector does not speak our protocol yet: {}", error.message))
            }
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY | StatusCode::PAYLOAD_TOO_LARGE => {
                let all: Vec<&Record> = records.iter().collect();
                if let Err(err) = self.set_aside(&all, &format!("refused with {status}"), &error.message) {
                    return Outcome::Retry(format!("{err:#}"));
                }
                self.ack(last_seq, Outcome::SetAside(records.len()))
            }
            StatusCode::UNAUTHORIZED => Outcome::Retry(format!(
                "the collector refused this agent's credential ({}); if the agent was revoked, enroll it again",
                error.message
            )),
            _ => Outcome::Retry(format!("collector answered {status}: {}", error.message)),
        }
    }

    fn ack(&self, through: u64, outcome: Outcome) -> Outcome {
        match self
            .outbox
            .lock()
            .expect("outbox lock is never poisoned")
            .ack(through)
        {
            Ok(()) => outcome,
            // The collector has the events; re-sending them later is harmless (deduplicated).
            Err(err) => Outcome::Retry(format!("acknowledging in the outbox: {err}")),
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
        std::fs::write(&path, serde_json::to_vec_pretty(&document)?)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
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
