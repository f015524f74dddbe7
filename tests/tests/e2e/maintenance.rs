//! Planned maintenance (issue 17) against a real collector, a real SMTP server process and a real
//! webhook receiver: a weekly window over a commune holds a WAN cut that ends inside it (nothing is
//! ever sent) and announces one that outlasts it once, at its end, with its escalation counted from
//! there and its resolution later; availability shows the planned down time apart; the API, the
//! overview and the maintenance page (in Chromium) list the window; refusals are clear and audited.

use std::collections::BTreeSet;
use std::time::Duration;

use cntt_collector::domain::auth::Role;
use cntt_common::wire::{
    Event, Incident, IncidentKind, IncidentPhase, IncidentSource, Payload, Severity,
};
use e2e::browser::{Browser, DESKTOP, PHONE};
use e2e::console::{console_client, log_in};
use e2e::webhook::WebhookReceiver;
use e2e::{test_db, Db, TestAgent, TestCollector};
use serde_json::{json, Value};
use time::{Duration as TimeDuration, OffsetDateTime};

use super::notify::{collector_with, recipients, smtp_sink, Setup};
use super::WAIT;

/// Opening to every unit's officer; the Sở's on-duty officer 3 s later (the 30 minutes of the
/// defaults).
const RULES: &str = "unit_code,kinds,min_severity,role,after
,*,low,it_officer,0s
,*,medium,so_on_duty,3s
";

const VIETNAM: time::UtcOffset = time::macros::offset!(+7);

/// `YYYY-MM-DD HH:MM:SS` in Vietnam's time, as people type it.
fn local(at: OffsetDateTime) -> String {
    let at = at.to_offset(VIETNAM);
    format!(
        "{}-{:02}-{:02} {:02}:{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

fn ms(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

/// A WAN cut as the commune's agent reports it.
async fn wan_phase(
    collector: &TestCollector,
    agent: &TestAgent,
    seq: u64,
    id: uuid::Uuid,
    phase: IncidentPhase,
    started_at: OffsetDateTime,
    ended_at: Option<OffsetDateTime>,
) {
    let incident = Incident {
        incident_id: id,
        phase,
        kind: IncidentKind::Wan,
        source: IncidentSource::Detected,
        severity: Severity::Medium,
        title: "Mất kết nối đường truyền WAN của xã".into(),
        description: String::new(),
        target: None,
        started_at,
        ended_at,
        discovered_at: None,
        systems_affected: vec![],
        evidence: vec![],
        consequences: vec![],
    };
    collector
        .ingest(
            agent,
            vec![Event::new(
                seq,
                OffsetDateTime::now_utc(),
                &Payload::Incident(Box::new(incident)),
            )],
        )
        .await;
}

async fn post_window(collector: &TestCollector, token: &str, body: Value) -> reqwest::Response {
    collector
        .client()
        .post(format!("{}/api/v1/maintenance-windows", collector.base_url))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weekly_window_holds_a_wan_cut_and_announces_what_outlasts_it_once() {
    let db = test_db(Db::Sqlite).await;
    let smtp = smtp_sink().await;
    let webhook = WebhookReceiver::start().await;
    let setup = Setup {
        grace: "500ms",
        reminder_every: "0s",
        alarm_after: "10m",
        rules: RULES,
    };
    // Windows longer than 5 s remind their planner 8 s before they end.
    let extra = "[maintenance]\nremind_longer_than = \"5s\"\nremind_before = \"8s\"\n";
    let (collector, _secrets) = collector_with(&db, &smtp, &webhook, &setup, extra).await;
    let admin = collector.api_token(Role::Admin, None).await;
    let agent = collector.enroll_agent("24700").await;

    // Every week from a week ago, for 12 s: this week's occurrence began a second ago.
    let now = OffsetDateTime::now_utc();
    let occurrence_start = now - TimeDuration::seconds(1);
    let first = occurrence_start - TimeDuration::days(7);
    let answer = post_window(
        &collector,
        &admin,
        json!({"unit": "24700", "start": local(first), "duration": "12s", "repeat": "weekly",
               "reason": "Nhà mạng bảo trì đường truyền hằng tuần", "remind_to": "kythuat@stttt.daknong.gov.vn"}),
    )
    .await;
    assert_eq!(answer.status(), reqwest::StatusCode::CREATED);
    let window: Value = answer.json().await.unwrap();
    assert_eq!(window["state"], "active", "{window}");
    assert_eq!(window["repeat"], "weekly");
    // Whole seconds: the typed time has no fraction.
    let start_ms = (first.unix_timestamp() * 1000) + 7 * 86_400_000;
    let end_ms = start_ms + 12_000;

    // Cut A begins and ends inside the window; cut B begins inside and outlasts it.
    let at = |offset_ms: i64| {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(start_ms + offset_ms) * 1_000_000)
            .unwrap()
    };
    let (cut_a, cut_b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    wan_phase(
        &collector,
        &agent,
        1,
        cut_a,
        IncidentPhase::Opened,
        at(1_500),
        None,
    )
    .await;
    wan_phase(
        &collector,
        &agent,
        2,
        cut_b,
        IncidentPhase::Opened,
        at(3_000),
        None,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    wan_phase(
        &collector,
        &agent,
        3,
        cut_a,
        IncidentPhase::Resolved,
        at(1_500),
        Some(at(4_000)),
    )
    .await;

    // The incidents exist and are shown as held, on the API's list and the console's overview.
    let stored_b = collector
        .store
        .incident(&cut_b.to_string())
        .await
        .unwrap()
        .expect("cut B stored");
    assert_eq!(stored_b.state, "open");
    let officer = log_in(&collector, Role::Officer, Some("663")).await;
    let overview = console_client(&collector)
        .get(format!("{}/", collector.base_url))
        .header("cookie", officer.cookie_header())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        overview.contains("Nhà mạng bảo trì đường truyền hằng tuần"),
        "the overview lists the window"
    );
    assert!(overview.contains("Đang bảo trì"), "as going on");
    assert!(
        overview.contains("trong lịch bảo trì"),
        "the open cut is marked"
    );

    // Until the window ends, nobody hears of anything but the planner, whose reminder comes
    // 8 s before the end.
    let reminder = smtp.wait_for(1, WAIT).await;
    assert_eq!(reminder[0].rcpt_tos, ["kythuat@stttt.daknong.gov.vn"]);
    assert!(
        reminder[0]
            .subject
            .as_deref()
            .unwrap()
            .contains("Lịch bảo trì sắp kết thúc"),
        "{:?}",
        reminder[0].subject
    );
    let until_end = end_ms - ms(OffsetDateTime::now_utc()) - 300;
    if until_end > 0 {
        tokio::time::sleep(Duration::from_millis(until_end as u64)).await;
    }
    assert_eq!(
        smtp.messages().len(),
        1,
        "nothing announced during the window: {:?}",
        smtp.messages()
            .iter()
            .map(|m| &m.subject)
            .collect::<Vec<_>>()
    );
    assert!(webhook.requests().is_empty());

    // At its end: cut B, still open, is announced once to the commune's officer; 3 s on (counted
    // from the window's end) the Sở's on-duty officer by email and webhook.
    let opening = smtp.wait_for(2, WAIT).await;
    let opened_at = ms(OffsetDateTime::now_utc());
    assert!(opened_at >= end_ms, "announced after the window's end");
    assert_eq!(opening[1].rcpt_tos, ["an@dakmil.daknong.gov.vn"]);
    assert!(
        opening[1]
            .text
            .as_deref()
            .unwrap()
            .contains("THÔNG BÁO SỰ CỐ"),
        "{:?}",
        opening[1].text
    );
    let escalation = smtp.wait_for(3, WAIT).await;
    assert_eq!(escalation[2].rcpt_tos, ["truc@stttt.daknong.gov.vn"]);
    assert!(
        ms(OffsetDateTime::now_utc()) >= end_ms + 3_000,
        "the escalation counts from the window's end, not the cut's start"
    );
    webhook.wait_for(1, WAIT).await;

    // Resolved later: those told hear of it; cut A, which ended inside the window, never.
    let ended = OffsetDateTime::now_utc();
    wan_phase(
        &collector,
        &agent,
        4,
        cut_b,
        IncidentPhase::Resolved,
        at(3_000),
        Some(ended),
    )
    .await;
    let resolution = smtp.wait_for(5, WAIT).await;
    assert_eq!(
        recipients(&resolution[3..]),
        BTreeSet::from([
            "an@dakmil.daknong.gov.vn".to_owned(),
            "truc@stttt.daknong.gov.vn".to_owned()
        ])
    );
    assert!(resolution[3..].iter().all(|mail| mail
        .subject
        .as_deref()
        .unwrap()
        .contains("Đã khắc phục")));
    webhook.wait_for(2, WAIT).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(smtp.messages().len(), 5, "each notice once");
    assert_eq!(webhook.requests().len(), 2);
    assert!(
        collector
            .store
            .notices_list(Some(&cut_a.to_string()), None, 10)
            .await
            .unwrap()
            .is_empty(),
        "nobody is ever told of a cut that ended inside the window"
    );

    // Availability: down from cut A's start to cut B's end; the part inside the window
    // (1.5 s → 12 s = 10.5 s) is planned and apart, the rest counts.
    let since = OffsetDateTime::from_unix_timestamp(start_ms / 1000 - 3600).unwrap();
    let until = OffsetDateTime::from_unix_timestamp(start_ms / 1000 + 3600).unwrap();
    let figures: Value = collector
        .client()
        .get(format!("{}/api/v1/availability", collector.base_url))
        .query(&[
            ("unit", "24700"),
            (
                "since",
                &since
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap(),
            ),
            (
                "until",
                &until
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap(),
            ),
        ])
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let unit = &figures["units"][0];
    assert_eq!(unit["unit_code"], "24700", "{figures}");
    assert_eq!(unit["planned_down_ms"], 10_500, "{figures}");
    assert_eq!(unit["down_ms"], ms(ended) - end_ms, "{figures}");

    // The API lists it with its next occurrence a week on, and the metric counts it.
    let listed: Value = collector
        .client()
        .get(format!("{}/api/v1/maintenance-windows", collector.base_url))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = &listed["windows"][0];
    assert_eq!(listed["state"], "planned", "{listed}");
    assert_eq!(
        listed["covers"], "Thị trấn Đắk Mil và các đơn vị trực thuộc",
        "{listed}"
    );
    let metrics = collector
        .client()
        .get(format!("{}/metrics", collector.base_url))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("cntt_collector_maintenance_windows{state=\"planned\"} 1"),
        "{metrics}"
    );
    collector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_are_planned_checked_cancelled_and_audited_on_every_door() {
    let db = test_db(Db::Sqlite).await;
    let collector = e2e::spawn_collector(&db).await;
    let officer = collector.api_token(Role::Officer, Some("663")).await;
    let viewer = collector.api_token(Role::Viewer, None).await;
    let start = local(OffsetDateTime::now_utc() + TimeDuration::days(1));

    // Clear refusals, nothing stored.
    for (body, needle) in [
        (
            json!({"unit": "24700", "start": "thứ bảy", "duration": "4h", "reason": "x"}),
            "2026-12-12 22:00",
        ),
        (
            json!({"unit": "24700", "start": start, "duration": "bốn giờ", "reason": "x"}),
            "4h or 90m",
        ),
        (
            json!({"unit": "24700", "start": start, "duration": "30d", "reason": "x"}),
            "longest",
        ),
        (
            json!({"unit": "24700", "start": start, "duration": "4h", "reason": "  "}),
            "reason",
        ),
        (
            json!({"start": start, "duration": "4h", "reason": "x"}),
            "name a unit",
        ),
        (
            json!({"unit": "24700", "start": start, "duration": "4h", "repeat": "monthly", "reason": "x"}),
            "once, daily or weekly",
        ),
    ] {
        let answer = post_window(&collector, &officer, body.clone()).await;
        assert_eq!(
            answer.status(),
            reqwest::StatusCode::UNPROCESSABLE_ENTITY,
            "{body}"
        );
        let text = answer.text().await.unwrap();
        assert!(text.contains(needle), "{needle:?} in {text}");
    }
    // Outside the officer's district, and a viewer: refused and audited.
    let answer = post_window(
        &collector,
        &officer,
        json!({"unit": "67.S.TTTT", "start": start, "duration": "4h", "reason": "Nâng cấp"}),
    )
    .await;
    assert_eq!(answer.status(), reqwest::StatusCode::FORBIDDEN);
    let answer = post_window(
        &collector,
        &viewer,
        json!({"unit": "24700", "start": start, "duration": "4h", "reason": "x"}),
    )
    .await;
    assert_eq!(answer.status(), reqwest::StatusCode::FORBIDDEN);
    assert!(collector.store.maintenance_list().await.unwrap().is_empty());

    // Planned by the officer through the API, cancelled on the CLI's path; both audited.
    let answer = post_window(
        &collector,
        &officer,
        json!({"unit": "24700", "subtree": false, "start": start, "duration": "2h",
               "reason": "Nâng cấp máy chủ một cửa"}),
    )
    .await;
    assert_eq!(answer.status(), reqwest::StatusCode::CREATED);
    let planned: Value = answer.json().await.unwrap();
    assert_eq!(planned["state"], "planned");
    let id = planned["id"].as_str().unwrap().to_owned();
    let listed = cntt_collector::admin::maintenance::list(&collector.store, false)
        .await
        .unwrap();
    assert!(
        listed.contains(&id) && listed.contains("Nâng cấp máy chủ một cửa"),
        "{listed}"
    );
    let cancelled = cntt_collector::admin::maintenance::cancel(&collector.store, &id)
        .await
        .unwrap();
    assert!(cancelled.contains("cancelled"), "{cancelled}");
    let again = cntt_collector::admin::maintenance::cancel(&collector.store, &id).await;
    assert!(format!("{:#}", again.unwrap_err()).contains("already cancelled"));
    let audit = collector
        .store
        .audit_list(&cntt_collector::store::AuditFilter {
            action: None,
            limit: 1000,
        })
        .await
        .unwrap();
    let actions: Vec<(&str, &str)> = audit
        .iter()
        .map(|e| (e.action.as_str(), e.outcome.as_str()))
        .collect();
    assert!(
        actions.contains(&("maintenance.create", "ok")),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("maintenance.cancel", "ok")),
        "{actions:?}"
    );
    assert!(
        actions
            .iter()
            .filter(|(_, outcome)| *outcome == "denied")
            .count()
            >= 2,
        "{actions:?}"
    );

    // The console: the page in Chromium, a refused form keeps what was typed, a good one lists it.
    let person = log_in(&collector, Role::Officer, Some("663")).await;
    let browser = Browser::start().await;
    browser.act_as(&collector, &person).await;
    browser
        .goto(&format!("{}/maintenance", collector.base_url))
        .await;
    browser.fill("#plan", "unit", "24700").await;
    browser.fill("#plan", "duration", "bốn giờ").await;
    browser
        .fill("#plan", "reason", "Thay bộ chuyển mạch tầng 2")
        .await;
    browser
        .client
        .execute(
            "document.querySelector('#plan [name=start]').value = arguments[0];",
            vec![Value::String(start.replace(' ', "T")[..16].to_owned())],
        )
        .await
        .unwrap();
    browser.submit("#plan").await;
    let text = wait_text(&browser, "Thời lượng phải có dạng").await;
    // The refusal as the person sees it (target/console-screenshots/maintenance-refused-*.png).
    let shots = browser
        .screenshots("maintenance-refused", &[DESKTOP, PHONE])
        .await;
    assert!(shots
        .iter()
        .all(|path| std::fs::metadata(path).unwrap().len() > 1000));
    assert!(
        text.contains("Thay bộ chuyển mạch tầng 2")
            || browser
                .source()
                .await
                .contains("Thay bộ chuyển mạch tầng 2")
    );
    let source = browser.source().await;
    assert!(
        source.contains("Thay bộ chuyển mạch tầng 2"),
        "the typed reason is kept"
    );
    browser.fill("#plan", "duration", "3h").await;
    browser.submit("#plan").await;
    let text = wait_text(&browser, "Sắp tới").await;
    assert!(text.contains("Thay bộ chuyển mạch tầng 2"), "{text}");
    let shots = browser.screenshots("maintenance", &[DESKTOP, PHONE]).await;
    assert!(shots
        .iter()
        .all(|path| std::fs::metadata(path).unwrap().len() > 1000));
    browser.resize(PHONE).await;
    assert!(
        !browser.overflows_horizontally().await,
        "the page fits a phone"
    );
    collector.stop().await;
}

/// Waits until the page's text holds `expected` (a submitted form's next page may not be there
/// yet, and the old one goes stale under the reader); returns that text.
async fn wait_text(browser: &Browser, expected: &str) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        if let Ok(body) = browser.client.find(fantoccini::Locator::Css("body")).await {
            if let Ok(text) = body.text().await {
                if text.contains(expected) {
                    return text;
                }
                last = text;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{expected:?} never showed: {last}");
}
