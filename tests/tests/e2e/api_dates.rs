//! Every date and time the API writes is text (ISO 8601 / RFC 3339) or Unix milliseconds, never
//! serde's default for the `time` crate's types (`[2026, 258]` for a `Date`, nine numbers for an
//! `OffsetDateTime`), which nobody reading the JSON can use (issue 16).
//!
//! The test walks the JSON of every `GET` path of the OpenAPI document that answers JSON, on a
//! collector holding an agent, its heartbeat and an incident, so a new endpoint or field is
//! covered without naming it here.

use cntt_collector::domain::auth::Role;
use cntt_collector::services::reports::Settings;
use cntt_common::wire::{
    Event, Incident, IncidentKind, IncidentPhase, IncidentSource, Payload, Severity,
};
use e2e::{heartbeat_event, spawn_collector, test_db, Db};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Where `value` holds something that looks like a `time` type serialized by serde's default:
/// an array of integers whose first is a year and second a day of the year.
fn tuple_dates(path: &str, value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Array(items) => {
            let numbers: Vec<i64> = items.iter().filter_map(Value::as_i64).collect();
            let looks_like_a_date = numbers.len() == items.len()
                && (numbers.len() == 2 || numbers.len() == 9)
                && (1970..=2200).contains(&numbers[0])
                && (1..=366).contains(&numbers[1]);
            if looks_like_a_date {
                found.push(format!("{path} = {value}"));
            }
            for (i, item) in items.iter().enumerate() {
                tuple_dates(&format!("{path}[{i}]"), item, found);
            }
        }
        Value::Object(fields) => {
            for (name, item) in fields {
                tuple_dates(&format!("{path}.{name}"), item, found);
            }
        }
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_dates_are_text() {
    let db = test_db(Db::Sqlite).await;
    let collector = spawn_collector(&db).await;
    let agent = collector.enroll_agent("24700").await;
    let now = OffsetDateTime::now_utc();
    let incident = Incident {
        incident_id: uuid::Uuid::new_v4(),
        phase: IncidentPhase::Opened,
        kind: IncidentKind::Security,
        source: IncidentSource::Manual,
        severity: Severity::High,
        title: "Phát hiện mã độc trên máy kế toán".into(),
        description: String::new(),
        target: None,
        started_at: now,
        ended_at: None,
        discovered_at: Some(now),
        systems_affected: vec![],
        evidence: vec![],
        consequences: vec![],
    };
    collector
        .ingest(
            &agent,
            vec![
                heartbeat_event(1, 60),
                Event::new(2, now, &Payload::Incident(Box::new(incident))),
            ],
        )
        .await;

    let admin = collector.api_token(Role::Admin, None).await;
    let today = now
        .to_offset(cntt_collector::domain::periods::VIETNAM)
        .date();
    let settings = Settings::default();
    let quarter = settings
        .scheme("quarterly")
        .expect("the default quarterly scheme")
        .periods(today.year(), &settings.holidays, &[])
        .into_iter()
        .find(|period| period.data_from <= today && today <= period.data_to)
        .or_else(|| {
            // Between the end of a window and the next one's start: any period of the year.
            settings
                .scheme("quarterly")
                .and_then(|scheme| scheme.periods(today.year(), &settings.holidays, &[]).pop())
        })
        .expect("a quarter of this year")
        .label;
    let since = (now - time::Duration::days(30)).format(&Rfc3339).unwrap();
    let until = (now + time::Duration::hours(1)).format(&Rfc3339).unwrap();

    let openapi: Value =
        serde_json::from_str(include_str!("../../../collector/src/http/api/openapi.json"))
            .expect("the OpenAPI document parses");
    let client = collector.client();
    let mut n_documents = 0;
    let mut found = Vec::new();
    let mut incident_paths = Vec::new();
    let paths = openapi["paths"].as_object().expect("paths");
    for (path, operations) in paths {
        if operations.get("get").is_none() || path.contains('{') {
            continue;
        }
        let query = match path.as_str() {
            "/api/v1/reports" | "/api/v1/reports/consolidated" => format!("?period={quarter}"),
            "/api/v1/availability" => format!("?since={since}&until={until}"),
            _ => String::new(),
        };
        // Agents read their report context with their own credential.
        let bearer = if path == "/api/v1/reports/context" {
            agent.identity.credential.expose().to_owned()
        } else {
            admin.clone()
        };
        let response = client
            .get(format!("{}{path}{query}", collector.base_url))
            .bearer_auth(&bearer)
            .send()
            .await
            .expect("request");
        assert!(
            response.status().is_success(),
            "GET {path}{query}: {}",
            response.status()
        );
        let is_json = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/json"));
        if !is_json {
            continue;
        }
        let body: Value = response.json().await.expect("JSON body");
        if path == "/api/v1/incidents" {
            for incident in body["incidents"].as_array().into_iter().flatten() {
                match &incident["id"] {
                    Value::String(id) => incident_paths.push(format!("/api/v1/incidents/{id}")),
                    Value::Number(id) => incident_paths.push(format!("/api/v1/incidents/{id}")),
                    _ => {}
                }
            }
        }
        tuple_dates(path, &body, &mut found);
        n_documents += 1;
    }
    assert!(
        !incident_paths.is_empty(),
        "the incident ingested is listed by /api/v1/incidents"
    );
    for path in &incident_paths {
        let body: Value = client
            .get(format!("{}{path}", collector.base_url))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("JSON body");
        tuple_dates(path, &body, &mut found);
        n_documents += 1;
    }
    assert!(n_documents >= 8, "only {n_documents} JSON documents read");
    assert!(
        found.is_empty(),
        "dates written as serde's default for the time crate:\n{}",
        found.join("\n")
    );
    collector.stop().await;
}

#[test]
fn the_walk_finds_a_default_serialized_date() {
    #[derive(serde::Serialize)]
    struct Old {
        due: time::Date,
    }
    let value = serde_json::to_value(Old {
        due: time::macros::date!(2026 - 09 - 15),
    })
    .unwrap();
    let mut found = Vec::new();
    tuple_dates("", &value, &mut found);
    assert_eq!(found, vec![".due = [2026,258]".to_owned()]);
    let value = serde_json::to_value(cntt_collector::domain::periods::Override {
        scheme: "quarterly".into(),
        period: "2026-Q3".into(),
        due: time::macros::date!(2026 - 09 - 15),
        reason: "thử".into(),
    })
    .unwrap();
    assert_eq!(value["due"], "2026-09-15");
}
