//! Proof of issue 7: a real Prometheus scrapes a real collector (over HTTPS, with its CA and the
//! scrape token) fed by real agents, and every query of every dashboard panel parses and returns
//! data; the exposition passes `promtool check metrics`; the dashboards are well formed; the alert
//! rules pass `promtool check rules` and their unit tests.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use cntt_agent::config::Config as AgentConfig;
use e2e::prometheus::{has_data, promtool, Prometheus};
use e2e::targets::{Behaviour, Service};
use e2e::{eventually, spawn_collector_with, sqlite_db, start_agent, CollectorOptions, TestAgent};

/// Metrics not exported yet, whose queries are skipped with a message; none today. A metric added
/// to a dashboard before the collector exports it goes here, and leaves when it is exported.
const PENDING_METRICS: &[&str] = &[];

/// What Grafana substitutes for its variables when "All" is chosen.
const SUBSTITUTIONS: &[(&str, &str)] = &[
    ("$__rate_interval", "15s"),
    ("$__interval", "1s"),
    ("$__range", "1h"),
    ("$district", ".*"),
    ("$unit", ".*"),
    ("$scheme", ".*"),
    ("$period", ".*"),
];

/// The dashboards' JSON files.
fn dashboard_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(e2e::repo_file("dashboards"))
        .expect("dashboards folder")
        .map(|entry| entry.expect("folder entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
}

fn read_json(path: &PathBuf) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("reading dashboard");
    serde_json::from_str(&text)
        .unwrap_or_else(|err| panic!("{} is not JSON: {err}", path.display()))
}

/// Every panel, rows' nested panels included.
fn panels(dashboard: &serde_json::Value) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        out.push(panel.clone());
        for inner in panel["panels"].as_array().into_iter().flatten() {
            out.push(inner.clone());
        }
    }
    out
}

/// `(dashboard title, panel title, expr)` of every query of every panel, and of every variable.
fn queries() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for path in dashboard_files() {
        let dashboard = read_json(&path);
        let title = dashboard["title"].as_str().unwrap_or_default().to_owned();
        for panel in panels(&dashboard) {
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    let panel_title = panel["title"].as_str().unwrap_or_default().to_owned();
                    out.push((title.clone(), panel_title, expr.to_owned()));
                }
            }
        }
    }
    out
}

/// The `cntt_collector_*` metric names a query uses, without histogram suffixes.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut index = 0;
    while let Some(found) = expr[index..].find("cntt_collector_") {
        let start = index + found;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        let name = &expr[start..end];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(name);
        names.insert(base.to_owned());
        index = end;
    }
    names
}

fn pending(expr: &str) -> bool {
    metric_names(expr)
        .iter()
        .any(|name| PENDING_METRICS.contains(&name.as_str()))
}

#[test]
fn dashboards_are_well_formed() {
    let files = dashboard_files();
    assert!(files.len() >= 6, "six dashboards, found {files:?}");
    let mut uids = BTreeSet::new();
    for path in &files {
        let dashboard = read_json(path);
        let name = path.display().to_string();
        let uid = dashboard["uid"].as_str().unwrap_or_default();
        assert!(!uid.is_empty(), "{name} has no uid");
        assert!(uids.insert(uid.to_owned()), "{name}: uid {uid} used twice");
        assert!(
            dashboard["schemaVersion"].as_i64().is_some_and(|v| v >= 30),
            "{name} has no recent schemaVersion"
        );
        let variables = dashboard["templating"]["list"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let variable = |wanted: &str| variables.iter().find(|v| v["name"] == wanted).cloned();
        let datasource =
            variable("datasource").unwrap_or_else(|| panic!("{name}: no datasource variable"));
        assert_eq!(datasource["type"], "datasource", "{name}");
        assert_eq!(datasource["query"], "prometheus", "{name}");
        assert!(
            variable("district").is_some(),
            "{name}: no district variable"
        );
        let text = std::fs::read_to_string(path).unwrap();
        // The datasource is always the variable, never a hard-coded uid or id.
        for reference in text.match_indices("\"uid\": \"") {
            let rest = &text[reference.0 + 8..];
            let value = &rest[..rest.find('"').unwrap()];
            assert!(
                value == uid || value == "${datasource}",
                "{name}: a hard-coded uid {value:?}; use ${{datasource}}"
            );
        }
        let mut ids = BTreeSet::new();
        for panel in panels(&dashboard) {
            let id = panel["id"]
                .as_i64()
                .unwrap_or_else(|| panic!("{name}: a panel has no id"));
            assert!(ids.insert(id), "{name}: panel id {id} used twice");
            let title = panel["title"].as_str().unwrap_or_default();
            assert!(!title.is_empty(), "{name}: panel {id} has no title");
            if panel["type"] != "row" {
                assert_eq!(
                    panel["datasource"]["uid"], "${datasource}",
                    "{name}: panel {title}"
                );
                assert!(
                    panel["targets"].as_array().is_some_and(|t| !t.is_empty()),
                    "{name}: panel {title} has no query"
                );
            }
        }
        // User-facing text is Vietnamese with diacritics: the title has some.
        let title = dashboard["title"].as_str().unwrap_or_default();
        assert!(
            !title.is_ascii(),
            "{name}: title {title:?} is not Vietnamese"
        );
    }
    assert!(
        std::fs::metadata(e2e::repo_file(
            "dashboards/provisioning/datasources/cntt-prometheus.yaml"
        ))
        .is_ok()
            && std::fs::metadata(e2e::repo_file(
                "dashboards/provisioning/dashboards/cntt.yaml"
            ))
            .is_ok(),
        "Grafana provisioning files are in dashboards/provisioning"
    );
}

#[test]
fn alert_rules_pass_promtool() {
    let rules = e2e::repo_file("dashboards/alerts/cntt-collector.rules.yml");
    let tests = e2e::repo_file("dashboards/alerts/cntt-collector.rules.test.yml");
    let (ok, text) = promtool(&["check", "rules", &rules.display().to_string()], "");
    assert!(ok, "promtool check rules:\n{text}");
    let (ok, text) = promtool(&["test", "rules", &tests.display().to_string()], "");
    assert!(ok, "promtool test rules:\n{text}");
    assert!(text.contains("SUCCESS"), "{text}");
}

/// An agent checking `targets` (name, kind, address) over TCP every 200 ms.
fn agent_config(agent: &TestAgent, targets: &[(&str, &str, String)]) -> AgentConfig {
    let mut text = format!(
        "state_dir = \"{}\"\n[heartbeat]\ninterval = \"1s\"\n[uplink]\nlinger = \"10ms\"\nmax_backoff = \"200ms\"\n\
         [probes]\ninterval = \"200ms\"\ntimeout = \"200ms\"\ndefaults = false\n",
        agent.state.path().display()
    );
    for (name, kind, address) in targets {
        text.push_str(&format!(
            "[[target]]\nname = \"{name}\"\nkind = \"{kind}\"\ncheck = \"tcp\"\naddress = \"{address}\"\n"
        ));
        if *kind == "lan" {
            text.push_str("gateway = true\n");
        }
    }
    AgentConfig::parse(&text).expect("test agent config is valid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_query_returns_data_from_a_real_prometheus() {
    let db = sqlite_db();
    let secrets = tempfile::tempdir().unwrap();
    let token_file = secrets.path().join("scrape-token");
    let token = format!("cntt_scrape_{}", uuid::Uuid::new_v4().simple());
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    // The collector refuses a token file others may read (issue 13, L4).
    std::fs::set_permissions(
        &token_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let options = CollectorOptions {
        listen_extra: format!("scrape_token_file = \"{}\"", token_file.display()),
        ..CollectorOptions::default()
    };
    let collector = spawn_collector_with(&db, &options).await;
    // The officers' registry: one officer meets the standard of Điều 4, one does not.
    let officers = collector.dir.path().join("officers.csv");
    std::fs::write(
        &officers,
        "unit_code,full_name,degree_level,it_degree,english_level\n\
         24700,Nguyễn Văn An,college,yes,B\n\
         663,Trần Thị Bình,college,yes,B\n",
    )
    .unwrap();
    cntt_collector::admin::reports::officers_import(&collector.store, &officers)
        .await
        .unwrap();

    // Real services for the agents to check: a gateway (LAN), a WAN peer, and two servers.
    let gateway = Service::start_new(Behaviour::Tcp).await;
    let wan = Service::start_new(Behaviour::Tcp).await;
    let mut portal = Service::start_new(Behaviour::Tcp).await;
    let mut mail = Service::start_new(Behaviour::Tcp).await;
    let mut running = Vec::new();
    let mut agents = Vec::new();
    for (unit, server) in [
        ("24700", ("portal", portal.address())),
        ("24700", ("portal", portal.address())),
        ("67.S.TTTT", ("mail", mail.address())),
        ("664", ("mail", mail.address())),
    ] {
        let agent = collector.enroll_agent(unit).await;
        let targets = [
            ("gateway", "lan", gateway.address()),
            ("wan-peer", "wan", wan.address()),
            (server.0, "server", server.1),
        ];
        running.push(start_agent(agent_config(&agent, &targets)));
        // Kept so the state folders outlive the running agents.
        agents.push(agent);
    }

    // A server goes down and stays down; another goes down and comes back (a time to recover).
    tokio::time::sleep(Duration::from_secs(2)).await;
    portal.stop().await;
    mail.stop().await;
    let store = collector.store.clone();
    eventually(super::WAIT, "server incidents opened", || {
        let store = store.clone();
        async move {
            let open = store.metrics_open_incidents().await.ok()?;
            let servers: i64 = open
                .iter()
                .filter(|o| o.kind == "server")
                .map(|o| o.count)
                .sum();
            (servers >= 3).then_some(())
        }
    })
    .await;
    mail.start().await;
    eventually(super::WAIT, "the mail incidents resolved", || {
        let store = store.clone();
        async move {
            let open = store.metrics_open_incidents().await.ok()?;
            let servers: i64 = open
                .iter()
                .filter(|o| o.kind == "server")
                .map(|o| o.count)
                .sum();
            (servers <= 2).then_some(())
        }
    })
    .await;

    // The scrape token protects /metrics; with it, the exposition passes promtool.
    let metrics_url = format!("{}/metrics", collector.base_url);
    let refused = collector.client().get(&metrics_url).send().await.unwrap();
    assert_eq!(refused.status(), 401, "no token, no metrics");
    let wrong = collector
        .client()
        .get(&metrics_url)
        .bearer_auth("cntt_scrape_wrong_token_0000")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401, "a wrong token is refused");
    let scrape = collector
        .client()
        .get(&metrics_url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .expect("the scrape token reads /metrics")
        .text()
        .await
        .unwrap();
    let (ok, problems) = promtool(&["check", "metrics"], &scrape);
    assert!(
        ok && problems.trim().is_empty(),
        "promtool check metrics:\n{problems}"
    );

    // Every metric a dashboard uses is exported, or is one of the pending report metrics.
    let exported: BTreeSet<String> = scrape
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    let mut missing = BTreeSet::new();
    for (_, _, expr) in queries() {
        for name in metric_names(&expr) {
            if !exported.contains(&name) && !PENDING_METRICS.contains(&name.as_str()) {
                missing.insert(name);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "dashboards use metrics the collector does not export: {missing:?}"
    );

    // A real Prometheus scrapes the collector over HTTPS with the CA and the token.
    let target = collector.base_url.trim_start_matches("https://").to_owned();
    let prometheus = Prometheus::start(&target, &collector.ca_pem, &token_file).await;
    eventually(
        Duration::from_secs(60),
        "Prometheus scraping the collector",
        || async {
            let data = prometheus
                .query("up{job=\"cntt-collector\"} == 1")
                .await
                .ok()?;
            has_data(&data).then_some(())
        },
    )
    .await;
    // Enough scrapes for rates over the dashboards' 15 s windows.
    tokio::time::sleep(Duration::from_secs(20)).await;

    let mut failures = Vec::new();
    let mut proven = 0;
    for (dashboard, panel, expr) in queries() {
        if pending(&expr) {
            eprintln!(
                "skipped until issue 6 exports {:?}: {dashboard} / {panel}",
                metric_names(&expr)
                    .into_iter()
                    .filter(|name| PENDING_METRICS.contains(&name.as_str()))
                    .collect::<Vec<_>>()
            );
            continue;
        }
        let query = SUBSTITUTIONS
            .iter()
            .fold(expr.clone(), |query, (from, to)| query.replace(from, to));
        match prometheus.query(&query).await {
            Ok(data) if has_data(&data) => proven += 1,
            Ok(_) => failures.push(format!("{dashboard} / {panel}: no data for {query}")),
            Err(err) => failures.push(format!("{dashboard} / {panel}: {err} in {query}")),
        }
    }
    // The variables' own queries.
    for label in ["district", "unit"] {
        let data = prometheus
            .query(&format!("count by ({label}) (cntt_collector_unit_info)"))
            .await
            .unwrap();
        if !has_data(&data) {
            failures.push(format!("variable {label}: no values"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} queries failed:\n{}\nPrometheus log:\n{}",
        failures.len(),
        failures.len() + proven,
        failures.join("\n"),
        prometheus.log()
    );
    assert!(proven >= 40, "only {proven} queries proven");
    eprintln!("{proven} panel queries returned data from Prometheus");

    for agent in running {
        agent.stop().await;
    }
    collector.stop().await;
    drop(agents);
}
