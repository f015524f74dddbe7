//! The incident lifecycle at the collector: human numbers, acknowledge → resolve → close with the
//! closing report's fields, a timeline, scoped actions, and agents that fall silent.

use std::time::Duration;

use cntt_collector::domain::auth::Role;
use cntt_common::wire::{
    Event, Incident, IncidentKind, IncidentPhase, IncidentSource, Payload, Severity,
};
use e2e::{
    eventually, spawn_collector, spawn_collector_with, test_db, CollectorOptions, TestAgent,
    TestCollector,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::WAIT;

fn incident(
    kind: IncidentKind,
    source: IncidentSource,
    phase: IncidentPhase,
    id: uuid::Uuid,
) -> Incident {
    Incident {
        incident_id: id,
        phase,
        kind,
        source,
        severity: Severity::High,
        title: "Phát hiện mã độc trên máy kế toán".into(),
        description: String::new(),
        target: None,
        started_at: OffsetDateTime::now_utc(),
        ended_at: (phase == IncidentPhase::Resolved).then(OffsetDateTime::now_utc),
        discovered_at: None,
        systems_affected: vec![],
        evidence: vec![],
        consequences: vec![],
    }
}

async fn send(collector: &TestCollector, agent: &TestAgent, events: Vec<Event>) {
    let ack = collector.ingest(agent, events).await;
    assert!(ack.invalid.is_empty(), "{ack:?}");
}

fn heartbeat(seq: u64) -> Event {
    e2e::heartbeat_event(seq, 1)
}

fn event(seq: u64, incident: Incident) -> Event {
    Event::new(
        seq,
        OffsetDateTime::now_utc(),
        &Payload::Incident(Box::new(incident)),
    )
}

async fn act(
    collector: &TestCollector,
    token: &str,
    id: &str,
    action: &str,
    body: Value,
) -> (StatusCode, Value) {
    let response = collector
        .client()
        .post(format!(
            "{}/api/v1/incidents/{id}/{action}",
            collector.base_url
        ))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn show(collector: &TestCollector, token: &str, id: &str) -> Value {
    collector
        .client()
        .get(format!("{}/api/v1/incidents/{id}", collector.base_url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

both_databases! {
    async fn incidents_are_numbered_and_move_through_their_lifecycle(db: Db) {
        let db = test_db(db).await;
        let collector = spawn_collector(&db).await;
        let agent = collector.enroll_agent("24700").await;
        let (manual, detected) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        send(&collector, &agent, vec![
            event(1, incident(IncidentKind::Security, IncidentSource::Manual, IncidentPhase::Opened, manual)),
            event(2, incident(IncidentKind::Server, IncidentSource::Detected, IncidentPhase::Opened, detected)),
            event(3, incident(IncidentKind::Server, IncidentSource::Detected, IncidentPhase::Resolved, detected)),
        ]).await;
        let admin = collector.api_token(Role::Admin, None).await;
        let year = OffsetDateTime::now_utc().to_offset(time::UtcOffset::from_hms(7, 0, 0).unwrap()).year();
        let (manual_id, detected_id) = (manual.to_string(), detected.to_string());
        assert_eq!(show(&collector, &admin, &manual_id).await["number"], format!("SC-{year}-0001"));
        assert_eq!(show(&collector, &admin, &detected_id).await["number"], format!("SC-{year}-0002"));

        // Manual incident: acknowledge, note, resolve by hand, close with the closing fields.
        assert_eq!(act(&collector, &admin, &manual_id, "acknowledge", json!({})).await.1["state"], "acknowledged");
        let (status, _) = act(&collector, &admin, &manual_id, "acknowledge", json!({})).await;
        assert_eq!(status, StatusCode::CONFLICT, "acknowledging twice");
        let (status, _) = act(&collector, &admin, &manual_id, "close", json!({"resolution": "x", "lessons": "y"})).await;
        assert_eq!(status, StatusCode::CONFLICT, "closing before it is resolved");
        act(&collector, &admin, &manual_id, "notes", json!({"text": "Đã cách ly máy khỏi mạng."})).await;
        let (status, body) = act(&collector, &admin, &manual_id, "notes", json!({"text": "  "})).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("missing_field")));
        assert_eq!(act(&collector, &admin, &manual_id, "resolve", json!({"resolution": "Quét và gỡ mã độc"})).await.1["state"], "resolved");
        let closing = json!({"cause": "Tệp đính kèm thư điện tử", "resolution": "Cài lại máy", "lessons": "Tập huấn nhận diện thư lừa đảo"});
        let (status, closed) = act(&collector, &admin, &manual_id, "close", closing).await;
        assert_eq!(status, StatusCode::OK, "{closed}");
        assert_eq!(closed["state"], "closed");
        assert_eq!(closed["lessons"], "Tập huấn nhận diện thư lừa đảo");
        let timeline: Vec<String> = show(&collector, &admin, &manual_id).await["timeline"]
            .as_array().unwrap().iter().map(|entry| entry["entry"].as_str().unwrap().to_owned()).collect();
        assert_eq!(timeline, ["opened", "acknowledged", "note", "resolved", "closed"]);

        // Detected incident: ended by its agent, never by hand; closing works.
        let (status, body) = act(&collector, &admin, &detected_id, "resolve", json!({})).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        let closing = json!({"resolution": "Khởi động lại dịch vụ", "lessons": "Theo dõi bộ nhớ"});
        assert_eq!(act(&collector, &admin, &detected_id, "close", closing).await.0, StatusCode::OK);
        // A late phase from the agent never reopens or un-closes it.
        send(&collector, &agent, vec![event(4, incident(IncidentKind::Server, IncidentSource::Detected, IncidentPhase::Resolved, detected))]).await;
        assert_eq!(show(&collector, &admin, &detected_id).await["state"], "closed");
        let audited = collector.store.audit_list(&cntt_collector::store::AuditFilter { action: Some("incident.close".into()), limit: 10 }).await.unwrap();
        assert_eq!(audited.len(), 2);
        collector.stop().await;
        db.drop_database().await;
    }

    async fn only_officers_of_the_unit_and_admins_change_incidents(db: Db) {
        let db = test_db(db).await;
        let collector = spawn_collector(&db).await;
        let agent = collector.enroll_agent("24700").await;
        let id = uuid::Uuid::new_v4();
        send(&collector, &agent, vec![event(1, incident(IncidentKind::Security, IncidentSource::Manual, IncidentPhase::Opened, id))]).await;
        let id = id.to_string();
        let other = collector.api_token(Role::Officer, Some("664")).await;
        let viewer = collector.api_token(Role::Viewer, None).await;
        let own = collector.api_token(Role::Officer, Some("663")).await;
        assert_eq!(act(&collector, &other, &id, "acknowledge", json!({})).await.0, StatusCode::FORBIDDEN);
        assert_eq!(act(&collector, &other, &id, "notes", json!({"text": "x"})).await.0, StatusCode::FORBIDDEN);
        assert_eq!(act(&collector, &viewer, &id, "acknowledge", json!({})).await.0, StatusCode::FORBIDDEN);
        let response = collector.client().get(format!("{}/api/v1/incidents/{id}", collector.base_url)).bearer_auth(&other).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "nor read it");
        assert_eq!(act(&collector, &own, &id, "acknowledge", json!({})).await.0, StatusCode::OK);
        assert_eq!(act(&collector, &own, &id, "dance", json!({})).await.0, StatusCode::NOT_FOUND);
        let denied = collector.store.audit_list(&cntt_collector::store::AuditFilter { action: Some("access.denied".into()), limit: 10 }).await.unwrap();
        assert_eq!(denied.len(), 4, "{denied:?}");
        collector.stop().await;
        db.drop_database().await;
    }

    async fn officers_file_incidents_for_their_own_units_and_they_follow_the_lifecycle(db: Db) {
        let db = test_db(db).await;
        let collector = spawn_collector(&db).await;
        let own = collector.api_token(Role::Officer, Some("663")).await;
        let other = collector.api_token(Role::Officer, Some("664")).await;
        let viewer = collector.api_token(Role::Viewer, None).await;
        let file = |token: String, body: Value| {
            let (client, url) = (collector.client(), format!("{}/api/v1/incidents", collector.base_url));
            async move {
                let response = client.post(url).bearer_auth(token).json(&body).send().await.unwrap();
                (response.status(), response.json::<Value>().await.unwrap_or(Value::Null))
            }
        };
        let report = json!({
            "unit": "24700",
            "kind": "security",
            "severity": "high",
            "title": "Tấn công dò mật khẩu vào cổng thông tin",
            "description": "Hàng nghìn lần đăng nhập sai từ một địa chỉ nước ngoài.",
            "started_at": "2026-11-23T07:30:00+07:00",
            "discovered_at": "2026-11-23T08:12:00+07:00",
            "systems_affected": ["Cổng thông tin điện tử thị trấn"]
        });
        let (status, filed) = file(own.clone(), report.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{filed}");
        assert_eq!((filed["source"].as_str(), filed["state"].as_str(), filed["kind"].as_str()), (Some("manual"), Some("open"), Some("security")));
        assert!(filed["number"].as_str().unwrap().starts_with("SC-2026-"), "{filed}");
        assert_eq!(filed["started_at"], "2026-11-23T00:30:00Z");
        assert_eq!(filed["systems_affected"], json!(["Cổng thông tin điện tử thị trấn"]));
        // Another unit's officer may neither file for the unit nor read or change what was filed.
        assert_eq!(file(other.clone(), report.clone()).await.0, StatusCode::FORBIDDEN);
        assert_eq!(file(viewer.clone(), report.clone()).await.0, StatusCode::FORBIDDEN);
        let id = filed["id"].as_str().unwrap().to_owned();
        let response = collector.client().get(format!("{}/api/v1/incidents/{id}", collector.base_url)).bearer_auth(&other).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let listed: Value = collector.client().get(format!("{}/api/v1/incidents", collector.base_url)).bearer_auth(&other).send().await.unwrap().json().await.unwrap();
        assert_eq!(listed["incidents"], json!([]), "nor list it");
        assert_eq!(act(&collector, &other, &id, "notes", json!({"text": "x"})).await.0, StatusCode::FORBIDDEN);
        // Bad input is refused with the reason, and nothing is stored.
        for (change, reason) in [
            (json!({"kind": "agent_unreachable"}), "kind"),
            (json!({"severity": "urgent"}), "severity"),
            (json!({"title": " "}), "title"),
            (json!({"started_at": "2100-01-01T00:00:00Z"}), "future"),
            (json!({"discovered_at": "2026-11-23T07:00:00+07:00"}), "before started_at"),
            (json!({"unit": "99999"}), "no unit"),
        ] {
            let mut body = report.clone();
            for (key, value) in change.as_object().unwrap() {
                body[key] = value.clone();
            }
            let (status, error) = file(own.clone(), body).await;
            assert!(status.is_client_error(), "{change}: {status}");
            assert!(error["message"].as_str().unwrap().contains(reason), "{change}: {error}");
        }
        assert_eq!(collector.store.incidents_count().await.unwrap().iter().map(|c| c.count).sum::<i64>(), 1);
        // It follows the same lifecycle as any incident.
        assert_eq!(act(&collector, &own, &id, "acknowledge", json!({})).await.1["state"], "acknowledged");
        assert_eq!(act(&collector, &own, &id, "resolve", json!({"resolution": "Chặn địa chỉ tại tường lửa"})).await.1["state"], "resolved");
        let closing = json!({"cause": "Dò mật khẩu", "resolution": "Chặn địa chỉ", "lessons": "Bật xác thực hai lớp"});
        assert_eq!(act(&collector, &own, &id, "close", closing).await.1["state"], "closed");
        let filed_audit = collector.store.audit_list(&cntt_collector::store::AuditFilter { action: Some("incident.file".into()), limit: 10 }).await.unwrap();
        assert_eq!(filed_audit.len(), 1);
        collector.stop().await;
        db.drop_database().await;
    }

    async fn a_silent_agent_is_one_unreachable_incident_even_with_two_collectors(db: Db) {
        let db = test_db(db).await;
        let options = CollectorOptions {
            extra_config: "[incidents]\nsilence_intervals = 3\nsilence_min = \"1s\"\nevaluate_every = \"50ms\"\n".into(),
            ..CollectorOptions::default()
        };
        // Two collectors on one database sweep at the same time.
        let collector = spawn_collector_with(&db, &options).await;
        let twin = spawn_collector_with(&db, &options).await;
        let quiet = collector.enroll_agent("24700").await;
        let chatty = collector.enroll_agent("24700").await;
        // Both announce a 1 s heartbeat interval: silent after max(3 × 1 s, 1 s).
        send(&collector, &quiet, vec![heartbeat(1)]).await;
        send(&collector, &chatty, vec![heartbeat(1)]).await;
        let admin = collector.api_token(Role::Admin, None).await;
        let list = |state: &'static str| {
            let (client, url, admin) = (collector.client(), format!("{}/api/v1/incidents?kind=agent_unreachable&state={state}", collector.base_url), admin.clone());
            async move { client.get(url).bearer_auth(admin).send().await.unwrap().json::<Value>().await.unwrap()["incidents"].as_array().unwrap().clone() }
        };
        for _ in 0..50 {
            send(&twin, &chatty, vec![]).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let open = list("open").await;
        assert_eq!(open.len(), 1, "one incident for the silent agent, none for the chatty one: {open:#?}");
        assert_eq!(open[0]["agent_id"], quiet.identity.agent_id.to_string());
        assert!(open[0]["number"].as_str().unwrap().starts_with("SC-"));
        // It reports again: the incident ends.
        send(&twin, &quiet, vec![]).await;
        let resolved = eventually(WAIT, "the unreachable incident resolved", || {
            let list = list("resolved");
            async move { let resolved = list.await; (!resolved.is_empty()).then_some(resolved) }
        }).await;
        assert_eq!(resolved.len(), 1);
        assert!(list("open").await.is_empty());
        twin.stop().await;
        collector.stop().await;
        db.drop_database().await;
    }
}

/// An incident with given times, for availability.
fn timed(kind: IncidentKind, started_at: OffsetDateTime, ended_at: OffsetDateTime) -> Incident {
    let mut incident = incident(
        kind,
        IncidentSource::Detected,
        IncidentPhase::Resolved,
        uuid::Uuid::new_v4(),
    );
    incident.started_at = started_at;
    incident.ended_at = Some(ended_at);
    incident
}

both_databases! {
    async fn availability_figures_match_hand_computed_values(db: Db) {
        let db = test_db(db).await;
        let collector = spawn_collector(&db).await;
        let agent = collector.enroll_agent("24700").await;
        let hour = time::Duration::hours(1);
        // A 10-hour window that ended two hours ago.
        let until: OffsetDateTime = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() - 2 * hour;
        let since: OffsetDateTime = until - 10 * hour;
        send(&collector, &agent, vec![
            // 1 h of server outage inside the window: 24700 is up 9 h of 10.
            event(1, timed(IncidentKind::Server, since + 2 * hour, since + 3 * hour)),
            // A security incident is not down time unless asked for.
            event(2, timed(IncidentKind::Security, since + 4 * hour, since + 6 * hour)),
        ]).await;
        let admin = collector.api_token(Role::Admin, None).await;
        let get = |query: String| {
            let (client, url, admin) = (collector.client(), format!("{}/api/v1/availability?{query}", collector.base_url), admin.clone());
            async move {
                let response = client.get(url).bearer_auth(admin).send().await.unwrap();
                (response.status(), response.json::<Value>().await.unwrap())
            }
        };
        let window = |unit: &str, kind: &str| {
            let format = &time::format_description::well_known::Rfc3339;
            format!("unit={unit}&since={}&until={}{kind}", since.format(format).unwrap().replace('+', "%2B"), until.format(format).unwrap().replace('+', "%2B"))
        };
        let (status, body) = get(window("663", "")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let unit = |code: &str| body["units"].as_array().unwrap().iter().find(|u| u["unit_code"] == code).unwrap().clone();
        let commune = unit("24700");
        assert_eq!(commune["observed_ms"], 36_000_000);
        assert_eq!(commune["down_ms"], 3_600_000);
        assert_eq!(commune["availability"], 0.9);
        assert_eq!(commune["incidents"], 1);
        assert_eq!(commune["mean_time_to_recover_ms"], 3_600_000);
        assert_eq!(unit("663")["availability"], 1.0, "the district itself had no incident");
        // Total over the two units, each observed 10 h: (9 + 10) / 20.
        assert_eq!(body["total"]["availability"], 0.95);
        let (_, security) = get(window("24700", "&kind=security")).await;
        assert_eq!(security["units"][0]["down_ms"], 7_200_000);

        let (status, body) = get("unit=663".into()).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_query")));
        let officer = collector.api_token(Role::Officer, Some("664")).await;
        let response = collector.client().get(format!("{}/api/v1/availability?{}", collector.base_url, window("663", ""))).bearer_auth(officer).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        collector.stop().await;
        db.drop_database().await;
    }
}
