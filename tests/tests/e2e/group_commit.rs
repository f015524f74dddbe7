//! Group commit (issue 15): many agents' batches stored by one transaction must keep every
//! guarantee of `docs/protocol.md` per batch — exactly once by id, all or nothing, `200` only when
//! durable — with concurrent duplicate batches, a batch the database refuses inside a group, and a
//! collector process killed with `kill -9` while groups commit.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cntt_collector::store::{IngestBatch, NewEvent, NewProbeResult};
use cntt_common::wire::{Ack, Batch, CheckKind, Event, Payload, ProbeResult, TargetKind};
use e2e::{heartbeat_event, spawn_collector, test_db, TestAgent, TestDb};
use sqlx::Connection;

/// One agent's batch as agents send it: a heartbeat and 39 probe results from `seq` on.
fn agent_batch(seq: u64) -> Vec<Event> {
    let mut events = vec![heartbeat_event(seq, 60)];
    for i in 0..39_u64 {
        let result = ProbeResult {
            target: format!("muc-tieu-{}", i % 20),
            target_kind: TargetKind::Server,
            check: CheckKind::Tcp,
            address: format!("10.0.0.{}:443", i % 20),
            ok: i % 7 != 0,
            rtt_ms: (i % 7 != 0).then_some(2.0),
            error: (i % 7 == 0).then(|| "hết thời gian chờ".to_owned()),
            http_status: None,
            cert_not_after: None,
        };
        events.push(Event::new(
            seq + 1 + i,
            time::OffsetDateTime::now_utc(),
            &Payload::ProbeResult(result),
        ));
    }
    events
}

/// A batch a sender posted: its agent's index, its events, and whether a 200 came back.
type Sent = (usize, Vec<Event>, bool);

/// Every id stored, as raw events and as probe results, with how many rows carry it.
async fn stored_ids(db: &TestDb) -> HashMap<String, usize> {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&db.url)
        .await
        .expect("connecting to the test database");
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT id FROM events UNION ALL SELECT id FROM probe_results")
            .fetch_all(&mut conn)
            .await
            .expect("reading stored ids");
    conn.close().await.ok();
    let mut counts = HashMap::new();
    for id in ids {
        *counts.entry(id).or_insert(0) += 1;
    }
    counts
}

async fn post(
    client: &reqwest::Client,
    base_url: &str,
    agent: &TestAgent,
    events: &[Event],
) -> anyhow::Result<Ack> {
    let batch = Batch {
        version: cntt_common::wire::PROTOCOL_VERSION,
        agent_version: "0.1.0".into(),
        sent_at: time::OffsetDateTime::now_utc(),
        events: events.to_vec(),
    };
    let response = client
        .post(format!("{base_url}/api/v1/ingest"))
        .bearer_auth(agent.identity.credential.expose())
        .json(&batch)
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "status {}",
        response.status()
    );
    Ok(response.json().await?)
}

both_databases! {
    async fn concurrent_duplicate_batches_store_each_event_once(db: Db) {
        let db = test_db(db).await;
        let collector = Arc::new(spawn_collector(&db).await);
        let mut agents = Vec::new();
        for _ in 0..4 {
            agents.push(Arc::new(collector.enroll_agent("24700").await));
        }
        // Five batches per agent, each sent four times at once, plus a batch made of the second
        // half of one and the first half of the next: 84 requests in flight together, so the
        // groups hold copies of the same ids side by side.
        let mut requests: Vec<(Arc<TestAgent>, Vec<Event>)> = Vec::new();
        let mut distinct = HashSet::new();
        for agent in &agents {
            let batches: Vec<Vec<Event>> = (0..5).map(|b| agent_batch(1 + b * 40)).collect();
            for batch in &batches {
                distinct.extend(batch.iter().map(|event| event.id.to_string()));
                for _ in 0..4 {
                    requests.push((agent.clone(), batch.clone()));
                }
            }
            let mixed = [&batches[0][20..], &batches[1][..20]].concat();
            requests.push((agent.clone(), mixed));
        }
        let client = collector.client();
        let mut sending = Vec::new();
        for (agent, events) in requests {
            let (client, base_url) = (client.clone(), collector.base_url.clone());
            sending.push(tokio::spawn(async move {
                let ack = post(&client, &base_url, &agent, &events).await.expect("batch stored");
                (events.len(), ack)
            }));
        }
        let mut accepted = 0;
        for task in sending {
            let (sent, ack) = task.await.expect("sender ran");
            assert_eq!(
                (ack.accepted + ack.duplicates) as usize,
                sent,
                "every event of a batch is either new or a duplicate: {ack:?}"
            );
            accepted += ack.accepted as usize;
        }
        assert_eq!(accepted, distinct.len(), "each event accepted by exactly one request");
        let stored = stored_ids(&db).await;
        assert_eq!(stored.len(), distinct.len(), "every event stored");
        assert!(stored.values().all(|rows| *rows == 1), "no event stored twice");
        assert!(distinct.iter().all(|id| stored.contains_key(id)));
        match Arc::try_unwrap(collector) {
            Ok(collector) => collector.stop().await,
            Err(_) => panic!("the senders still hold the collector"),
        }
    }

    async fn a_batch_the_database_refuses_fails_alone_in_its_group(db: Db) {
        let db = test_db(db).await;
        let collector = spawn_collector(&db).await;
        let agent = collector.enroll_agent("24700").await;
        let batch = |unit_id: i64, seq: u64| {
            let events = agent_batch(seq);
            let heartbeat = &events[0];
            IngestBatch {
                agent_id: agent.identity.agent_id.to_string(),
                unit_id,
                events: vec![NewEvent {
                    id: heartbeat.id.to_string(),
                    seq: heartbeat.seq as i64,
                    kind: heartbeat.kind.clone(),
                    occurred_at: heartbeat.at,
                    status: "ok",
                    error: None,
                    data: heartbeat.data.to_string(),
                }],
                heartbeat: None,
                agent_version: "0.1.0".into(),
                address: None,
                now: time::OffsetDateTime::now_utc(),
                probe_results: events[1..]
                    .iter()
                    .map(|event| probe_row(event.id.to_string(), event.seq as i64, event.at))
                    .collect(),
                incident_phases: vec![],
                periodic_reports: vec![],
                clock_offset_ms: None,
            }
        };
        let unit_id = collector
            .store
            .unit_by_code("24700")
            .await
            .unwrap()
            .expect("test unit")
            .id;
        // The middle batch names a unit that does not exist: the database refuses it (foreign key).
        let group = [batch(unit_id, 1), batch(999_999, 41), batch(unit_id, 81)];
        let results = collector.store.ingest_group(&group).await;
        assert_eq!(results.len(), 3);
        assert_eq!(results[0].as_ref().expect("first batch stored").accepted, 40);
        assert!(results[1].is_err(), "the refused batch fails");
        assert_eq!(results[2].as_ref().expect("third batch stored").accepted, 40);
        let stored = stored_ids(&db).await;
        let ids = |batch: &IngestBatch| -> Vec<String> {
            batch
                .events
                .iter()
                .map(|event| event.id.clone())
                .chain(batch.probe_results.iter().map(|result| result.event_id.clone()))
                .collect()
        };
        assert!(ids(&group[0]).iter().all(|id| stored.contains_key(id)));
        assert!(ids(&group[1]).iter().all(|id| !stored.contains_key(id)), "nothing of the refused batch");
        assert!(ids(&group[2]).iter().all(|id| stored.contains_key(id)));
        collector.stop().await;
    }

    async fn kill_9_during_group_commits_keeps_every_batch_whole_and_every_ack_true(db: Db) {
        let db = test_db(db).await;
        let collector = spawn_collector(&db).await;
        let mut agents = Vec::new();
        for _ in 0..8 {
            agents.push(Arc::new(collector.enroll_agent("24700").await));
        }
        // The process under test listens on a port of its own and shares the database.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let config = std::fs::read_to_string(&collector.config_path)
            .expect("reading the test config")
            .replace("address = \"127.0.0.1:0\"", &format!("address = \"127.0.0.1:{port}\""));
        let config_path = collector.config_path.with_file_name("killed.toml");
        std::fs::write(&config_path, config).expect("writing the process's config");
        let base_url = format!("https://127.0.0.1:{port}");
        let spawn = || e2e::spawn_collector_process(env!("CARGO_BIN_EXE_collector-under-test"), &config_path);
        let mut process = spawn();

        // 16 senders (two per agent) post batches of 40 new events back to back; each batch is
        // remembered with whether a 200 came back.
        let stop = Arc::new(AtomicBool::new(false));
        let sent: Arc<Mutex<Vec<Sent>>> = Arc::default();
        let failures = Arc::new(AtomicUsize::new(0));
        let client = collector.client();
        let mut senders = Vec::new();
        for sender in 0..16_usize {
            let agent_index = sender % agents.len();
            let agent = agents[agent_index].clone();
            let (stop, sent, failures, client, base_url) =
                (stop.clone(), sent.clone(), failures.clone(), client.clone(), base_url.clone());
            senders.push(tokio::spawn(async move {
                let mut seq = 1 + (sender / 8) as u64 * 1_000_000;
                while !stop.load(Ordering::Relaxed) {
                    let events = agent_batch(seq);
                    seq += 40;
                    let acked = post(&client, &base_url, &agent, &events).await.is_ok();
                    if !acked {
                        failures.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    sent.lock().unwrap().push((agent_index, events, acked));
                }
            }));
        }
        let mut kills = 0;
        for round in 0..4_u64 {
            // Wait until the process answers, then kill it while batches stream in.
            e2e::eventually(Duration::from_secs(30), "the process answers", || {
                let client = client.clone();
                let url = format!("{base_url}/healthz");
                async move { client.get(url).send().await.ok().map(|_| ()) }
            })
            .await;
            tokio::time::sleep(Duration::from_millis(400 + 150 * round)).await;
            process.kill();
            kills += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
            process = spawn();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.store(true, Ordering::Relaxed);
        for sender in senders {
            sender.await.expect("sender ran");
        }
        let sent = std::mem::take(&mut *sent.lock().unwrap());
        let acked = sent.iter().filter(|(_, _, acked)| *acked).count();
        assert!(acked > 100, "batches were stored under load: {acked}");
        assert!(
            failures.load(Ordering::Relaxed) >= kills,
            "each kill interrupted requests in flight"
        );

        let stored = stored_ids(&db).await;
        let mut partial = 0;
        for (_, events, was_acked) in &sent {
            let present = events.iter().filter(|event| stored.contains_key(&event.id.to_string())).count();
            if *was_acked {
                assert_eq!(present, events.len(), "an acknowledged batch is stored whole");
            } else if present != 0 && present != events.len() {
                partial += 1;
            }
        }
        assert_eq!(partial, 0, "no batch is stored in part");
        assert!(stored.values().all(|rows| *rows == 1), "no event stored twice");

        // The agents send again what was not acknowledged (and, as after a lost acknowledgement,
        // what was): every event ends up stored exactly once.
        for (agent_index, events, _) in &sent {
            // As an agent does, wait when the collector says this agent sends too fast (429).
            let mut attempts = 0;
            let ack = loop {
                match post(&client, &base_url, &agents[*agent_index], events).await {
                    Ok(ack) => break ack,
                    Err(err) if err.to_string().contains("429") && attempts < 30 => {
                        attempts += 1;
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    Err(err) => panic!("resent batch not stored: {err:#}"),
                }
            };
            assert_eq!((ack.accepted + ack.duplicates) as usize, events.len());
        }
        let stored = stored_ids(&db).await;
        let distinct: HashSet<String> = sent
            .iter()
            .flat_map(|(_, events, _)| events.iter().map(|event| event.id.to_string()))
            .collect();
        assert_eq!(stored.len(), distinct.len(), "every event stored, nothing else");
        assert!(stored.values().all(|rows| *rows == 1), "exactly once");
        drop(process);
        collector.stop().await;
    }
}

/// A successful TCP check of the test server, as the store's row.
fn probe_row(event_id: String, seq: i64, at: time::OffsetDateTime) -> NewProbeResult {
    NewProbeResult {
        event_id,
        seq,
        target: "may-chu".into(),
        target_kind: "server".into(),
        check_kind: "tcp".into(),
        address: "10.0.0.1:443".into(),
        at,
        ok: true,
        rtt_ms: Some(1.0),
        error: None,
        http_status: None,
        cert_not_after: None,
    }
}

/// A batch of `probes` probe results (and no raw event) of `agent`, from `seq` on.
fn probe_batch(agent_id: &str, unit_id: i64, seq: u64, probes: usize) -> IngestBatch {
    let now = time::OffsetDateTime::now_utc();
    IngestBatch {
        agent_id: agent_id.to_owned(),
        unit_id,
        events: vec![],
        heartbeat: None,
        agent_version: "0.1.0".into(),
        address: None,
        now,
        probe_results: (0..probes)
            .map(|i| {
                probe_row(
                    uuid::Uuid::now_v7().to_string(),
                    (seq + i as u64) as i64,
                    now,
                )
            })
            .collect(),
        incident_phases: vec![],
        periodic_reports: vec![],
        clock_offset_ms: None,
    }
}

/// Recovery (issue 15): while backlogs of 500-record batches wait for the writer, an agent's
/// minute of news goes in the live lane and is written in the next group, not after them.
#[tokio::test]
async fn a_live_batch_passes_the_backlogs_waiting_for_the_writer() {
    let db = test_db(e2e::Db::Sqlite).await;
    let collector = spawn_collector(&db).await;
    let agent = collector.enroll_agent("24700").await;
    let agent_id = agent.identity.agent_id.to_string();
    let unit_id = collector
        .store
        .unit_by_code("24700")
        .await
        .unwrap()
        .expect("test unit")
        .id;
    let committer = cntt_collector::store::Committer::start(collector.store.clone(), 1);
    // Another connection holds SQLite's write lock: the writer takes the first backlog batch
    // alone and waits on the lock while the rest queue up.
    sqlx::any::install_default_drivers();
    let mut blocker = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut blocker)
        .await
        .unwrap();
    let finished = Arc::new(AtomicUsize::new(0));
    let send = |batch: IngestBatch| {
        let committer = committer.clone();
        let finished = finished.clone();
        tokio::spawn(async move {
            let counts = committer.ingest(batch).await.expect("stored");
            (finished.fetch_add(1, Ordering::SeqCst), counts.accepted)
        })
    };
    let mut backlog = vec![send(probe_batch(&agent_id, unit_id, 0, 500))];
    tokio::time::sleep(Duration::from_millis(200)).await;
    const BACKLOG_BATCHES: u64 = 40;
    for n in 1..BACKLOG_BATCHES {
        backlog.push(send(probe_batch(&agent_id, unit_id, n * 500, 500)));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let live = send(probe_batch(&agent_id, unit_id, 1_000_000, 41));
    tokio::time::sleep(Duration::from_millis(200)).await;
    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
    let (live_place, live_accepted) = live.await.unwrap();
    assert_eq!(live_accepted, 41);
    let mut places = Vec::new();
    for batch in backlog {
        let (place, accepted) = batch.await.unwrap();
        assert_eq!(accepted, 500);
        places.push(place);
    }
    // The group being written (the first backlog batch) ends first; the next group holds the live
    // batch and backlog batches up to GROUP_ROWS (8 of 500); 31 more come in later groups. In one
    // queue it would have ended last, 41st.
    let later = places.iter().filter(|place| **place > live_place).count();
    assert!(
        live_place <= 9,
        "the live batch ended {}th of 41",
        live_place + 1
    );
    assert!(
        later >= 31,
        "{later} backlog batches ended after the live one"
    );
    blocker.close().await.ok();
    collector.stop().await;
}

/// Recovery memory (issue 15): large bodies take one of `LARGE_BODIES` places before they are
/// read and hold it until dropped; small ones never wait, even while every place is taken.
#[tokio::test]
async fn large_bodies_take_turns_and_small_ones_never_wait() {
    use cntt_collector::store::{GZIP_EXPANSION, LARGE_BODIES, LARGE_BODY_BYTES};
    let db = test_db(e2e::Db::Sqlite).await;
    let collector = spawn_collector(&db).await;
    let committer = cntt_collector::store::Committer::start(collector.store.clone(), 1);
    let mut places = Vec::new();
    for _ in 0..LARGE_BODIES {
        let place = tokio::time::timeout(
            Duration::from_secs(1),
            committer.admit(Some(LARGE_BODY_BYTES + 1), false),
        )
        .await
        .expect("a free place is given at once");
        assert!(place.is_some(), "a large body holds a place");
        places.push(place);
    }
    // Every place taken: one more large body waits, and so do one of unknown size and a gzip body
    // that is small on the wire but decodes to a large batch (a backlog compresses tenfold).
    for (size, gzip) in [
        (Some(LARGE_BODY_BYTES * 10), false),
        (None, false),
        (None, true),
        (Some(LARGE_BODY_BYTES / GZIP_EXPANSION + 1), true),
    ] {
        assert!(
            tokio::time::timeout(Duration::from_millis(300), committer.admit(size, gzip))
                .await
                .is_err(),
            "a large body ({size:?} bytes, gzip {gzip}) waited while every place was taken"
        );
    }
    // A live agent's body passes at once, holding nothing, plain or compressed.
    for (size, gzip) in [
        (LARGE_BODY_BYTES, false),
        (LARGE_BODY_BYTES / GZIP_EXPANSION, true),
    ] {
        let small = tokio::time::timeout(
            Duration::from_millis(300),
            committer.admit(Some(size), gzip),
        )
        .await
        .expect("a small body never waits");
        assert!(small.is_none(), "{size} bytes, gzip {gzip}");
    }
    // One place freed: the next large body gets it.
    let waiting = tokio::spawn({
        let committer = committer.clone();
        async move {
            committer
                .admit(Some(LARGE_BODY_BYTES + 1), false)
                .await
                .is_some()
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !waiting.is_finished(),
        "it waits while every place is taken"
    );
    places.pop();
    assert!(tokio::time::timeout(Duration::from_secs(2), waiting)
        .await
        .expect("a freed place is given")
        .unwrap());
    collector.stop().await;
}
