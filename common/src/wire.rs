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

/// A batch as the collector reads it: the same JSON as [`Batch`], with each event's `data` left as
/// the text it came in (borrowed from the request body), so a known kind is read once into its
/// typed payload and anything else is stored as it came, without building a JSON tree of every
/// event first (issue 15).
#[derive(Debug, Deserialize)]
pub struct BatchView<'a> {
    /// Protocol version; must equal [`PROTOCOL_VERSION`].
    pub version: u32,
    /// The agent's software version.
    pub agent_version: String,
    /// When the agent sent this batch, by the agent's clock.
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
    /// The events.
    #[serde(borrow)]
    pub events: Vec<EventView<'a>>,
}

/// An [`Event`] as the collector reads it: `data` is the payload's JSON text as sent.
#[derive(Debug, Deserialize)]
pub struct EventView<'a> {
    /// Globally unique id; the deduplication key.
    pub id: Uuid,
    /// Per-agent sequence number.
    pub seq: u64,
    /// When it happened, by the agent's clock.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// What kind of event this is.
    pub kind: String,
    /// The kind's payload as JSON text.
    #[serde(borrow)]
    pub data: &'a serde_json::value::RawValue,
}

impl EventView<'_> {
    /// Reads the typed payload, like [`Event::payload`].
    ///
    /// # Errors
    ///
    /// When the kind is known but `data` does not match its shape.
    pub fn payload(&self) -> Result<Option<Payload>, serde_json::Error> {
        let data = self.data.get();
        let payload = match self.kind.as_str() {
            Heartbeat::KIND => Payload::Heartbeat(serde_json::from_str(data)?),
            ProbeResult::KIND => Payload::ProbeResult(serde_json::from_str(data)?),
            Incident::KIND => Payload::Incident(Box::new(serde_json::from_str(data)?)),
            PeriodicReport::KIND => Payload::PeriodicReport(Box::new(serde_json::from_str(data)?)),
            _ => return Ok(None),
        };
        Ok(Some(payload))
    }
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
    /// Builds an event with a fresh id from a typed payload. The id is a UUIDv7 (RFC 9562): unique
    /// like any UUID, and ordered by time, so the collector's index of ids grows at its end
    /// instead of at random places (issue 15).
    pub fn new(seq: u64, at: OffsetDateTime, payload: &Payload) -> Event {
        Event {
            id: Uuid::now_v7(),
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
        // Read from the tree in place, without copying it first.
        let data = &self.data;
        let payload = match self.kind.as_str() {
            Heartbeat::KIND => Payload::Heartbeat(Deserialize::deserialize(data)?),
            ProbeResult::KIND => Payload::ProbeResult(Deserialize::deserialize(data)?),
            Incident::KIND => Payload::Incident(Box::new(Deserialize::deserialize(data)?)),
            PeriodicReport::KIND => {
                Payload::PeriodicReport(Box::new(Deserialize::deserialize(data)?))
            }
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
    /// One check of one target.
    ProbeResult(ProbeResult),
    /// An incident opened, updated or resolved, detected by the agent or filed by an officer.
    Incident(Box<Incident>),
    /// An IT officer's periodic report (QĐ 02/2017 Điều 12.1), one version of it.
    PeriodicReport(Box<PeriodicReport>),
}

impl Payload {
    /// The `kind` string this payload travels under.
    pub fn kind(&self) -> &'static str {
        match self {
            Payload::Heartbeat(_) => Heartbeat::KIND,
            Payload::ProbeResult(_) => ProbeResult::KIND,
            Payload::Incident(_) => Incident::KIND,
            Payload::PeriodicReport(_) => PeriodicReport::KIND,
        }
    }

    fn data(&self) -> serde_json::Value {
        let res = match self {
            Payload::Heartbeat(heartbeat) => serde_json::to_value(heartbeat),
            Payload::ProbeResult(result) => serde_json::to_value(result),
            Payload::Incident(incident) => serde_json::to_value(incident),
            Payload::PeriodicReport(report) => serde_json::to_value(report),
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
    /// The agent's local buffer, so the collector can see what an outage cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    // Boxed: it keeps `Payload` variants close in size (clippy::large_enum_variant).
    pub outbox: Option<Box<OutboxState>>,
}

/// Counters of the agent's outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxState {
    /// Events waiting for upload.
    pub pending: u64,
    /// Bytes on disk.
    pub bytes: u64,
    /// Routine samples dropped to stay within budget, over the agent's life.
    pub dropped_routine_total: u64,
    /// Records found damaged on disk and skipped, since the agent started.
    pub unreadable_total: u64,
    /// Records lost before delivery, over the agent's life: appends that failed (a full disk, a
    /// routine sample over budget) and records of an outbox segment deleted by someone else.
    /// Absent (0) from agents older than issue 13.
    #[serde(default)]
    pub lost_total: u64,
    /// What the outbox found damaged and repaired when the agent started; sent once, in the first
    /// heartbeat after the start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recovery_notes: Vec<String>,
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
    /// Network interfaces with their counters since boot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Interface>,
}

/// Counters of one network interface since boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    /// Interface name, e.g. `eth0`.
    pub name: String,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Send errors.
    pub tx_errors: u64,
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

/// Where a target sits, which decides what its failure means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// Inside the agency: gateway, switches, internal servers.
    Lan,
    /// The provincial WAN: its edge, the Sở TT&TT data centre, the collector.
    Wan,
    /// The public Internet.
    Internet,
    /// A service the agency runs: portal, mail, one-stop-shop system.
    Server,
}

/// How a target is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// ICMP echo.
    Icmp,
    /// TCP connect.
    Tcp,
    /// HTTP(S) request.
    Http,
    /// DNS resolution.
    Dns,
}

/// The outcome of one check of one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// The target's name in the agent's config, unique per agent.
    pub target: String,
    /// Where it sits.
    pub target_kind: TargetKind,
    /// How it was checked.
    pub check: CheckKind,
    /// What was checked: host, host:port, URL or name.
    pub address: String,
    /// Whether the check passed.
    pub ok: bool,
    /// Round-trip or response time in milliseconds, when measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// HTTP status, for HTTP checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// When the server's certificate expires, for HTTPS checks.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub cert_not_after: Option<OffsetDateTime>,
}

impl ProbeResult {
    /// The `kind` of probe result events.
    pub const KIND: &'static str = "probe_result";
}

/// What kind of trouble an incident is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    /// The agency's LAN.
    Lan,
    /// The WAN: transmission line or WAN equipment.
    Wan,
    /// The Internet connection.
    Internet,
    /// A server or service.
    Server,
    /// The machine the agent runs on: disk full, memory exhausted.
    Host,
    /// Information security.
    Security,
    /// Anything else an officer reports.
    Other,
}

/// How severe an incident is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Little effect.
    Low,
    /// Some users affected.
    Medium,
    /// A unit cannot work normally.
    High,
    /// Widespread or security-critical.
    Critical,
}

/// Where an incident comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentSource {
    /// Found by the agent's checks.
    Detected,
    /// Filed by an officer.
    Manual,
}

/// Which step of an incident's life an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentPhase {
    /// It started.
    Opened,
    /// Its consequences or evidence changed.
    Updated,
    /// It ended.
    Resolved,
}

/// One failing (or recovering) check behind an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Target name.
    pub target: String,
    /// Where it sits.
    pub target_kind: TargetKind,
    /// How it was checked.
    pub check: CheckKind,
    /// What was checked.
    pub address: String,
    /// When this check ran.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Whether it passed.
    pub ok: bool,
    /// Its error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its round-trip time in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
}

/// One version of an officer's periodic report, as submitted on the agent.
///
/// The document is the Markdown the officer edited (see [`crate::report`]); the collector checks
/// it again on arrival. Timeliness is judged by `submitted_at`, corrected by the agent's clock
/// offset the collector measures on the batch that carries it, so a report submitted on time while
/// the WAN was down counts as on time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeriodicReport {
    /// Scheme name, e.g. `quarterly`.
    pub scheme: String,
    /// Period label, e.g. `2026-Q4`.
    pub period: String,
    /// The unit code the document names; must be the agent's unit.
    pub unit_code: String,
    /// The officer who submitted it.
    pub officer: String,
    /// When the officer submitted it, by the agent's clock.
    #[serde(with = "time::serde::rfc3339")]
    pub submitted_at: OffsetDateTime,
    /// The document as submitted.
    pub document: String,
}

impl PeriodicReport {
    /// The `kind` this payload travels under.
    pub const KIND: &'static str = "periodic_report";
}

/// An incident as the agent knows it. Every phase carries the whole current picture, so the
/// collector can take the newest event as the truth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Stable id across phases, made by the agent.
    pub incident_id: Uuid,
    /// Which step this event reports.
    pub phase: IncidentPhase,
    /// What kind of trouble.
    pub kind: IncidentKind,
    /// Detected or filed by hand.
    pub source: IncidentSource,
    /// How severe.
    pub severity: Severity,
    /// One line for people (Vietnamese for manual incidents).
    pub title: String,
    /// More words, may be empty.
    #[serde(default)]
    pub description: String,
    /// The target whose failure is the incident, for detected ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// When it started: the first failed check, or when an officer says.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// When it ended: the first good check; none while open.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub ended_at: Option<OffsetDateTime>,
    /// When a person discovered it, for manual incidents.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub discovered_at: Option<OffsetDateTime>,
    /// Systems affected, as the officer names them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub systems_affected: Vec<String>,
    /// The failing checks and their last errors and round-trip times.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Evidence>,
    /// Targets that failed because of this incident (e.g. WAN and servers behind a dead LAN
    /// gateway); they have no incident of their own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consequences: Vec<String>,
}

/// Longest incident title, in characters: the same for incidents from agents and from the API.
pub const MAX_INCIDENT_TITLE: usize = 200;
/// Longest description of an incident, in characters.
pub const MAX_INCIDENT_TEXT: usize = 10_000;
/// Most entries in each of an incident's lists (systems, consequences, evidence).
pub const MAX_INCIDENT_LIST: usize = 200;
/// Longest name in those lists, and longest target, address or error of a piece of evidence.
pub const MAX_INCIDENT_NAME: usize = 2_000;

impl Incident {
    /// The `kind` of incident events.
    pub const KIND: &'static str = "incident";

    /// Checks every field against the limits above, so no agent can store an incident bigger
    /// than a person could file through the API (issue 13, L1).
    ///
    /// # Errors
    ///
    /// The first field over its limit, in English.
    pub fn check_lengths(&self) -> Result<(), String> {
        let over = |name: &str, text: &str, limit: usize| {
            (text.chars().count() > limit)
                .then(|| format!("incident {name} is longer than {limit} characters"))
        };
        let list = |name: &str, items: &[String]| {
            if items.len() > MAX_INCIDENT_LIST {
                return Some(format!(
                    "incident {name} has more than {MAX_INCIDENT_LIST} entries"
                ));
            }
            items
                .iter()
                .find_map(|item| over(name, item, MAX_INCIDENT_NAME))
        };
        let evidence = || {
            if self.evidence.len() > MAX_INCIDENT_LIST {
                return Some(format!(
                    "incident evidence has more than {MAX_INCIDENT_LIST} entries"
                ));
            }
            self.evidence.iter().find_map(|piece| {
                over("evidence target", &piece.target, MAX_INCIDENT_NAME)
                    .or_else(|| over("evidence address", &piece.address, MAX_INCIDENT_NAME))
                    .or_else(|| {
                        over(
                            "evidence error",
                            piece.error.as_deref().unwrap_or_default(),
                            MAX_INCIDENT_NAME,
                        )
                    })
            })
        };
        let problem = over("title", &self.title, MAX_INCIDENT_TITLE)
            .or_else(|| over("description", &self.description, MAX_INCIDENT_TEXT))
            .or_else(|| {
                over(
                    "target",
                    self.target.as_deref().unwrap_or_default(),
                    MAX_INCIDENT_NAME,
                )
            })
            .or_else(|| list("systems_affected", &self.systems_affected))
            .or_else(|| list("consequences", &self.consequences))
            .or_else(evidence);
        match problem {
            Some(problem) => Err(problem),
            None => Ok(()),
        }
    }
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
    /// Something the person enrolling must know, for example that the unit has ended and which
    /// unit its history is counted for. Absent from older collectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
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
            outbox: None,
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
                interfaces: vec![],
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
        let Payload::Heartbeat(heartbeat) = sample_heartbeat() else {
            unreachable!("sample_heartbeat makes a heartbeat")
        };
        let mut data = serde_json::to_value(heartbeat).unwrap();
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

    #[test]
    fn incident_fields_are_held_to_the_api_s_limits() {
        let base = Incident {
            incident_id: Uuid::nil(),
            phase: IncidentPhase::Opened,
            kind: IncidentKind::Security,
            source: IncidentSource::Manual,
            severity: Severity::High,
            title: "Đ".repeat(MAX_INCIDENT_TITLE),
            description: String::new(),
            target: None,
            started_at: datetime!(2026-12-04 10:00 UTC),
            ended_at: None,
            discovered_at: None,
            systems_affected: vec![],
            evidence: vec![],
            consequences: vec![],
        };
        let check = |change: &dyn Fn(&mut Incident), expected: Result<(), &str>| {
            let mut incident = base.clone();
            change(&mut incident);
            assert_eq!(incident.check_lengths(), expected.map_err(str::to_owned));
        };
        check(&|_| {}, Ok(()));
        check(
            &|i| i.title.push('x'),
            Err("incident title is longer than 200 characters"),
        );
        check(
            &|i| i.description = "x".repeat(MAX_INCIDENT_TEXT + 1),
            Err("incident description is longer than 10000 characters"),
        );
        check(
            &|i| i.systems_affected = vec!["x".into(); MAX_INCIDENT_LIST + 1],
            Err("incident systems_affected has more than 200 entries"),
        );
        check(
            &|i| i.target = Some("x".repeat(MAX_INCIDENT_NAME + 1)),
            Err("incident target is longer than 2000 characters"),
        );
    }
}
