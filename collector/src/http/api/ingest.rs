//! `POST /api/v1/ingest`: store a batch of an agent's events exactly once.
//!
//! Order of checks, cheapest first: credential, the agent's rate limit (`limits.agent_batches_*`,
//! 429 with `Retry-After`, audited in aggregate; see `guard.rs`), content type and size, protocol version (read
//! before the full shape so a newer agent gets a clear "unsupported version" and not a parse error),
//! shape, batch size, timestamps. A batch that fails any check stores nothing. Inside a good batch
//! an unknown kind or a known kind with bad data is stored as it came and flagged, never a reason to
//! refuse the others.
//!
//! The body may be gzip-compressed (`Content-Encoding: gzip`); the size limit then applies to the
//! decompressed JSON too (see `json_bytes` in `mod.rs`). Probe results and incident phases are
//! converted here from their wire types into the store's rows, which the store writes in the
//! batch's transaction.

use axum::extract::{Request, State};
use axum::response::Response;
use cntt_common::wire::{
    Ack, BatchView as Batch, EventView as Event, Incident, IncidentPhase, IncidentSource,
    InvalidEvent, Payload, PeriodicReport, ProbeResult, MAX_EVENTS_PER_BATCH, PROTOCOL_VERSION,
};
use serde::{Deserialize, Serialize};
use time::macros::datetime;
use time::OffsetDateTime;

use super::{json_bytes, ok, parse_json, ApiError, AppState, AuthenticatedAgent};
use crate::metrics::ProbeTally;
use crate::store::{
    HeartbeatUpdate, IngestBatch, IngestCounts, NewAuditEntry, NewEvent, NewIncidentPhase,
    NewPeriodicReport, NewProbeResult,
};

/// No event of ours can be older than this: the product did not exist.
const EARLIEST_EVENT: OffsetDateTime = datetime!(2000-01-01 00:00 UTC);

/// Just the version of a batch, read before the rest.
#[derive(Deserialize)]
struct VersionProbe {
    version: Option<u32>,
}

/// Stores a batch and acknowledges it.
pub(super) async fn batches_create(
    State(state): State<AppState>,
    caller: AuthenticatedAgent,
    request: Request,
) -> Result<Response, ApiError> {
    let res = match rate_limit(&state, &caller).await {
        Ok(()) => ingest(&state, &caller, request).await,
        Err(err) => Err(err),
    };
    let outcome = match &res {
        Ok(_) => "ok",
        Err(ApiError::Internal(_)) => "error",
        Err(ApiError::AgentRateLimited { .. }) => "rate_limited",
        Err(_) => "rejected",
    };
    state
        .metrics
        .ingest_batches
        .with_label_values(&[outcome])
        .inc();
    if let Err(err) = &res {
        if !matches!(
            err,
            ApiError::Internal(_) | ApiError::AgentRateLimited { .. }
        ) {
            tracing::warn!(agent = %caller.agent.id, error = %err, "batch refused");
        }
    }
    res.map(ok)
}

/// Charges the agent's bucket of batches; once it is empty, refuses with 429 and `Retry-After`,
/// audited in aggregate (one row per agent and interval, then a count).
async fn rate_limit(state: &AppState, caller: &AuthenticatedAgent) -> Result<(), ApiError> {
    let Err(wait) = state
        .guard
        .agents
        .take(caller.agent.id.clone(), std::time::Instant::now())
    else {
        return Ok(());
    };
    let entry = NewAuditEntry {
        actor: format!("agent:{}", caller.agent.id),
        action: "ingest.rate_limited".into(),
        target: "/api/v1/ingest".into(),
        outcome: "denied",
        remote_addr: caller.address.clone(),
        details: serde_json::json!({ "reason": "rate_limited", "unit": caller.agent.unit_code }),
    };
    let (first, due) = state
        .guard
        .failures
        .record_agent(entry, OffsetDateTime::now_utc());
    if first.is_some() {
        tracing::warn!(agent = %caller.agent.id, "agent posts batches too fast; refused with 429");
    }
    for row in due.into_iter().chain(first) {
        state.audit(row).await;
    }
    Err(ApiError::AgentRateLimited {
        retry_after_seconds: wait.as_secs().max(1),
    })
}

async fn ingest(
    state: &AppState,
    caller: &AuthenticatedAgent,
    request: Request,
) -> Result<Ack, ApiError> {
    let wire_bytes = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    // A catching-up agent's large body waits its turn before it is read, and holds it until the
    // batch is answered: backlogs cannot fill the memory (see `store/committer.rs`).
    let gzip = matches!(
        super::Encoding::of(request.headers()),
        Ok(super::Encoding::Gzip)
    );
    let _place = state.committer.admit(wire_bytes, gzip).await;
    let bytes = json_bytes(request, state.ingest.max_body_bytes).await?;
    // The whole shape is read first, as nearly every batch is good; only when it does not read or
    // has another version is the version read alone, so that a newer agent gets a clear
    // "unsupported version" and not a parse error (one pass over the body instead of two).
    let parsed: Result<Batch, ApiError> = parse_json(&bytes);
    let version = match &parsed {
        Ok(batch) => Some(batch.version),
        Err(_) => parse_json::<VersionProbe>(&bytes)?.version,
    };
    match version {
        Some(PROTOCOL_VERSION) => {}
        Some(other) => {
            return Err(ApiError::bad_request(
                "unsupported_version",
                format!("protocol version {other} is not supported; this collector speaks version {PROTOCOL_VERSION}"),
            ))
        }
        None => return Err(ApiError::bad_request("invalid_json", "the batch has no version field")),
    }
    let batch = parsed?;
    ended_unit(state, caller).await?;
    if batch.events.len() > MAX_EVENTS_PER_BATCH {
        return Err(ApiError::unprocessable(
            "too_many_events",
            format!(
                "a batch may carry at most {MAX_EVENTS_PER_BATCH} events; this one has {}",
                batch.events.len()
            ),
        ));
    }
    if batch.agent_version.len() > 64 {
        return Err(ApiError::unprocessable(
            "invalid_agent_version",
            "agent_version is longer than 64 characters",
        ));
    }
    let now = OffsetDateTime::now_utc();
    let latest = now + state.ingest.max_future_skew;
    for event in &batch.events {
        if event.at < EARLIEST_EVENT || event.at > latest {
            return Err(ApiError::unprocessable(
                "absurd_timestamp",
                format!(
                    "event {} (seq {}) is dated {}, outside the accepted range from 2000-01-01 to {}; check the agent's clock",
                    event.id, event.seq, event.at, latest
                ),
            ));
        }
        if event.seq > i64::MAX as u64 || event.kind.is_empty() || event.kind.len() > 64 {
            return Err(ApiError::unprocessable(
                "invalid_event",
                format!("event {} has a seq above 2^63 or a kind that is empty or longer than 64 characters", event.id),
            ));
        }
    }

    let mut invalid = Vec::new();
    let mut unknown_kinds = 0;
    let mut newest_heartbeat: Option<(&Event, HeartbeatUpdate)> = None;
    let mut events = Vec::with_capacity(batch.events.len());
    let mut probe_results = Vec::new();
    let mut incident_phases = Vec::new();
    let mut periodic_reports = Vec::new();
    for event in &batch.events {
        let (status, error) = match event.payload() {
            Ok(Some(Payload::Heartbeat(heartbeat))) => {
                let is_newer = newest_heartbeat
                    .as_ref()
                    .is_none_or(|(newest, _)| event.at >= newest.at);
                if is_newer {
                    let update = HeartbeatUpdate {
                        interval_seconds: i64::from(heartbeat.interval_seconds),
                        host_snapshot: serde_json::to_string(&heartbeat.host)
                            .map_err(|err| anyhow::anyhow!("re-encoding a host snapshot: {err}"))?,
                    };
                    newest_heartbeat = Some((event, update));
                }
                ("ok", None)
            }
            Ok(Some(Payload::ProbeResult(result))) => {
                // Stored once, as its typed row, not also as a raw event (issue 15).
                probe_results.push(probe_result_row(event, &result));
                continue;
            }
            Ok(Some(Payload::Incident(incident))) => match incident.check_lengths() {
                Ok(()) => {
                    incident_phases.push(incident_phase_row(event, &incident));
                    ("ok", None)
                }
                // The same limits as for incidents filed through the API (issue 13, L1): the
                // event is kept as invalid and reported back, no incident is made of it.
                Err(reason) => {
                    invalid.push(InvalidEvent {
                        id: event.id,
                        seq: event.seq,
                        reason: reason.clone(),
                    });
                    ("invalid", Some(reason))
                }
            },
            Ok(Some(Payload::PeriodicReport(report))) => {
                match periodic_report_row(state, caller, event, &report) {
                    Ok(row) => {
                        periodic_reports.push(row);
                        ("ok", None)
                    }
                    Err(reason) => {
                        invalid.push(InvalidEvent {
                            id: event.id,
                            seq: event.seq,
                            reason: reason.clone(),
                        });
                        ("invalid", Some(reason))
                    }
                }
            }
            Ok(None) => {
                unknown_kinds += 1;
                ("unknown_kind", None)
            }
            Err(err) => {
                invalid.push(InvalidEvent {
                    id: event.id,
                    seq: event.seq,
                    reason: err.to_string(),
                });
                ("invalid", Some(err.to_string()))
            }
        };
        events.push(NewEvent {
            id: event.id.to_string(),
            seq: i64::try_from(event.seq).expect("checked above that seq fits in i64"),
            kind: event.kind.clone(),
            occurred_at: event.at,
            status,
            error,
            data: event.data.get().to_owned(),
        });
    }
    // The write is the committer's (group commit, `store/committer.rs`): if the agent hangs up
    // (its line drops mid-request), the request is cancelled but the transaction still ends
    // cleanly, committed or rolled back, instead of being dropped half-way.
    let heartbeat = newest_heartbeat.map(|(_, update)| update);
    // Collector time minus agent time when the agent sent the batch; the transit time (well under
    // a second) is part of it, which only makes a report look a little later than it was.
    let clock_offset_ms = crate::store::millis(now) - crate::store::millis(batch.sent_at);
    let probe_tally = ProbeTally {
        results: probe_results
            .iter()
            .map(|row| (row.target_kind.clone(), row.ok, row.rtt_ms))
            .collect(),
    };
    // How late each event arrived, for the metrics once it is stored.
    let delays: Vec<std::time::Duration> = batch
        .events
        .iter()
        .map(|event| (now - event.at).max(time::Duration::ZERO).unsigned_abs())
        .collect();
    let agent_version = batch.agent_version.clone();
    let through_seq = batch.events.iter().map(|event| event.seq).max();
    // The body and its parsed views are not needed while the batch waits for its commit: freed
    // now, a request in the queue holds its rows only (issue 15, memory at recovery).
    drop(batch);
    drop(bytes);
    let write_started = std::time::Instant::now();
    let counts = state
        .committer
        .ingest(IngestBatch {
            agent_id: caller.agent.id.clone(),
            unit_id: caller.agent.unit_id,
            events,
            heartbeat,
            agent_version,
            address: caller.address.clone(),
            now,
            probe_results,
            incident_phases,
            periodic_reports,
            clock_offset_ms: Some(clock_offset_ms),
        })
        .await?;
    record_metrics(state, caller, &delays, &counts, &probe_tally, write_started).await;
    for flagged in &counts.flagged {
        tracing::warn!(agent = %caller.agent.id, event = %flagged.id, reason = %flagged.reason, "event flagged invalid");
        let id = flagged
            .id
            .parse()
            .expect("flagged events are events of this batch, whose ids are UUIDs");
        invalid.push(InvalidEvent {
            id,
            seq: u64::try_from(flagged.seq).expect("stored seqs come from u64 values below 2^63"),
            reason: flagged.reason.clone(),
        });
    }
    let probe_metrics = &state.metrics.probe_results;
    probe_metrics
        .with_label_values(&["true"])
        .inc_by(u64::from(counts.probe_results_ok));
    probe_metrics
        .with_label_values(&["false"])
        .inc_by(u64::from(counts.probe_results_failed));
    let metrics = &state.metrics.ingest_events;
    metrics
        .with_label_values(&["accepted"])
        .inc_by(u64::from(counts.accepted));
    metrics
        .with_label_values(&["duplicate"])
        .inc_by(u64::from(counts.duplicates));
    metrics
        .with_label_values(&["unknown_kind"])
        .inc_by(unknown_kinds);
    metrics
        .with_label_values(&["invalid"])
        .inc_by(invalid.len() as u64);
    tracing::debug!(agent = %caller.agent.id, accepted = counts.accepted, duplicates = counts.duplicates, "batch stored");
    Ok(Ack {
        version: PROTOCOL_VERSION,
        accepted: counts.accepted,
        duplicates: counts.duplicates,
        unknown_kinds: u32::try_from(unknown_kinds).expect("a batch holds at most 1000 events"),
        invalid,
        through_seq,
        server_time: now,
    })
}

/// Checks an officer's report the way the agent did before sending it, against this collector's
/// schemes and the agent's unit; the reason, in Vietnamese, when it fails.
fn periodic_report_row(
    state: &AppState,
    caller: &AuthenticatedAgent,
    event: &Event,
    report: &PeriodicReport,
) -> Result<NewPeriodicReport, String> {
    let parsed = crate::services::reports::check_document(
        &state.reports,
        &caller.agent.unit_code,
        &report.document,
    )?;
    if parsed.front.scheme != report.scheme || parsed.front.period != report.period {
        return Err(format!(
            "báo cáo ghi kỳ {} ({}), khác với kỳ {} ({}) khi nộp",
            parsed.front.period, parsed.front.scheme, report.period, report.scheme
        ));
    }
    Ok(NewPeriodicReport {
        id: event.id.to_string(),
        scheme: report.scheme.clone(),
        period: report.period.clone(),
        submitted_by: report.officer.clone(),
        submitted_at_agent: Some(crate::store::millis(report.submitted_at)),
        submitted_at: None,
        // Overrides move due dates, not data windows, so the scheme alone gives the window.
        not_before: state
            .reports
            .period(&report.period, Some(&report.scheme), &[])
            .ok()
            .map(|period| crate::store::millis(period.window().0)),
        document: report.document.clone(),
        sections: serde_json::to_string(&parsed.sections).unwrap_or_default(),
        figures: serde_json::to_string(&parsed.front.figures).unwrap_or_default(),
    })
}

/// Adds a stored batch to the metrics: latency, delay of each event, and probe results by unit
/// and target kind. A batch that repeats events already stored (a resend after a lost
/// acknowledgement) adds no probe results, so none is counted twice.
async fn record_metrics(
    state: &AppState,
    caller: &AuthenticatedAgent,
    delays: &[std::time::Duration],
    counts: &IngestCounts,
    probe_tally: &ProbeTally,
    write_started: std::time::Instant,
) {
    let health = &state.metrics.health;
    health.ingest_written(write_started.elapsed());
    for delay in delays {
        health.event_arrived(*delay);
    }
    if counts.duplicates > 0 || probe_tally.results.is_empty() {
        return;
    }
    match state
        .metrics
        .unit_label(&state.store, caller.agent.unit_id)
        .await
    {
        Ok(label) => state.metrics.probes.record(&label, probe_tally),
        Err(err) => {
            tracing::warn!(error = %format!("{err:#}"), "could not label probe results for the metrics")
        }
    }
}

/// The text a wire enum travels as, e.g. `TargetKind::Lan` → `lan`, so stored values always match
/// the protocol.
fn wire_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        other => unreachable!("wire enums serialize as strings, got {other:?}"),
    }
}

fn probe_result_row(event: &Event, result: &ProbeResult) -> NewProbeResult {
    NewProbeResult {
        event_id: event.id.to_string(),
        seq: i64::try_from(event.seq).expect("checked before that seq fits in i64"),
        target: result.target.clone(),
        target_kind: wire_name(&result.target_kind),
        check_kind: wire_name(&result.check),
        address: result.address.clone(),
        at: event.at,
        ok: result.ok,
        rtt_ms: result.rtt_ms,
        error: result.error.clone(),
        http_status: result.http_status.map(i64::from),
        cert_not_after: result.cert_not_after,
    }
}

/// JSON text of a wire list, as stored.
fn json_text<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("wire payloads are plain structs that always serialize")
}

fn incident_phase_row(event: &Event, incident: &Incident) -> NewIncidentPhase {
    let source = match incident.source {
        IncidentSource::Detected => "agent_detected",
        IncidentSource::Manual => "agent_manual",
    };
    NewIncidentPhase {
        event_id: event.id.to_string(),
        seq: i64::try_from(event.seq).expect("checked before that seq fits in i64"),
        at: event.at,
        incident_id: incident.incident_id.to_string(),
        resolves: incident.phase == IncidentPhase::Resolved,
        kind: wire_name(&incident.kind),
        source: source.to_owned(),
        severity: wire_name(&incident.severity),
        title: incident.title.clone(),
        description: incident.description.clone(),
        target: incident.target.clone(),
        started_at: incident.started_at,
        ended_at: incident.ended_at,
        discovered_at: incident.discovered_at,
        systems_affected: json_text(&incident.systems_affected),
        evidence: json_text(&incident.evidence),
        consequences: json_text(&incident.consequences),
    }
}

/// Agents already warned about in the log as belonging to an ended unit, so the log says it once
/// per agent and process, not once per batch.
static WARNED: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<String>>> =
    std::sync::OnceLock::new();

/// Refuses a batch of an agent whose unit has ended when `[units] ended = "refuse"`; else logs
/// it once. Its data is then counted for the successor by the reports.
async fn ended_unit(state: &AppState, caller: &AuthenticatedAgent) -> Result<(), ApiError> {
    if caller.agent.unit_valid_to.is_none() {
        return Ok(());
    }
    let Some(unit) = state.store.unit_by_id(caller.agent.unit_id).await? else {
        return Ok(());
    };
    if unit.valid_to.is_none() {
        return Ok(());
    }
    let today = OffsetDateTime::now_utc()
        .to_offset(crate::domain::periods::VIETNAM)
        .date()
        .to_string();
    let Some(ended) = state.store.unit_ended(&unit, &today).await? else {
        return Ok(());
    };
    let message = ended.describe(&unit);
    if state.units.ended == crate::config::EndedUnits::Refuse {
        return Err(ApiError::unprocessable("unit_ended", message));
    }
    let first = WARNED
        .get_or_init(Default::default)
        .lock()
        .map(|mut warned| warned.insert(caller.agent.id.clone()))
        .unwrap_or(false);
    if first {
        tracing::warn!(agent = %caller.agent.id, unit = %unit.code, "data from an agent of an ended unit: {message}");
    }
    Ok(())
}
