//! Topology-aware outage inference with real agents behind real (relayed) WAN links: one incident
//! per unit or district outage instead of one per agent, and the true start and end from the
//! agents' buffered evidence once they come back (issue 4).
//!
//! The agents run as their own processes (`agent-under-test`), as in the field: twelve agents
//! syncing their outboxes to disk inside the test's runtime would stall the collector beside them.

use std::collections::BTreeSet;
use std::time::Duration;

use cntt_collector::store::{millis, IncidentFilter, StoredIncident};
use e2e::targets::{Behaviour, Link, Service};
use e2e::{eventually, spawn_collector_with, test_db, CollectorOptions, TestAgent, TestCollector};
use time::OffsetDateTime;

use super::WAIT;

/// How often the agents probe: the precision the acceptance asks of corrected times.
const PROBE_INTERVAL: Duration = Duration::from_millis(200);

/// Slack on top of one probe interval for scheduling on a busy 2-core machine.
const SLACK_MS: i64 = 400;

const DISTRICT_UNITS: &str = "code,name,kind,parent_code,valid_from,valid_to,successor_codes,note
24703,Xã Đắk Lao,commune,663,,,,
24706,Xã Đắk Gằn,commune,663,,,,
";

/// The three communes of Huyện Đắk Mil (663) in the test units.
const COMMUNES: [&str; 3] = ["24700", "24703", "24706"];

const COLLECTOR_CONFIG: &str = "[incidents]\nsilence_intervals = 3\nsilence_min = \"1s\"\n\
    evaluate_every = \"100ms\"\nmerge_slack = \"30s\"\nsettle = \"3s\"\ngather = \"1500ms\"\n";

/// An agent of a commune: its uplink and its WAN probe go through the commune's link; its LAN
/// gateway is a local service that stays up. Returns the config file's path.
fn agent_config(agent: &TestAgent, link: &Link, gateway: &Service) -> std::path::PathBuf {
    let text = format!(
        "state_dir = \"{}\"\n[heartbeat]\ninterval = \"1s\"\n\
         [uplink]\nurl = \"{}\"\nlinger = \"10ms\"\nmax_backoff = \"200ms\"\n\
         [probes]\ninterval = \"{}ms\"\ntimeout = \"150ms\"\ndefaults = false\n\
         [[target]]\nname = \"gateway\"\nkind = \"lan\"\ncheck = \"tcp\"\naddress = \"{}\"\ngateway = true\n\
         [[target]]\nname = \"wan-edge\"\nkind = \"wan\"\ncheck = \"tcp\"\naddress = \"{}\"\n",
        agent.state.path().display(),
        link.url(),
        PROBE_INTERVAL.as_millis(),
        gateway.address(),
        link.address(),
    );
    cntt_agent::config::Config::parse(&text).expect("test agent config is valid");
    let path = agent.state.path().join("agent.toml");
    std::fs::write(&path, text).expect("writing agent config");
    path
}

/// An agent process, killed when dropped.
struct AgentProcess(std::process::Child);

impl AgentProcess {
    fn start(config: &std::path::Path) -> AgentProcess {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_agent-under-test"))
            .arg(config)
            .env("CNTT_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("starting agent-under-test");
        AgentProcess(child)
    }

    /// Stops it as systemd would (SIGTERM) and waits.
    fn stop(mut self) {
        let pid = self.0.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        let _ = self.0.wait();
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A commune with its link, gateway and four agents.
struct Commune {
    code: &'static str,
    link: Link,
    _gateway: Service,
    agents: Vec<(TestAgent, std::path::PathBuf, Option<AgentProcess>)>,
}

async fn incidents(collector: &TestCollector) -> Vec<StoredIncident> {
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

/// Waits until `check` holds on the incidents, and returns them.
async fn until(
    collector: &TestCollector,
    what: &str,
    check: impl Fn(&[StoredIncident]) -> bool,
) -> Vec<StoredIncident> {
    let check = &check;
    // Generous: twelve agent processes and a collector share two cores with the other tests.
    eventually(WAIT * 3, what, || async move {
        let all = incidents(collector).await;
        check(&all).then_some(all)
    })
    .await
}

fn outages<'a>(all: &'a [StoredIncident], scope: &str, unit: &str) -> Vec<&'a StoredIncident> {
    all.iter()
        .filter(|i| i.scope.as_deref() == Some(scope) && i.unit_code == unit)
        .collect()
}

fn within(what: &str, at: i64, from: i64) {
    let to = from + i64::try_from(PROBE_INTERVAL.as_millis()).unwrap() + SLACK_MS;
    assert!(
        (from..=to).contains(&at),
        "{what} at {at} should be within one probe interval after {from} (by {to}), off by {} ms",
        at - from
    );
}

both_databases! {
    async fn twelve_agents_in_three_communes_are_one_incident_per_outage_with_true_times(db: Db) {
        let db = test_db(db).await;
        let options = CollectorOptions { extra_config: COLLECTOR_CONFIG.into(), ..CollectorOptions::default() };
        let collector = spawn_collector_with(&db, &options).await;
        collector.import_units(DISTRICT_UNITS).await;
        let upstream = collector.base_url.trim_start_matches("https://").to_owned();
        let mut communes = Vec::new();
        for code in COMMUNES {
            let link = Link::open_new(&upstream).await;
            let gateway = Service::start_new(Behaviour::Tcp).await;
            let mut agents = Vec::new();
            for _ in 0..4 {
                let agent = collector.enroll_agent(code).await;
                let config = agent_config(&agent, &link, &gateway);
                let running = AgentProcess::start(&config);
                agents.push((agent, config, Some(running)));
            }
            communes.push(Commune { code, link, _gateway: gateway, agents });
        }
        // Reporting, heartbeat included: until its first heartbeat the collector does not know an
        // agent's interval and assumes the default minute, so silence would take 3 minutes.
        eventually(WAIT, "all 12 agents reporting", || async {
            let agents = collector.store.agents_list(None).await.unwrap();
            (agents.len() == 12 && agents.iter().all(|a| a.last_seen_at.is_some() && a.heartbeat_interval == Some(1))).then_some(())
        }).await;

        // One agent of a commune goes silent while the others report: its own incident only.
        let lone_id = communes[1].agents[3].0.identity.agent_id.to_string();
        communes[1].agents[3].2.take().expect("running").stop();
        let all = until(&collector, "the lone agent unreachable", |all| {
            all.iter().any(|i| i.agent_id.as_deref() == Some(lone_id.as_str()) && i.kind == "agent_unreachable" && open(i))
        }).await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        let all_after = incidents(&collector).await;
        assert_eq!(all.iter().filter(|i| open(i)).count(), 1, "{all:#?}");
        assert!(all_after.iter().all(|i| i.scope.as_deref() != Some("unit") && i.scope.as_deref() != Some("uplink")), "no outage for one silent agent: {all_after:#?}");
        let lone = all_after.iter().find(|i| open(i)).unwrap();
        assert_eq!(lone.parent_id, None, "announced on its own");
        let lone_config = communes[1].agents[3].1.clone();
        communes[1].agents[3].2 = Some(AgentProcess::start(&lone_config));
        until(&collector, "the lone agent back", |all| all.iter().all(|i| !open(i))).await;

        // Commune A's link drops: one commune incident over its four agents.
        let t1 = millis(OffsetDateTime::now_utc());
        communes[0].link.cut().await;
        let all = until(&collector, "one incident for commune A over its four agents", |all| {
            let unit = outages(all, "unit", "24700");
            unit.len() == 1
                && all.iter().filter(|i| i.kind == "agent_unreachable" && open(i)).count() == 4
                && all.iter().filter(|i| i.kind == "agent_unreachable" && open(i)).all(|i| i.parent_id.as_deref() == Some(unit[0].id.as_str()))
        }).await;
        let unit_a = outages(&all, "unit", "24700")[0].clone();
        let announced: Vec<_> = all.iter().filter(|i| open(i) && i.parent_id.is_none()).collect();
        assert_eq!(announced.len(), 1, "only the commune's incident is announced: {announced:#?}");
        assert_eq!(announced[0].id, unit_a.id);
        assert_eq!(unit_a.title, "Mất kết nối WAN: Thị trấn Đắk Mil");
        assert!(all.iter().all(|i| i.scope.as_deref() != Some("uplink")));

        // The other two communes' links drop too: one district incident over everything.
        let t2 = millis(OffsetDateTime::now_utc());
        communes[1].link.cut().await;
        communes[2].link.cut().await;
        let all = until(&collector, "one district incident over the three communes", |all| {
            let district = outages(all, "uplink", "663");
            district.len() == 1
                && all.iter().filter(|i| i.kind == "agent_unreachable" && open(i)).count() == 12
                && all.iter().filter(|i| open(i) && i.parent_id.is_none()).count() == 1
        }).await;
        let district = outages(&all, "uplink", "663")[0].clone();
        let announced: Vec<_> = all.iter().filter(|i| open(i) && i.parent_id.is_none()).collect();
        assert_eq!(announced[0].id, district.id, "only the district's incident is announced: {announced:#?}");
        assert!(district.title.starts_with("Mất kết nối WAN: Huyện Đắk Mil"), "{}", district.title);
        let unit_a_now = all.iter().find(|i| i.id == unit_a.id).unwrap();
        assert_eq!(unit_a_now.parent_id.as_deref(), Some(district.id.as_str()), "commune A's incident folded under the district's");
        assert!(outages(&all, "unit", "24703").is_empty() && outages(&all, "unit", "24706").is_empty(), "no commune incident for B and C: {all:#?}");
        // The API shows the same: one incident to announce.
        let admin = collector.api_token(cntt_collector::domain::auth::Role::Admin, None).await;
        let top: serde_json::Value = collector.client()
            .get(format!("{}/api/v1/incidents?state=open&top_level=true", collector.base_url))
            .bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
        let top = top["incidents"].as_array().unwrap_or_else(|| panic!("listing top-level incidents: {top}"));
        assert_eq!(top.len(), 1, "{top:#?}");
        assert_eq!(top[0]["id"], district.id.as_str());
        let shown: serde_json::Value = collector.client()
            .get(format!("{}/api/v1/incidents/{}", collector.base_url, district.id))
            .bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
        assert_eq!(shown["children"].as_array().unwrap().len(), 9, "commune A's incident and B's and C's eight agents: {shown:#}");

        // Every link comes back: the agents deliver their buffered WAN incidents.
        let t3 = millis(OffsetDateTime::now_utc());
        for commune in &mut communes {
            commune.link.restore().await;
        }
        until(&collector, "everything resolved and the evidence of all 12 agents linked", |all| {
            let wan: Vec<_> = all.iter().filter(|i| i.source == "agent_detected" && i.kind == "wan").collect();
            all.iter().all(|i| !open(i))
                && wan.len() == 12
                && wan.iter().all(|i| i.parent_id.is_some())
                && all.iter().any(|i| i.id == district.id && i.ended_at.is_some_and(|end| end >= t3))
        }).await;
        // Corrections run in the evaluation after the links; let one more pass happen.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let all = incidents(&collector).await;
        let district = all.iter().find(|i| i.id == district.id).unwrap();
        let unit_a = all.iter().find(|i| i.id == unit_a.id).unwrap();
        within("commune A's outage start", unit_a.started_at, t1);
        within("commune A's outage end", unit_a.ended_at.unwrap(), t3);
        within("the district outage's start", district.started_at, t2);
        within("the district outage's end", district.ended_at.unwrap(), t3);
        let wan_parents: BTreeSet<_> = all.iter()
            .filter(|i| i.source == "agent_detected" && i.kind == "wan")
            .map(|i| i.parent_id.clone().unwrap())
            .collect();
        assert_eq!(wan_parents, BTreeSet::from([unit_a.id.clone(), district.id.clone()]), "A's evidence under A's incident, B's and C's under the district's");
        // No duplicates, nothing spurious while the agents came back one by one.
        assert_eq!(all.iter().filter(|i| i.scope.as_deref() == Some("uplink")).count(), 1);
        assert_eq!(all.iter().filter(|i| i.scope.as_deref() == Some("unit")).count(), 1, "{all:#?}");
        let unreachable: Vec<_> = all.iter().filter(|i| i.kind == "agent_unreachable").map(|i| (i.hostname.clone(), i.agent_id.clone(), i.started_at - t1, i.ended_at.map(|e| e - t1), i.created_at - t1)).collect();
        assert_eq!(unreachable.len(), 13, "t2 = {}, t3 = {}: {unreachable:#?}", t2 - t1, t3 - t1);
        let timeline = collector.store.incident_timeline(&district.id).await.unwrap();
        let entries: BTreeSet<&str> = timeline.iter().map(|e| e.entry.as_str()).collect();
        for entry in ["inferred", "evidence", "corrected", "resolved"] {
            assert!(entries.contains(entry), "the timeline shows what was inferred and what agents saw: {timeline:#?}");
        }

        for commune in communes {
            for (_, _, running) in commune.agents {
                running.expect("running").stop();
            }
            let _ = commune.code;
        }
        collector.stop().await;
        db.drop_database().await;
    }
}
