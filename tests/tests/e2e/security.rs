//! Credentials, scopes, TLS only, and the audit trail of every refusal.

use std::io::{Read, Write};
use std::time::Duration;

use cntt_collector::domain::auth::Role;
use cntt_collector::store::AuditFilter;
use cntt_common::wire::{EnrollRequest, ErrorBody, PROTOCOL_VERSION};
use cntt_common::Secret;
use e2e::{spawn_collector, test_db, TestCollector};
use reqwest::StatusCode;

use super::flow::batch;

async fn audit_actions(collector: &TestCollector, action: &str) -> Vec<(String, String)> {
    let filter = AuditFilter {
        action: Some(action.into()),
        limit: 100,
    };
    let entries = collector.store.audit_list(&filter).await.unwrap();
    entries
        .into_iter()
        .map(|entry| (entry.outcome, entry.details))
        .collect()
}

async fn enroll(collector: &TestCollector, token: &str) -> (StatusCode, String) {
    let request = EnrollRequest {
        version: PROTOCOL_VERSION,
        token: Secret::new(token),
        hostname: "pc-ketoan".into(),
        agent_version: "0.1.0".into(),
    };
    let response = collector
        .client()
        .post(format!("{}/api/v1/enroll", collector.base_url))
        .json(&request)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: ErrorBody = response.json().await.unwrap_or(ErrorBody {
        error: "ok".into(),
        message: String::new(),
    });
    (status, body.error)
}

both_databases! {
    async fn credentials_are_required_checked_and_audited(db: Db) {
        let db = test_db(db).await;
        let collector = spawn_collector(&db).await;
        let client = collector.client();
        let ingest = format!("{}/api/v1/ingest", collector.base_url);

        // No credential.
        let response = client.post(&ingest).json(&batch(vec![])).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.json::<ErrorBody>().await.unwrap().error, "missing_credential");
        // A made-up credential.
        let response = client.post(&ingest).bearer_auth("cntt_agent_forged").json(&batch(vec![])).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

        // A revoked agent.
        let agent = collector.enroll_agent("663").await;
        let credential = agent.identity.credential.expose().to_owned();
        let response = client.post(&ingest).bearer_auth(&credential).json(&batch(vec![])).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "before revocation");
        cntt_collector::admin::agent_revoke(&collector.store, &agent.identity.agent_id.to_string()).await.unwrap();
        let response = client.post(&ingest).bearer_auth(&credential).json(&batch(vec![])).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.json::<ErrorBody>().await.unwrap().error, "agent_revoked");

        let failures = audit_actions(&collector, "auth.failed").await;
        for reason in ["missing", "unknown", "revoked"] {
            assert!(failures.iter().any(|(outcome, details)| outcome == "denied" && details.contains(reason)),
                "audit has a denied auth.failed for {reason}: {failures:?}");
        }
        assert!(audit_actions(&collector, "agent.revoke").await.len() == 1);
        collector.stop().await;
        db.drop_database().await;
    }

    async fn enrollment_tokens_expire_run_out_and_can_be_revoked(db: Db) {
        let db = test_db(db).await;
        let collector = spawn_collector(&db).await;

        let single = collector.enroll_token("663", 1, Duration::from_secs(600)).await;
        assert_eq!(enroll(&collector, &single).await.0, StatusCode::OK);
        assert_eq!(enroll(&collector, &single).await, (StatusCode::UNAUTHORIZED, "enroll_token_used_up".into()));

        let short = collector.enroll_token("663", 5, Duration::from_millis(1)).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(enroll(&collector, &short).await, (StatusCode::UNAUTHORIZED, "enroll_token_expired".into()));

        let revoked = collector.enroll_token("663", 5, Duration::from_secs(600)).await;
        let id = collector.store.enroll_tokens_list().await.unwrap()[0].id;
        cntt_collector::admin::enroll_token_revoke(&collector.store, id).await.unwrap();
        assert_eq!(enroll(&collector, &revoked).await, (StatusCode::UNAUTHORIZED, "enroll_token_revoked".into()));
        assert_eq!(enroll(&collector, "cntt_enroll_nonsense").await, (StatusCode::UNAUTHORIZED, "enroll_token_unknown".into()));

        let enrollments = audit_actions(&collector, "agent.enroll").await;
        for reason in ["used_up", "expired", "revoked", "unknown"] {
            assert!(enrollments.iter().any(|(outcome, details)| outcome == "denied" && details.contains(reason)),
                "audit records the {reason} refusal: {enrollments:?}");
        }
        assert_eq!(enrollments.iter().filter(|(outcome, _)| outcome == "ok").count(), 1);
        collector.stop().await;
        db.drop_database().await;
    }

    async fn officers_see_only_their_unit(db: Db) {
        let db = test_db(db).await;
        let collector = spawn_collector(&db).await;
        collector.enroll_agent("24700").await;
        collector.enroll_agent("664").await;
        let officer = collector.api_token(Role::Officer, Some("663")).await;
        let client = collector.client();
        let get = |path: &str| client.get(format!("{}{path}", collector.base_url)).bearer_auth(&officer).send();

        // Their own district, and the commune below it.
        let own: serde_json::Value = get("/api/v1/agents?unit=663").await.unwrap().json().await.unwrap();
        let units: Vec<&str> = own["agents"].as_array().unwrap().iter().map(|a| a["unit_code"].as_str().unwrap()).collect();
        assert_eq!(units, ["24700"]);
        // Without a filter they still see only their subtree.
        let all: serde_json::Value = get("/api/v1/agents").await.unwrap().json().await.unwrap();
        assert_eq!(all["agents"].as_array().unwrap().len(), 1);
        // Another district: refused and audited.
        assert_eq!(get("/api/v1/agents?unit=664").await.unwrap().status(), StatusCode::FORBIDDEN);
        assert_eq!(get("/api/v1/units?root=67").await.unwrap().status(), StatusCode::FORBIDDEN);
        let denied = audit_actions(&collector, "access.denied").await;
        assert_eq!(denied.len(), 2, "{denied:?}");

        // An admin sees both; a revoked token sees nothing.
        let admin = collector.api_token(Role::Admin, None).await;
        let both: serde_json::Value = client.get(format!("{}/api/v1/agents", collector.base_url))
            .bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
        assert_eq!(both["agents"].as_array().unwrap().len(), 2);
        let id = collector.store.api_tokens_list().await.unwrap()[0].id;
        cntt_collector::admin::api_token_revoke(&collector.store, id).await.unwrap();
        let response = client.get(format!("{}/api/v1/agents", collector.base_url)).bearer_auth(&admin).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        collector.stop().await;
        db.drop_database().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_is_not_served_and_is_audited() {
    let db = e2e::sqlite_db();
    let collector = spawn_collector(&db).await;
    let address = collector.base_url.trim_start_matches("https://").to_owned();
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        answer
    })
    .await
    .unwrap();
    assert!(
        !answer.starts_with(b"HTTP/"),
        "plain HTTP got an HTTP answer: {:?}",
        String::from_utf8_lossy(&answer)
    );
    // The same request over TLS works.
    let healthy = collector
        .client()
        .get(format!("{}/healthz", collector.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(healthy.status(), StatusCode::OK);
    let audited = e2e::eventually(super::WAIT, "handshake failure audited", || async {
        let entries = audit_actions(&collector, "tls.handshake_failed").await;
        (!entries.is_empty()).then_some(entries)
    })
    .await;
    assert_eq!(audited[0].0, "denied");
    // A client that does not trust the collector's CA refuses to talk to it.
    let stranger = reqwest::Client::builder().use_rustls_tls().build().unwrap();
    assert!(stranger
        .get(format!("{}/healthz", collector.base_url))
        .send()
        .await
        .is_err());
    collector.stop().await;
}
