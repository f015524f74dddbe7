//! The main path: enroll over TLS, heartbeats land, the agent is listed; re-sent batches are
//! stored once; unknown kinds are kept.

use std::time::Duration;

use cntt_collector::domain::auth::Role;
use cntt_common::wire::{Ack, Batch, Event, Heartbeat, HostSnapshot, Payload, PROTOCOL_VERSION};
use e2e::{eventually, spawn_collector, test_db};
use serde_json::Value;
use time::OffsetDateTime;

use super::WAIT;

fn heartbeat(seq: u64) -> Event {
    let host = HostSnapshot {
        hostname: "may-tram-01".into(),
        os_name: "Debian GNU/Linux".into(),
        os_version: "12".into(),
        kernel_version: "6.1".into(),
        arch: "x86_64".into(),
        uptime_seconds: 100,
        cpu_count: 2,
        cpu_usage_percent: 5.0,
        load_average: None,
        memory_total_bytes: 1 << 30,
        memory_used_bytes: 1 << 29,
        swap_total_bytes: 0,
        swap_used_bytes: 0,
        disks: vec![],
        interfaces: vec![],
    };
    Event::new(
        seq,
        OffsetDateTime::now_utc(),
        &Payload::Heartbeat(Heartbeat {
            interval_seconds: 60,
            host,
            outbox: None,
        }),
    )
}

pub(crate) fn batch(events: Vec<Event>) -> Batch {
    Batch {
        version: PROTOCOL_VERSION,
        agent_version: "0.1.0".into(),
        sent_at: OffsetDateTime::now_utc(),
        events,
    }
}

both_databases! {
    async fn agent_enrolls_and_its_heartbeats_arrive(db: Db) {
        let db = test_db(db).await;
        let collector = spawn_collector(&db).await;
        let agent = collector.enroll_agent("663").await;
        assert_eq!(agent.identity.unit_code, "663");
        assert_eq!(agent.identity.unit_name, "Huyện Đắk Mil");

        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let config = agent.config.clone();
        let running = tokio::spawn(cntt_agent::run(config, async { let _ = stopped.await; }));

        let token = collector.api_token(Role::Admin, None).await;
        let client = collector.client();
        let url = format!("{}/api/v1/agents", collector.base_url);
        let listed: Value = eventually(WAIT, "two heartbeats listed in /api/v1/agents", || {
            let (client, url, token) = (client.clone(), url.clone(), token.clone());
            async move {
                let body: Value = client.get(&url).bearer_auth(&token).send().await.ok()?.json().await.ok()?;
                let agent = body["agents"].as_array()?.first()?.clone();
                (agent["last_seq"].as_i64()? >= 2).then_some(agent)
            }
        })
        .await;
        assert_eq!(listed["id"], agent.identity.agent_id.to_string());
        assert_eq!(listed["unit_code"], "663");
        assert_eq!(listed["status"], "online");
        assert_eq!(listed["heartbeat_interval_seconds"], 1);
        let host = &listed["host"];
        assert!(host["cpu_count"].as_u64().unwrap() >= 1, "{host}");
        assert!(host["memory_total_bytes"].as_u64().unwrap() > 0, "{host}");
        assert!(!host["hostname"].as_str().unwrap().is_empty(), "{host}");

        stop.send(()).unwrap();
        running.await.unwrap().unwrap();
        let events = collector.store.events_of_agent(&agent.identity.agent_id.to_string()).await.unwrap();
        assert!(events.len() >= 2, "heartbeats stored: {}", events.len());
        assert!(events.iter().all(|event| event.kind == "heartbeat" && event.status == "ok"));
        let seqs: Vec<i64> = events.iter().map(|event| event.seq).collect();
        assert!(seqs.windows(2).all(|pair| pair[1] == pair[0] + 1), "no gaps, no repeats: {seqs:?}");
        collector.stop().await;
        db.drop_database().await;
    }

    async fn resent_batches_are_stored_once(db: Db) {
        let db = test_db(db).await;
        let collector = spawn_collector(&db).await;
        let agent = collector.enroll_agent("24700").await;
        let client = collector.client();
        let url = format!("{}/api/v1/ingest", collector.base_url);
        let credential = agent.identity.credential.expose().to_owned();
        let mut unknown = heartbeat(3);
        unknown.kind = "probe_result_v9".into();
        unknown.data = serde_json::json!({ "target": "gateway", "rtt_ms": 1.5 });
        let batch = batch(vec![heartbeat(1), heartbeat(2), unknown]);

        let post = |batch: &Batch| client.post(&url).bearer_auth(&credential).json(batch).send();
        let first: Ack = post(&batch).await.unwrap().error_for_status().unwrap().json().await.unwrap();
        assert_eq!((first.accepted, first.duplicates, first.unknown_kinds), (3, 0, 1));
        assert_eq!(first.through_seq, Some(3));
        // The response was "lost": the agent sends the very same batch again, twice.
        for _ in 0..2 {
            let again: Ack = post(&batch).await.unwrap().error_for_status().unwrap().json().await.unwrap();
            assert_eq!((again.accepted, again.duplicates), (0, 3));
        }
        let stored = collector.store.events_of_agent(&agent.identity.agent_id.to_string()).await.unwrap();
        assert_eq!(stored.len(), 3, "each event exactly once");
        let kept = stored.iter().find(|event| event.kind == "probe_result_v9").expect("unknown kind kept");
        assert_eq!(kept.status, "unknown_kind");
        assert_eq!(serde_json::from_str::<Value>(&kept.data).unwrap()["rtt_ms"], 1.5);

        // A known kind with a wrong shape is kept and flagged, and does not sink its batch.
        let mut broken = heartbeat(5);
        broken.data = serde_json::json!({ "interval_seconds": "sixty" });
        let ack: Ack = post(&batch_of(vec![heartbeat(4), broken.clone()])).await.unwrap().json().await.unwrap();
        assert_eq!(ack.accepted, 2);
        assert_eq!(ack.invalid.len(), 1);
        assert_eq!(ack.invalid[0].id, broken.id);
        collector.stop().await;
        db.drop_database().await;
    }
}

fn batch_of(events: Vec<Event>) -> Batch {
    batch(events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_buffers_while_the_collector_is_down_and_delivers_after() {
    let db = e2e::sqlite_db();
    let collector = spawn_collector(&db).await;
    let agent = collector.enroll_agent("67.S.TTTT").await;
    let agent_id = agent.identity.agent_id.to_string();
    // Point the agent at a port where nothing listens: every upload fails, events stay on disk.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let mut config = agent.config.clone();
    config.uplink.url = Some(format!("https://127.0.0.1:{dead_port}"));
    config.uplink.max_backoff = Duration::from_millis(500);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(cntt_agent::run(config.clone(), async {
        let _ = stopped.await;
    }));
    tokio::time::sleep(Duration::from_millis(3500)).await;
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
    assert!(collector
        .store
        .events_of_agent(&agent_id)
        .await
        .unwrap()
        .is_empty());

    // Back online: the buffered heartbeats arrive, in order, once.
    config.uplink.url = None;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(cntt_agent::run(config, async {
        let _ = stopped.await;
    }));
    let store = collector.store.clone();
    let delivered = eventually(WAIT, "buffered heartbeats delivered", || {
        let (store, agent_id) = (store.clone(), agent_id.clone());
        async move {
            let events = store.events_of_agent(&agent_id).await.ok()?;
            (events.len() >= 4).then_some(events)
        }
    })
    .await;
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
    let seqs: Vec<i64> = delivered.iter().map(|event| event.seq).collect();
    assert!(
        seqs.windows(2).all(|pair| pair[1] == pair[0] + 1),
        "contiguous: {seqs:?}"
    );
    collector.stop().await;
}
