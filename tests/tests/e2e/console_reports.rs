//! The console's Báo cáo định kỳ, Cán bộ and Thông báo pages in a real headless Chromium: an
//! officer fills, saves and submits the quarterly report through the form (stored as the API
//! stores it), the Sở's administrator moves the due date, sees the unit on time and downloads the
//! consolidated DOCX and XLSX; an officer of another unit and a viewer are refused; the officers'
//! registry with the Điều 4 check; a test notice sent by the notifier's loop to a real webhook.

use std::io::{Cursor, Read};
use std::time::Duration;

use cntt_collector::domain::auth::Role;
use cntt_collector::domain::periods::{Period, VIETNAM};
use cntt_collector::services::reports::Settings;
use cntt_collector::store::AuditFilter;
use e2e::browser::{Browser, DESKTOP, PHONE};
use e2e::console::{log_in, TestPerson};
use e2e::webhook::WebhookReceiver;
use e2e::{
    eventually, spawn_collector, spawn_collector_with, sqlite_db, CollectorOptions, TestCollector,
};
use time::OffsetDateTime;

use super::WAIT;

const OFFICERS: &str = "unit_code,full_name,position,email,degree_level,degree_field,it_degree,english_level,certificates,decision_number,decision_date,active_from,active_to
24700,Nguyễn Văn An,Công chức văn phòng,an@dakmil.daknong.gov.vn,college,Tin học,yes,B,,15/QĐ-UBND,2024-02-01,2024-02-01,
664,Lê Thị Cúc,Chuyên viên,,university,Kế toán,no,A2,,,,2023-01-01,
";

/// The quarter whose data window holds today (Vietnam time).
fn current_quarter() -> Period {
    let settings = Settings::default();
    let scheme = settings.scheme("quarterly").unwrap().clone();
    let today = OffsetDateTime::now_utc().to_offset(VIETNAM).date();
    (today.year() - 1..=today.year() + 1)
        .flat_map(|year| scheme.periods(year, &settings.holidays, &[]))
        .find(|period| period.data_from <= today && today <= period.data_to)
        .expect("some quarter holds today")
}

fn client(collector: &TestCollector) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&collector.ca_pem).unwrap()).unwrap(),
        )
        .build()
        .unwrap()
}

async fn get(collector: &TestCollector, person: &TestPerson, path: &str) -> reqwest::Response {
    client(collector)
        .get(format!("{}{path}", collector.base_url))
        .header("cookie", person.cookie_header())
        .send()
        .await
        .unwrap()
}

/// The session's form token, read from one of the person's pages (as their browser would).
async fn csrf_of(collector: &TestCollector, person: &TestPerson, page: &str) -> String {
    let html = get(collector, person, page).await.text().await.unwrap();
    let start = html.find("name=\"csrf\" value=\"").expect("a form token") + 19;
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

async fn post(
    collector: &TestCollector,
    person: &TestPerson,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    client(collector)
        .post(format!("{}{path}", collector.base_url))
        .header("cookie", person.cookie_header())
        .header("origin", &collector.base_url)
        .form(form)
        .send()
        .await
        .unwrap()
}

/// Waits until the browser shows a page whose address contains `path` and whose text contains
/// `text`.
async fn wait_for_page(browser: &Browser, path: &str, text: &str) -> String {
    eventually(
        WAIT,
        &format!("a page at {path} saying {text:?}"),
        || async {
            let url = browser.client.current_url().await.ok()?.to_string();
            if !url.contains(path) {
                return None;
            }
            let body = browser.text().await;
            body.contains(text).then_some(body)
        },
    )
    .await
}

/// The text of every `<w:t>` of a DOCX's body.
fn docx_text(bytes: &[u8]) -> String {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).expect("a DOCX is a zip");
    let mut xml = String::new();
    archive
        .by_name("word/document.xml")
        .expect("the DOCX has a body")
        .read_to_string(&mut xml)
        .unwrap();
    let mut text = String::new();
    for piece in xml.split("<w:t").skip(1) {
        let Some(start) = piece.find('>') else {
            continue;
        };
        let Some(end) = piece.find("</w:t>") else {
            continue;
        };
        text.push_str(&piece[start + 1..end]);
        text.push(' ');
    }
    text
}

/// Every cell of every sheet of an XLSX, as text.
fn xlsx_cells(bytes: &[u8]) -> Vec<String> {
    use calamine::Reader;
    let mut workbook = calamine::Xlsx::new(Cursor::new(bytes.to_vec())).expect("an XLSX");
    let mut cells = Vec::new();
    for name in workbook.sheet_names() {
        let range = workbook.worksheet_range(&name).unwrap();
        cells.extend(range.rows().flatten().map(ToString::to_string));
    }
    cells
}

async fn shots_fit_a_phone(browser: &Browser, name: &str) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_officer_submits_the_quarterly_report_in_the_console_and_the_so_sees_it_on_time() {
    let db = sqlite_db();
    let collector = spawn_collector(&db).await;
    let path = collector.dir.path().join("officers.csv");
    std::fs::write(&path, OFFICERS).unwrap();
    cntt_collector::admin::reports::officers_import(&collector.store, &path)
        .await
        .unwrap();
    let quarter = current_quarter();
    // A machine watched the commune since the quarter began, so the figures are measured.
    let agent = collector.enroll_agent("24700").await;
    collector
        .backdate_enrollment(&agent, quarter.window().0)
        .await;
    let period_query = format!("quarterly:{}", quarter.label);

    // The Sở's administrator lands on the compliance table and moves the due date ten days
    // ahead (so the test does not depend on the day it runs), with the reason.
    let admin = log_in(&collector, Role::Admin, None).await;
    let browser = Browser::start().await;
    browser.act_as(&collector, &admin).await;
    browser
        .goto(&format!("{}/reports", collector.base_url))
        .await;
    wait_for_page(&browser, "/reports/compliance", "Tình hình nộp báo cáo").await;
    browser
        .goto(&format!(
            "{}/reports/compliance?period={period_query}",
            collector.base_url
        ))
        .await;
    let due = OffsetDateTime::now_utc().to_offset(VIETNAM).date() + time::Duration::days(10);
    browser
        .client
        .execute(
            "document.querySelector('#override-form [name=due]').value = arguments[0];",
            vec![serde_json::json!(due.to_string())],
        )
        .await
        .unwrap();
    browser
        .fill("#override-form", "reason", "Công văn 123/STTTT gia hạn nộp")
        .await;
    browser.submit("#override-form").await;
    wait_for_page(&browser, "saved=1", "Đã đặt hạn nộp mới").await;
    let overrides = collector.store.period_overrides().await.unwrap();
    assert_eq!(overrides.len(), 1);
    assert_eq!(
        (overrides[0].due, overrides[0].reason.as_str()),
        (due, "Công văn 123/STTTT gia hạn nộp")
    );
    let audit = collector
        .store
        .audit_list(&AuditFilter {
            action: Some("period.override".into()),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert!(audit[0].actor.starts_with("person:"), "{audit:?}");
    assert!(audit[0].details.contains("Công văn 123"));
    let text = browser.text().await;
    assert!(text.contains("Chưa đến hạn"), "{text}");
    shots_fit_a_phone(&browser, "reports-compliance-before").await;

    // The commune's officer lands on their unit, opens the quarter's form: the registry's
    // officer and the monitoring's figures are filled in.
    let officer = log_in(&collector, Role::Officer, Some("24700")).await;
    browser.act_as(&collector, &officer).await;
    browser
        .goto(&format!("{}/reports", collector.base_url))
        .await;
    let text = wait_for_page(&browser, "/reports/unit/24700", "Các kỳ đang mở").await;
    assert!(
        text.contains(&format!("Báo cáo {}", quarter.label_vi)),
        "{text}"
    );
    assert!(text.contains("Nguyễn Văn An"), "{text}");
    shots_fit_a_phone(&browser, "reports-unit").await;
    let form_path = format!("/reports/unit/24700/quarterly/{}", quarter.label);
    browser
        .find(&format!("a[href=\"{form_path}\"]"))
        .await
        .click()
        .await
        .unwrap();
    wait_for_page(&browser, &form_path, "Người báo cáo").await;
    let officer_field = browser.find("#report-form [name=officer]").await;
    assert_eq!(
        officer_field.prop("value").await.unwrap().unwrap(),
        "Nguyễn Văn An"
    );
    let figures = browser
        .find("#report-form [name=figures]")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert!(
        figures.contains("Máy có agent") || figures.contains('1'),
        "{figures}"
    );

    browser
        .client
        .execute(
            "document.querySelector('#report-form [name=incidents]').scrollIntoView();",
            vec![],
        )
        .await
        .unwrap();
    shots_fit_a_phone(&browser, "reports-form").await;

    // A draft is kept on the server and comes back.
    browser
        .fill(
            "#report-form",
            "advisory",
            "Tham mưu kế hoạch chuyển đổi số năm tới.",
        )
        .await;
    browser
        .find("#report-form button[value=save]")
        .await
        .click()
        .await
        .unwrap();
    wait_for_page(&browser, "saved=1", "Đã lưu bản nháp").await;
    let draft = collector
        .store
        .report_draft(
            agent_unit(&collector, "24700").await,
            "quarterly",
            &quarter.label,
        )
        .await
        .unwrap()
        .expect("the draft is stored");
    assert!(draft.fields.contains("chuyển đổi số"));
    let advisory = browser
        .find("#report-form [name=advisory]")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(advisory, "Tham mưu kế hoạch chuyển đổi số năm tới.");

    // Submitted with sections left empty: the checks of `common::report` answer, nothing is stored.
    browser.submit("#report-form").await;
    let text = wait_for_page(&browser, &form_path, "Báo cáo chưa nộp được").await;
    assert!(text.contains("chưa có nội dung"), "{text}");
    shots_fit_a_phone(&browser, "reports-form-problems").await;
    assert!(collector
        .store
        .reports_of_period("quarterly", &quarter.label)
        .await
        .unwrap()
        .is_empty());

    for (key, text) in [
        (
            "operations",
            "Sao lưu dữ liệu hằng tuần; cập nhật bản vá cho 12 máy.",
        ),
        ("incidents", "Không có sự cố an toàn thông tin."),
        ("public_services", "Hỗ trợ người dân nộp hồ sơ trực tuyến."),
        ("information", "Tổng hợp số liệu phục vụ giao ban."),
        (
            "trainings",
            "Dự lớp tập huấn an toàn thông tin do Sở tổ chức.",
        ),
        ("statistics", "Không có"),
        ("other_tasks", "Không có"),
        ("difficulties", "Không có"),
        ("plan", "Triển khai chữ ký số cho cán bộ."),
    ] {
        let current = browser
            .find(&format!("#report-form [name={key}]"))
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default();
        if current.trim().is_empty() {
            browser.fill("#report-form", key, text).await;
        }
    }
    browser.submit("#report-form").await;
    let text = wait_for_page(&browser, "/reports/versions/", "Đã nộp báo cáo").await;
    assert!(text.contains("Tham mưu kế hoạch chuyển đổi số"), "{text}");
    shots_fit_a_phone(&browser, "reports-version").await;

    // Stored as the API stores it: one version, by the officer named in the form, on time by its
    // arrival, its document passing the checks; the draft is gone; the submission audited.
    let stored = collector
        .store
        .reports_of_period("quarterly", &quarter.label)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    let version = &stored[0];
    assert_eq!(
        (version.unit_code.as_str(), version.submitted_by.as_str()),
        ("24700", "Nguyễn Văn An")
    );
    assert!(version.agent_id.is_none());
    assert!((version.received_at - version.submitted_at).abs() < 1000);
    let (_, document) = collector.store.report(&version.id).await.unwrap().unwrap();
    let parsed =
        cntt_common::report::parse(&document).expect("the stored document passes the checks");
    assert_eq!(parsed.front.unit, "24700");
    assert_eq!(
        parsed.section("plan"),
        Some("Triển khai chữ ký số cho cán bộ.")
    );
    assert!(collector
        .store
        .report_draft(
            agent_unit(&collector, "24700").await,
            "quarterly",
            &quarter.label
        )
        .await
        .unwrap()
        .is_none());
    let submits = collector
        .store
        .audit_list(&AuditFilter {
            action: Some("report.submit".into()),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(submits.len(), 1);
    assert_eq!(
        submits[0].target,
        format!("24700:quarterly:{}", quarter.label)
    );
    assert!(submits[0].actor.starts_with("person:"));
    // The version as the DOCX the API serves, named by the unit.
    let docx = get(
        &collector,
        &officer,
        &format!("/reports/versions/{}/docx", version.id),
    )
    .await;
    assert_eq!(docx.status(), 200);
    assert!(docx.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains(".docx"));
    let text = docx_text(&docx.bytes().await.unwrap());
    assert!(
        text.contains("Đắk Mil") && text.contains("chữ ký số"),
        "{text}"
    );

    // The Sở sees the unit on time and downloads the consolidated report naming it.
    browser.act_as(&collector, &admin).await;
    browser
        .goto(&format!(
            "{}/reports/compliance?period={period_query}",
            collector.base_url
        ))
        .await;
    let row = browser
        .find("tr[data-unit=\"24700\"]")
        .await
        .text()
        .await
        .unwrap();
    assert!(row.contains("Đúng hạn"), "{row}");
    shots_fit_a_phone(&browser, "reports-compliance").await;
    let docx_link = browser
        .find("a[href*=\"format=docx\"]")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let docx = get(&collector, &admin, &docx_link).await;
    assert_eq!(docx.status(), 200);
    // The DOCX counts by group (the commune is under Huyện Đắk Mil, beside the district itself);
    // the XLSX has a row per unit.
    let text = docx_text(&docx.bytes().await.unwrap());
    assert!(text.contains("Huyện Đắk Mil: đã nộp 1/2 đơn vị"), "{text}");
    let xlsx_link = browser
        .find("a[href*=\"format=xlsx\"]")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let xlsx = get(&collector, &admin, &xlsx_link).await;
    assert_eq!(xlsx.status(), 200);
    let cells = xlsx_cells(&xlsx.bytes().await.unwrap());
    assert!(
        cells.iter().any(|cell| cell.contains("Thị trấn Đắk Mil")),
        "{cells:?}"
    );

    // An officer of another unit: no page, no form, no version, no table, no download, by link
    // or by hand; each refusal audited.
    let other = log_in(&collector, Role::Officer, Some("664")).await;
    let denied_before = denied(&collector).await;
    for path in [
        "/reports/unit/24700".to_owned(),
        form_path.clone(),
        format!("/reports/versions/{}", version.id),
        format!("/reports/versions/{}/docx", version.id),
        format!("/reports/compliance?period={period_query}"),
        docx_link.clone(),
        xlsx_link.clone(),
    ] {
        let answer = get(&collector, &other, &path).await;
        assert_eq!(answer.status(), 403, "{path}");
    }
    let csrf = csrf_of(&collector, &other, "/reports/unit/664").await;
    let answer = post(
        &collector,
        &other,
        &form_path,
        &[("csrf", &csrf), ("intent", "submit"), ("officer", "Kẻ lạ")],
    )
    .await;
    assert_eq!(answer.status(), 403);
    assert_eq!(denied(&collector).await, denied_before + 8);
    browser.act_as(&collector, &other).await;
    browser
        .goto(&format!("{}/reports", collector.base_url))
        .await;
    let text = wait_for_page(&browser, "/reports/unit/664", "Các kỳ đang mở").await;
    assert!(!text.contains("Đắk Mil"), "{text}");
    browser
        .goto(&format!("{}{form_path}", collector.base_url))
        .await;
    assert!(browser.text().await.contains("Không được phép"));

    // A viewer of the province reads the table, has no override form, and cannot act.
    let viewer = log_in(&collector, Role::Viewer, None).await;
    let html = get(
        &collector,
        &viewer,
        &format!("/reports/compliance?period={period_query}"),
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(html.contains("Đúng hạn") && !html.contains("override-form"));
    let html = get(&collector, &viewer, "/reports/unit/24700")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Các phiên bản đã nộp") && !html.contains(&format!("href=\"{form_path}\""))
    );
    assert_eq!(get(&collector, &viewer, &form_path).await.status(), 403);
    let csrf = csrf_of(&collector, &viewer, "/reports/compliance").await;
    let tomorrow = (due + time::Duration::days(1)).to_string();
    let answer = post(
        &collector,
        &viewer,
        "/reports/compliance/override",
        &[
            ("csrf", &csrf),
            ("scheme", "quarterly"),
            ("period", &quarter.label),
            ("due", &tomorrow),
            ("reason", "thử"),
        ],
    )
    .await;
    assert_eq!(answer.status(), 403);
    let answer = post(
        &collector,
        &viewer,
        &form_path,
        &[("csrf", &csrf), ("intent", "save")],
    )
    .await;
    assert_eq!(answer.status(), 403);
    assert_eq!(
        collector.store.period_overrides().await.unwrap()[0].due,
        due
    );
    assert_eq!(
        collector
            .store
            .reports_of_period("quarterly", &quarter.label)
            .await
            .unwrap()
            .len(),
        1
    );
    browser.close().await;
}

async fn agent_unit(collector: &TestCollector, code: &str) -> i64 {
    collector
        .store
        .units_all()
        .await
        .unwrap()
        .into_iter()
        .find(|unit| unit.code == code)
        .unwrap()
        .id
}

async fn denied(collector: &TestCollector) -> usize {
    collector
        .store
        .audit_list(&AuditFilter {
            action: Some("access.denied".into()),
            limit: 1000,
        })
        .await
        .unwrap()
        .len()
}

const CONTACTS: &str = "unit_code,name,role,position,phone,email,webhook
24700,Nguyễn Văn An,it_officer,Cán bộ chuyên trách CNTT,0912 345 678,an@dakmil.daknong.gov.vn,
67.S.TTTT,Trần Văn Cường,so_on_duty,Trực ứng cứu sự cố,,,truc
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_officers_registry_and_notices_pages_and_a_test_notice_sent_by_the_notifier() {
    let db = sqlite_db();
    let webhook = WebhookReceiver::start().await;
    let options = CollectorOptions {
        extra_config: format!(
            "[notify]\nevaluate_every = \"200ms\"\n[[notify.webhook]]\nname = \"truc\"\nurl = \"{}\"\n",
            webhook.url()
        ),
        ..CollectorOptions::default()
    };
    let collector = spawn_collector_with(&db, &options).await;
    let path = collector.dir.path().join("officers.csv");
    std::fs::write(&path, OFFICERS).unwrap();
    cntt_collector::admin::reports::officers_import(&collector.store, &path)
        .await
        .unwrap();
    let path = collector.dir.path().join("contacts.csv");
    std::fs::write(&path, CONTACTS).unwrap();
    cntt_collector::admin::contacts_import(&collector.store, &path)
        .await
        .unwrap();

    // The registry with the Điều 4 check: the commune's officer qualifies; the district's has
    // no IT degree and no assignment decision; the province's department has nobody.
    let admin = log_in(&collector, Role::Admin, None).await;
    let browser = Browser::start().await;
    browser.act_as(&collector, &admin).await;
    browser
        .goto(&format!("{}/officers", collector.base_url))
        .await;
    let text = browser.text().await;
    assert!(
        text.contains("Nguyễn Văn An") && text.contains("Đạt chuẩn"),
        "{text}"
    );
    assert!(
        text.contains("Lê Thị Cúc") && text.contains("Chưa đạt"),
        "{text}"
    );
    assert!(
        text.contains("2 / 4 đơn vị") || text.contains("/ 4 đơn vị"),
        "{text}"
    );
    assert!(
        text.contains("Chưa gửi quyết định phân công về Sở (Điều 14.1): Lê Thị Cúc"),
        "{text}"
    );
    let gap_664 = browser
        .find("tr[data-unit=\"664\"]")
        .await
        .text()
        .await
        .unwrap();
    assert!(gap_664.contains("Lê Thị Cúc"), "{gap_664}");
    shots_fit_a_phone(&browser, "officers").await;
    // An officer of another unit sees only their own.
    let other = log_in(&collector, Role::Officer, Some("664")).await;
    let html = get(&collector, &other, "/officers")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("Lê Thị Cúc") && !html.contains("Nguyễn Văn An"));

    // Contacts and the default rules; a test notice to the Sở's on-duty contact, written by the
    // page and sent by the notifier's loop to the webhook.
    browser
        .goto(&format!("{}/notices", collector.base_url))
        .await;
    let text = browser.text().await;
    assert!(
        text.contains("Trần Văn Cường") && text.contains("quy tắc mặc định"),
        "{text}"
    );
    let contacts = collector.store.contacts_list().await.unwrap();
    let truc = contacts
        .iter()
        .find(|contact| contact.name == "Trần Văn Cường")
        .unwrap();
    let form = format!(
        "form.notice-test:has(input[name=contact][value=\"{}\"])",
        truc.id
    );
    browser.submit(&form).await;
    wait_for_page(&browser, "tested=1", "Đã ghi 1 thông báo thử").await;
    let received = webhook.wait_for(1, WAIT).await;
    assert!(
        received[0].text().contains("THƯ KIỂM TRA"),
        "{}",
        received[0].text()
    );
    eventually(WAIT, "the test notice recorded as sent", || async {
        let notices = collector
            .store
            .notices_list(None, Some("sent"), 10)
            .await
            .ok()?;
        (notices.len() == 1 && notices[0].kind == "test").then_some(())
    })
    .await;
    browser
        .goto(&format!("{}/notices", collector.base_url))
        .await;
    let text = browser.text().await;
    assert!(text.contains("Đã gửi") && text.contains("Thử"), "{text}");
    shots_fit_a_phone(&browser, "notices").await;
    let tests = collector
        .store
        .audit_list(&AuditFilter {
            action: Some("notice.test".into()),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(tests.len(), 1);

    // Others see contacts in their scope, not the delivery list, and may not send a test.
    let viewer = log_in(&collector, Role::Viewer, Some("24700")).await;
    let html = get(&collector, &viewer, "/notices")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Nguyễn Văn An")
            && !html.contains("Trần Văn Cường")
            && !html.contains("notice-test")
    );
    let csrf = csrf_of(&collector, &viewer, "/notices").await;
    let id = truc.id.to_string();
    let answer = post(
        &collector,
        &viewer,
        "/notices/test",
        &[("csrf", &csrf), ("contact", &id)],
    )
    .await;
    assert_eq!(answer.status(), 403);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(webhook.requests().len(), 1);
    browser.close().await;
}

both_databases! {
    async fn drafts_reports_of_a_unit_and_stored_rules_read_back(db: Db) {
        let db = e2e::test_db(db).await;
        let collector = spawn_collector(&db).await;
        let store = &collector.store;
        let commune = agent_unit(&collector, "24700").await;
        let now = OffsetDateTime::now_utc();

        // One draft per unit and period, replaced at each save, gone once deleted.
        assert!(store.report_draft(commune, "quarterly", "2026-Q4").await.unwrap().is_none());
        store.report_draft_save(commune, "quarterly", "2026-Q4", "{\"officer\":\"An\"}", "person:an", now).await.unwrap();
        store.report_draft_save(commune, "quarterly", "2026-Q4", "{\"officer\":\"Bình\"}", "person:binh", now).await.unwrap();
        store.report_draft_save(commune, "quarterly", "2026-Q3", "{}", "person:an", now).await.unwrap();
        let draft = store.report_draft(commune, "quarterly", "2026-Q4").await.unwrap().unwrap();
        assert_eq!((draft.fields.as_str(), draft.saved_by.as_str()), ("{\"officer\":\"Bình\"}", "person:binh"));
        store.report_draft_delete(commune, "quarterly", "2026-Q4").await.unwrap();
        assert!(store.report_draft(commune, "quarterly", "2026-Q4").await.unwrap().is_none());
        assert!(store.report_draft(commune, "quarterly", "2026-Q3").await.unwrap().is_some());

        // A unit's versions, newest first.
        for (id, period, at) in [("a", "2026-Q3", 1_000), ("b", "2026-Q4", 2_000), ("c", "2026-Q4", 3_000)] {
            let row = cntt_collector::store::NewPeriodicReport {
                id: id.into(),
                scheme: "quarterly".into(),
                period: period.into(),
                submitted_by: "Nguyễn Văn An".into(),
                submitted_at_agent: None,
                submitted_at: Some(at),
                not_before: None,
                document: String::new(),
                sections: "{}".into(),
                figures: "{}".into(),
            };
            store.report_insert(commune, &row, cntt_collector::store::from_millis(at)).await.unwrap();
        }
        let ids: Vec<String> = store.reports_of_unit(commune).await.unwrap().into_iter().map(|report| report.id).collect();
        assert_eq!(ids, ["c", "b", "a"]);
        assert!(store.reports_of_unit(agent_unit(&collector, "664").await).await.unwrap().is_empty());

        // Routing rules as imported, with their unit's code.
        assert!(store.notify_rules_list().await.unwrap().is_empty());
        let path = collector.dir.path().join("rules.csv");
        std::fs::write(&path, "unit_code,kinds,min_severity,role,after\n,*,low,it_officer,0s\n663,wan,high,leadership,30m\n").unwrap();
        cntt_collector::admin::notify_rules_import(store, &path).await.unwrap();
        let rules = store.notify_rules_list().await.unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!((rules[0].unit_code.as_deref(), rules[0].role.as_str()), (None, "it_officer"));
        assert_eq!((rules[1].unit_code.as_deref(), rules[1].kinds.as_str(), rules[1].after_ms), (Some("663"), "wan", 1_800_000));
        collector.stop().await;
        db.drop_database().await;
    }
}
