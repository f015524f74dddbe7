//! Wire protocol v1 between agent and collector.
//!
//! Design note (the full contract, with examples, is in `docs/protocol.md`):
//!
//! - **Transport.** JSON over HTTPS. The agent posts a [`Batch`] to `POST /api/v1/ingest` with its
//!   credential as a bearer token and receives an [`Ack`]. Enrollment is `POST /api/v1/enroll` with an
//!   [`EnrollRequest`], answered by an [`EnrollResponse`]. Errors are an [`ErrorBody`] with a 4xx/5xx.
//! - **Identity.** Who sent a batch comes from the credential, never from the body: there is no agent
//!   or unit field in a batch on purpose.
//! - **Exactly once.** Every [`Event`] carries a globally unique `id` (UUID v4, made by the agent when
//!   the event is recorded) and a per-agent `seq` that only grows. The collector stores an event the
//!   first time it sees its `id` and counts later copies as duplicates, so re-sending a whole batch
//!   after a lost response is always safe.
//! - **Forward compatibility.** An event is `kind` + `data`. The collector stores events whose kind it
//!   does not know, untouched, and counts them in the ack; an unknown kind never rejects a batch.
//!   Unknown fields inside known payloads are ignored. A batch whose `version` is not
//!   [`PROTOCOL_VERSION`] is refused as a whole, so the agent knows to wait for an upgraded collector.
//! - **Compatibility rule.** Renaming or retyping a field breaks old peers: add fields as optional,
//!   add kinds freely, and bump [`PROTOCOL_VERSION`] only for a change old collectors cannot read.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Secret;

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// The most events one batch may carry; the collector refuses larger batches.
pub const MAX_EVENTS_PER_BATCH: usize = 1000;

/// HTTP path of enrollment.
pub const ENROLL_PATH: &str = "/api/v1/enroll";

/// HTTP path of ingest.
pub const INGEST_PATH: &str = "/api/v1/ingest";

/// What an agent uploads: events recorded in its outbox, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// Protocol version; must equal [`PROTOCOL_VERSION`].
    pub version: u32,
    /// The agent's software version, e.g. `0.1.0`.
    pub agent_version: String,
    /// When the agent sent this batch, by the agent's clock; lets the collector see clock skew.
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
    /// The events, at most [`MAX_EVENTS_PER_BATCH`].
    pub events: Vec<Event>,
}

/// One thing the agent observed or was told, as it travels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Globally unique id, fixed when the event was recorded; the deduplication key.
    pub id: Uuid,
    /// Per-agent sequence number, strictly increasing in recording order.
    pub seq: u64,
    /// When it happened, by the agent's clock.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// What kind of event this is; see [`Payload::kind`] for the known ones.
    pub kind: String,
    /// The kind's payload, kept as raw JSON so unknown kinds survive the trip untouched.
    pub data: serde_json::Value,
}

impl Event {
    /// Builds an event with a fresh id from a typed payload.
    pub fn new(seq: u64, at: OffsetDateTime, payload: &Payload) -> Event {
        Event {
            id: Uuid::new_v4(),
            seq,
            at,
            kind: payload.kind().to_owned(),
            data: payload.data(),
        }
    }

    /// Reads the typed payload.
    ///
    /// Returns `Ok(None)` for a kind this version does not know.
    ///
    /// # Errors
    ///
    /// When the kind is known but `data` does not match its shape.
    pub fn payload(&self) -> Result<Option<Payload>, serde_json::Error> {
        let payload = match self.kind.as_str() {
            Heartbeat::KIND => Payload::Heartbeat(serde_json::from_value(self.data.clone())?),
            _ => return Ok(None),
        };
        Ok(Some(payload))
    }
}

/// The typed payloads this version knows. Later versions add variants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Payload {
    /// The agent is alive; carries a host snapshot.
    Heartbeat(Heartbeat),
}

impl Payload {
    /// The `kind` string this payload travels under.
    pub fn kind(&self) -> &'static str {
        match self {
            Payload::Heartbeat(_) => Heartbeat::KIND,
        }
    }

    fn data(&self) -> serde_json::Value {
        let res = match self {
            Payload::Heartbeat(heartbeat) => serde_json::to_value(heartbeat),
        };
        res.expect("wire payloads are plain structs that always serialize")
    }
}

/// Periodic sign of life with the state of the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The interval at which the agent sends heartbeats, so the collector can tell silence from
    /// slowness.
    pub interval_seconds: u32,
    /// The host as it is now.
    pub host: HostSnapshot,
}

impl Heartbeat {
    /// The `kind` of heartbeat events.
    pub const KIND: &'static str = "heartbeat";
}

/// Technical facts about the machine the agent runs on. Never file contents, document names,
/// browsing or personal data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostSnapshot {
    /// Host name.
    pub hostname: String,
    /// Operating system name, e.g. `Debian GNU/Linux` or `Windows`.
    pub os_name: String,
    /// Operating system version, e.g. `12`.
    pub os_version: String,
    /// Kernel version.
    pub kernel_version: String,
    /// CPU architecture, e.g. `x86_64`.
    pub arch: String,
    /// Seconds since boot.
    pub uptime_seconds: u64,
    /// Number of logical CPUs.
    pub cpu_count: u32,
    /// CPU use over the last sampling interval, 0–100.
    pub cpu_usage_percent: f32,
    /// Load averages over 1, 5 and 15 minutes, where the OS has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_average: Option<[f64; 3]>,
    /// Physical memory in bytes.
    pub memory_total_bytes: u64,
    /// Memory in use in bytes.
    pub memory_used_bytes: u64,
    /// Swap in bytes.
    pub swap_total_bytes: u64,
    /// Swap in use in bytes.
    pub swap_used_bytes: u64,
    /// Mounted disks.
    #[serde(default)]
    pub disks: Vec<Disk>,
}

/// One mounted file system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Disk {
    /// Where it is mounted, e.g. `/` or `C:\`.
    pub mount_point: String,
    /// File system type, e.g. `ext4`.
    pub file_system: String,
    /// Size in bytes.
    pub total_bytes: u64,
    /// Space available to unprivileged users in bytes.
    pub available_bytes: u64,
}

/// The collector's answer to a stored batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    /// Protocol version of the collector.
    pub version: u32,
    /// Events stored for the first time by this request.
    pub accepted: u32,
    /// Events already stored earlier (a re-sent batch); harmless.
    pub duplicates: u32,
    /// Events of a kind the collector does not know; stored as they came.
    pub unknown_kinds: u32,
    /// Events of a known kind whose data did not match its shape; stored as they came and flagged,
    /// so the agent must not send them again.
    #[serde(default)]
    pub invalid: Vec<InvalidEvent>,
    /// The highest `seq` of the batch; every event up to it is now stored and may leave the outbox.
    pub through_seq: Option<u64>,
    /// The collector's clock when it answered.
    #[serde(with = "time::serde::rfc3339")]
    pub server_time: OffsetDateTime,
}

/// An event the collector kept but could not read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvalidEvent {
    /// The event's id.
    pub id: Uuid,
    /// The event's sequence number.
    pub seq: u64,
    /// Why it could not be read.
    pub reason: String,
}

/// An agent asks to join, with a one-time enrollment token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// Protocol version; must equal [`PROTOCOL_VERSION`].
    pub version: u32,
    /// The enrollment token an administrator created for one unit.
    pub token: Secret,
    /// The host name of the machine, to tell agents apart in lists.
    pub hostname: String,
    /// The agent's software version.
    pub agent_version: String,
}

/// The collector accepted an enrollment and issued a credential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrollResponse {
    /// The agent's id from now on.
    pub agent_id: Uuid,
    /// Code of the unit the agent belongs to (from the token).
    pub unit_code: String,
    /// Name of that unit.
    pub unit_name: String,
    /// The agent's secret; sent once, stored by the collector only as a hash.
    pub credential: Secret,
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `unauthorized` or `unsupported_version`.
    pub error: String,
    /// What went wrong and what to do about it, for a person.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use expect_test::{expect, Expect};
    use time::macros::datetime;

    use super::*;

    fn sample_heartbeat() -> Payload {
        Payload::Heartbeat(Heartbeat {
            interval_seconds: 60,
            host: HostSnapshot {
                hostname: "may-chu-01".into(),
                os_name: "Debian GNU/Linux".into(),
                os_version: "12".into(),
                kernel_version: "6.1.0".into(),
                arch: "x86_64".into(),
                uptime_seconds: 3600,
                cpu_count: 4,
                cpu_usage_percent: 12.5,
                load_average: Some([0.5, 0.25, 0.125]),
                memory_total_bytes: 8 << 30,
                memory_used_bytes: 2 << 30,
                swap_total_bytes: 0,
                swap_used_bytes: 0,
                disks: vec![Disk {
                    mount_point: "/".into(),
                    file_system: "ext4".into(),
                    total_bytes: 100 << 30,
                    available_bytes: 40 << 30,
                }],
            },
        })
    }

    fn check_batch(batch: &Batch, expect: Expect) {
        let json = serde_json::to_string_pretty(batch).unwrap();
        expect.assert_eq(&json);
        let back: Batch = serde_json::from_str(&json).unwrap();
        assert_eq!(&back, batch, "a batch survives a round trip");
    }

    #[test]
    fn heartbeat_batch_layout() {
        let mut event = Event::new(
            7,
            datetime!(2026-11-23 08:12:00 +07:00),
            &sample_heartbeat(),
        );
        event.id = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        let batch = Batch {
            version: PROTOCOL_VERSION,
            agent_version: "0.1.0".into(),
            sent_at: datetime!(2026-11-23 01:12:05 UTC),
            events: vec![event],
        };
        check_batch(
            &batch,
            expect![[r#"
                {
                  "version": 1,
                  "agent_version": "0.1.0",
                  "sent_at": "2026-11-23T01:12:05Z",
                  "events": [
                    {
                      "id": "01234567-89ab-cdef-0123-456789abcdef",
                      "seq": 7,
                      "at": "2026-11-23T08:12:00+07:00",
                      "kind": "heartbeat",
                      "data": {
                        "interval_seconds": 60,
                        "host": {
                          "hostname": "may-chu-01",
                          "os_name": "Debian GNU/Linux",
                          "os_version": "12",
                          "kernel_version": "6.1.0",
                          "arch": "x86_64",
                          "uptime_seconds": 3600,
                          "cpu_count": 4,
                          "cpu_usage_percent": 12.5,
                          "load_average": [
                            0.5,
                            0.25,
                            0.125
                          ],
                          "memory_total_bytes": 8589934592,
                          "memory_used_bytes": 2147483648,
                          "swap_total_bytes": 0,
                          "swap_used_bytes": 0,
                          "disks": [
                            {
                              "mount_point": "/",
                              "file_system": "ext4",
                              "total_bytes": 107374182400,
                              "available_bytes": 42949672960
                            }
                          ]
                        }
                      }
                    }
                  ]
                }"#]],
        );
    }

    #[test]
    fn payload_reads_known_unknown_and_invalid_kinds() {
        let known = Event::new(1, OffsetDateTime::UNIX_EPOCH, &sample_heartbeat());
        assert_eq!(known.payload().unwrap(), Some(sample_heartbeat()));

        let mut unknown = known.clone();
        unknown.kind = "probe_result_v9".into();
        assert_eq!(
            unknown.payload().unwrap(),
            None,
            "unknown kinds are not an error"
        );

        let mut invalid = known;
        invalid.data = serde_json::json!({"interval_seconds": "sixty"});
        let err = invalid.payload().unwrap_err().to_string();
        assert!(err.contains("invalid type"), "{err}");
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let mut data = serde_json::to_value(match sample_heartbeat() {
            Payload::Heartbeat(heartbeat) => heartbeat,
        })
        .unwrap();
        data["host"]["gpu_count"] = 2.into();
        let event = Event {
            id: Uuid::nil(),
            seq: 1,
            at: OffsetDateTime::UNIX_EPOCH,
            kind: "heartbeat".into(),
            data,
        };
        assert_eq!(event.payload().unwrap(), Some(sample_heartbeat()));
    }
}
