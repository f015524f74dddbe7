//! Probe results and agent incidents: stored once from real batches, incident phases merged the
//! same whatever their order, listed with filters and scope, counted in the metrics; gzip bodies
//! inflated within the size limit.

use std::io::Write;

use cntt_collector::domain::auth::Role;
use cntt_collector::store::AuditFilter;
use cntt_common::wire::{
    Ack, CheckKind, ErrorBody, Event, Evidence, Incident, IncidentKind, IncidentPhase,
    IncidentSource, Payload, ProbeResult, Severity, TargetKind,
};
use e2e::{
    spawn_collector, spawn_collector_with, test_db, CollectorOptions, TestAgent, TestCollector,
};
use reqwest::StatusCode;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::flow::batch;

/// Now, to the second, so times survive the trip through milliseconds and RFC 3339 unchanged.
fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(OffsetDateTime::now_utc().unix_timestamp()).unwrap()
}

fn text(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap()
}

/// What an incident phase says, beyond its id and phase.
#[derive(Clone, Copy)]
struct Picture {
    kind: IncidentKind,
    severity: Severity,
    started_at: OffsetDateTime,
    ended_at: Option<OffsetDateTime>,
    n_evidence: usize,
}

fn incident_event(
    seq: u64,
    at: OffsetDateTime,
    id: Uuid,
    phase: IncidentPhase,
    picture: Picture,
) -> Event {
    let evidence = (0..picture.n_evidence)
        .map(|i| Evidence {
            target: format!("gateway-{i}"),
            target_kind: TargetKind::Lan,
            check: CheckKind::Icmp,
            address: format!("10.0.0.{}", i + 1),
            at,
            ok: phase == IncidentPhase::Resolved,
            error: (phase != IncidentPhase::Resolved).then(|| "timeout".to_owned()),
            rtt_ms: None,
        })
        .collect();
    let incident = Incident {
        incident_id: id,
        phase,
        kind: picture.kind,
        source: IncidentSource::Detected,
        severity: picture.severity,
        title: format!("Mất kết nối ({phase:?})"),
        description: String::new(),
        target: Some("gateway-0".into()),
        started_at: picture.started_at,
        ended_at: picture.ended_at,
        discovered_at: None,
        systems_affected: vec![],
        evidence,
        consequences: if picture.n_evidence > 1 {
            vec!["portal".into(), "mail".into()]
        } else {
            vec![]
        },
    };
    Event::new(seq, at, &Payload::Incident(Box::new(incident)))
}

fn probe_event(seq: u64, at: OffsetDateTime, target: &str, ok: bool) -> Event {
    let result = ProbeResult {
        target: target.into(),
        target_kind: TargetKind::Server,
        check: CheckKind::Http,
        address: format!("https://{target}.daknong.gov.vn/"),
        ok,
        rtt_ms: ok.then_some(12.5),
        error: (!ok).then(|| "connection refused".to_owned()),
        http_status: ok.then_some(200),
        cert_not_after: ok.then(|| at + Duration::days(90)),
    };
    Event::new(seq, at, &Payload::ProbeResult(result))
}

async fn post(collector: &TestCollector, agent: &TestAgent, events: Vec<Event>) -> Ack {
    collector.ingest(agent, events).await
}

async fn get(collector: &TestCollector, token: &str, path: &str) -> (StatusCode, Value) {
    let response = collector
        .client()
        .get(format!("{}{path}", collector.base_url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The ids of a listing, in order.
fn ids(listing: &Value) -> Vec<String> {
    listing["incidents"]
        .as_array()
        .unwrap_or_else(|| panic!("not an incident listing: {listing}"))
        .iter()
        .map(|incident| incident["id"].as_str().unwrap().to_owned())
        .collect()
}

/// An incident's row without what depends on who reported it and when the collector stored it.
async fn row(collector: &TestCollector, id: Uuid) -> Value {
    let incident = collector
        .store
        .incident(&id.to_string())
        .await
        .unwrap()
        .expect("incident stored");
    let mut value = serde_json::to_value(incident).unwrap();
    for volatile in [
        "id",
        "agent_id",
        "hostname",
        "created_at",
        "updated_at",
        "number",
    ] {
        value.as_object_mut().unwrap().remove(volatile);
    }
    value
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

async fn metric(collector: &TestCollector, token: &str, series: &str) -> Option<String> {
    let (_, body) = get(collector, token, "/metrics").await;
    let text = body.as_str().expect("metrics are text").to_owned();
    text.lines().find_map(|line| {
        line.strip_prefix(series)
            .map(|value| value.trim().to_owned())
    })
}

both_databases! {
    async fn incident_phases_merge_the_same_in_any_order(db: Db) {
        let db = test_db(db).await;
        let collector = spawn_collector(&db).await;
        let t0 = now() - Duration::hours(1);
        let opened = Picture { kind: IncidentKind::Wan, severity: Severity::Medium, started_at: t0, ended_at: None, n_evidence: 1 };
        let updated = Picture { severity: Severity::High, n_evidence: 2, ..opened };
        let resolved = Picture { ended_at: Some(t0 + Duration::minutes(30)), ..updated };
        // One incident per agent, each told the same three phases in a different way.
        let phases = |id: Uuid| vec![
            incident_event(1, t0, id, IncidentPhase::Opened, opened),
            incident_event(2, t0 + Duration::minutes(5), id, IncidentPhase::Updated, updated),
            incident_event(3, t0 + Duration::minutes(30), id, IncidentPhase::Resolved, resolved),
        ];
        let mut rows = Vec::new();
        for order in ["in order", "reversed", "shuffled in one batch, sent twice"] {
            let agent = collector.enroll_agent("663").await;
            let id = Uuid::new_v4();
            let events = phases(id);
            match order {
                "in order" => {
                    for event in events {
                        post(&collector, &agent, vec![event]).await;
                    }
                    let last = row(&collector, id).await;
                    assert_eq!(last["state"], "resolved", "{last}");
                }
                "reversed" => {
                    for event in events.into_iter().rev() {
                        post(&collector, &agent, vec![event]).await;
                        let now_row = row(&collector, id).await;
                        assert_eq!(now_row["state"], "resolved", "an older phase never reopens: {now_row}");
                    }
                }
                _ => {
                    let shuffled = vec![events[1].clone(), events[2].clone(), events[0].clone(), events[1].clone()];
                    let first = post(&collector, &agent, shuffled.clone()).await;
                    assert_eq!((first.accepted, first.duplicates), (3, 1));
                    let again = post(&collector, &agent, shuffled).await;
                    assert_eq!((again.accepted, again.duplicates), (0, 4));
                }
            }
            rows.push((order, id, agent, row(&collector, id).await));
        }
        let (_, _, _, expected) = &rows[0];
        for (order, _, _, row) in &rows {
            assert_eq!(row, expected, "{order}");
        }
        assert_eq!(expected["state"], "resolved");
        assert_eq!(expected["severity"], "high");
        assert_eq!(expected["kind"], "wan");
        assert_eq!(expected["source"], "agent_detected");
        assert_eq!(expected["started_at"], t0.unix_timestamp() * 1000);
        assert_eq!(expected["ended_at"], (t0 + Duration::minutes(30)).unix_timestamp() * 1000);
        assert_eq!(expected["first_event_at"], t0.unix_timestamp() * 1000);
        assert_eq!(expected["last_event_seq"], 3);
        assert_eq!(serde_json::from_str::<Value>(expected["evidence"].as_str().unwrap()).unwrap().as_array().unwrap().len(), 2);
        assert_eq!(expected["consequences"], "[\"portal\",\"mail\"]");

        // A resolved incident stays resolved even when its agent later says otherwise.
        let (_, id, agent, before) = &rows[0];
        let late = incident_event(4, t0 + Duration::minutes(40), *id, IncidentPhase::Updated, Picture { severity: Severity::Critical, ..updated });
        post(&collector, agent, vec![late]).await;
        let after = row(&collector, *id).await;
        assert_eq!(after["state"], "resolved");
        assert_eq!(after["ended_at"], before["ended_at"]);
        assert_eq!(after["severity"], "critical", "the newest picture is still taken");

        // Another agent cannot write into this incident: its event is kept, flagged, not applied.
        let intruder = collector.enroll_agent("664").await;
        let forged = incident_event(9, t0 + Duration::minutes(50), *id, IncidentPhase::Opened, Picture { severity: Severity::Low, ..opened });
        let ack = post(&collector, &intruder, vec![forged.clone()]).await;
        assert_eq!(ack.accepted, 1);
        assert_eq!(ack.invalid.len(), 1, "{ack:?}");
        assert_eq!(ack.invalid[0].id, forged.id);
        assert!(ack.invalid[0].reason.contains("another agent"), "{}", ack.invalid[0].reason);
        assert_eq!(row(&collector, *id).await, after);
        let stored = collector.store.events_of_agent(&intruder.identity.agent_id.to_string()).await.unwrap();
        assert_eq!(stored.iter().map(|event| event.status.as_str()).collect::<Vec<_>>(), ["invalid"]);
        collector.stop().await;
        db.drop_database().await;
    }

    async fn probe_results_are_stored_once_and_listed(db: Db) {
        let db = test_db(db).await;
        let collector = spawn_collector(&db).await;
        let agent = collector.enroll_agent("24700").await;
        let agent_id = agent.identity.agent_id.to_string();
        let t0 = now() - Duration::minutes(10);
        // A failed check first: its missing round-trip time must not spoil the statement that
        // stores the next one's (a sqlx Any quirk on PostgreSQL, see store/probe_results.rs).
        let events = vec![
            probe_event(1, t0, "mail", false),
            probe_event(2, t0 + Duration::minutes(1), "portal", true),
            probe_event(3, t0 + Duration::minutes(2), "portal", true),
        ];
        for _ in 0..2 {
            post(&collector, &agent, events.clone()).await;
        }
        let admin = collector.api_token(Role::Admin, None).await;
        let (status, listing) = get(&collector, &admin, &format!("/api/v1/probe-results?agent={agent_id}")).await;
        assert_eq!(status, StatusCode::OK, "{listing}");
        let results = listing["probe_results"].as_array().unwrap();
        let seen: Vec<(&str, bool)> = results.iter().map(|r| (r["target"].as_str().unwrap(), r["ok"].as_bool().unwrap())).collect();
        assert_eq!(seen, [("portal", true), ("portal", true), ("mail", false)], "each once, newest first");
        let newest = &results[0];
        assert_eq!(newest["id"], events[2].id.to_string());
        assert_eq!(newest["unit_code"], "24700");
        assert_eq!(newest["target_kind"], "server");
        assert_eq!(newest["check"], "http");
        assert_eq!(newest["at"], text(t0 + Duration::minutes(2)));
        assert_eq!(newest["rtt_ms"], 12.5);
        assert_eq!(newest["http_status"], 200);
        assert_eq!(newest["cert_not_after"], text(t0 + Duration::minutes(2) + Duration::days(90)));
        assert_eq!(results[2]["error"], "connection refused");
        assert_eq!(results[2]["rtt_ms"], Value::Null);

        let (_, portal) = get(&collector, &admin, &format!("/api/v1/probe-results?agent={agent_id}&target=portal&limit=1")).await;
        assert_eq!(portal["probe_results"].as_array().unwrap().len(), 1);
        let since = text(t0 + Duration::seconds(30)).replace('+', "%2B");
        let (_, recent) = get(&collector, &admin, &format!("/api/v1/probe-results?since={since}")).await;
        assert_eq!(recent["probe_results"].as_array().unwrap().len(), 2);
        for bad in ["limit=5001", "limit=0", "since=yesterday", "agent_id=x"] {
            let (status, body) = get(&collector, &admin, &format!("/api/v1/probe-results?{bad}")).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
            assert_eq!(body["error"], "invalid_query", "{bad}");
        }
        let (status, _) = get(&collector, &admin, &format!("/api/v1/probe-results?agent={}", Uuid::new_v4())).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        // An officer of another district may not read this agent's checks.
        let officer = collector.api_token(Role::Officer, Some("664")).await;
        let (status, _) = get(&collector, &officer, &format!("/api/v1/probe-results?agent={agent_id}")).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, theirs) = get(&collector, &officer, "/api/v1/probe-results").await;
        assert_eq!((status, theirs["probe_results"].as_array().unwrap().len()), (StatusCode::OK, 0));
        let denied = collector.store.audit_list(&AuditFilter { action: Some("access.denied".into()), limit: 10 }).await.unwrap();
        assert_eq!(denied.len(), 1);
        assert_eq!(denied[0].target, agent_id);

        // Counted once, re-sent batch or not.
        assert_eq!(metric(&collector, &admin, "cntt_collector_probe_results_total{ok=\"true\"}").await.as_deref(), Some("2"));
        assert_eq!(metric(&collector, &admin, "cntt_collector_probe_results_total{ok=\"false\"}").await.as_deref(), Some("1"));
        collector.stop().await;
        db.drop_database().await;
    }

    async fn incidents_are_listed_by_unit_kind_state_and_time_within_scope(db: Db) {
        let db = test_db(db).await;
        let collector = spawn_collector(&db).await;
        let commune = collector.enroll_agent("24700").await;
        let district = collector.enroll_agent("664").await;
        let t = now();
        let picture = |kind, started_at, ended_at| Picture { kind, severity: Severity::High, started_at, ended_at, n_evidence: 1 };
        let (wan, server, lan) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        post(&collector, &commune, vec![
            incident_event(1, t - Duration::hours(3), wan, IncidentPhase::Opened, picture(IncidentKind::Wan, t - Duration::hours(3), None)),
            incident_event(2, t - Duration::hours(2), server, IncidentPhase::Opened, picture(IncidentKind::Server, t - Duration::hours(2), None)),
            incident_event(3, t - Duration::hours(1), server, IncidentPhase::Resolved, picture(IncidentKind::Server, t - Duration::hours(2), Some(t - Duration::hours(1)))),
        ]).await;
        post(&collector, &district, vec![
            incident_event(1, t - Duration::hours(1), lan, IncidentPhase::Opened, picture(IncidentKind::Lan, t - Duration::hours(1), None)),
        ]).await;
        let (wan, server, lan) = (wan.to_string(), server.to_string(), lan.to_string());

        let admin = collector.api_token(Role::Admin, None).await;
        let at = |offset: Duration| text(t + offset).replace('+', "%2B");
        let cases: Vec<(String, Vec<&str>)> = vec![
            (String::new(), vec![&lan, &server, &wan]),
            ("unit=663".into(), vec![&server, &wan]),
            ("unit=24700&kind=wan".into(), vec![&wan]),
            ("state=resolved".into(), vec![&server]),
            ("state=open&unit=664".into(), vec![&lan]),
            ("kind=security".into(), vec![]),
            (format!("since={}", at(Duration::minutes(-30))), vec![&lan, &wan]),
            (format!("until={}", at(Duration::minutes(-150))), vec![&wan]),
            (format!("since={}&until={}", at(Duration::minutes(-90)), at(Duration::minutes(-70))), vec![&server, &wan]),
            ("limit=1".into(), vec![&lan]),
        ];
        for (filter, expected) in cases {
            let (status, listing) = get(&collector, &admin, &format!("/api/v1/incidents?{filter}")).await;
            assert_eq!(status, StatusCode::OK, "{filter}: {listing}");
            assert_eq!(ids(&listing), expected, "{filter}");
        }

        let (_, one) = get(&collector, &admin, &format!("/api/v1/incidents/{server}")).await;
        assert_eq!(one["unit_code"], "24700");
        assert_eq!(one["unit_name"], "Thị trấn Đắk Mil");
        assert_eq!(one["agent_id"], commune.identity.agent_id.to_string());
        assert!(one["hostname"].as_str().is_some_and(|name| !name.is_empty()), "{one}");
        assert_eq!(one["state"], "resolved");
        assert_eq!(one["started_at"], text(t - Duration::hours(2)));
        assert_eq!(one["ended_at"], text(t - Duration::hours(1)));
        assert_eq!(one["evidence"][0]["target"], "gateway-0");
        assert_eq!(one["consequences"], serde_json::json!([]));
        assert_eq!(one["systems_affected"], serde_json::json!([]));

        for (filter, mentions) in [
            ("kind=printer", "lan, wan, internet, server, host, security, other"),
            ("state=paused", "open, acknowledged, resolved, closed"),
            ("since=2026-13-01", "RFC 3339"),
            ("limit=1001", "1 to 1000"),
            ("colour=red", "unit, kind, state, since, until, top_level and limit"),
        ] {
            let (status, body) = get(&collector, &admin, &format!("/api/v1/incidents?{filter}")).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{filter}: {body}");
            assert_eq!(body["error"], "invalid_query");
            assert!(body["message"].as_str().unwrap().contains(mentions), "{filter}: {body}");
        }
        let (status, _) = get(&collector, &admin, "/api/v1/incidents?unit=999").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = get(&collector, &admin, &format!("/api/v1/incidents/{}", Uuid::new_v4())).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        // An officer of district 663 sees the commune below it, and nothing of district 664.
        let officer = collector.api_token(Role::Officer, Some("663")).await;
        let (_, own) = get(&collector, &officer, "/api/v1/incidents").await;
        assert_eq!(ids(&own), [server.as_str(), wan.as_str()]);
        let (status, _) = get(&collector, &officer, &format!("/api/v1/incidents/{wan}")).await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = get(&collector, &officer, "/api/v1/incidents?unit=664").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let (status, _) = get(&collector, &officer, &format!("/api/v1/incidents/{lan}")).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let denied = collector.store.audit_list(&AuditFilter { action: Some("access.denied".into()), limit: 10 }).await.unwrap();
        let targets: Vec<&str> = denied.iter().map(|entry| entry.target.as_str()).collect();
        assert_eq!(targets, [lan.as_str(), "664"], "newest first");

        for (series, value) in [
            ("cntt_collector_incidents{kind=\"wan\",state=\"open\"}", "1"),
            ("cntt_collector_incidents{kind=\"server\",state=\"resolved\"}", "1"),
            ("cntt_collector_incidents{kind=\"lan\",state=\"open\"}", "1"),
            ("cntt_collector_incidents{kind=\"security\",state=\"open\"}", "0"),
        ] {
            assert_eq!(metric(&collector, &admin, series).await.as_deref(), Some(value), "{series}");
        }
        collector.stop().await;
        db.drop_database().await;
    }

    async fn gzip_batches_are_inflated_within_the_size_limit(db: Db) {
        let db = test_db(db).await;
        let options = CollectorOptions { max_body_bytes: Some(64 << 10), ..CollectorOptions::default() };
        let collector = spawn_collector_with(&db, &options).await;
        let agent = collector.enroll_agent("663").await;
        let agent_id = agent.identity.agent_id.to_string();
        let client = collector.client();
        let url = format!("{}/api/v1/ingest", collector.base_url);
        let send = |body: Vec<u8>, encoding: &'static str| {
            client
                .post(&url)
                .bearer_auth(agent.identity.credential.expose())
                .header("content-type", "application/json")
                .header("content-encoding", encoding)
                .body(body)
                .send()
        };

        let t0 = now() - Duration::minutes(5);
        let id = Uuid::new_v4();
        let picture = Picture { kind: IncidentKind::Server, severity: Severity::High, started_at: t0, ended_at: None, n_evidence: 1 };
        let good = batch(vec![probe_event(1, t0, "portal", false), incident_event(2, t0, id, IncidentPhase::Opened, picture)]);
        let json = serde_json::to_vec(&good).unwrap();
        let response = send(gzip(&json), "gzip").await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let ack: Ack = response.json().await.unwrap();
        assert_eq!((ack.accepted, ack.invalid.len()), (2, 0));
        assert_eq!(row(&collector, id).await["state"], "open");
        let before = collector.store.events_of_agent(&agent_id).await.unwrap();

        // 32 MiB of spaces gzip to about 32 KiB: under the limit as sent, far over it inflated.
        let bomb = gzip(&vec![b' '; 32 << 20]);
        assert!(bomb.len() < 64 << 10, "the bomb is small: {}", bomb.len());
        let mut corrupt = gzip(&serde_json::to_vec(&batch(vec![probe_event(3, t0, "mail", true)])).unwrap());
        let middle = corrupt.len() / 2;
        corrupt[middle] ^= 0xff;
        corrupt.truncate(corrupt.len() - 4);
        let cases: Vec<(&str, Vec<u8>, &'static str, StatusCode, &str)> = vec![
            ("gzip bomb", bomb, "gzip", StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ("corrupt gzip", corrupt, "gzip", StatusCode::BAD_REQUEST, "invalid_gzip"),
            ("gzip header, plain body", json.clone(), "gzip", StatusCode::BAD_REQUEST, "invalid_gzip"),
            ("unknown encoding", json.clone(), "br", StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_encoding"),
        ];
        for (what, body, encoding, status, code) in cases {
            let response = send(body, encoding).await.unwrap();
            assert_eq!(response.status(), status, "{what}");
            let error: ErrorBody = response.json().await.unwrap_or_else(|err| panic!("{what}: error body is JSON: {err}"));
            assert_eq!(error.error, code, "{what}: {}", error.message);
            assert!(!error.message.is_empty(), "{what} has a message");
        }
        let unknown: ErrorBody = send(json.clone(), "br").await.unwrap().json().await.unwrap();
        assert!(unknown.message.contains("gzip"), "says what is accepted: {}", unknown.message);

        // Still running, nothing added by the refused bodies; an identity body still lands.
        let after = collector.store.events_of_agent(&agent_id).await.unwrap();
        assert_eq!(after.len(), before.len());
        let next = serde_json::to_vec(&batch(vec![probe_event(4, t0, "mail", true)])).unwrap();
        assert_eq!(send(next, "identity").await.unwrap().status(), StatusCode::OK);
        collector.stop().await;
        db.drop_database().await;
    }
}

/// Issue 13, L1: an agent's incident is held to the same limits as one filed through the API. A
/// 4 MiB title (and an endless list) is reported back as invalid and makes no incident, while the
/// rest of the batch is stored; a title of exactly the limit is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_s_oversized_incident_is_refused_like_one_from_the_api() {
    let db = test_db(e2e::Db::Sqlite).await;
    let collector = spawn_collector(&db).await;
    let agent = collector.enroll_agent("663").await;
    let t0 = now() - Duration::minutes(5);
    let picture = Picture {
        kind: IncidentKind::Wan,
        severity: Severity::High,
        started_at: t0,
        ended_at: None,
        n_evidence: 1,
    };
    let with = |seq: u64, id: Uuid, change: &dyn Fn(&mut Incident)| {
        let event = incident_event(seq, t0, id, IncidentPhase::Opened, picture);
        let mut incident: Incident = serde_json::from_value(event.data.clone()).unwrap();
        change(&mut incident);
        Event::new(seq, t0, &Payload::Incident(Box::new(incident)))
    };
    let (huge, long_list, at_limit) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let limit = cntt_common::wire::MAX_INCIDENT_TITLE;
    let events = vec![
        with(1, huge, &|incident| incident.title = "A".repeat(4 << 20)),
        with(2, long_list, &|incident| {
            incident.consequences = vec!["dịch vụ".into(); 100_000];
        }),
        with(3, at_limit, &|incident| incident.title = "Đ".repeat(limit)),
        probe_event(4, t0, "portal", true),
    ];
    let ack = post(&collector, &agent, events).await;
    let invalid: Vec<(u64, &str)> = ack
        .invalid
        .iter()
        .map(|event| (event.seq, event.reason.as_str()))
        .collect();
    assert_eq!(
        invalid,
        [
            (1, "incident title is longer than 200 characters"),
            (2, "incident consequences has more than 200 entries"),
        ]
    );
    for id in [huge, long_list] {
        assert!(
            collector
                .store
                .incident(&id.to_string())
                .await
                .unwrap()
                .is_none(),
            "no incident from an oversized event"
        );
    }
    assert_eq!(
        row(&collector, at_limit).await["title"]
            .as_str()
            .unwrap()
            .chars()
            .count(),
        limit
    );
    // The incident list stays small.
    let admin = collector.api_token(Role::Admin, None).await;
    let response = collector
        .client()
        .get(format!("{}/api/v1/incidents", collector.base_url))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.bytes().await.unwrap().len() < 64 << 10);
    collector.stop().await;
}
