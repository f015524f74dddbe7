//! The fleet simulator (`cntt-agent simulate`) against a real collector: agents enroll, their
//! heartbeats and probe results arrive, and scripted outages become incidents found by the agent's
//! own detector and host watch.

use std::time::Duration;

use cntt_agent::simulate::{Fleet, Outage};
use e2e::{eventually, spawn_collector, sqlite_db};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_agents_report_through_the_agent_code_paths() {
    let db = sqlite_db();
    let collector = spawn_collector(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let units_file = dir.path().join("units.csv");
    let mut units = String::from("unit,token,district\n");
    for (unit, district) in [("24700", "663"), ("67.S.TTTT", "67.S.TTTT")] {
        let token = collector
            .enroll_token(unit, 10, Duration::from_secs(3600))
            .await;
        units.push_str(&format!("{unit},{token},{district}\n"));
    }
    std::fs::write(&units_file, units).unwrap();
    let fleet = Fleet {
        agents: 4,
        units_file,
        server: collector.base_url.clone(),
        ca: collector.ca_pem.clone(),
        state_dir: dir.path().join("agents"),
        heartbeat: Duration::from_secs(1),
        probe_every: Duration::from_millis(200),
        duration: Some(Duration::from_secs(12)),
        outages: vec![
            "server:663@1s+30s".parse::<Outage>().unwrap(),
            "disk:67.S.TTTT@0s+30s".parse::<Outage>().unwrap(),
        ],
        backlog: None,
        drain: Duration::ZERO,
        summary: None,
        client_per_agent: false,
    };
    let summary = cntt_agent::simulate::run(fleet, std::future::pending())
        .await
        .unwrap();
    assert!(
        summary.starts_with("simulated 4 agents of 2 units"),
        "{summary}"
    );

    let agents = collector.store.agents_list(None).await.unwrap();
    assert_eq!(agents.len(), 4);
    assert_eq!(agents.iter().filter(|a| a.unit_code == "24700").count(), 2);
    assert!(
        agents.iter().all(|a| a.host_snapshot.is_some()),
        "every agent sent heartbeats"
    );
    let store = collector.store.clone();
    let open = eventually(super::WAIT, "server and disk incidents", || {
        let store = store.clone();
        async move {
            let open = store.metrics_open_incidents().await.ok()?;
            let count = |kind: &str| {
                open.iter()
                    .filter(|o| o.kind == kind)
                    .map(|o| o.count)
                    .sum::<i64>()
            };
            (count("server") == 2 && count("host") == 2).then_some(open)
        }
    })
    .await;
    assert!(
        open.iter().all(|o| o.kind == "server" || o.kind == "host"),
        "{open:?}"
    );
    collector.stop().await;
}

/// Agents of one unit come back from a WAN cut with their outboxes full of older records: the
/// backlogs are delivered while the rest keep reporting, incidents ahead of routine records, and the
/// summary's figures match what the collector stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backlogs_are_delivered_and_summed_up() {
    let db = sqlite_db();
    let collector = spawn_collector(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let units_file = dir.path().join("units.csv");
    let mut units = String::from("unit,token,district\n");
    for (unit, district) in [("24700", "663"), ("67.S.TTTT", "67.S.TTTT")] {
        let token = collector
            .enroll_token(unit, 10, Duration::from_secs(3600))
            .await;
        units.push_str(&format!("{unit},{token},{district}\n"));
    }
    std::fs::write(&units_file, units).unwrap();
    let summary_file = dir.path().join("figures.json");
    let fleet = Fleet {
        agents: 4,
        units_file,
        server: collector.base_url.clone(),
        ca: collector.ca_pem.clone(),
        state_dir: dir.path().join("agents"),
        heartbeat: Duration::from_secs(2),
        probe_every: Duration::from_millis(500),
        duration: Some(Duration::from_secs(6)),
        outages: Vec::new(),
        backlog: Some("24700:10m".parse().unwrap()),
        drain: Duration::from_secs(30),
        summary: Some(summary_file.clone()),
        // Each agent with its own client, connections and TLS sessions, as fleetbench runs them.
        client_per_agent: true,
    };
    cntt_agent::simulate::run(fleet, std::future::pending())
        .await
        .unwrap();
    let figures: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary_file).unwrap()).unwrap();
    assert_eq!(figures["backlog_agents"], 2, "{figures}");
    assert_eq!(figures["client_per_agent"], true, "{figures}");
    assert_eq!(
        figures["live"]["failures"], 0,
        "no live agent's upload failed: {figures}"
    );
    assert_eq!(figures["pending"], 0, "{figures}");
    assert_eq!(figures["lost"], 0, "{figures}");
    // Ten minutes of checks every 500 ms, per agent, at least.
    assert!(
        figures["backlog_records"].as_u64().unwrap() >= 2 * 1200,
        "{figures}"
    );
    assert!(
        figures["backlog_drained_after_s"].as_f64().is_some(),
        "{figures}"
    );
    assert!(
        figures["live"]["requests"].as_u64().unwrap() > 0,
        "{figures}"
    );
    assert!(figures["backlog"]["p99_ms"].as_f64().is_some(), "{figures}");

    // What the collector holds of the backlog agents reaches ten minutes back.
    let until = figures["backlog_until_ms"].as_i64().unwrap();
    let agents = collector.store.agents_list(None).await.unwrap();
    let backlogged: Vec<_> = agents.iter().filter(|a| a.unit_code == "24700").collect();
    assert_eq!(backlogged.len(), 2);
    for agent in backlogged {
        let events = collector.store.events_of_agent(&agent.id).await.unwrap();
        let oldest = events.iter().map(|e| e.occurred_at).min().unwrap();
        assert!(
            oldest <= until - 9 * 60 * 1000,
            "the oldest stored record of {} is at {oldest}, the backlog ends at {until}",
            agent.id
        );
    }
    collector.stop().await;
}
