//! The adversarial suite of issue 13: each finding of the loopback attack, repeated and shown
//! fixed. Bounded in count (at most a few thousand requests, a few hundred connections) and time
//! (each case well under a minute), loopback only.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cntt_collector::domain::auth::Role;
use cntt_collector::store::AuditFilter;
use cntt_common::wire::ErrorBody;
use e2e::{spawn_collector, spawn_collector_with, sqlite_db, CollectorOptions, TestCollector};
use reqwest::StatusCode;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A pinned HTTPS client whose connections come from another loopback address, so the
/// per-address limits of an attacker on 127.0.0.1 do not apply to it.
fn bystander(collector: &TestCollector) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(e2e::tls_client_config(&collector.ca_pem))
        .local_address(IpAddr::from([127, 0, 0, 2]))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn limits(extra: &str) -> CollectorOptions {
    CollectorOptions {
        extra_config: format!("[limits]\n{extra}\n"),
        ..CollectorOptions::default()
    }
}

async fn audit_rows(collector: &TestCollector) -> Vec<cntt_collector::store::AuditEntry> {
    let filter = AuditFilter {
        action: None,
        limit: 100_000,
    };
    collector.store.audit_list(&filter).await.unwrap()
}

/// H1: 1,000 requests with 16 KB paths and no or a forged token grow the audit log by a handful
/// of rows (one per address, action and reason per interval, with counts adding up to every
/// refusal), targets cut to 128 characters, and the flood is answered 429 with `Retry-After`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_flood_cannot_grow_the_audit_log() {
    let db = sqlite_db();
    let options = limits(
        "unauthenticated_burst = 20\nunauthenticated_per_minute = 60\naudit_interval = \"2s\"",
    );
    let collector = spawn_collector_with(&db, &options).await;
    let before = audit_rows(&collector).await.len();
    let client = collector.client();
    let long_path = format!("/api/v1/incidents/{}", "x".repeat(16 << 10));
    let n_requests = 1_000;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let (client, url) = (client.clone(), format!("{}{long_path}", collector.base_url));
        tasks.spawn(async move {
            let mut statuses = Vec::new();
            for i in 0..n_requests / 8 {
                let request = client.get(&url);
                let request = if (worker + i) % 2 == 0 {
                    request.bearer_auth("cntt_api_forged_token")
                } else {
                    request
                };
                let response = request.send().await.unwrap();
                let retry_after = response.headers().get("retry-after").cloned();
                statuses.push((response.status(), retry_after));
            }
            statuses
        });
    }
    let mut statuses = Vec::new();
    while let Some(done) = tasks.join_next().await {
        statuses.extend(done.unwrap());
    }
    let elapsed = started.elapsed();
    let limited: Vec<_> = statuses
        .iter()
        .filter(|(status, _)| *status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert!(
        limited.len() >= n_requests - 100,
        "most of the flood is rate-limited: {} of {n_requests} in {elapsed:?}",
        limited.len()
    );
    assert!(
        limited.iter().all(|(_, retry)| retry.is_some()),
        "429 has Retry-After"
    );
    // The summaries of the interval are written by the server's flush task.
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    let rows = audit_rows(&collector).await;
    let new_rows = &rows[..rows.len() - before];
    // Three keys (forged token, no token, rate-limited), each a first row and a summary per
    // interval (2 s) the flood spanned.
    let intervals = elapsed.as_secs() as usize / 2 + 2;
    assert!(
        new_rows.len() <= 6 * intervals,
        "a flood of {n_requests} adds a bounded number of audit rows, not {}: {:#?}",
        new_rows.len(),
        new_rows
            .iter()
            .map(|row| (&row.action, &row.details))
            .collect::<Vec<_>>()
    );
    let mut counted = 0;
    for row in new_rows {
        assert!(
            row.target.chars().count() <= 129,
            "target cut: {}",
            row.target.len()
        );
        assert_eq!(row.remote_addr.as_deref(), Some("127.0.0.1"));
        let details: serde_json::Value = serde_json::from_str(&row.details).unwrap();
        counted += details["count"].as_u64().unwrap();
    }
    assert_eq!(counted, n_requests as u64, "counts add up to every refusal");
    collector.stop().await;
}

/// H2: 1,100 slow-body connections (one byte every 300 ms) are cut within the request timeout,
/// those over the connection caps at once, while `/healthz` keeps answering a client on another
/// address under 100 ms at the median.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_are_cut_and_health_keeps_answering() {
    let db = sqlite_db();
    let options = limits(
        "max_connections = 64\nmax_connections_per_address = 40\nrequest_timeout = \"2s\"\nheader_timeout = \"2s\"\nunauthenticated_burst = 10000\nunauthenticated_per_minute = 10000",
    );
    let collector = spawn_collector_with(&db, &options).await;
    let address = collector.base_url.trim_start_matches("https://").to_owned();
    let connector =
        tokio_rustls::TlsConnector::from(Arc::new(e2e::tls_client_config(&collector.ca_pem)));
    let n_connections = 1100;
    let request_timeout = Duration::from_secs(2);
    let started = Instant::now();
    let mut attackers = tokio::task::JoinSet::new();
    for _ in 0..n_connections {
        let (connector, address) = (connector.clone(), address.clone());
        attackers.spawn(async move {
            let opened = Instant::now();
            let Ok(tcp) = tokio::net::TcpStream::connect(&address).await else {
                return opened.elapsed();
            };
            let name = ServerName::try_from("localhost").unwrap();
            let Ok(mut tls) = connector.connect(name, tcp).await else {
                return opened.elapsed();
            };
            let head = "POST /api/v1/enroll HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{";
            if tls.write_all(head.as_bytes()).await.is_err() {
                return opened.elapsed();
            }
            let mut buf = [0u8; 1024];
            loop {
                tokio::select! {
                    read = tls.read(&mut buf) => match read {
                        Ok(0) | Err(_) => return opened.elapsed(),
                        Ok(_) => {}
                    },
                    () = tokio::time::sleep(Duration::from_millis(300)) => {
                        if tls.write_all(b" ").await.is_err() {
                            return opened.elapsed();
                        }
                    }
                }
                if opened.elapsed() > Duration::from_secs(30) {
                    return opened.elapsed();
                }
            }
        });
    }
    // While they hold on, a bystander checks health.
    let client = bystander(&collector);
    let mut latencies = Vec::new();
    while started.elapsed() < request_timeout + Duration::from_secs(1) {
        let asked = Instant::now();
        let response = client
            .get(format!("{}/healthz", collector.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        latencies.push(asked.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut held = Vec::new();
    while let Some(done) = attackers.join_next().await {
        held.push(done.unwrap());
    }
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    assert!(
        median < Duration::from_millis(100),
        "healthz median {median:?} over {} requests",
        latencies.len()
    );
    let longest = held.iter().max().copied().unwrap();
    assert!(
        longest < request_timeout + Duration::from_secs(3),
        "every slow-body connection is cut within the request timeout; the longest held {longest:?}"
    );
    collector.stop().await;
}

/// M2: `/metrics` is for the scrape token and admin tokens; an officer's token gets 403.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_for_the_scrape_token_and_admins_only() {
    let db = sqlite_db();
    let secrets = tempfile::tempdir().unwrap();
    let token_file = secrets.path().join("scrape-token");
    let scrape = format!("cntt_scrape_{}", uuid::Uuid::new_v4().simple());
    std::fs::write(&token_file, &scrape).unwrap();
    // A token file others may read is refused at start, with the fix (L4).
    std::fs::set_permissions(
        &token_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let text = format!(
        "[tls]\ncert = \"c\"\nkey = \"k\"\n[listen]\nscrape_token_file = \"{}\"\n",
        token_file.display()
    );
    let err = format!(
        "{:#}",
        cntt_collector::config::Config::parse(&text, Path::new("/")).unwrap_err()
    );
    assert!(err.contains("chmod 600"), "{err}");
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
    let officer = collector.api_token(Role::Officer, Some("663")).await;
    let admin = collector.api_token(Role::Admin, None).await;
    let client = collector.client();
    let metrics = |token: String| {
        client
            .get(format!("{}/metrics", collector.base_url))
            .bearer_auth(token)
            .send()
    };
    let refused = metrics(officer).await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        refused.json::<ErrorBody>().await.unwrap().error,
        "forbidden"
    );
    assert_eq!(metrics(admin).await.unwrap().status(), StatusCode::OK);
    assert_eq!(metrics(scrape).await.unwrap().status(), StatusCode::OK);
    collector.stop().await;
}

/// L5: JSON errors everywhere, `nosniff` and `no-store` on every answer, exact JSON media types.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_json_unsniffable_and_uncached() {
    let db = sqlite_db();
    let collector = spawn_collector(&db).await;
    let admin = collector.api_token(Role::Admin, None).await;
    let client = collector.client();
    let url = |path: &str| format!("{}{path}", collector.base_url);
    let answers = [
        client.get(url("/healthz")).send().await.unwrap(),
        client
            .get(url("/api/v1/units?colour=red"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
        client
            .get(url("/api/v1/agents?colour=red"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
        client.get(url("/api/v1/units")).send().await.unwrap(),
        client.get(url("/nowhere")).send().await.unwrap(),
        client
            .delete(url("/api/v1/units"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
        client
            .post(url("/api/v1/enroll"))
            .header("content-type", "application/jsonx")
            .body("{}")
            .send()
            .await
            .unwrap(),
    ];
    let expected = [200, 400, 400, 401, 404, 405, 415];
    for (response, expected) in answers.into_iter().zip(expected) {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        assert_eq!(status, expected, "{}", response.url());
        assert_eq!(headers["x-content-type-options"], "nosniff", "{status}");
        assert_eq!(headers["cache-control"], "no-store", "{status}");
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{status}: {:?}",
            headers["content-type"]
        );
        if status >= 400 {
            let body: ErrorBody = response.json().await.unwrap();
            assert!(!body.message.is_empty(), "{status}");
            if status == 400 {
                assert_eq!(body.error, "invalid_query");
            }
        }
    }
    collector.stop().await;
}

/// L5: every path and method of the OpenAPI document is served, and every route of the router
/// (as written in `collector/src/http/api/mod.rs`) is documented.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_matches_the_router() {
    let openapi: serde_json::Value =
        serde_json::from_str(include_str!("../../../collector/src/http/api/openapi.json")).unwrap();
    let mut documented = std::collections::BTreeSet::new();
    for (path, item) in openapi["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((path.clone(), method.clone()));
        }
    }
    // The router as written: `.route("PATH", get(…).post(…))`.
    let source = include_str!("../../../collector/src/http/api/mod.rs");
    let mut routed = std::collections::BTreeSet::new();
    for chunk in source.split(".route(").skip(1) {
        let path = chunk.split('"').nth(1).unwrap().to_owned();
        let call = &chunk[..chunk.find("\n        .").unwrap_or(chunk.len())];
        for method in ["get", "post", "put", "delete", "patch"] {
            if call.contains(&format!(" {method}("))
                || call.contains(&format!(".{method}("))
                || call.contains(&format!("({method}("))
            {
                routed.insert((path.clone(), method.to_owned()));
            }
        }
    }
    assert_eq!(
        routed, documented,
        "router (left) and OpenAPI document (right) differ"
    );
    // And the running server has every documented route: none is 404 or 405.
    let db = sqlite_db();
    let collector = spawn_collector_with(&db, &limits("unauthenticated_burst = 1000")).await;
    let client = collector.client();
    for (path, method) in &documented {
        let path = path.replace("{id}", "1").replace("{action}", "acknowledge");
        let url = format!("{}{path}", collector.base_url);
        let request = match method.as_str() {
            "get" => client.get(&url),
            "post" => client
                .post(&url)
                .header("content-type", "application/json")
                .body("{}"),
            other => panic!("unexpected method {other}"),
        };
        let status = request.send().await.unwrap().status();
        assert!(
            status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {status}"
        );
    }
    collector.stop().await;
}

/// Token expiry: a token past its lifetime is refused with a clear message, and `api-token list`
/// shows when each expires; tokens made without a lifetime expire in a year.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_tokens_expire() {
    let db = sqlite_db();
    let collector = spawn_collector(&db).await;
    let output = cntt_collector::admin::api_token_create(
        &collector.store,
        Role::Admin,
        None,
        "short",
        Some(Duration::from_millis(1)),
    )
    .await
    .unwrap();
    let short = output.lines().next().unwrap().to_owned();
    collector.api_token(Role::Viewer, None).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let response = collector
        .client()
        .get(format!("{}/api/v1/units", collector.base_url))
        .bearer_auth(&short)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: ErrorBody = response.json().await.unwrap();
    assert_eq!(body.error, "token_expired");
    assert!(
        body.message.contains("api-token create"),
        "{}",
        body.message
    );
    let list = cntt_collector::admin::api_tokens_list(&collector.store)
        .await
        .unwrap();
    assert!(
        list.starts_with("ID\tROLE\tUNIT\tNAME\tSTATE\tEXPIRES\t"),
        "{list}"
    );
    assert!(list.contains("\texpired\t"), "{list}");
    let year = (time::OffsetDateTime::now_utc() + time::Duration::days(365)).year();
    let active = list
        .lines()
        .find(|line| line.contains("\tactive\t"))
        .unwrap();
    assert!(
        active.contains(&format!("/{year} ")),
        "a year by default: {active}"
    );
    collector.stop().await;
}

/// L4: the database files are owner-only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_files_are_owner_only() {
    let db = sqlite_db();
    let collector = spawn_collector(&db).await;
    let path = db.url.trim_start_matches("sqlite://").to_owned();
    for file in [path.clone(), format!("{path}-wal")] {
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&file).unwrap().permissions(),
        );
        assert_eq!(mode & 0o077, 0, "{file} is {mode:o}");
    }
    collector.stop().await;
}

/// What the fake collector of [`replies_are_read_with_a_size_limit`] answers.
#[derive(Clone, Copy)]
enum Hostile {
    /// A 2 GB `Content-Length`, then zeros until the client leaves.
    HugeLength,
    /// A chunked body that never ends.
    Endless,
}

/// A hostile HTTPS server on loopback with the certificate of `collector`'s CA.
async fn hostile_server(collector: &TestCollector, how: Hostile) -> String {
    let tls = cntt_collector::config::tls::server_config(&cntt_collector::config::TlsConfig {
        cert: collector.dir.path().join("tls/server.pem"),
        key: collector.dir.path().join("tls/server-key.pem"),
    })
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let start: &[u8] = match how {
                    Hostile::HugeLength => b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2000000000\r\n\r\n",
                    Hostile::Endless => b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
                };
                if tls.write_all(start).await.is_err() {
                    return;
                }
                let zeros = vec![b' '; 64 << 10];
                for _ in 0..200_000 {
                    let written = match how {
                        Hostile::HugeLength => tls.write_all(&zeros).await,
                        Hostile::Endless => {
                            let mut chunk = format!("{:x}\r\n", zeros.len()).into_bytes();
                            chunk.extend_from_slice(&zeros);
                            chunk.extend_from_slice(b"\r\n");
                            tls.write_all(&chunk).await
                        }
                    };
                    if written.is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("https://127.0.0.1:{port}")
}

/// L3: the agent refuses a 2 GB `Content-Length` and an endless body from a (fake, hostile)
/// collector, at enrollment, upload and report-context fetch, without reading them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_are_read_with_a_size_limit() {
    let db = sqlite_db();
    let collector = spawn_collector(&db).await;
    for how in [Hostile::HugeLength, Hostile::Endless] {
        let server = hostile_server(&collector, how).await;
        let state = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let err = cntt_agent::identity::enroll(
            &server,
            &cntt_common::Secret::new("cntt_enroll_x"),
            &collector.ca_pem,
            state.path(),
            false,
        )
        .await
        .unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("bytes accepted"), "{text}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        let client = collector.client();
        let err = cntt_agent::reports::fetch_context(
            &client,
            &server,
            &cntt_common::Secret::new("cntt_agent_x"),
        )
        .await
        .unwrap_err();
        assert!(format!("{err:#}").contains("bytes accepted"), "{err:#}");
    }
    collector.stop().await;
}

/// M3: the agent's default check of the collector completes the TLS handshake (an HTTPS
/// `GET /healthz`), so it leaves no failed handshake in the audit log, while a bare TCP probe does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agents_default_check_is_not_a_failed_handshake() {
    let db = sqlite_db();
    let collector = spawn_collector(&db).await;
    let config = cntt_agent::config::Config::parse("[probes]\ndefaults = true\n").unwrap();
    let no_icmp = cntt_agent::probe::IcmpMode::Unavailable {
        reason: "not in tests".into(),
    };
    let targets = cntt_agent::effective_targets(&config, &collector.base_url, &no_icmp);
    let check = targets
        .iter()
        .find(|target| target.name == "collector")
        .expect("a default check of the collector");
    let prober = cntt_agent::probe::Prober::new();
    for _ in 0..5 {
        let outcome = prober.probe(&check.check, Duration::from_secs(5)).await;
        assert!(outcome.ok, "{outcome:?}");
        assert_eq!(outcome.http_status, Some(200));
    }
    let failed = |rows: Vec<cntt_collector::store::AuditEntry>| {
        rows.iter()
            .filter(|row| row.action == "tls.handshake_failed")
            .count()
    };
    assert_eq!(failed(audit_rows(&collector).await), 0);
    // A bare TCP connection closed before the handshake is what a failed handshake looks like.
    let address = collector.base_url.trim_start_matches("https://").to_owned();
    drop(tokio::net::TcpStream::connect(address).await.unwrap());
    e2e::eventually(super::WAIT, "the bare TCP probe audited", || async {
        (failed(audit_rows(&collector).await) == 1).then_some(())
    })
    .await;
    collector.stop().await;
}

/// H2: a connection that completes the handshake and then sends nothing (or nothing more after a
/// request) is closed after `limits.header_timeout`, so idle connections cannot hold the caps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_after_the_header_timeout() {
    let db = sqlite_db();
    let collector = spawn_collector_with(&db, &limits("header_timeout = \"1s\"")).await;
    let address = collector.base_url.trim_start_matches("https://").to_owned();
    let connector =
        tokio_rustls::TlsConnector::from(Arc::new(e2e::tls_client_config(&collector.ca_pem)));
    for request in ["", "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"] {
        let tcp = tokio::net::TcpStream::connect(&address).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        tls.write_all(request.as_bytes()).await.unwrap();
        let opened = Instant::now();
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "an idle connection stays open");
        let held = opened.elapsed();
        assert!(
            held < Duration::from_secs(4),
            "closed after {held:?} ({request:?})"
        );
    }
    collector.stop().await;
}

/// Issue 13, per-agent limits: one agent flooding `POST /api/v1/ingest` gets 429 with
/// `Retry-After` past `limits.agent_batches_burst`, while another agent is still accepted; the
/// refusals are audited in aggregate (one row for the agent now, one with the count at the end
/// of the interval), and the audit log's hash chain stays intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_agent_is_limited_and_others_are_not() {
    let db = sqlite_db();
    let options =
        limits("agent_batches_burst = 5\nagent_batches_per_second = 1\naudit_interval = \"2s\"");
    let collector = spawn_collector_with(&db, &options).await;
    let flooder = collector.enroll_agent("24700").await;
    let neighbour = collector.enroll_agent("24700").await;
    let client = collector.client();
    let post = |agent: &e2e::TestAgent, seq: u64| {
        let batch = cntt_common::wire::Batch {
            version: cntt_common::wire::PROTOCOL_VERSION,
            agent_version: "0.1.0".into(),
            sent_at: time::OffsetDateTime::now_utc(),
            events: vec![e2e::heartbeat_event(seq, 10)],
        };
        client
            .post(format!("{}/api/v1/ingest", collector.base_url))
            .bearer_auth(agent.identity.credential.expose())
            .json(&batch)
            .send()
    };
    let n_batches = 60;
    let (mut accepted, mut limited) = (0, 0);
    for seq in 1..=n_batches {
        let response = post(&flooder, seq).await.unwrap();
        match response.status() {
            StatusCode::OK => accepted += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                limited += 1;
                let wait: u64 = response.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!((1..=2).contains(&wait), "Retry-After {wait}");
                let body: ErrorBody = response.json().await.unwrap();
                assert_eq!(body.error, "too_many_requests");
                assert!(
                    body.message.contains("agent_batches_per_second"),
                    "{}",
                    body.message
                );
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        limited >= n_batches - 10,
        "{accepted} accepted, {limited} limited"
    );
    assert!(accepted >= 5, "the burst goes through: {accepted}");
    // The neighbour, same unit and address, is still accepted.
    let response = post(&neighbour, 1).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let rows_of = |rows: Vec<cntt_collector::store::AuditEntry>| {
        rows.into_iter()
            .filter(|row| row.action == "ingest.rate_limited")
            .collect::<Vec<_>>()
    };
    let first = rows_of(audit_rows(&collector).await);
    assert_eq!(
        first.len(),
        1,
        "one row now, not one per refusal: {first:#?}"
    );
    assert_eq!(
        first[0].actor,
        format!("agent:{}", flooder.identity.agent_id)
    );
    assert_eq!(first[0].remote_addr.as_deref(), Some("127.0.0.1"));
    // The interval's summary carries the rest of the count.
    let rows = e2e::eventually(super::WAIT, "the summary row", || async {
        let rows = rows_of(audit_rows(&collector).await);
        (rows.len() == 2).then_some(rows)
    })
    .await;
    let count: u64 = rows
        .iter()
        .map(|row| {
            let details: serde_json::Value = serde_json::from_str(&row.details).unwrap();
            details["count"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(count, limited, "the counts add up to every refusal");
    let chain = collector.store.audit_verify().await.unwrap();
    assert_eq!(
        chain.broken, None,
        "aggregated rows are chained like the rest"
    );
    collector.stop().await;
}
