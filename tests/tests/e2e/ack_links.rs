//! Acknowledging from the notice (issue 17, item 4) through a real SMTP server process: the
//! opening notice carries a signed link; used after login it acknowledges the incident and stops
//! its escalation; the same link twice, an altered one and an expired one are refused and audited.

use std::time::Duration;

use cntt_collector::domain::auth::Role;
use e2e::console::{console_client, log_in, TestPerson};
use e2e::webhook::WebhookReceiver;
use e2e::{test_db, Db, TestCollector};
use serde_json::{json, Value};

use super::notify::{collector_with, smtp_sink, Setup};
use super::WAIT;

/// The commune's officer at once; the Sở's on-duty officer after 8 s, unless acknowledged.
const RULES: &str = "unit_code,kinds,min_severity,role,after
,*,low,it_officer,0s
,*,medium,so_on_duty,8s
";

async fn file(collector: &TestCollector, token: &str, title: &str) -> String {
    let answer: Value = collector
        .client()
        .post(format!("{}/api/v1/incidents", collector.base_url))
        .bearer_auth(token)
        .json(&json!({"unit": "24700", "kind": "other", "severity": "high", "title": title}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["id"].as_str().expect("filed").to_owned()
}

/// The path of the acknowledgement link in a notice's text.
fn link_path(text: &str) -> String {
    let at = text.find("/ack/").expect("the notice carries a link");
    let path: String = text[at..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    path
}

async fn get(collector: &TestCollector, person: &TestPerson, path: &str) -> (u16, String) {
    let answer = console_client(collector)
        .get(format!("{}{path}", collector.base_url))
        .header("cookie", person.cookie_header())
        .send()
        .await
        .unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

/// Posts the confirmation form as the browser would: same origin and the page's form token.
async fn confirm(collector: &TestCollector, person: &TestPerson, path: &str) -> (u16, String) {
    let (_, page) = get(collector, person, path).await;
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_owned();
    let answer = console_client(collector)
        .post(format!("{}{path}", collector.base_url))
        .header("cookie", person.cookie_header())
        .header("origin", &collector.base_url)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    let location = answer
        .headers()
        .get("location")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (
        status,
        if status == 303 {
            location
        } else {
            answer.text().await.unwrap()
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_s_link_acknowledges_once_and_stops_escalation() {
    let db = test_db(Db::Sqlite).await;
    let smtp = smtp_sink().await;
    let webhook = WebhookReceiver::start().await;
    let setup = Setup {
        grace: "300ms",
        reminder_every: "0s",
        alarm_after: "10m",
        rules: RULES,
    };
    let extra = "[console]\npublic_url = \"https://giamsat.stttt.daknong.gov.vn\"\nack_link_lifetime = \"1h\"\n";
    let (collector, _secrets) = collector_with(&db, &smtp, &webhook, &setup, extra).await;
    let admin = collector.api_token(Role::Admin, None).await;
    let filed_at = std::time::Instant::now();
    let id = file(&collector, &admin, "Mất điện phòng máy chủ của xã").await;

    let opening = smtp.wait_for(1, WAIT).await;
    let text = opening[0].text.as_deref().unwrap();
    assert!(
        text.contains("Xác nhận đã tiếp nhận và đang xử lý"),
        "{text}"
    );
    assert!(
        text.contains("https://giamsat.stttt.daknong.gov.vn/ack/"),
        "{text}"
    );
    assert!(
        opening[0].html.as_deref().unwrap().contains("/ack/"),
        "the HTML part has it too"
    );
    let path = link_path(text);

    // Without a session the link leads to the login, which brings the person back to it.
    let answer = console_client(&collector)
        .get(format!("{}{path}", collector.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303);
    let to_login = answer.headers()["location"].to_str().unwrap().to_owned();
    assert!(to_login.starts_with("/login?next="), "{to_login}");

    // Logged in: a page with the incident and a button; opening it acknowledges nothing.
    let officer = log_in(&collector, Role::Officer, Some("663")).await;
    let (status, page) = get(&collector, &officer, &path).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Mất điện phòng máy chủ của xã") && page.contains("Xác nhận đã tiếp nhận"),
        "{page}"
    );
    assert_eq!(
        collector.store.incident(&id).await.unwrap().unwrap().state,
        "open"
    );
    // What the person sees, in Chromium (screenshots in target/console-screenshots/ack-*.png).
    let browser = e2e::browser::Browser::start().await;
    browser.act_as(&collector, &officer).await;
    browser.goto(&format!("{}{path}", collector.base_url)).await;
    let shots = browser
        .screenshots("ack", &[e2e::browser::DESKTOP, e2e::browser::PHONE])
        .await;
    assert!(shots
        .iter()
        .all(|shot| std::fs::metadata(shot).unwrap().len() > 1000));
    let (status, location) = confirm(&collector, &officer, &path).await;
    assert_eq!(status, 303, "{location}");
    assert_eq!(location, format!("/incidents/{id}"));
    let incident = collector.store.incident(&id).await.unwrap().unwrap();
    assert_eq!(incident.state, "acknowledged");

    // The escalation to the Sở's on-duty officer (due 8 s after the start) never comes.
    assert!(
        filed_at.elapsed() < Duration::from_secs(8),
        "acknowledged before the escalation was due"
    );
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(filed_at.elapsed())).await;
    assert_eq!(
        smtp.messages().len(),
        1,
        "acknowledged: nobody higher up is told"
    );

    // Twice, altered, expired: refused with a page that says so, and audited.
    let (status, page) = confirm(&collector, &officer, &path).await;
    assert_eq!(status, 403);
    assert!(page.contains("đã được dùng"), "{page}");
    let mut altered = path.clone();
    let last = altered.pop().unwrap();
    altered.push(if last == '0' { '1' } else { '0' });
    let (status, page) = get(&collector, &officer, &altered).await;
    assert_eq!(status, 403);
    assert!(page.contains("không hợp lệ"), "{page}");
    // The refusal as the person sees it (target/console-screenshots/ack-refused-*.png).
    browser
        .goto(&format!("{}{altered}", collector.base_url))
        .await;
    assert!(browser.text().await.contains("không hợp lệ"));
    let shots = browser
        .screenshots("ack-refused", &[e2e::browser::DESKTOP, e2e::browser::PHONE])
        .await;
    assert!(shots
        .iter()
        .all(|shot| std::fs::metadata(shot).unwrap().len() > 1000));
    // A link of the same notice signed with an expiry in the past, as the collector would have.
    let key = collector.store.ack_link_key().await.unwrap();
    let notice_id = path.trim_start_matches("/ack/").split('.').next().unwrap();
    let expired = format!(
        "/ack/{}",
        cntt_collector::domain::ack_link::sign(&key, notice_id, 1_000)
    );
    let (status, page) = get(&collector, &officer, &expired).await;
    assert_eq!(status, 403);
    assert!(page.contains("hết hạn"), "{page}");
    let audit = collector
        .store
        .audit_list(&cntt_collector::store::AuditFilter {
            action: None,
            limit: 1000,
        })
        .await
        .unwrap();
    let reasons: Vec<String> = audit
        .iter()
        .filter(|entry| entry.action == "incident.ack_link" && entry.outcome == "denied")
        .map(|entry| entry.details.clone())
        .collect();
    for reason in ["used", "altered", "expired"] {
        assert!(
            reasons.iter().any(|details| details.contains(reason)),
            "{reason} in {reasons:?}"
        );
    }
    assert!(audit
        .iter()
        .any(|entry| entry.action == "incident.ack_link" && entry.outcome == "ok"));
    assert!(audit
        .iter()
        .any(|entry| entry.action == "incident.acknowledge" && entry.outcome == "ok"));
    collector.stop().await;
}
