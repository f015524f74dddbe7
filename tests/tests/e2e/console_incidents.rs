//! The console's incident, overview, units and audit pages in a real headless Chromium: an officer
//! files, acknowledges, resolves and closes an incident of their unit with the closing fields and
//! downloads its reports; the audit log has every action under the person; an officer of another
//! unit and a viewer get nothing and can change nothing, by page, direct URL or direct post;
//! leadership lands on the overview; an enrollment token made on the units page enrolls a real
//! agent. Screenshots of every page at both sizes.

use cntt_collector::domain::auth::Role;
use cntt_common::wire::{Disk, Event, Heartbeat, HostSnapshot, Payload};
use e2e::browser::{Browser, DESKTOP, PHONE};
use e2e::console::{log_in, TestPerson};
use e2e::{spawn_collector, sqlite_db, TestCollector};

/// An HTTPS client for direct requests, not following redirects.
fn client(collector: &TestCollector) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&collector.ca_pem).unwrap()).unwrap(),
        )
        .build()
        .unwrap()
}

/// GETs `path` as `person`: status and body.
async fn get(collector: &TestCollector, person: &TestPerson, path: &str) -> (u16, String) {
    let answer = client(collector)
        .get(format!("{}{path}", collector.base_url))
        .header("cookie", person.cookie_header())
        .send()
        .await
        .unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

/// The form token of `person`'s session, read from a page as a browser would.
async fn csrf(collector: &TestCollector, person: &TestPerson) -> String {
    let (_, html) = get(collector, person, "/").await;
    let start = html
        .find("name=\"csrf\" value=\"")
        .expect("a form token on the page")
        + 19;
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

/// POSTs a form as `person` from the console's own origin: the status.
async fn post(
    collector: &TestCollector,
    person: &TestPerson,
    path: &str,
    fields: &[(&str, &str)],
) -> u16 {
    let token = csrf(collector, person).await;
    let mut form: Vec<(&str, &str)> = vec![("csrf", token.as_str())];
    form.extend_from_slice(fields);
    client(collector)
        .post(format!("{}{path}", collector.base_url))
        .header("cookie", person.cookie_header())
        .header("origin", &collector.base_url)
        .form(&form)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Takes both screenshots of the current page and checks it fits a phone.
async fn shoot(browser: &Browser, name: &str) {
    let shots = browser.screenshots(name, &[DESKTOP, PHONE]).await;
    assert!(shots
        .iter()
        .all(|path| std::fs::metadata(path).unwrap().len() > 1000));
    browser.resize(PHONE).await;
    assert!(
        !browser.overflows_horizontally().await,
        "{name} is wider than a phone"
    );
    browser.resize(DESKTOP).await;
}

/// Asserts that field `name` of `form` holds `expected`, as typed before a refused submission.
async fn assert_kept(browser: &Browser, form: &str, name: &str, expected: &str) {
    let value = browser
        .find(&format!("{form} [name=\"{name}\"]"))
        .await
        .prop("value")
        .await
        .unwrap();
    assert_eq!(
        value.as_deref(),
        Some(expected),
        "the refused form {form} kept {name}"
    );
}

/// Submits `form` and waits until the next page's text holds `expected` (the harness's `submit`
/// may return while the old page is still there); returns that text.
async fn submit_until(browser: &Browser, form: &str, expected: &str) -> String {
    browser.submit(form).await;
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
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{expected:?} never showed after submitting {form}: {last}");
}

/// A time as a `datetime-local` field holds it.
fn local_input(at: time::OffsetDateTime) -> String {
    format!(
        "{}-{:02}-{:02}T{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    )
}

/// A heartbeat of a small office server with one disk.
fn heartbeat(seq: u64) -> Event {
    let host = HostSnapshot {
        hostname: "may-chu-mot-cua".into(),
        os_name: "Debian GNU/Linux".into(),
        os_version: "12".into(),
        kernel_version: "6.1".into(),
        arch: "x86_64".into(),
        uptime_seconds: 3600,
        cpu_count: 4,
        cpu_usage_percent: 37.0,
        load_average: Some([0.5, 0.4, 0.3]),
        memory_total_bytes: 8_000_000_000,
        memory_used_bytes: 3_200_000_000,
        swap_total_bytes: 0,
        swap_used_bytes: 0,
        disks: vec![Disk {
            mount_point: "/".into(),
            file_system: "ext4".into(),
            total_bytes: 100_000_000_000,
            available_bytes: 42_000_000_000,
        }],
        interfaces: vec![],
    };
    Event::new(
        seq,
        time::OffsetDateTime::now_utc(),
        &Payload::Heartbeat(Heartbeat {
            interval_seconds: 60,
            host,
            outbox: None,
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_officer_works_an_incident_through_the_console_and_others_cannot() {
    let db = sqlite_db();
    let collector = spawn_collector(&db).await;
    let agent = collector.enroll_agent("24700").await;
    collector.ingest(&agent, vec![heartbeat(1)]).await;

    let officer = log_in(&collector, Role::Officer, Some("663")).await;
    let browser = Browser::start().await;
    browser.act_as(&collector, &officer).await;

    // The officer files a security incident of the commune under their district.
    browser
        .goto(&format!("{}/incidents/new", collector.base_url))
        .await;
    shoot(&browser, "incidents-new").await;
    browser.fill("#file", "unit", "24700").await;
    browser
        .fill("#file", "title", "Máy văn thư nhiễm mã độc mã hoá dữ liệu")
        .await;
    browser
        .fill(
            "#file",
            "description",
            "Phát hiện tệp bị đổi đuôi .locked trên máy văn thư.",
        )
        .await;
    browser.fill("#file", "severity", "high").await;
    // It started an hour ago (Vietnam time, as the field reads).
    let started = time::OffsetDateTime::now_utc().to_offset(time::macros::offset!(+7))
        - time::Duration::hours(1);
    browser
        .client
        .execute(
            "document.querySelector('#file [name=started_at]').value = arguments[0];",
            vec![serde_json::Value::String(local_input(started))],
        )
        .await
        .unwrap();
    // A system code that is not in the register is refused, and the form comes back with what
    // was typed: nobody writes a security incident's description twice.
    browser.fill("#file", "system", "HT-KHONG-CO").await;
    let text = submit_until(&browser, "#file", "không có trong danh mục").await;
    assert!(text.contains("HT-KHONG-CO"), "{text}");
    shoot(&browser, "incidents-new-refused").await;
    for (name, expected) in [
        ("title", "Máy văn thư nhiễm mã độc mã hoá dữ liệu"),
        (
            "description",
            "Phát hiện tệp bị đổi đuôi .locked trên máy văn thư.",
        ),
        ("severity", "high"),
        ("unit", "24700"),
        ("started_at", local_input(started).as_str()),
        ("system", "HT-KHONG-CO"),
    ] {
        assert_kept(&browser, "#file", name, expected).await;
    }
    let security = cntt_collector::store::IncidentFilter {
        kind: Some("security".into()),
        limit: 100,
        ..Default::default()
    };
    assert_eq!(
        collector
            .store
            .incidents_list(&security)
            .await
            .unwrap()
            .len(),
        0,
        "a refused filing stored an incident"
    );
    browser.fill("#file", "system", "").await;
    submit_until(&browser, "#file", "Đang xảy ra").await;
    let url = browser.client.current_url().await.unwrap().to_string();
    let id = url
        .rsplit('/')
        .next()
        .expect("the incident's page after filing")
        .to_owned();
    let text = browser.text().await;
    assert!(
        text.contains("SC-") && text.contains("Đang xảy ra"),
        "{text}"
    );
    assert!(text.contains("Sự cố an toàn thông tin"), "{text}");

    // Acknowledge with a comment.
    browser
        .fill(
            "#acknowledge",
            "comment",
            "Đã cách ly máy khỏi mạng nội bộ.",
        )
        .await;
    let text = submit_until(&browser, "#acknowledge", "Đã tiếp nhận").await;
    assert!(text.contains("Đã tiếp nhận"), "{text}");
    assert!(text.contains("Đã cách ly máy khỏi mạng nội bộ."), "{text}");
    assert!(
        browser
            .client
            .find(fantoccini::Locator::Css("#acknowledge"))
            .await
            .is_err(),
        "an acknowledged incident offers no second acknowledgement"
    );

    browser
        .client
        .execute(
            "document.querySelector('#resolve').scrollIntoView();",
            vec![],
        )
        .await
        .unwrap();
    shoot(&browser, "incidents-actions").await;

    // Resolve, stating when service came back (ten minutes ago, Vietnam time).
    let restored = time::OffsetDateTime::now_utc().to_offset(time::macros::offset!(+7))
        - time::Duration::minutes(10);
    let restored_text = local_input(restored);
    browser
        .fill(
            "#resolve",
            "resolution",
            "Khôi phục dữ liệu từ bản sao lưu.",
        )
        .await;
    browser
        .client
        .execute(
            "document.querySelector('#resolve [name=restored_at]').value = arguments[0];",
            vec![serde_json::Value::String(restored_text.clone())],
        )
        .await
        .unwrap();
    let text = submit_until(&browser, "#resolve", "Đã khắc phục").await;
    let shown = format!(
        "{:02}/{:02}/{} {:02}:{:02}",
        restored.day(),
        u8::from(restored.month()),
        restored.year(),
        restored.hour(),
        restored.minute()
    );
    assert!(text.contains("Đã khắc phục"), "{text}");
    assert!(
        text.contains(&format!("Kết thúc\n{shown}")) || text.contains(&shown),
        "the end is the stated restoration {shown}: {text}"
    );

    // Close with the closing report's fields.
    browser
        .fill(
            "#close",
            "cause",
            "Người dùng mở tệp đính kèm thư điện tử giả mạo.",
        )
        .await;
    browser
        .fill(
            "#close",
            "resolution",
            "Cài lại máy, khôi phục dữ liệu từ bản sao lưu.",
        )
        .await;
    browser
        .fill(
            "#close",
            "lessons",
            "Tập huấn nhận biết thư giả mạo; sao lưu hằng ngày.",
        )
        .await;
    // A restoration dated before the start is refused; the page comes back with the reason and
    // the closing fields as typed, and nothing is closed.
    browser
        .client
        .execute(
            "document.querySelector('#close [name=restored_at]').value = arguments[0];",
            vec![serde_json::Value::String(local_input(
                started - time::Duration::days(1),
            ))],
        )
        .await
        .unwrap();
    let text = submit_until(&browser, "#close", "trước khi sự cố bắt đầu").await;
    assert!(text.contains("Đã khắc phục"), "still resolved: {text}");
    shoot(&browser, "incidents-close-refused").await;
    for (name, expected) in [
        ("cause", "Người dùng mở tệp đính kèm thư điện tử giả mạo."),
        (
            "resolution",
            "Cài lại máy, khôi phục dữ liệu từ bản sao lưu.",
        ),
        (
            "lessons",
            "Tập huấn nhận biết thư giả mạo; sao lưu hằng ngày.",
        ),
    ] {
        assert_kept(&browser, "#close", name, expected).await;
    }
    assert_eq!(
        collector.store.incident(&id).await.unwrap().unwrap().state,
        "resolved"
    );
    browser
        .client
        .execute(
            "document.querySelector('#close [name=restored_at]').value = '';",
            vec![],
        )
        .await
        .unwrap();
    let text = submit_until(&browser, "#close", "Đã đóng").await;
    assert!(text.contains("Đã đóng"), "{text}");
    for expected in [
        "Người dùng mở tệp đính kèm thư điện tử giả mạo.",
        "Tập huấn nhận biết thư giả mạo; sao lưu hằng ngày.",
        "Báo cáo kết thúc (Biểu mẫu 04)",
        "Tiếp nhận",
        "Khắc phục",
        "Đóng",
    ] {
        assert!(text.contains(expected), "{expected} missing: {text}");
    }
    assert!(browser
        .client
        .find(fantoccini::Locator::Css("#close"))
        .await
        .is_err());
    shoot(&browser, "incidents-show").await;
    let stored = collector.store.incident(&id).await.unwrap().unwrap();
    assert_eq!(stored.state, "closed");
    // Whoever the officer is, the console acts as that person, never as a token.
    let actor = stored.closed_by.clone().expect("closed by someone");
    assert!(actor.starts_with("person:"), "{actor}");
    assert_eq!(
        stored.lessons,
        "Tập huấn nhận biết thư giả mạo; sao lưu hằng ngày."
    );

    // Both reports download as DOCX, the same documents as the API's.
    for form in ["initial", "closing"] {
        let answer = client(&collector)
            .get(format!(
                "{}/incidents/{id}/report?form={form}",
                collector.base_url
            ))
            .header("cookie", officer.cookie_header())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{form}");
        assert_eq!(
            answer.headers()["content-type"],
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        );
        let disposition = answer.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            disposition.contains(&format!("{form}-v1.docx")),
            "{disposition}"
        );
        let bytes = answer.bytes().await.unwrap();
        assert!(bytes.starts_with(b"PK"), "a DOCX is a zip");
    }

    // The list shows it closed, and filters by state.
    browser
        .goto(&format!("{}/incidents?state=closed", collector.base_url))
        .await;
    let text = browser.text().await;
    assert!(text.contains("Máy văn thư nhiễm mã độc"), "{text}");
    shoot(&browser, "incidents-list").await;
    browser
        .goto(&format!("{}/incidents?state=open", collector.base_url))
        .await;
    assert!(!browser.text().await.contains("Máy văn thư nhiễm mã độc"));

    // The audit log has each action under the person.
    let admin = log_in(&collector, Role::Admin, None).await;
    browser.act_as(&collector, &admin).await;
    browser
        .goto(&format!(
            "{}/audit?actor={}&action=incident.",
            collector.base_url,
            actor.replace(':', "%3A")
        ))
        .await;
    let text = browser.text().await;
    for action in [
        "incident.file",
        "incident.acknowledge",
        "incident.notes",
        "incident.resolve",
        "incident.close",
    ] {
        assert!(
            text.contains(action),
            "{action} missing from the audit page: {text}"
        );
    }
    assert!(text.contains(&actor));
    shoot(&browser, "audit").await;
    let entries = collector
        .store
        .audit_list(&cntt_collector::store::AuditFilter {
            action: Some("incident.close".into()),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].actor, actor);

    // An officer of another district: not in the list, 403 for the page, the report and a post.
    let other = log_in(&collector, Role::Officer, Some("664")).await;
    let (status, html) = get(&collector, &other, "/incidents").await;
    assert_eq!(status, 200);
    assert!(!html.contains(&id), "another district's incident is listed");
    let (status, _) = get(&collector, &other, &format!("/incidents/{id}")).await;
    assert_eq!(status, 403);
    let (status, _) = get(
        &collector,
        &other,
        &format!("/incidents/{id}/report?form=closing"),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = get(&collector, &other, "/incidents?unit=663").await;
    assert_eq!(status, 403);
    let status = post(
        &collector,
        &other,
        &format!("/incidents/{id}/notes"),
        &[("text", "Không được phép ghi")],
    )
    .await;
    assert_eq!(status, 403);
    let (_, audit) = get(&collector, &other, "/audit").await;
    assert!(
        !audit.contains("incident.close"),
        "an officer reads no audit log"
    );

    // A viewer of the district sees the incident and no form; a posted action is refused.
    let viewer = log_in(&collector, Role::Viewer, Some("663")).await;
    let (status, html) = get(&collector, &viewer, &format!("/incidents/{id}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("Tập huấn nhận biết thư giả mạo"));
    assert!(
        !html.contains(&format!("action=\"/incidents/{id}/")),
        "a viewer is offered an action form"
    );
    let status = post(
        &collector,
        &viewer,
        &format!("/incidents/{id}/notes"),
        &[("text", "Người xem không được ghi")],
    )
    .await;
    assert_eq!(status, 403);
    let status = post(
        &collector,
        &viewer,
        "/incidents/new",
        &[("unit", "24700"), ("title", "Thử"), ("severity", "low")],
    )
    .await;
    assert_eq!(status, 403);
    let timeline = collector.store.incident_timeline(&id).await.unwrap();
    assert!(
        timeline
            .iter()
            .all(|entry| !entry.text.contains("không được")),
        "a refused note was written"
    );
    let denied = collector
        .store
        .audit_list(&cntt_collector::store::AuditFilter {
            action: Some("access.denied".into()),
            limit: 20,
        })
        .await
        .unwrap();
    assert!(denied.len() >= 6, "every refusal is audited: {denied:?}");

    // Leadership lands on the overview: the open incidents, silent units, today's notices and
    // reports due; a scope without agents says it has no figures.
    let leadership = log_in(&collector, Role::Leadership, Some("664")).await;
    browser.act_as(&collector, &leadership).await;
    browser.goto(&format!("{}/", collector.base_url)).await;
    let text = browser.text().await;
    for expected in [
        "Tổng quan",
        "Sự cố đang mở",
        "Đơn vị mất liên lạc",
        "Thông báo đã gửi hôm nay",
        "Báo cáo định kỳ sắp đến hạn",
        "không có số liệu",
    ] {
        assert!(text.contains(expected), "{expected} missing: {text}");
    }
    assert!(!text.contains("Nhật ký"));
    shoot(&browser, "overview-leadership").await;
    let (status, _) = get(&collector, &leadership, &format!("/incidents/{id}")).await;
    assert_eq!(status, 403);

    // The province's overview and units page, with an open incident of the district.
    let status = post(
        &collector,
        &officer,
        "/incidents/new",
        &[
            ("unit", "663"),
            ("title", "Mất truy cập cổng dịch vụ công"),
            ("severity", "medium"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    browser.act_as(&collector, &admin).await;
    browser.goto(&format!("{}/", collector.base_url)).await;
    let text = browser.text().await;
    assert!(text.contains("Mất truy cập cổng dịch vụ công"), "{text}");
    assert!(
        !text.contains("Máy văn thư nhiễm mã độc"),
        "a closed incident is not open"
    );
    shoot(&browser, "overview").await;

    browser.goto(&format!("{}/units", collector.base_url)).await;
    let text = browser.text().await;
    for expected in [
        "Thị trấn Đắk Mil",
        "Debian GNU/Linux 12",
        "37%",
        "3,2 GB / 8,0 GB",
        "còn 42,0 GB",
    ] {
        assert!(text.contains(expected), "{expected} missing: {text}");
    }
    shoot(&browser, "units").await;

    // An enrollment token made on the page enrolls a real agent; the command never holds it.
    browser.act_as(&collector, &officer).await;
    browser.goto(&format!("{}/units", collector.base_url)).await;
    browser
        .client
        .execute("document.querySelector('#enroll').open = true;", vec![])
        .await
        .unwrap();
    browser.fill("#enroll-token", "unit", "24700").await;
    submit_until(&browser, "#enroll-token", "Mã đăng ký").await;
    let token = browser.find("#token").await.text().await.unwrap();
    let command = browser.find("#linux").await.text().await.unwrap();
    assert!(token.starts_with("cntt_enroll_"), "{token}");
    assert!(
        command.contains("cntt-agent enroll --server https://"),
        "{command}"
    );
    assert!(
        !command.contains(&token)
            && !browser
                .find("#linux-env")
                .await
                .text()
                .await
                .unwrap()
                .contains(&token)
    );
    shoot(&browser, "units-token").await;
    let state = tempfile::tempdir().unwrap();
    let identity = cntt_agent::identity::enroll(
        &collector.base_url,
        &cntt_common::Secret::new(token),
        &collector.ca_pem,
        state.path(),
        false,
    )
    .await
    .expect("the console's token enrolls an agent");
    assert_eq!(identity.unit_code, "24700");
    let created = collector
        .store
        .audit_list(&cntt_collector::store::AuditFilter {
            action: Some("enroll_token.create".into()),
            limit: 10,
        })
        .await
        .unwrap();
    assert!(created
        .iter()
        .any(|entry| entry.actor == actor && entry.target == "24700"));
    // Another district's officer may not make tokens for this commune.
    let status = post(
        &collector,
        &other,
        "/units/enroll-token",
        &[("unit", "24700"), ("uses", "1"), ("days", "7")],
    )
    .await;
    assert_eq!(status, 403);
    let status = post(
        &collector,
        &viewer,
        "/units/enroll-token",
        &[("unit", "24700"), ("uses", "1"), ("days", "7")],
    )
    .await;
    assert_eq!(status, 403);

    browser.close().await;
    collector.stop().await;
}

both_databases! {
    async fn console_pages_read_both_databases(db: Db) {
        let db = e2e::test_db(db).await;
        let collector = spawn_collector(&db).await;
        let agent = collector.enroll_agent("24700").await;
        collector.ingest(&agent, vec![heartbeat(1)]).await;
        let officer = log_in(&collector, Role::Officer, Some("663")).await;
        let status = post(
            &collector,
            &officer,
            "/incidents/new",
            &[("unit", "24700"), ("title", "Lộ mật khẩu_thư 100%"), ("severity", "low")],
        )
        .await;
        assert_eq!(status, 303);
        // A test notice sent today shows among today's notices, to admins only (it belongs to
        // no incident, so to no unit).
        let contacts = collector.dir.path().join("contacts.csv");
        std::fs::write(
            &contacts,
            "unit_code,name,role,position,phone,email,webhook\n67.S.TTTT,Nguyễn Văn Trực,so_on_duty,Trực ứng cứu,,truc@so.example,\n",
        )
        .unwrap();
        cntt_collector::admin::contacts_import(&collector.store, &contacts)
            .await
            .unwrap();
        let contact = collector.store.contacts_list().await.unwrap().remove(0);
        let now = time::OffsetDateTime::now_utc();
        let channels = std::collections::BTreeSet::from(["email".to_owned()]);
        for notice in collector
            .store
            .notice_test(&contact, &channels, "[CNTT]", "test", now)
            .await
            .unwrap()
        {
            assert!(collector.store.notice_sent(&notice.id, "test", now).await.unwrap());
        }
        let admin = log_in(&collector, Role::Admin, None).await;
        let (status, html) = get(&collector, &admin, "/").await;
        assert_eq!(status, 200);
        assert!(html.contains("Lộ mật khẩu_thư 100%"));
        assert!(html.contains("truc@so.example"), "{html}");
        let (_, html) = get(&collector, &officer, "/").await;
        assert!(!html.contains("truc@so.example"), "an officer sees another's notice");
        let (status, html) = get(&collector, &admin, "/units?unit=663").await;
        assert_eq!(status, 200);
        assert!(html.contains("37%") && html.contains("Đang liên lạc"), "{html}");
        // The audit filter's wildcards are literal: `_` and `%` match only themselves.
        let (status, html) = get(&collector, &admin, "/audit?action=incident.file&actor=person%3A").await;
        assert_eq!(status, 200);
        assert!(html.contains("incident.file"), "{html}");
        let (_, html) = get(&collector, &admin, "/audit?actor=%25_%25").await;
        assert!(html.contains("Không có mục nào khớp bộ lọc."), "{html}");
        let (status, html) = get(&collector, &admin, "/incidents?kind=security&since=2000-01-01").await;
        assert_eq!(status, 200);
        assert!(html.contains("Lộ mật khẩu_thư 100%"));
        collector.stop().await;
        db.drop_database().await;
    }
}
