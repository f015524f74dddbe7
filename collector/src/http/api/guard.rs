//! What a hostile network may cost the collector (issue 13): a per-address rate limit for
//! unauthenticated requests, a per-agent rate limit of batches, and an audit of refusals that no
//! flood can grow faster than a known bound.
//!
//! # Design note: refusals in the audit log
//!
//! The audit log is append-only (triggers refuse `UPDATE`, and `DELETE` for 365 days), so a row
//! per refused request would let anyone without a token fill the disk for a year (H1: 32 MB in
//! 0.6 s with 16 KB paths). Refusals of unauthenticated clients (`auth.failed`, `agent.enroll`
//! denied, `tls.handshake_failed`, `auth.rate_limited`) are therefore aggregated in memory by
//! [`FailureLog`], keyed by action, client address (IP, without the port) and reason:
//!
//! - the first refusal of a key in an interval (`limits.audit_interval`, a minute by default) is
//!   written at once with `"count": 1`, so a single real failure is in the log when the client
//!   sees its 401;
//! - later ones of the same key and interval are only counted; at the end of the interval the
//!   server's flush task writes one more row for the key, with `"count"` the number of refusals
//!   after the first and the interval's bounds, so the counts of a key's rows add up to every
//!   refusal;
//! - at most `limits.audit_addresses` keys get rows of their own per interval; the rest share the
//!   key of address `*`, so many addresses cannot grow the log either;
//! - the target (the request path) is cut to [`MAX_TARGET_CHARS`] characters, and a free-text
//!   reason (a TLS error) to [`MAX_REASON_CHARS`], so one row has a bounded size.
//!
//! So the audit log grows by at most `2 × (audit_addresses + 1) × (number of actions × reasons)`
//! rows of bounded size per interval, whatever the request rate. Batches refused by the per-agent
//! rate limit (`ingest.rate_limited`, [`FailureLog::record_agent`]) are aggregated the same way,
//! keyed by the agent instead of the address (agents behind one NAT are apart), with no cap on
//! the number of keys: only enrolled agents get there, so at most two rows per flooding agent and
//! interval. We chose memory over a side
//! table of counts because the database then sees no write at all per refused request: the flood
//! costs a hash map update. What is lost on a crash is the count of the last interval's repeats
//! (never its first row); the metric `cntt_collector_auth_failures_total` counts every refusal.
//!
//! # Rate limit
//!
//! [`RateLimiter`] is a token bucket per client IP address: `limits.unauthenticated_burst`
//! requests at once, refilled at `limits.unauthenticated_per_minute`. It is charged by every
//! enrollment request and every request without an `Authorization` header (except `/healthz` and
//! the OpenAPI document), before any work, and by every refused credential, after the lookup. An
//! empty bucket answers 429 with `Retry-After`, which the agent honours. A valid token never
//! costs anything there, so agents behind a NAT with a misbehaving neighbour keep working.
//!
//! Batches have their own bucket per agent (`limits.agent_batches_burst`, refilled at
//! `limits.agent_batches_per_second`), charged by `POST /api/v1/ingest` after the credential is
//! checked and before the body is read: one agent, however broken or hostile, cannot take the
//! database's write queue from the others. An agent sends a batch every few seconds, and after an
//! outage uploads its backlog a batch of up to 1,000 events at a time, each waiting for the
//! answer of the one before, which stays far below the default of 20 a second.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::config::LimitsConfig;
use crate::store::NewAuditEntry;

/// Longest target (request path) kept in an aggregated audit row, in characters.
pub const MAX_TARGET_CHARS: usize = 128;

/// Longest free-text reason kept in an aggregated audit row, in characters.
pub const MAX_REASON_CHARS: usize = 160;

/// Most addresses (or agents) a rate limiter remembers; full buckets are forgotten first.
const MAX_TRACKED_ADDRESSES: usize = 100_000;

/// The guard every request passes: the rate limiter and the aggregated refusal log.
#[derive(Debug)]
pub struct Guard {
    /// The limits it enforces.
    pub limits: LimitsConfig,
    /// Unauthenticated requests per address.
    pub limiter: RateLimiter,
    /// Batches per agent (by agent id).
    pub agents: RateLimiter<String>,
    /// Refusals waiting for their summary row.
    pub failures: FailureLog,
}

impl Guard {
    /// A guard with fresh state.
    pub fn new(limits: LimitsConfig) -> Guard {
        let per_second = f64::from(limits.unauthenticated_per_minute) / 60.0;
        Guard {
            limiter: RateLimiter::new(f64::from(limits.unauthenticated_burst), per_second),
            agents: RateLimiter::new(
                f64::from(limits.agent_batches_burst),
                f64::from(limits.agent_batches_per_second),
            ),
            failures: FailureLog::new(limits.audit_interval, limits.audit_addresses),
            limits,
        }
    }
}

/// A token bucket per client address (or other key, such as an agent id). Pure apart from the
/// clock, which callers pass in.
#[derive(Debug)]
pub struct RateLimiter<K = IpAddr> {
    burst: f64,
    per_second: f64,
    /// Tokens left and when they were counted, per key.
    buckets: Mutex<HashMap<K, (f64, Instant)>>,
}

impl<K: std::hash::Hash + Eq> RateLimiter<K> {
    /// A limiter allowing `burst` requests at once, refilled at `per_second`.
    pub fn new(burst: f64, per_second: f64) -> RateLimiter<K> {
        RateLimiter {
            burst,
            per_second,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request's token for `address` (the key): `Ok` when allowed, else `Err` with how
    /// long to wait (whole seconds, at least 1) for the next token.
    ///
    /// # Errors
    ///
    /// The wait, when the bucket is empty.
    pub fn take(&self, address: K, now: Instant) -> Result<(), Duration> {
        let mut buckets = self
            .buckets
            .lock()
            .expect("rate limiter lock is never poisoned");
        if buckets.len() >= MAX_TRACKED_ADDRESSES && !buckets.contains_key(&address) {
            let (burst, per_second) = (self.burst, self.per_second);
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.saturating_duration_since(*at).as_secs_f64() * per_second < burst
            });
        }
        let (tokens, at) = buckets.entry(address).or_insert((self.burst, now));
        let refilled = (*tokens
            + now.saturating_duration_since(*at).as_secs_f64() * self.per_second)
            .min(self.burst);
        *at = now;
        if refilled >= 1.0 {
            *tokens = refilled - 1.0;
            Ok(())
        } else {
            *tokens = refilled;
            let wait = ((1.0 - refilled) / self.per_second).ceil().max(1.0);
            Err(Duration::from_secs_f64(wait))
        }
    }
}

/// What identifies a group of refusals in one interval.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    action: String,
    /// The client address, or `*` past the cap; for [`FailureLog::record_agent`], the actor.
    address: String,
    reason: String,
    /// Whether `address` holds an authenticated agent rather than an address.
    by_agent: bool,
}

/// Refusals counted since a key's first row.
#[derive(Debug)]
struct Tally {
    /// The first refusal's entry, as written.
    first: NewAuditEntry,
    /// Refusals after the first.
    more: u64,
}

/// Refusals of unauthenticated clients, aggregated per interval (see the module's design note).
#[derive(Debug)]
pub struct FailureLog {
    interval: Duration,
    max_addresses: usize,
    /// The current interval's start and its tallies.
    current: Mutex<(OffsetDateTime, HashMap<Key, Tally>)>,
}

impl FailureLog {
    /// A log aggregating over `interval`, with at most `max_addresses` addresses of their own.
    pub fn new(interval: Duration, max_addresses: usize) -> FailureLog {
        FailureLog {
            interval,
            max_addresses,
            current: Mutex::new((OffsetDateTime::UNIX_EPOCH, HashMap::new())),
        }
    }

    /// How often [`FailureLog::flush`] should run.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Counts a refusal. Returns the row to write now when it is the first of its key in the
    /// current interval (with `count` 1, the target and reason cut to length), `None` otherwise.
    /// When the interval is over, the summaries of the last one are returned too, to write first.
    pub fn record(
        &self,
        entry: NewAuditEntry,
        now: OffsetDateTime,
    ) -> (Option<NewAuditEntry>, Vec<NewAuditEntry>) {
        self.record_keyed(entry, now, false)
    }

    /// Counts a refusal of an authenticated agent, keyed by the agent (its actor) rather than its
    /// address and with no cap on keys; otherwise as [`FailureLog::record`].
    pub fn record_agent(
        &self,
        entry: NewAuditEntry,
        now: OffsetDateTime,
    ) -> (Option<NewAuditEntry>, Vec<NewAuditEntry>) {
        self.record_keyed(entry, now, true)
    }

    fn record_keyed(
        &self,
        entry: NewAuditEntry,
        now: OffsetDateTime,
        by_agent: bool,
    ) -> (Option<NewAuditEntry>, Vec<NewAuditEntry>) {
        let mut current = self
            .current
            .lock()
            .expect("failure log lock is never poisoned");
        let due = if now - current.0 >= self.interval {
            let summaries = summaries(&current.1, current.0, now);
            *current = (now, HashMap::new());
            summaries
        } else {
            Vec::new()
        };
        let address = entry
            .remote_addr
            .as_deref()
            .map_or_else(|| "-".to_owned(), address_only);
        let reason = entry
            .details
            .get("reason")
            .and_then(serde_json::Value::as_str)
            .map(|reason| cut(reason, MAX_REASON_CHARS))
            .unwrap_or_default();
        let mut key = Key {
            action: entry.action.clone(),
            address: if by_agent {
                entry.actor.clone()
            } else {
                address.clone()
            },
            reason: reason.clone(),
            by_agent,
        };
        if !by_agent && !current.1.contains_key(&key) {
            let addresses = current
                .1
                .keys()
                .filter(|key| !key.by_agent && key.address != "*")
                .map(|key| key.address.as_str())
                .collect::<std::collections::HashSet<_>>();
            if addresses.len() >= self.max_addresses && !addresses.contains(key.address.as_str()) {
                key.address = "*".to_owned();
            }
        }
        if let Some(tally) = current.1.get_mut(&key) {
            tally.more += 1;
            return (None, due);
        }
        let mut first = entry;
        first.target = cut(&first.target, MAX_TARGET_CHARS);
        first.remote_addr = Some(if by_agent {
            address
        } else {
            key.address.clone()
        });
        if let Some(details) = first.details.as_object_mut() {
            details.insert("reason".into(), reason.into());
            details.insert("count".into(), 1.into());
        }
        current.1.insert(
            key,
            Tally {
                first: first.clone(),
                more: 0,
            },
        );
        (Some(first), due)
    }

    /// Ends the current interval when it is over: returns one summary row per key with refusals
    /// after its first row.
    pub fn flush(&self, now: OffsetDateTime) -> Vec<NewAuditEntry> {
        let mut current = self
            .current
            .lock()
            .expect("failure log lock is never poisoned");
        if now - current.0 < self.interval {
            return Vec::new();
        }
        let summaries = summaries(&current.1, current.0, now);
        *current = (now, HashMap::new());
        summaries
    }

    /// Ends the current interval now (at shutdown): the summary rows, as [`FailureLog::flush`].
    pub fn drain(&self, now: OffsetDateTime) -> Vec<NewAuditEntry> {
        let mut current = self
            .current
            .lock()
            .expect("failure log lock is never poisoned");
        let summaries = summaries(&current.1, current.0, now);
        *current = (now, HashMap::new());
        summaries
    }
}

/// The summary rows of an interval's tallies.
fn summaries(
    tallies: &HashMap<Key, Tally>,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Vec<NewAuditEntry> {
    let mut rows: Vec<NewAuditEntry> = tallies
        .values()
        .filter(|tally| tally.more > 0)
        .map(|tally| {
            let mut row = tally.first.clone();
            if let Some(details) = row.details.as_object_mut() {
                details.insert("count".into(), tally.more.into());
                details.insert("repeated".into(), true.into());
                details.insert("from".into(), crate::store::millis(from).into());
                details.insert("to".into(), crate::store::millis(to).into());
            }
            row
        })
        .collect();
    rows.sort_by(|a, b| (&a.action, &a.remote_addr).cmp(&(&b.action, &b.remote_addr)));
    rows
}

/// The IP address of `address:port` text (IPv6 in brackets too), or the text itself.
fn address_only(address: &str) -> String {
    match address.parse::<std::net::SocketAddr>() {
        Ok(socket) => socket.ip().to_string(),
        Err(_) => cut(address, 64),
    }
}

/// `text` cut to at most `max` characters, marked with `…` when cut.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(address: &str, reason: &str, target: &str) -> NewAuditEntry {
        NewAuditEntry {
            actor: "anonymous".into(),
            action: "auth.failed".into(),
            target: target.into(),
            outcome: "denied",
            remote_addr: Some(address.into()),
            details: serde_json::json!({ "credential": "api", "reason": reason }),
        }
    }

    #[test]
    fn buckets_allow_a_burst_then_the_rate() {
        let limiter = RateLimiter::new(3.0, 1.0);
        let start = Instant::now();
        let one: IpAddr = "10.0.0.1".parse().unwrap();
        let two: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(limiter.take(one, start), Ok(()));
        }
        assert_eq!(limiter.take(one, start), Err(Duration::from_secs(1)));
        assert_eq!(limiter.take(two, start), Ok(()), "addresses are apart");
        assert_eq!(
            limiter.take(one, start + Duration::from_millis(1100)),
            Ok(())
        );
        assert!(limiter
            .take(one, start + Duration::from_millis(1100))
            .is_err());
        // A slow rate asks for a longer wait.
        let slow = RateLimiter::new(1.0, 1.0 / 60.0);
        assert_eq!(slow.take(one, start), Ok(()));
        assert_eq!(slow.take(one, start), Err(Duration::from_secs(60)));
    }

    #[test]
    fn a_flood_makes_one_row_now_and_one_summary_per_interval() {
        let log = FailureLog::new(Duration::from_secs(60), 2);
        let t0 = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
        let long_path = format!("/api/v1/{}", "a".repeat(16 << 10));
        let mut written = Vec::new();
        for i in 0..10_000 {
            let at = t0 + time::Duration::milliseconds(i);
            let (now, due) = log.record(refusal("10.0.0.1:40000", "unknown", &long_path), at);
            written.extend(now);
            written.extend(due);
        }
        assert_eq!(written.len(), 1, "{written:?}");
        assert_eq!(written[0].remote_addr.as_deref(), Some("10.0.0.1"));
        assert_eq!(written[0].target.chars().count(), MAX_TARGET_CHARS + 1);
        assert_eq!(written[0].details["count"], 1);
        let summaries = log.flush(t0 + time::Duration::seconds(61));
        assert_eq!(summaries.len(), 1);
        assert_eq!(summaries[0].details["count"], 9_999);
        assert_eq!(summaries[0].details["repeated"], true);
        assert!(log.flush(t0 + time::Duration::seconds(62)).is_empty());
    }

    #[test]
    fn agents_are_limited_and_audited_apart() {
        let limiter = RateLimiter::<String>::new(2.0, 1.0);
        let start = Instant::now();
        assert_eq!(limiter.take("a".into(), start), Ok(()));
        assert_eq!(limiter.take("a".into(), start), Ok(()));
        assert!(limiter.take("a".into(), start).is_err());
        assert_eq!(limiter.take("b".into(), start), Ok(()), "agents are apart");
        // Two agents behind one address get a row each; repeats are counted.
        let log = FailureLog::new(Duration::from_secs(60), 1);
        let t0 = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
        let refusal = |agent: &str| NewAuditEntry {
            actor: format!("agent:{agent}"),
            action: "ingest.rate_limited".into(),
            target: "/api/v1/ingest".into(),
            outcome: "denied",
            remote_addr: Some("10.0.0.9:5000".into()),
            details: serde_json::json!({ "reason": "rate_limited" }),
        };
        let mut written = Vec::new();
        for agent in ["a", "b", "a", "a", "c"] {
            written.extend(log.record_agent(refusal(agent), t0).0);
        }
        let actors: Vec<_> = written.iter().map(|e| e.actor.as_str()).collect();
        assert_eq!(
            actors,
            ["agent:a", "agent:b", "agent:c"],
            "no cap on agents"
        );
        assert_eq!(written[0].remote_addr.as_deref(), Some("10.0.0.9"));
        let summaries = log.flush(t0 + time::Duration::seconds(60));
        assert_eq!(summaries.len(), 1);
        assert_eq!(summaries[0].actor, "agent:a");
        assert_eq!(summaries[0].details["count"], 2);
    }

    #[test]
    fn many_addresses_share_one_row_past_the_cap() {
        let log = FailureLog::new(Duration::from_secs(60), 2);
        let t0 = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
        let mut written = Vec::new();
        for i in 0..1_000 {
            let address = format!("10.0.{}.{}:1234", i / 250, i % 250);
            let (now, _) = log.record(refusal(&address, "missing", "/"), t0);
            written.extend(now);
        }
        let addresses: Vec<_> = written
            .iter()
            .map(|e| e.remote_addr.clone().unwrap())
            .collect();
        assert_eq!(addresses, ["10.0.0.0", "10.0.0.1", "*"]);
        let summaries = log.flush(t0 + time::Duration::seconds(60));
        assert_eq!(summaries.len(), 1);
        assert_eq!(summaries[0].details["count"], 997);
        // Reasons are apart; a free-text reason is cut.
        let (now, _) = log.record(
            refusal("10.0.0.1:1", &"x".repeat(1000), "/"),
            t0 + time::Duration::seconds(61),
        );
        let reason = now.unwrap().details["reason"].as_str().unwrap().to_owned();
        assert_eq!(reason.chars().count(), MAX_REASON_CHARS + 1);
    }
}
