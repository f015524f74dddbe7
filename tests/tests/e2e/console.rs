//! The web console in a real headless Chromium: the layout every page shares, static files, and
//! what a stranger gets.

use cntt_collector::domain::auth::Role;
use e2e::browser::{Browser, DESKTOP, PHONE};
use e2e::console::log_in;
use e2e::{spawn_collector, sqlite_db};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_serves_its_layout_and_files_and_sends_strangers_to_log_in() {
    let db = sqlite_db();
    let collector = spawn_collector(&db).await;

    // A stranger is sent to the login page, keeping where they wanted to go.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&collector.ca_pem).unwrap()).unwrap(),
        )
        .build()
        .unwrap();
    let answer = client
        .get(format!("{}/?since=7d", collector.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303);
    assert_eq!(answer.headers()["location"], "/login?next=/%3Fsince%3D7d");

    // The console's own files, with their types; nothing from a CDN.
    let css = client
        .get(format!("{}/static/console.css", collector.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), 200);
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    let js = client
        .get(format!("{}/static/htmx.min.js", collector.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(js.text().await.unwrap().contains("htmx"));

    let admin = log_in(&collector, Role::Admin, None).await;
    let page = client
        .get(format!("{}/", collector.base_url))
        .header("cookie", admin.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
    let html = page.text().await.unwrap();
    assert!(!html.contains("://cdn") && !html.contains("unpkg") && !html.contains("jsdelivr"));

    // In a real browser, at both sizes: the menu in Vietnamese, nothing wider than a phone.
    let browser = Browser::start().await;
    browser.act_as(&collector, &admin).await;
    browser.goto(&format!("{}/", collector.base_url)).await;
    let text = browser.text().await;
    for label in [
        "Tổng quan",
        "Sự cố",
        "Đơn vị và máy",
        "Báo cáo định kỳ",
        "Nhật ký",
        "Đăng xuất",
    ] {
        assert!(
            text.contains(label),
            "{label} missing from the page: {text}"
        );
    }
    let shots = browser.screenshots("layout", &[DESKTOP, PHONE]).await;
    assert!(shots
        .iter()
        .all(|path| std::fs::metadata(path).unwrap().len() > 1000));
    browser.resize(PHONE).await;
    assert!(
        !browser.overflows_horizontally().await,
        "the layout is wider than a phone"
    );
    browser.close().await;

    // An officer does not see the audit log in the menu.
    let officer = log_in(&collector, Role::Officer, Some("663")).await;
    let html = client
        .get(format!("{}/", collector.base_url))
        .header("cookie", officer.cookie_header())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Sự cố") && !html.contains("Nhật ký"));
}
