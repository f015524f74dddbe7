//! Two collectors on one PostgreSQL, one of them a real process killed with `kill -9` at random
//! points while both evaluate every 50 ms: every silent agent, commune and district outage is one
//! incident, none is lost, none is doubled (issue 4, item 8).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cntt_collector::store::{IncidentFilter, StoredIncident};
use e2e::{
    eventually, heartbeat_event, postgres_db, spawn_collector_with, CollectorOptions, TestAgent,
    TestCollector,
};

use super::WAIT;

const DISTRICT_UNITS: &str = "code,name,kind,parent_code,valid_from,valid_to,successor_codes,note
24703,Xã Đắk Lao,commune,663,,,,
24706,Xã Đắk Gằn,commune,663,,,,
";

const COMMUNES: [&str; 3] = ["24700", "24703", "24706"];

/// Silent after 2 s without a heartbeat (two 1 s intervals); evaluations every 50 ms so kills land inside them; an
/// outage gathers for 1.5 heartbeat intervals, as by default.
const CONFIG: &str =
    "[incidents]\nsilence_intervals = 2\nsilence_min = \"1s\"\nevaluate_every = \"50ms\"\n\
    gather = \"1500ms\"\nsettle = \"1s\"\n";

/// The collector under test as a child process sharing the config (and so the database).
fn spawn_process(collector: &TestCollector) -> e2e::ChildGuard {
    e2e::spawn_collector_process(
        env!("CARGO_BIN_EXE_collector-under-test"),
        &collector.config_path,
    )
}

/// A small random number below `n`, from the system's randomness.
fn random_below(n: u64) -> u64 {
    u64::try_from(uuid::Uuid::new_v4().as_u128() % u128::from(n)).expect("below n fits")
}

async fn all_incidents(collector: &TestCollector) -> Vec<StoredIncident> {
    collector
        .store
        .incidents_list(&IncidentFilter {
            limit: 1000,
            ..IncidentFilter::default()
        })
        .await
        .expect("listing incidents")
}

fn open(incident: &StoredIncident) -> bool {
    matches!(incident.state.as_str(), "open" | "acknowledged")
}

/// What a round silences, and the outages it must give.
#[derive(Debug, Clone, Copy)]
enum Round {
    /// Commune A's four agents: one commune incident.
    CommuneA,
    /// All twelve: one district incident.
    District,
    /// Commune A and one agent of B: a commune incident and an agent's own.
    CommuneAAndOne,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_of_two_collectors_at_random_points_loses_and_doubles_nothing() {
    let db = postgres_db().await;
    let options = CollectorOptions {
        extra_config: CONFIG.into(),
        ..CollectorOptions::default()
    };
    let collector = spawn_collector_with(&db, &options).await;
    collector.import_units(DISTRICT_UNITS).await;
    let mut agents: Vec<(usize, TestAgent)> = Vec::new();
    for (commune, code) in COMMUNES.iter().enumerate() {
        for _ in 0..4 {
            agents.push((commune, collector.enroll_agent(code).await));
        }
    }
    let agents = Arc::new(agents);
    // Agents post a heartbeat every 300 ms unless silenced; the in-process collector receives
    // them, the killed one only evaluates.
    let silenced: Arc<Mutex<HashSet<usize>>> = Arc::default();
    let collector = Arc::new(collector);
    let beating = {
        let (agents, silenced, collector) = (agents.clone(), silenced.clone(), collector.clone());
        tokio::spawn(async move {
            let mut seq = 0;
            loop {
                seq += 1;
                for (index, (_, agent)) in agents.iter().enumerate() {
                    if !silenced.lock().unwrap().contains(&index) {
                        collector.ingest(agent, vec![heartbeat_event(seq, 1)]).await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(600)).await;

    let rounds = [
        Round::CommuneA,
        Round::District,
        Round::CommuneAAndOne,
        Round::District,
        Round::CommuneA,
        Round::District,
        Round::CommuneAAndOne,
        Round::CommuneA,
        Round::District,
        Round::CommuneAAndOne,
    ];
    let mut process = spawn_process(&collector);
    let mut kills = 0;
    for (number, round) in rounds.iter().enumerate() {
        let silent: HashSet<usize> = agents
            .iter()
            .enumerate()
            .filter(|(index, (commune, _))| match round {
                Round::CommuneA => *commune == 0,
                Round::District => true,
                Round::CommuneAAndOne => *commune == 0 || *index == 4,
            })
            .map(|(index, _)| index)
            .collect();
        *silenced.lock().unwrap() = silent.clone();
        // Kill the process somewhere in the onset (silence found, outage gathered and opened).
        tokio::time::sleep(Duration::from_millis(random_below(4000))).await;
        process.kill();
        kills += 1;
        process = spawn_process(&collector);
        let (scope, unit) = match round {
            Round::District => ("uplink", "663"),
            Round::CommuneA | Round::CommuneAAndOne => ("unit", "24700"),
        };
        let all = eventually(
            WAIT,
            &format!("round {number}: the {scope} outage of {unit} open"),
            || {
                let collector = collector.clone();
                let silent = silent.len();
                async move {
                    let all = all_incidents(&collector).await;
                    let outage_open = all.iter().any(|i| {
                        open(i) && i.scope.as_deref() == Some(scope) && i.unit_code == unit
                    });
                    let unreachable = all
                        .iter()
                        .filter(|i| open(i) && i.kind == "agent_unreachable")
                        .count();
                    (outage_open && unreachable == silent).then_some(all)
                }
            },
        )
        .await;
        let top: Vec<_> = all
            .iter()
            .filter(|i| open(i) && i.parent_id.is_none())
            .collect();
        let expected_top = match round {
            Round::CommuneAAndOne => 2,
            Round::CommuneA | Round::District => 1,
        };
        assert_eq!(
            top.len(),
            expected_top,
            "round {number} ({round:?}): announced {top:#?}"
        );

        // Everyone reports again; kill the process somewhere in the recovery.
        silenced.lock().unwrap().clear();
        tokio::time::sleep(Duration::from_millis(random_below(1500))).await;
        process.kill();
        kills += 1;
        process = spawn_process(&collector);
        eventually(
            WAIT,
            &format!("round {number}: everything resolved"),
            || {
                let collector = collector.clone();
                async move {
                    all_incidents(&collector)
                        .await
                        .iter()
                        .all(|i| !open(i))
                        .then_some(())
                }
            },
        )
        .await;
        // Let the settle time pass so the next round starts from a quiet district.
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
    beating.abort();
    let _ = beating.await;
    process.kill();

    let all = all_incidents(&collector).await;
    let count = |scope: &str, unit: &str| {
        all.iter()
            .filter(|i| i.scope.as_deref() == Some(scope) && i.unit_code == unit)
            .count()
    };
    let n = |wanted: fn(&Round) -> bool| rounds.iter().filter(|round| wanted(round)).count();
    assert_eq!(kills, 20);
    assert_eq!(
        count("uplink", "663"),
        n(|r| matches!(r, Round::District)),
        "one district incident per district round"
    );
    let outages: Vec<_> = all
        .iter()
        .filter(|i| matches!(i.scope.as_deref(), Some("unit" | "uplink")))
        .map(|i| {
            (
                i.number.clone(),
                i.unit_code.clone(),
                i.created_at,
                i.started_at,
                i.ended_at,
                i.parent_number.clone(),
            )
        })
        .collect();
    assert_eq!(
        count("unit", "24700"),
        n(|r| !matches!(r, Round::District)),
        "one commune incident per commune round: {outages:#?}"
    );
    assert_eq!(count("unit", "24703") + count("unit", "24706"), 0);
    let mut per_agent: BTreeMap<String, usize> = BTreeMap::new();
    for incident in all.iter().filter(|i| i.kind == "agent_unreachable") {
        *per_agent
            .entry(incident.agent_id.clone().unwrap())
            .or_default() += 1;
    }
    let commune_a: BTreeSet<String> = agents
        .iter()
        .filter(|(c, _)| *c == 0)
        .map(|(_, a)| a.identity.agent_id.to_string())
        .collect();
    for (agent, n_incidents) in &per_agent {
        let expected = if commune_a.contains(agent) {
            rounds.len()
        } else if *agent == agents[4].1.identity.agent_id.to_string() {
            n(|r| !matches!(r, Round::CommuneA))
        } else {
            n(|r| matches!(r, Round::District))
        };
        assert_eq!(
            *n_incidents, expected,
            "agent {agent}: one unreachable incident per round it was silent in"
        );
    }
    // Numbers are unique and each incident was inferred and resolved exactly once.
    let numbers: BTreeSet<_> = all
        .iter()
        .map(|i| i.number.clone().expect("numbered"))
        .collect();
    assert_eq!(numbers.len(), all.len());
    for incident in &all {
        let timeline = collector
            .store
            .incident_timeline(&incident.id)
            .await
            .unwrap();
        let entries = |name: &str| timeline.iter().filter(|e| e.entry == name).count();
        assert_eq!(
            (entries("inferred"), entries("resolved")),
            (1, 1),
            "{}: {timeline:#?}",
            incident.title
        );
    }
    Arc::try_unwrap(collector)
        .expect("no other holder")
        .stop()
        .await;
    db.drop_database().await;
}
