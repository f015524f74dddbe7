//! The agent finding incidents on real local services, telling LAN from WAN from server trouble,
//! and never losing what it found: outages of the collector, `kill -9`, corrupted files.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use cntt_agent::config::Config as AgentConfig;
use cntt_collector::store::{millis, StoredEvent};
use cntt_common::wire::{Incident, IncidentKind, IncidentPhase, ProbeResult};
use e2e::targets::{Behaviour, Service};
use e2e::{eventually, spawn_collector, sqlite_db, start_agent as start, TestAgent, TestCollector};

use super::WAIT;

/// An agent config checking `targets` (name, kind, check, address) every `interval`.
fn config(
    agent: &TestAgent,
    interval: &str,
    extra: &str,
    targets: &[(&str, &str, &str, String)],
) -> AgentConfig {
    let mut text = format!(
        "state_dir = \"{}\"\n[heartbeat]\ninterval = \"1s\"\n[uplink]\nlinger = \"10ms\"\nmax_backoff = \"200ms\"\n\
         [probes]\ninterval = \"{interval}\"\ntimeout = \"200ms\"\n{extra}",
        agent.state.path().display()
    );
    for (name, kind, check, address) in targets {
        text.push_str(&format!("[[target]]\nname = \"{name}\"\nkind = \"{kind}\"\ncheck = \"{check}\"\naddress = \"{address}\"\n"));
        if *name == "gateway" {
            text.push_str("gateway = true\n");
        }
    }
    AgentConfig::parse(&text).expect("test agent config is valid")
}

async fn events(collector: &TestCollector, agent: &TestAgent) -> Vec<StoredEvent> {
    collector
        .store
        .events_of_agent(&agent.identity.agent_id.to_string())
        .await
        .unwrap()
}

fn incidents(events: &[StoredEvent]) -> Vec<(i64, Incident)> {
    events
        .iter()
        .filter(|event| event.kind == "incident")
        .map(|event| {
            (
                event.seq,
                serde_json::from_str(&event.data).expect("incident data parses"),
            )
        })
        .collect()
}

fn probes(events: &[StoredEvent], target: &str) -> Vec<(i64, ProbeResult)> {
    events
        .iter()
        .filter(|event| event.kind == "probe_result")
        .map(|event| {
            (
                event.occurred_at,
                serde_json::from_str::<ProbeResult>(&event.data).expect("probe data parses"),
            )
        })
        .filter(|(_, result)| result.target == target)
        .collect()
}

/// Waits until the collector holds an incident event matching `pick`.
async fn wait_for_incident(
    collector: &TestCollector,
    agent: &TestAgent,
    what: &str,
    pick: impl Fn(&Incident) -> bool,
) {
    eventually(WAIT, what, || async {
        let events = events(collector, agent).await;
        incidents(&events)
            .iter()
            .any(|(_, incident)| pick(incident))
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_service_is_one_incident_from_first_failure_to_first_success() {
    let db = sqlite_db();
    let collector = spawn_collector(&db).await;
    let agent = collector.enroll_agent("663").await;
    let mut portal = Service::start_new(Behaviour::Tcp).await;
    let running = start(config(
        &agent,
        "100ms",
        "",
        &[("portal", "server", "tcp", portal.address())],
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    portal.stop().await;
    tokio::time::sleep(Duration::from_millis(450)).await;
    portal.start().await;
    wait_for_incident(
        &collector,
        &agent,
        "the portal incident resolved",
        |incident| incident.phase == IncidentPhase::Resolved,
    )
    .await;
    running.stop().await;

    let events = events(&collector, &agent).await;
    let incidents = incidents(&events);
    let ids: BTreeSet<_> = incidents
        .iter()
        .map(|(_, incident)| incident.incident_id)
        .collect();
    assert_eq!(ids.len(), 1, "one incident: {incidents:#?}");
    let phases: Vec<IncidentPhase> = incidents
        .iter()
        .map(|(_, incident)| incident.phase)
        .collect();
    assert_eq!(phases, [IncidentPhase::Opened, IncidentPhase::Resolved]);
    let resolved = &incidents[1].1;
    assert_eq!(resolved.kind, IncidentKind::Server);
    assert_eq!(resolved.target.as_deref(), Some("portal"));

    let checks = probes(&events, "portal");
    let first_failure = checks
        .iter()
        .position(|(_, result)| !result.ok)
        .expect("some checks failed");
    let first_success = first_failure
        + checks[first_failure..]
            .iter()
            .position(|(_, result)| result.ok)
            .expect("it recovered");
    let failures = first_success - first_failure;
    assert!(
        failures >= 3,
        "stopped for at least 3 checks, was {failures}"
    );
    assert_eq!(
        millis(resolved.started_at),
        checks[first_failure].0,
        "start is the first failed check"
    );
    assert_eq!(
        millis(resolved.ended_at.expect("ended")),
        checks[first_success].0,
        "end is the first good check"
    );
    assert!(
        !resolved.evidence.is_empty() && resolved.evidence.iter().any(|e| e.error.is_some()),
        "evidence carries errors"
    );
    collector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_failing_every_other_check_opens_no_incident() {
    let db = sqlite_db();
    let collector = spawn_collector(&db).await;
    let agent = collector.enroll_agent("663").await;
    let flapping = Service::start_new(Behaviour::FlappingHttp).await;
    let running = start(config(
        &agent,
        "50ms",
        "",
        &[("portal", "server", "http", flapping.url())],
    ));
    eventually(WAIT, "20 checks of the flapping service", || async {
        (probes(&events(&collector, &agent).await, "portal").len() >= 20).then_some(())
    })
    .await;
    running.stop().await;
    let events = events(&collector, &agent).await;
    let checks = probes(&events, "portal");
    let failed = checks.iter().filter(|(_, result)| !result.ok).count();
    assert!(
        failed >= 8 && failed < checks.len() - 8,
        "every other check failed: {failed} of {}",
        checks.len()
    );
    assert!(
        incidents(&events).is_empty(),
        "a flapping service is no incident"
    );
    collector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lan_down_takes_wan_and_server_as_consequences_and_wan_down_alone_is_a_wan_incident() {
    let db = sqlite_db();
    let collector = spawn_collector(&db).await;
    let agent = collector.enroll_agent("663").await;
    let mut gateway = Service::start_new(Behaviour::Tcp).await;
    let mut edge = Service::start_new(Behaviour::Tcp).await;
    let mut data_centre = Service::start_new(Behaviour::Tcp).await;
    let mut portal = Service::start_new(Behaviour::Http).await;
    let targets = [
        ("gateway", "lan", "tcp", gateway.address()),
        ("wan-edge", "wan", "tcp", edge.address()),
        ("so-tttt", "wan", "tcp", data_centre.address()),
        ("portal", "server", "http", portal.url()),
    ];
    let running = start(config(&agent, "100ms", "", &targets));
    tokio::time::sleep(Duration::from_millis(400)).await;

    // The agency's switch dies: everything fails at once.
    for service in [&mut gateway, &mut edge, &mut data_centre, &mut portal] {
        service.stop().await;
    }
    wait_for_incident(&collector, &agent, "a LAN incident", |incident| {
        incident.kind == IncidentKind::Lan
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for service in [&mut gateway, &mut edge, &mut data_centre, &mut portal] {
        service.start().await;
    }
    wait_for_incident(
        &collector,
        &agent,
        "the LAN incident resolved",
        |incident| incident.kind == IncidentKind::Lan && incident.phase == IncidentPhase::Resolved,
    )
    .await;
    let lan_phase = incidents(&events(&collector, &agent).await);
    let ids: BTreeSet<_> = lan_phase
        .iter()
        .map(|(_, incident)| incident.incident_id)
        .collect();
    assert_eq!(
        ids.len(),
        1,
        "one incident for the whole outage: {lan_phase:#?}"
    );
    let consequences: BTreeSet<String> = lan_phase
        .iter()
        .flat_map(|(_, incident)| incident.consequences.iter().cloned())
        .collect();
    assert_eq!(
        consequences,
        BTreeSet::from(["portal".into(), "so-tttt".into(), "wan-edge".into()])
    );

    // Now the transmission line: both WAN targets fail while the LAN is fine.
    edge.stop().await;
    data_centre.stop().await;
    wait_for_incident(&collector, &agent, "a WAN incident", |incident| {
        incident.kind == IncidentKind::Wan
    })
    .await;
    edge.start().await;
    data_centre.start().await;
    wait_for_incident(
        &collector,
        &agent,
        "the WAN incident resolved",
        |incident| incident.kind == IncidentKind::Wan && incident.phase == IncidentPhase::Resolved,
    )
    .await;
    running.stop().await;
    let all = incidents(&events(&collector, &agent).await);
    let wan: Vec<&Incident> = all
        .iter()
        .map(|(_, incident)| incident)
        .filter(|incident| incident.kind == IncidentKind::Wan)
        .collect();
    let wan_ids: BTreeSet<_> = wan.iter().map(|incident| incident.incident_id).collect();
    assert_eq!(wan_ids.len(), 1, "one WAN incident: {wan:#?}");
    let evidence: BTreeSet<&str> = wan
        .iter()
        .flat_map(|incident| incident.evidence.iter().map(|e| e.target.as_str()))
        .collect();
    assert_eq!(evidence, BTreeSet::from(["so-tttt", "wan-edge"]));
    assert_eq!(
        all.iter()
            .map(|(_, i)| i.incident_id)
            .collect::<BTreeSet<_>>()
            .len(),
        2,
        "no other incident: {all:#?}"
    );
    collector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_without_the_collector_loses_no_incident_or_report_and_stays_in_budget() {
    let db = sqlite_db();
    let mut collector = spawn_collector(&db).await;
    let agent = collector.enroll_agent("663").await;
    let mut portal = Service::start_new(Behaviour::Tcp).await;
    // Time compressed: a probe every 5 ms and a heartbeat every 10 ms give, in ~15 s, the
    // ~4,300 events a day of default intervals gives for one target; a 1 MiB outbox cannot hold them.
    let mut config = config(
        &agent,
        "5ms",
        "",
        &[("portal", "server", "tcp", portal.address())],
    );
    config.heartbeat_interval = Duration::from_millis(10);
    config.outbox.max_bytes = 1 << 20;
    config.outbox.segment_bytes = 64 << 10;
    collector.pause().await;
    let running = start(config.clone());
    let mut report_ids = Vec::new();
    for round in 0..5 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        portal.stop().await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        portal.start().await;
        let report = cntt_common::wire::Incident {
            incident_id: uuid::Uuid::new_v4(),
            phase: IncidentPhase::Opened,
            kind: IncidentKind::Security,
            source: cntt_common::wire::IncidentSource::Manual,
            severity: cntt_common::wire::Severity::High,
            title: format!("Phát hiện truy cập trái phép lần {round}"),
            description: String::new(),
            target: None,
            started_at: time::OffsetDateTime::now_utc(),
            ended_at: None,
            discovered_at: Some(time::OffsetDateTime::now_utc()),
            systems_affected: vec!["Máy chủ thư điện tử".into()],
            evidence: vec![],
            consequences: vec![],
        };
        report_ids.push(report.incident_id);
        let event = cntt_common::wire::Event::new(
            0,
            time::OffsetDateTime::now_utc(),
            &cntt_common::wire::Payload::Incident(Box::new(report)),
        );
        cntt_agent::spool::submit(agent.state.path(), &event).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    running.stop().await;
    let stats = cntt_agent::outbox::Outbox::inspect(&agent.state.path().join("outbox")).unwrap();
    assert!(
        stats.dropped_routine_total > 0,
        "the outage overflowed the outbox: {stats:?}"
    );
    assert!(
        stats.bytes <= config.outbox.max_bytes + config.outbox.segment_bytes,
        "within budget: {stats:?}"
    );

    // The collector comes back; the agent drains everything.
    // Back at a normal pace, so what is drained is the outage's backlog.
    collector.resume().await;
    config.heartbeat_interval = Duration::from_secs(1);
    for target in &mut config.targets {
        target.interval = Duration::from_secs(1);
    }
    let running = start(config);
    eventually(Duration::from_secs(60), "the backlog drained", || async {
        let stats = cntt_agent::outbox::Outbox::inspect(&agent.state.path().join("outbox")).ok()?;
        (stats.records == 0).then_some(())
    })
    .await;
    running.stop().await;
    let stats = cntt_agent::outbox::Outbox::inspect(&agent.state.path().join("outbox")).unwrap();
    let events = events(&collector, &agent).await;
    let all = incidents(&events);

    // Incidents and reports went first: the whole routine backlog arrived after the last of them.
    let outage_routine = events.iter().filter(|event| event.kind != "incident");
    let first_routine = outage_routine
        .map(|event| event.received_at)
        .min()
        .expect("routine samples arrived");
    let last_critical = events
        .iter()
        .filter(|event| event.kind == "incident")
        .map(|event| event.received_at)
        .max();
    assert!(
        last_critical.expect("incidents arrived") <= first_routine,
        "critical records are sent ahead of the backlog"
    );

    // Every officer report arrived once.
    for id in &report_ids {
        assert_eq!(
            all.iter()
                .filter(|(_, incident)| &incident.incident_id == id)
                .count(),
            1,
            "report {id} once"
        );
    }
    // Every detected incident arrived opened and resolved, opened first.
    let mut phases: BTreeMap<uuid::Uuid, Vec<(i64, IncidentPhase)>> = BTreeMap::new();
    for (seq, incident) in all
        .iter()
        .filter(|(_, incident)| incident.kind == IncidentKind::Server)
    {
        phases
            .entry(incident.incident_id)
            .or_default()
            .push((*seq, incident.phase));
    }
    assert_eq!(
        phases.len(),
        5,
        "one incident per stop of the service: {phases:#?}"
    );
    for (id, list) in &phases {
        assert_eq!(
            list.iter().map(|(_, phase)| *phase).collect::<Vec<_>>(),
            [IncidentPhase::Opened, IncidentPhase::Resolved],
            "{id}"
        );
        assert!(list[0].0 < list[1].0, "opened before resolved: {list:?}");
    }
    // Nothing twice, and the drop counter accounts for every routine sample that never arrived.
    let seqs: BTreeSet<i64> = events.iter().map(|event| event.seq).collect();
    assert_eq!(seqs.len(), events.len(), "no seq stored twice");
    let max_seq = *seqs.last().unwrap() as u64;
    assert_eq!(
        events.len() as u64 + stats.dropped_routine_total,
        max_seq,
        "stored {} + dropped {} = recorded {max_seq}",
        events.len(),
        stats.dropped_routine_total
    );
    collector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_minus_nine_twenty_times_loses_and_duplicates_nothing() {
    let db = sqlite_db();
    let collector = spawn_collector(&db).await;
    let agent = collector.enroll_agent("663").await;
    let portal = Service::start_new(Behaviour::Tcp).await;
    let text = format!(
        "state_dir = \"{}\"\n[heartbeat]\ninterval = \"10ms\"\n[uplink]\nlinger = \"5ms\"\nmax_backoff = \"100ms\"\n\
         [probes]\ninterval = \"5ms\"\ntimeout = \"200ms\"\n\
         [[target]]\nname = \"portal\"\nkind = \"server\"\ncheck = \"tcp\"\naddress = \"{}\"\n",
        agent.state.path().display(),
        portal.address()
    );
    let config_path = agent.state.path().join("agent.toml");
    std::fs::write(&config_path, text).unwrap();
    let binary = env!("CARGO_BIN_EXE_agent-under-test");
    let mut pauses = (0..20).map(|i| 150 + (i * 37) % 400);
    for _ in 0..20 {
        let mut child = std::process::Command::new(binary)
            .arg(&config_path)
            .env("CNTT_LOG", "warn")
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(pauses.next().unwrap())).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    // A last, clean run drains what is left.
    let child = std::process::Command::new(binary)
        .arg(&config_path)
        .env("CNTT_LOG", "warn")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the agent stops cleanly on SIGTERM: {:?} {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let stats = cntt_agent::outbox::Outbox::inspect(&agent.state.path().join("outbox")).unwrap();
    let events = events(&collector, &agent).await;
    let seqs: Vec<i64> = events.iter().map(|event| event.seq).collect();
    assert!(
        seqs.len() > 200,
        "the agent worked between kills: {} events",
        seqs.len()
    );
    let distinct: BTreeSet<i64> = seqs.iter().copied().collect();
    assert_eq!(distinct.len(), seqs.len(), "no event stored twice");
    // Every seq the outbox handed out either reached the collector or is still waiting.
    let max = *distinct.last().unwrap();
    let missing: Vec<i64> = (1..=max).filter(|seq| !distinct.contains(seq)).collect();
    assert!(
        missing.len() as u64 <= stats.records,
        "lost seqs {missing:?}, waiting {}",
        stats.records
    );
    assert_eq!(stats.dropped_routine_total, 0);
    collector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_outbox_is_reported_and_the_agent_keeps_working() {
    let db = sqlite_db();
    let mut collector = spawn_collector(&db).await;
    let agent = collector.enroll_agent("663").await;
    let portal = Service::start_new(Behaviour::Tcp).await;
    let mut config = config(
        &agent,
        "10ms",
        "",
        &[("portal", "server", "tcp", portal.address())],
    );
    config.heartbeat_interval = Duration::from_millis(50);
    collector.pause().await;
    let running = start(config.clone());
    tokio::time::sleep(Duration::from_millis(800)).await;
    running.stop().await;

    // Flip bytes in the middle of the newest segment and cut its tail, as a bad disk would.
    let outbox_dir = agent.state.path().join("outbox");
    let mut segments: Vec<_> = std::fs::read_dir(&outbox_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "seg"))
        .collect();
    segments.sort();
    let segment = segments.last().expect("a segment");
    let mut bytes = std::fs::read(segment).unwrap();
    let middle = bytes.len() / 2;
    for byte in &mut bytes[middle..middle + 16] {
        *byte ^= 0xff;
    }
    bytes.truncate(bytes.len() - 7);
    std::fs::write(segment, &bytes).unwrap();

    collector.resume().await;
    let running = start(config);
    let heartbeat = eventually(WAIT, "a heartbeat reporting the recovery", || async {
        let events = events(&collector, &agent).await;
        events
            .iter()
            .filter(|event| event.kind == "heartbeat")
            .find_map(|event| {
                let heartbeat: cntt_common::wire::Heartbeat =
                    serde_json::from_str(&event.data).ok()?;
                let outbox = heartbeat.outbox?;
                (!outbox.recovery_notes.is_empty()).then_some(outbox)
            })
    })
    .await;
    assert!(
        heartbeat
            .recovery_notes
            .iter()
            .any(|note| note.contains(".seg")),
        "{heartbeat:?}"
    );
    // And it keeps working: fresh checks arrive after the restart.
    let before = probes(&events(&collector, &agent).await, "portal").len();
    eventually(WAIT, "new probe results after recovery", || async {
        (probes(&events(&collector, &agent).await, "portal").len() > before + 10).then_some(())
    })
    .await;
    running.stop().await;
    assert!(
        std::fs::read_dir(outbox_dir.join("corrupt"))
            .unwrap()
            .count()
            > 0,
        "the damaged file is kept aside"
    );
    collector.stop().await;
}

/// A collector of an older version, which reads a gzip body as broken JSON: it answers gzip with
/// 400 `invalid_json` and acknowledges plain JSON. (An older build cannot exist in this tree, so
/// this one speaks just enough HTTP over the real test certificate.)
async fn older_collector(
    collector: &TestCollector,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<bool>>>) {
    let (url, seen, _) = stand_in_collector(collector, StandIn::Older).await;
    (url, seen)
}

/// Times of the uploads a stand-in collector received, each with whether it was left unanswered.
type Arrivals = std::sync::Arc<std::sync::Mutex<Vec<(std::time::Instant, bool)>>>;

/// How a stand-in collector behaves beyond refusing gzip like an older collector.
#[derive(Clone, Copy, PartialEq, Eq)]
enum StandIn {
    /// Nothing more.
    Older,
    /// Answers the very first upload with 429 and `Retry-After: 2`.
    BusyFirst,
    /// Closes the connection instead of answering the second upload on each connection, as a
    /// kept-alive connection closes when its idle timeout meets the agent's next request.
    ClosesSecondUpload,
}

/// The stand-in collector, speaking just enough HTTP over the real test certificate.
async fn stand_in_collector(
    collector: &TestCollector,
    mode: StandIn,
) -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<bool>>>,
    Arrivals,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tls = cntt_collector::config::tls::server_config(&cntt_collector::config::TlsConfig {
        cert: collector.dir.path().join("tls/server.pem"),
        key: collector.dir.path().join("tls/server-key.pem"),
    })
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://127.0.0.1:{}",
        listener.local_addr().unwrap().port()
    );
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let arrivals: Arrivals = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let requests = seen.clone();
    let times = arrivals.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let Ok(mut stream) = acceptor.accept(tcp).await else {
                continue;
            };
            let requests = requests.clone();
            let times = times.clone();
            tokio::spawn(async move {
                let mut uploads_here = 0;
                let mut data = Vec::new();
                let mut buffer = [0u8; 8192];
                loop {
                    let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => data.extend_from_slice(&buffer[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&data[..end]).to_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|line| line.strip_prefix("content-length:"))
                        .and_then(|value| value.trim().parse().ok())
                        .unwrap_or(0);
                    while data.len() < end + 4 + length {
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => data.extend_from_slice(&buffer[..n]),
                        }
                    }
                    // The agent's default check of the collector is an HTTPS GET /healthz (issue 13,
                    // M3): answer it, but count only uploads.
                    if !head.starts_with("post /api/v1/ingest") {
                        let response = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
                        if stream.write_all(response.as_bytes()).await.is_err() {
                            return;
                        }
                        data.drain(..end + 4 + length);
                        continue;
                    }
                    let gzip = head.contains("content-encoding: gzip");
                    requests.lock().unwrap().push(gzip);
                    uploads_here += 1;
                    let dropped = mode == StandIn::ClosesSecondUpload && uploads_here == 2;
                    let first = {
                        let mut times = times.lock().unwrap();
                        times.push((std::time::Instant::now(), dropped));
                        times.len() == 1
                    };
                    if dropped {
                        return;
                    }
                    if mode == StandIn::BusyFirst && first {
                        let answer = r#"{"error":"busy","message":"try again later"}"#;
                        let response = format!(
                            "HTTP/1.1 429 Too Many Requests\r\nretry-after: 2\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                            answer.len()
                        );
                        if stream.write_all(response.as_bytes()).await.is_err() {
                            return;
                        }
                        data.drain(..end + 4 + length);
                        continue;
                    }
                    let body = &data[end + 4..end + 4 + length];
                    let (status, answer) = match serde_json::from_slice::<cntt_common::wire::Batch>(body) {
                        Ok(batch) if !gzip => {
                            let ack = cntt_common::wire::Ack {
                                version: 1,
                                accepted: batch.events.len() as u32,
                                duplicates: 0,
                                unknown_kinds: 0,
                                invalid: vec![],
                                through_seq: batch.events.iter().map(|event| event.seq).max(),
                                server_time: time::OffsetDateTime::now_utc(),
                            };
                            ("200 OK", serde_json::to_string(&ack).unwrap())
                        }
                        _ => ("400 Bad Request", r#"{"error":"invalid_json","message":"expected value at line 1 column 1"}"#.to_owned()),
                    };
                    let response = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                        answer.len()
                    );
                    if stream.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                    data.drain(..end + 4 + length);
                }
            });
        }
    });
    (url, seen, arrivals)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_collector_that_cannot_read_gzip_gets_plain_json_and_nothing_is_set_aside() {
    let db = sqlite_db();
    let collector = spawn_collector(&db).await;
    let agent = collector.enroll_agent("663").await;
    let (url, seen) = older_collector(&collector).await;
    let mut config = config(&agent, "1s", "", &[]);
    config.heartbeat_interval = Duration::from_millis(100);
    config.uplink.url = Some(url);
    let running = start(config);
    eventually(WAIT, "plain JSON batches accepted", || async {
        let seen = seen.lock().unwrap().clone();
        (seen.iter().filter(|gzip| !**gzip).count() >= 3).then_some(())
    })
    .await;
    running.stop().await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen.iter().filter(|gzip| **gzip).count(),
        1,
        "one gzip try, then plain JSON: {seen:?}"
    );
    assert!(
        !agent.state.path().join("rejected").exists(),
        "no good batch was set aside"
    );
    let stats = cntt_agent::outbox::Outbox::inspect(&agent.state.path().join("outbox")).unwrap();
    // Heartbeats keep coming until the stop, so the queue need not be empty; what matters is that
    // the plain batches were acknowledged in the outbox.
    assert!(
        stats.acked_through >= 3,
        "plain JSON batches were acknowledged: {stats:?}"
    );
    collector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_collector_s_retry_after_is_honoured() {
    let db = sqlite_db();
    let collector = spawn_collector(&db).await;
    let agent = collector.enroll_agent("663").await;
    let (url, _, arrivals) = stand_in_collector(&collector, StandIn::BusyFirst).await;
    let mut config = config(&agent, "1s", "", &[]);
    config.heartbeat_interval = Duration::from_millis(100);
    config.uplink.url = Some(url);
    let running = start(config);
    eventually(WAIT, "requests after the 429", || async {
        (arrivals.lock().unwrap().len() >= 2).then_some(())
    })
    .await;
    running.stop().await;
    let arrivals = arrivals.lock().unwrap().clone();
    let waited = arrivals[1].0 - arrivals[0].0;
    assert!(
        waited >= Duration::from_millis(1900),
        "waited {waited:?} after Retry-After: 2"
    );
    collector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_meeting_a_closing_kept_alive_connection_is_sent_again_at_once() {
    let db = sqlite_db();
    let collector = spawn_collector(&db).await;
    let agent = collector.enroll_agent("663").await;
    let (url, _, arrivals) = stand_in_collector(&collector, StandIn::ClosesSecondUpload).await;
    let mut config = config(&agent, "1s", "", &[]);
    config.heartbeat_interval = Duration::from_millis(300);
    config.uplink.url = Some(url);
    // The uplink's own backoff (about 1 s after a failure), so a resend at once is told from it.
    config.uplink.max_backoff = Duration::from_secs(10);
    let running = start(config);
    eventually(
        WAIT,
        "three uploads left unanswered and sent again",
        || async {
            let arrivals = arrivals.lock().unwrap().clone();
            let dropped = arrivals.iter().filter(|(_, dropped)| *dropped).count();
            // Each unanswered upload followed by its resend.
            (dropped >= 3 && !arrivals.last().unwrap().1).then_some(())
        },
    )
    .await;
    running.stop().await;
    let arrivals = arrivals.lock().unwrap().clone();
    for pair in arrivals.windows(2) {
        if pair[0].1 {
            let gap = pair[1].0 - pair[0].0;
            // The uplink's backoff waits at least 0.8 s (1 s with jitter) here; a resend does not.
            assert!(
                gap < Duration::from_millis(500),
                "an upload left unanswered is sent again at once, not after a backoff: {gap:?}"
            );
        }
    }
    let stats = cntt_agent::outbox::Outbox::inspect(&agent.state.path().join("outbox")).unwrap();
    assert!(
        stats.acked_through >= 3,
        "the resent batches were acknowledged: {stats:?}"
    );
    collector.stop().await;
}
