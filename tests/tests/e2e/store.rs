//! The storage contract, held on SQLite and PostgreSQL alike.

use std::time::Duration;

use cntt_collector::store::{
    AuditFilter, BatchPayloads, BatchWrite, EnrollRefusal, HeartbeatUpdate, NewAgent,
    NewAuditEntry, NewEnrollToken, NewEvent, NewProbeResult, ProbeResultFilter, Store, UnitRecord,
};
use e2e::test_db;
use time::OffsetDateTime;

pub(crate) fn record(code: &str, kind: &str, parent: Option<&str>) -> UnitRecord {
    UnitRecord {
        code: code.into(),
        name: format!("Đơn vị {code}"),
        kind: kind.into(),
        parent_code: parent.map(str::to_owned),
        valid_from: None,
        valid_to: None,
        successor_codes: String::new(),
        note: String::new(),
        uplink_code: None,
    }
}

pub(crate) async fn agent_in(store: &Store, unit_code: &str) -> String {
    let unit = store.unit_by_code(unit_code).await.unwrap().unwrap();
    let now = OffsetDateTime::now_utc();
    let token = NewEnrollToken {
        token_hash: format!("hash-{}", uuid::Uuid::new_v4()),
        unit_id: unit.id,
        uses_allowed: 1,
        expires_at: now + Duration::from_secs(60),
        created_by: "test".into(),
        note: String::new(),
    };
    store.enroll_token_create(&token, now).await.unwrap();
    let agent = NewAgent {
        id: uuid::Uuid::new_v4(),
        hostname: "h".into(),
        agent_version: "0".into(),
        credential_hash: format!("cred-{}", uuid::Uuid::new_v4()),
        address: None,
    };
    store
        .agent_enroll(&token.token_hash, &agent, now)
        .await
        .unwrap()
        .unwrap();
    agent.id.to_string()
}

both_databases! {
    async fn units_import_in_any_order_and_update_by_code(db: Db) {
        let db = test_db(db).await;
        let store = db.store().await;
        let now = OffsetDateTime::now_utc();
        // Children before parents in the file.
        let records = vec![record("24700", "commune", Some("663")), record("663", "district", Some("67")), record("67", "province", None)];
        let summary = store.units_import(&records, now).await.unwrap();
        assert_eq!((summary.created, summary.updated, summary.unchanged), (3, 0, 0));
        let again = store.units_import(&records, now).await.unwrap();
        assert_eq!((again.created, again.updated, again.unchanged), (0, 0, 3));

        // A merger: the commune ends and names its successor; history stays.
        let mut ended = record("24700", "commune", Some("663"));
        ended.valid_to = Some("2025-06-30".into());
        ended.successor_codes = "68.24700".into();
        let mut successor = record("68.24700", "commune", Some("67"));
        successor.valid_from = Some("2025-07-01".into());
        let summary = store.units_import(&[ended, successor], now).await.unwrap();
        assert_eq!((summary.created, summary.updated), (1, 1));
        let commune = store.unit_by_code("24700").await.unwrap().unwrap();
        assert_eq!(commune.parent_code.as_deref(), Some("663"));
        assert!(commune.valid_on("2025-06-30") && !commune.valid_on("2025-07-01"));

        // An unknown parent refuses the whole import.
        let before = store.units_all().await.unwrap();
        let err = store.units_import(&[record("999", "district", Some("nowhere")), record("998", "district", Some("67"))], now).await.unwrap_err();
        assert!(err.to_string().contains("parent nowhere"), "{err}");
        assert_eq!(store.units_all().await.unwrap(), before, "nothing of a failed import lands");
        db.drop_database().await;
    }

    async fn enrollment_spends_exactly_the_allowed_uses(db: Db) {
        let db = test_db(db).await;
        let store = db.store().await;
        let now = OffsetDateTime::now_utc();
        store.units_import(&[record("67", "province", None)], now).await.unwrap();
        let unit = store.unit_by_code("67").await.unwrap().unwrap();
        let token = NewEnrollToken {
            token_hash: "h1".into(),
            unit_id: unit.id,
            uses_allowed: 3,
            expires_at: now + Duration::from_secs(60),
            created_by: "test".into(),
            note: String::new(),
        };
        store.enroll_token_create(&token, now).await.unwrap();
        // Ten agents race for three uses.
        let attempts = (0..10).map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let agent = NewAgent {
                    id: uuid::Uuid::new_v4(),
                    hostname: format!("pc-{i}"),
                    agent_version: "0.1.0".into(),
                    credential_hash: format!("c{i}"),
                    address: None,
                };
                store.agent_enroll("h1", &agent, OffsetDateTime::now_utc()).await.unwrap()
            })
        });
        let mut results = Vec::new();
        for attempt in attempts {
            results.push(attempt.await.unwrap());
        }
        assert_eq!(results.iter().filter(|res| res.is_ok()).count(), 3);
        assert!(results.iter().filter(|res| res.is_err()).all(|res| *res == Err(EnrollRefusal::UsedUp)));
        assert_eq!(store.agents_list(None).await.unwrap().len(), 3);
        assert_eq!(store.enroll_tokens_list().await.unwrap()[0].uses, 3);
        db.drop_database().await;
    }

    async fn events_are_stored_once_by_id(db: Db) {
        let db = test_db(db).await;
        let store = db.store().await;
        let now = OffsetDateTime::now_utc();
        store.units_import(&[record("67", "province", None)], now).await.unwrap();
        let agent_id = agent_in(&store, "67").await;
        let unit_id = store.unit_by_code("67").await.unwrap().unwrap().id;
        let event = |seq: i64| NewEvent {
            id: uuid::Uuid::new_v4().to_string(),
            seq,
            kind: "heartbeat".into(),
            occurred_at: now,
            status: "ok",
            error: None,
            data: "{\"host\":{}}".into(),
        };
        let events = vec![event(1), event(2)];
        let heartbeat = HeartbeatUpdate { interval_seconds: 60, host_snapshot: "{}".into() };
        let write = BatchWrite {
            agent_id: &agent_id,
            unit_id,
            events: &events,
            heartbeat: Some(&heartbeat),
            agent_version: "0.1.0",
            address: Some("127.0.0.1:5000"),
            now,
        };
        let first = store.events_ingest(&write).await.unwrap();
        assert_eq!((first.accepted, first.duplicates), (2, 0));
        let second = store.events_ingest(&write).await.unwrap();
        assert_eq!((second.accepted, second.duplicates), (0, 2));
        let more = vec![events[1].clone(), event(3)];
        let third = store.events_ingest(&BatchWrite { events: &more, ..write }).await.unwrap();
        assert_eq!((third.accepted, third.duplicates), (1, 1));
        assert_eq!(store.events_of_agent(&agent_id).await.unwrap().len(), 3);
        // The same id twice in one batch, beside one already stored: stored once, the rest counted.
        let fourth = event(4);
        let repeated = vec![fourth.clone(), events[0].clone(), fourth];
        let counts = store.events_ingest(&BatchWrite { events: &repeated, ..write }).await.unwrap();
        assert_eq!((counts.accepted, counts.duplicates), (1, 2));
        assert_eq!(store.events_of_agent(&agent_id).await.unwrap().len(), 4);
        let agent = store.agents_list(None).await.unwrap().remove(0);
        assert_eq!(agent.last_seq, Some(4));
        assert_eq!(agent.heartbeat_interval, Some(60));
        assert_eq!(agent.last_address.as_deref(), Some("127.0.0.1:5000"));
        db.drop_database().await;
    }

    async fn text_and_numbers_come_back_exactly_as_sent(db: Db) {
        // A group's rows travel as one JSON document per statement to PostgreSQL and as bound
        // parameters to SQLite: every character that means something in a JSON string, a SQL text
        // or an array literal (quotes, backslashes, commas, braces, the word NULL, spaces) must
        // come back as it was sent, floats to the last bit, and absent values as absent.
        let db = test_db(db).await;
        let store = db.store().await;
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        store.units_import(&[record("67", "province", None)], now).await.unwrap();
        let agent_id = agent_in(&store, "67").await;
        let unit_id = store.unit_by_code("67").await.unwrap().unwrap().id;
        let awkward = r#"Máy chủ "một cửa", {x}\y NULL  \"z\\ ,}{"#;
        let events = vec![
            NewEvent {
                id: format!("{}-\"quoted\"", uuid::Uuid::new_v4()),
                seq: 1,
                kind: "kind with spaces, {braces}".into(),
                occurred_at: now,
                status: "unknown_kind",
                error: None,
                data: serde_json::json!({ "text": awkward, "empty": "" }).to_string(),
            },
            NewEvent {
                id: uuid::Uuid::new_v4().to_string(),
                seq: 2,
                kind: "NULL".into(),
                occurred_at: now,
                status: "invalid",
                error: Some(awkward.into()),
                data: "NULL".into(),
            },
        ];
        let probe = |seq: i64, target: &str, rtt_ms: Option<f64>, error: Option<&str>| NewProbeResult {
            event_id: uuid::Uuid::new_v4().to_string(),
            seq,
            target: target.into(),
            target_kind: "server".into(),
            check_kind: "http".into(),
            address: "https://một-cửa.example/\"a,b\"".into(),
            at: now,
            ok: error.is_none(),
            rtt_ms,
            error: error.map(str::to_owned),
            http_status: error.is_none().then_some(200),
            cert_not_after: error.is_none().then_some(now + Duration::from_secs(86_400)),
        };
        let probes = vec![
            probe(3, awkward, Some(0.1 + 0.2), None),
            probe(4, "", None, Some(awkward)),
            probe(5, "NULL", Some(1e-7), Some("")),
            probe(6, "{}", Some(123_456_789.123_456_7), None),
        ];
        let write = BatchWrite {
            agent_id: &agent_id,
            unit_id,
            events: &events,
            heartbeat: None,
            agent_version: "0.1.0",
            address: None,
            now,
        };
        let payloads = BatchPayloads { probe_results: &probes, ..BatchPayloads::default() };
        let counts = store.events_ingest_with(&write, &payloads).await.unwrap();
        assert_eq!((counts.accepted, counts.duplicates), (6, 0));
        let stored = store.events_of_agent(&agent_id).await.unwrap();
        assert_eq!(stored.len(), 6);
        for (sent, back) in events.iter().zip(&stored) {
            assert_eq!(back.id, sent.id);
            assert_eq!(back.kind, sent.kind);
            assert_eq!(back.status, sent.status);
            assert_eq!(back.data, sent.data);
            assert_eq!(back.occurred_at, now.unix_timestamp() * 1000);
        }
        let mut rows = store
            .probe_results_list(&ProbeResultFilter { agent_id: Some(agent_id.clone()), limit: 10, ..ProbeResultFilter::default() })
            .await
            .unwrap();
        rows.sort_by_key(|row| probes.iter().position(|sent| sent.event_id == row.id));
        assert_eq!(rows.len(), probes.len());
        for (sent, back) in probes.iter().zip(&rows) {
            assert_eq!(back.id, sent.event_id);
            assert_eq!(back.target, sent.target);
            assert_eq!(back.address, sent.address);
            assert_eq!(back.ok, i64::from(sent.ok));
            // Floats to the last bit.
            assert_eq!(back.rtt_ms.map(f64::to_bits), sent.rtt_ms.map(f64::to_bits));
            assert_eq!(back.error, sent.error);
            assert_eq!(back.http_status, sent.http_status);
            assert_eq!(back.cert_not_after, sent.cert_not_after.map(|at| at.unix_timestamp() * 1000));
        }
        // The same batch again: all duplicates, nothing changed.
        let again = store.events_ingest_with(&write, &payloads).await.unwrap();
        assert_eq!((again.accepted, again.duplicates), (0, 6));
        assert_eq!(store.events_of_agent(&agent_id).await.unwrap().len(), 6);
        db.drop_database().await;
    }

    async fn audit_log_is_append_only(db: Db) {
        let db = test_db(db).await;
        let store = db.store().await;
        let entry = NewAuditEntry {
            actor: "cli:root".into(),
            action: "unit.import".into(),
            target: "units.csv".into(),
            outcome: "ok",
            remote_addr: None,
            details: serde_json::json!({ "created": 3 }),
        };
        store.audit(&entry, OffsetDateTime::now_utc()).await.unwrap();
        let entries = store.audit_list(&AuditFilter { action: None, limit: 10 }).await.unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].details, "{\"created\":3}");
        let pool = raw_pool(&db.url).await;
        for statement in ["UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"] {
            let err = sqlx::query(statement).execute(&pool).await.unwrap_err();
            assert!(err.to_string().contains("append-only"), "{statement}: {err}");
        }
        assert_eq!(store.audit_list(&AuditFilter { action: None, limit: 10 }).await.unwrap()[0].actor, "cli:root");
        pool.close().await;
        db.drop_database().await;
    }
}

pub(crate) async fn raw_pool(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(url).await.unwrap()
}
