//! Retention: raw data rolled up and deleted exactly once, newer data and incidents untouched, the
//! audit log's legal floor held by the database, closed incidents deleted children first, two
//! collectors taking turns, and the server running the job by itself.

use std::collections::BTreeMap;
use std::time::Duration;

use cntt_collector::domain::auth::Role;
use cntt_collector::store::{
    Action, AuditFilter, BatchPayloads, BatchWrite, NewAuditEntry, NewEvent, NewIncidentPhase,
    NewProbeResult, ProbeResultFilter, ProbeRollup, RetentionPolicy, RetentionSummary, Store,
};
use e2e::{eventually, spawn_collector, test_db};
use time::OffsetDateTime;

use super::store::{agent_in, raw_pool, record};
use super::{is_postgres, WAIT};

const DAY: Duration = Duration::from_secs(86_400);
const HOUR_MS: i64 = 3_600_000;

/// The default policy (30 days raw, 365 days audit, incidents kept) with a batch size.
fn policy(batch_rows: i64) -> RetentionPolicy {
    RetentionPolicy {
        raw: 30 * DAY,
        audit: 365 * DAY,
        incidents: None,
        batch_rows,
    }
}

fn ms(at: OffsetDateTime) -> i64 {
    cntt_collector::store::millis(at)
}

/// Now, to the millisecond, so times survive storage unchanged.
fn now() -> OffsetDateTime {
    cntt_collector::store::from_millis(ms(OffsetDateTime::now_utc()))
}

/// The start of the UTC hour `days` days before `now`.
fn hour_days_ago(now: OffsetDateTime, days: u32) -> OffsetDateTime {
    let at = ms(now - days * DAY);
    cntt_collector::store::from_millis(at - at.rem_euclid(HOUR_MS))
}

/// Writes one agent's events straight into a store, as the ingest handler would.
struct Feed<'a> {
    store: &'a Store,
    agent_id: String,
    unit_id: i64,
    seq: i64,
    events: Vec<NewEvent>,
    probe_results: Vec<NewProbeResult>,
    phases: Vec<NewIncidentPhase>,
}

impl<'a> Feed<'a> {
    async fn new(store: &'a Store) -> Feed<'a> {
        let unit_id = match store.unit_by_code("67").await.unwrap() {
            Some(unit) => unit.id,
            None => {
                store
                    .units_import(&[record("67", "province", None)], OffsetDateTime::now_utc())
                    .await
                    .unwrap();
                store.unit_by_code("67").await.unwrap().unwrap().id
            }
        };
        Feed {
            store,
            agent_id: agent_in(store, "67").await,
            unit_id,
            seq: 0,
            events: Vec::new(),
            probe_results: Vec::new(),
            phases: Vec::new(),
        }
    }

    fn event(&mut self, at: OffsetDateTime, kind: &str) -> String {
        self.seq += 1;
        let id = uuid::Uuid::new_v4().to_string();
        self.events.push(NewEvent {
            id: id.clone(),
            seq: self.seq,
            kind: kind.into(),
            occurred_at: at,
            status: if kind == "officer_note" {
                "unknown_kind"
            } else {
                "ok"
            },
            error: None,
            data: "{}".into(),
        });
        id
    }

    fn probe(&mut self, at: OffsetDateTime, target: &str, ok: bool, rtt_ms: Option<f64>) {
        let event_id = self.event(at, "probe_result");
        let (target_kind, check_kind) = match target {
            "gateway" => ("lan", "icmp"),
            "collector" => ("wan", "tcp"),
            _ => ("server", "http"),
        };
        let seq = self
            .events
            .last()
            .map(|event| event.seq)
            .unwrap_or_default();
        self.probe_results.push(NewProbeResult {
            event_id,
            seq,
            target: target.into(),
            target_kind: target_kind.into(),
            check_kind: check_kind.into(),
            address: format!("{target}.example"),
            at,
            ok,
            rtt_ms,
            error: (!ok).then(|| "timeout".to_owned()),
            http_status: None,
            cert_not_after: None,
        });
    }

    fn phase(&mut self, at: OffsetDateTime, incident_id: &str, resolves: bool) {
        let event_id = self.event(at, "incident");
        self.phases.push(NewIncidentPhase {
            event_id,
            seq: self.seq,
            at,
            incident_id: incident_id.into(),
            resolves,
            kind: "wan".into(),
            source: "agent_detected".into(),
            severity: "high".into(),
            title: "Mất kết nối WAN".into(),
            description: String::new(),
            target: Some("collector".into()),
            started_at: at,
            ended_at: resolves.then_some(at),
            discovered_at: None,
            systems_affected: "[]".into(),
            evidence: "[]".into(),
            consequences: "[]".into(),
        });
    }

    /// Stores everything gathered so far as one batch.
    async fn flush(&mut self) {
        let write = BatchWrite {
            agent_id: &self.agent_id,
            unit_id: self.unit_id,
            events: &self.events,
            heartbeat: None,
            agent_version: "0.1.0",
            address: None,
            now: OffsetDateTime::now_utc(),
        };
        let payloads = BatchPayloads {
            probe_results: &self.probe_results,
            incident_phases: &self.phases,
            ..BatchPayloads::default()
        };
        self.store
            .events_ingest_with(&write, &payloads)
            .await
            .unwrap();
        self.events.clear();
        self.probe_results.clear();
        self.phases.clear();
    }
}

/// A roll-up row as expected.
#[allow(
    clippy::too_many_arguments,
    reason = "one row of a table of expectations"
)]
fn rollup(
    feed: &Feed<'_>,
    target: &str,
    hour: OffsetDateTime,
    checks: i64,
    failures: i64,
    rtt_count: i64,
    rtt_sum_ms: f64,
    rtt_min_max: Option<(f64, f64)>,
) -> ProbeRollup {
    let (target_kind, check_kind) = match target {
        "gateway" => ("lan", "icmp"),
        "collector" => ("wan", "tcp"),
        _ => ("server", "http"),
    };
    ProbeRollup {
        agent_id: feed.agent_id.clone(),
        target: target.into(),
        hour_start: ms(hour),
        unit_id: feed.unit_id,
        target_kind: target_kind.into(),
        check_kind: check_kind.into(),
        checks,
        failures,
        rtt_count,
        rtt_sum_ms,
        rtt_min_ms: rtt_min_max.map(|(min, _)| min),
        rtt_max_ms: rtt_min_max.map(|(_, max)| max),
    }
}

/// The kinds of an agent's stored events, sorted, with their count.
async fn event_kinds(store: &Store, agent_id: &str) -> BTreeMap<String, usize> {
    let mut kinds = BTreeMap::new();
    for event in store.events_of_agent(agent_id).await.unwrap() {
        *kinds.entry(event.kind).or_insert(0) += 1;
    }
    kinds
}

async fn probe_results_left(store: &Store) -> Vec<i64> {
    let filter = ProbeResultFilter {
        limit: 10_000,
        ..ProbeResultFilter::default()
    };
    let mut at: Vec<i64> = store
        .probe_results_list(&filter)
        .await
        .unwrap()
        .iter()
        .map(|result| result.at)
        .collect();
    at.sort_unstable();
    at
}

fn kinds(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect()
}

async fn audit_at(store: &Store, at: OffsetDateTime, target: &str) {
    let entry = NewAuditEntry {
        actor: "cli:root".into(),
        action: "unit.import".into(),
        target: target.into(),
        outcome: "ok",
        remote_addr: None,
        details: serde_json::Value::Null,
    };
    store.audit(&entry, at).await.unwrap();
}

async fn audit_targets(store: &Store) -> Vec<String> {
    let filter = AuditFilter {
        action: None,
        limit: 100,
    };
    let mut targets: Vec<String> = store
        .audit_list(&filter)
        .await
        .unwrap()
        .into_iter()
        .map(|entry| entry.target)
        .collect();
    targets.sort();
    targets
}

both_databases! {
    async fn raw_data_is_rolled_up_once_and_the_rest_stays(db: Db) {
        let db = test_db(db).await;
        let store = db.store().await;
        let now = now();
        let mut feed = Feed::new(&store).await;
        let h0 = hour_days_ago(now, 40);
        let h1 = h0 + Duration::from_secs(3600);
        let min = |n: u64| Duration::from_secs(60 * n);
        // Old enough: two hours of two targets, failures with and without a round-trip time.
        feed.probe(h0 + min(1), "gateway", true, Some(1.5));
        feed.probe(h0 + min(2), "portal", false, None);
        feed.probe(h0 + min(3), "gateway", true, Some(2.25));
        feed.probe(h0 + min(4), "portal", false, Some(250.0));
        feed.probe(h0 + min(5), "gateway", false, None);
        feed.probe(h0 + min(6), "portal", false, None);
        feed.probe(h0 + min(59), "gateway", true, Some(10.0));
        feed.probe(h1, "gateway", true, Some(0.5));
        feed.probe(h1 + min(30), "gateway", false, None);
        feed.probe(h1 + min(31), "portal", false, None);
        // Just past the raw retention, and just within it.
        let past = now - 30 * DAY - min(1);
        feed.probe(past, "collector", true, Some(3.0));
        feed.probe(now - 30 * DAY + min(1), "collector", true, Some(4.0));
        // Newer data.
        feed.probe(now - DAY, "gateway", true, Some(1.0));
        feed.probe(now - DAY + min(1), "gateway", true, Some(1.0));
        feed.event(h0 + min(7), "heartbeat");
        feed.event(h0 + min(8), "heartbeat");
        feed.event(now - DAY, "heartbeat");
        // Old incident phases and an event of a kind this collector does not know stay.
        let incident = uuid::Uuid::new_v4().to_string();
        feed.phase(h0 + min(10), &incident, false);
        feed.phase(h0 + min(20), &incident, true);
        feed.event(h0 + min(9), "officer_note");
        feed.flush().await;

        let expected = RetentionSummary {
            probe_results_rolled_up: 11,
            rollup_hours: 5,
            // Raw events only: probe results are stored once, as their rows (issue 15).
            events_deleted: 2,
            ..RetentionSummary::default()
        };
        // Small batches, so hours are split across transactions and added up.
        let policy = policy(3);
        assert_eq!(store.retention_preview(now, &policy).await.unwrap(), expected);
        let summary = store.retention_run(now, &policy, "test").await.unwrap();
        assert!(summary.transactions >= 4, "{summary:?}");
        assert_eq!(RetentionSummary { transactions: 0, ..summary }, expected);

        let past_hour = cntt_collector::store::from_millis(ms(past) - ms(past).rem_euclid(HOUR_MS));
        let rollups = vec![
            rollup(&feed, "collector", past_hour, 1, 0, 1, 3.0, Some((3.0, 3.0))),
            rollup(&feed, "gateway", h0, 4, 1, 3, 13.75, Some((1.5, 10.0))),
            rollup(&feed, "gateway", h1, 2, 1, 1, 0.5, Some((0.5, 0.5))),
            rollup(&feed, "portal", h0, 3, 3, 1, 250.0, Some((250.0, 250.0))),
            rollup(&feed, "portal", h1, 1, 1, 0, 0.0, None),
        ];
        assert_eq!(store.probe_rollups_of_agent(&feed.agent_id).await.unwrap(), rollups);
        let newer = vec![ms(now - 30 * DAY + min(1)), ms(now - DAY), ms(now - DAY + min(1))];
        assert_eq!(probe_results_left(&store).await, newer);
        let left = kinds(&[("heartbeat", 1), ("incident", 2), ("officer_note", 1), ("probe_result", 3)]);
        assert_eq!(event_kinds(&store, &feed.agent_id).await, left);
        let incident = store.incident(&incident).await.unwrap().expect("incident stays");
        assert_eq!(incident.state, "resolved");
        assert_eq!(store.incident_timeline(&incident.id).await.unwrap().len(), 2);

        // A second run at the same time changes nothing.
        let again = store.retention_run(now, &policy, "test").await.unwrap();
        assert_eq!(RetentionSummary { transactions: 0, ..again }, RetentionSummary::default());
        assert_eq!(store.retention_preview(now, &policy).await.unwrap(), RetentionSummary::default());
        assert_eq!(store.probe_rollups_of_agent(&feed.agent_id).await.unwrap(), rollups);
        assert_eq!(probe_results_left(&store).await, newer);
        assert_eq!(event_kinds(&store, &feed.agent_id).await, left);

        // A result that arrives late, for an hour already rolled up, is added to it.
        feed.probe(h0 + min(58), "gateway", true, Some(0.25));
        feed.flush().await;
        let late = store.retention_run(now, &policy, "test").await.unwrap();
        assert_eq!((late.probe_results_rolled_up, late.rollup_hours, late.events_deleted), (1, 1, 0));
        let mut rollups = rollups;
        rollups[1] = rollup(&feed, "gateway", h0, 5, 1, 4, 14.0, Some((0.25, 10.0)));
        assert_eq!(store.probe_rollups_of_agent(&feed.agent_id).await.unwrap(), rollups);
        db.drop_database().await;
    }

    async fn the_audit_log_keeps_a_year_whatever_the_policy_says(db: Db) {
        let postgres = is_postgres(db);
        let db = test_db(db).await;
        let store = db.store().await;
        let now = now();
        // Written in time order, as a collector writes them: retention deletes the oldest
        // entries as a prefix of the hash chain (`store/audit.rs`).
        audit_at(&store, now - 400 * DAY, "old").await;
        audit_at(&store, now - 366 * DAY, "past the floor").await;
        audit_at(&store, now - 10 * DAY, "young").await;
        let pool = raw_pool(&db.url).await;
        let delete = |target: &'static str| {
            sqlx::query("DELETE FROM audit_log WHERE target = $1").bind(target).execute(&pool)
        };
        let err = delete("young").await.unwrap_err();
        assert!(err.to_string().contains("younger than 365 days"), "{err}");
        let err = sqlx::query("UPDATE audit_log SET actor = 'x' WHERE target = 'old'")
            .execute(&pool)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
        assert_eq!(delete("old").await.unwrap().rows_affected(), 1);
        if postgres {
            let err = sqlx::query("TRUNCATE audit_log").execute(&pool).await.unwrap_err();
            assert!(err.to_string().contains("append-only"), "{err}");
        }
        pool.close().await;

        // A policy below the floor (which the config refuses) still deletes nothing younger.
        let short = RetentionPolicy { audit: 5 * DAY, ..policy(100) };
        assert_eq!(store.retention_preview(now, &short).await.unwrap().audit_deleted, 1);
        let summary = store.retention_run(now, &short, "test").await.unwrap();
        assert_eq!(summary.audit_deleted, 1);
        assert_eq!(audit_targets(&store).await, ["young"]);
        let summary = store.retention_run(now, &policy(100), "test").await.unwrap();
        assert_eq!(summary.audit_deleted, 0);
        db.drop_database().await;
    }

    async fn closed_incidents_go_after_their_children_and_only_when_asked(db: Db) {
        let db = test_db(db).await;
        let store = db.store().await;
        let now = now();
        let mut feed = Feed::new(&store).await;
        let started = now - 500 * DAY;
        let ids: BTreeMap<&str, String> = ["parent", "child-old", "child-young", "alone", "open"]
            .into_iter()
            .map(|name| (name, uuid::Uuid::new_v4().to_string()))
            .collect();
        for (name, id) in &ids {
            feed.phase(started, id, false);
            if *name != "open" {
                feed.phase(started + DAY, id, true);
            }
        }
        feed.flush().await;
        for (name, id) in &ids {
            let closed_at = match *name {
                "open" => continue,
                "child-young" => now - 10 * DAY,
                _ => now - 400 * DAY,
            };
            let close = Action::Close { cause: "Đứt cáp".into(), resolution: "Hàn lại".into(), lessons: String::new() };
            store.incident_act(id, &close, "api-token:1", closed_at).await.unwrap().unwrap();
        }
        let pool = raw_pool(&db.url).await;
        for child in ["child-old", "child-young"] {
            sqlx::query("UPDATE incidents SET parent_id = $1 WHERE id = $2")
                .bind(&ids["parent"])
                .bind(&ids[child])
                .execute(&pool)
                .await
                .unwrap();
        }
        let remaining = |store: &Store| {
            let store = store.clone();
            let ids = ids.clone();
            async move {
                let mut left = Vec::new();
                for (name, id) in &ids {
                    if store.incident(id).await.unwrap().is_some() {
                        left.push(*name);
                    }
                }
                left
            }
        };

        // Kept forever by default.
        let summary = store.retention_run(now, &policy(100), "test").await.unwrap();
        assert_eq!(summary.incidents_deleted, 0);
        assert_eq!(remaining(&store).await.len(), 5);

        // A year: the old child and the lone incident go; the parent waits for its young child.
        let year = RetentionPolicy { incidents: Some(365 * DAY), ..policy(100) };
        let expected = RetentionSummary { incidents_deleted: 2, timeline_deleted: 6, ..RetentionSummary::default() };
        assert_eq!(store.retention_preview(now, &year).await.unwrap(), expected);
        let summary = store.retention_run(now, &year, "test").await.unwrap();
        assert_eq!(RetentionSummary { transactions: 0, ..summary }, expected);
        assert_eq!(remaining(&store).await, ["child-young", "open", "parent"]);
        assert!(store.incident_timeline(&ids["alone"]).await.unwrap().is_empty());

        // Once the child is old enough too, it goes, then its parent in the next pass.
        sqlx::query("UPDATE incidents SET closed_at = $1 WHERE id = $2")
            .bind(ms(now - 400 * DAY))
            .bind(&ids["child-young"])
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let expected = RetentionSummary { incidents_deleted: 2, timeline_deleted: 6, ..RetentionSummary::default() };
        assert_eq!(store.retention_preview(now, &year).await.unwrap(), expected);
        let summary = store.retention_run(now, &year, "test").await.unwrap();
        assert_eq!(RetentionSummary { transactions: 0, ..summary }, expected);
        assert_eq!(remaining(&store).await, ["open"]);
        // The agents' incident events are raw records of what happened; they stay.
        assert_eq!(event_kinds(&store, &feed.agent_id).await, kinds(&[("incident", 9)]));
        db.drop_database().await;
    }

    async fn two_collectors_on_one_database_never_count_twice(db: Db) {
        let db = test_db(db).await;
        let first = db.store().await;
        let second = db.store().await;
        let now = now();
        let mut feed = Feed::new(&first).await;
        let start = hour_days_ago(now, 45);
        // The roll-ups as counted here, by hand: (target, hour) → checks, failures, rtt count, sum.
        let mut expected: BTreeMap<(String, i64), (i64, i64, i64, f64)> = BTreeMap::new();
        let n_results = 600;
        for i in 0..n_results {
            let at = start + Duration::from_secs(37 * i);
            let target = ["gateway", "collector", "portal"][(i % 3) as usize];
            let ok = i % 4 != 0;
            let rtt = ok.then_some((i % 10) as f64 * 0.5 + 1.0);
            feed.probe(at, target, ok, rtt);
            let hour = ms(at) - ms(at).rem_euclid(HOUR_MS);
            let figures = expected.entry((target.to_owned(), hour)).or_default();
            figures.0 += 1;
            figures.1 += i64::from(!ok);
            figures.2 += i64::from(rtt.is_some());
            figures.3 += rtt.unwrap_or(0.0);
        }
        feed.flush().await;
        let policy = policy(7);
        let (a, b) = tokio::join!(
            first.retention_run(now, &policy, "collector-a"),
            second.retention_run(now, &policy, "collector-b"),
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.probe_results_rolled_up + b.probe_results_rolled_up, n_results);
        // Probe results are stored once, as their rows (issue 15): no raw event of theirs to delete.
        assert_eq!(a.events_deleted + b.events_deleted, 0);
        let rollups = first.probe_rollups_of_agent(&feed.agent_id).await.unwrap();
        let got: BTreeMap<(String, i64), (i64, i64, i64, f64)> = rollups
            .iter()
            .map(|r| ((r.target.clone(), r.hour_start), (r.checks, r.failures, r.rtt_count, r.rtt_sum_ms)))
            .collect();
        assert_eq!(got, expected);
        assert!(probe_results_left(&first).await.is_empty());
        let again = second.retention_run(now, &policy, "collector-b").await.unwrap();
        assert_eq!(RetentionSummary { transactions: 0, ..again }, RetentionSummary::default());
        first.close().await;
        second.close().await;
        db.drop_database().await;
    }

    async fn the_server_runs_retention_when_it_starts(db: Db) {
        let db = test_db(db).await;
        let store = db.store().await;
        let mut feed = Feed::new(&store).await;
        let old = hour_days_ago(now(), 31);
        for i in 0..4 {
            feed.probe(old + Duration::from_secs(30 * i), "gateway", i != 0, Some(2.0));
        }
        feed.flush().await;
        let agent_id = feed.agent_id.clone();
        store.close().await;

        let collector = spawn_collector(&db).await;
        let entry = eventually(WAIT, "the retention run in the audit log", || async {
            let filter = AuditFilter { action: Some("retention.run".into()), limit: 1 };
            collector.store.audit_list(&filter).await.unwrap().pop()
        })
        .await;
        assert_eq!(entry.actor, "collector");
        let details: serde_json::Value = serde_json::from_str(&entry.details).unwrap();
        assert_eq!(details["probe_results_rolled_up"], 4);
        let rollups = collector.store.probe_rollups_of_agent(&agent_id).await.unwrap();
        assert_eq!((rollups.len(), rollups[0].checks, rollups[0].failures), (1, 4, 1));
        let token = collector.api_token(Role::Admin, None).await;
        let metrics = collector
            .client()
            .get(format!("{}/metrics", collector.base_url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for line in [
            "cntt_collector_retention_rows_total{table=\"probe_results\"} 4",
            // Probe results are stored once, as their rows (issue 15): no raw event of theirs.
            "cntt_collector_retention_rows_total{table=\"events\"} 0",
        ] {
            assert!(metrics.contains(line), "missing {line:?} in\n{metrics}");
        }
        collector.stop().await;
        db.drop_database().await;
    }
}
