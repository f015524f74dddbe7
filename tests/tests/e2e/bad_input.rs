//! Malformed requests get a clear 4xx; the collector keeps running and earlier data stays intact.

use cntt_common::wire::{ErrorBody, Event};
use e2e::{spawn_collector_with, test_db, CollectorOptions};
use reqwest::StatusCode;
use time::macros::datetime;
use time::OffsetDateTime;

use super::flow::batch;

fn event_at(seq: u64, at: OffsetDateTime) -> Event {
    Event {
        id: uuid::Uuid::new_v4(),
        seq,
        at,
        kind: "note".into(),
        data: serde_json::json!({}),
    }
}

both_databases! {
    async fn bad_requests_get_clear_errors_and_change_nothing(db: Db) {
        let db = test_db(db).await;
        let options = CollectorOptions { max_body_bytes: Some(64 << 10), ..CollectorOptions::default() };
        let collector = spawn_collector_with(&db, &options).await;
        let agent = collector.enroll_agent("663").await;
        let agent_id = agent.identity.agent_id.to_string();
        let credential = agent.identity.credential.expose().to_owned();
        let client = collector.client();
        let url = format!("{}/api/v1/ingest", collector.base_url);

        let good = batch(vec![event_at(1, OffsetDateTime::now_utc()), event_at(2, OffsetDateTime::now_utc())]);
        let response = client.post(&url).bearer_auth(&credential).json(&good).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let before = collector.store.events_of_agent(&agent_id).await.unwrap();

        let raw = |body: Vec<u8>, content_type: &'static str| {
            client.post(&url).bearer_auth(&credential).header("content-type", content_type).body(body).send()
        };
        let json = |value: serde_json::Value| serde_json::to_vec(&value).unwrap();
        let mut wrong_version = serde_json::to_value(&good).unwrap();
        wrong_version["version"] = 2.into();
        let cases: Vec<(&str, Vec<u8>, &'static str, StatusCode, &str)> = vec![
            ("malformed JSON", b"{\"version\": 1, \"events\": [".to_vec(), "application/json", StatusCode::BAD_REQUEST, "invalid_json"),
            ("wrong shape", json(serde_json::json!({"version": 1, "events": "many"})), "application/json", StatusCode::BAD_REQUEST, "invalid_json"),
            ("wrong protocol version", json(wrong_version), "application/json", StatusCode::BAD_REQUEST, "unsupported_version"),
            ("invalid UTF-8", b"{\"version\": 1, \"agent_version\": \"\xff\xfe\"}".to_vec(), "application/json", StatusCode::BAD_REQUEST, "invalid_json"),
            ("oversized body", vec![b' '; 65 << 10], "application/json", StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ("not JSON at all", b"hello".to_vec(), "text/plain", StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            ("event from 1970", json(serde_json::to_value(batch(vec![event_at(3, OffsetDateTime::UNIX_EPOCH)])).unwrap()), "application/json", StatusCode::UNPROCESSABLE_ENTITY, "absurd_timestamp"),
            ("event from 2100", json(serde_json::to_value(batch(vec![event_at(3, datetime!(2100-01-01 00:00 UTC))])).unwrap()), "application/json", StatusCode::UNPROCESSABLE_ENTITY, "absurd_timestamp"),
            ("too many events", json(serde_json::to_value(batch((0..1001).map(|seq| event_at(seq, OffsetDateTime::now_utc())).collect())).unwrap()), "application/json", StatusCode::UNPROCESSABLE_ENTITY, "too_many_events"),
        ];
        // The 1001-event batch is larger than 64 KiB; check it against the real limit separately.
        for (what, body, content_type, status, code) in cases {
            if what == "too many events" && body.len() > 64 << 10 {
                continue;
            }
            let response = raw(body, content_type).await.unwrap();
            assert_eq!(response.status(), status, "{what}");
            let error: ErrorBody = response.json().await.unwrap_or_else(|err| panic!("{what}: error body is JSON: {err}"));
            assert_eq!(error.error, code, "{what}: {}", error.message);
            assert!(!error.message.is_empty(), "{what} has a message");
        }

        // Still running, nothing lost or altered, and good batches still land.
        let health = client.get(format!("{}/healthz", collector.base_url)).send().await.unwrap();
        assert_eq!(health.status(), StatusCode::OK);
        let after = collector.store.events_of_agent(&agent_id).await.unwrap();
        assert_eq!(
            after.iter().map(|event| (&event.id, &event.data)).collect::<Vec<_>>(),
            before.iter().map(|event| (&event.id, &event.data)).collect::<Vec<_>>()
        );
        let next = batch(vec![event_at(3, OffsetDateTime::now_utc())]);
        let response = client.post(&url).bearer_auth(&credential).json(&next).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        collector.stop().await;
        db.drop_database().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_events_are_refused_with_the_default_limit() {
    let db = e2e::sqlite_db();
    let collector = e2e::spawn_collector(&db).await;
    let agent = collector.enroll_agent("663").await;
    let events = (0..1001)
        .map(|seq| event_at(seq, OffsetDateTime::now_utc()))
        .collect();
    let response = collector
        .client()
        .post(format!("{}/api/v1/ingest", collector.base_url))
        .bearer_auth(agent.identity.credential.expose())
        .json(&batch(events))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        response.json::<ErrorBody>().await.unwrap().error,
        "too_many_events"
    );
    collector.stop().await;
}
