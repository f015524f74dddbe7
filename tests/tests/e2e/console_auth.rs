//! People accounts on the console (issue 14): lockout after wrong passwords, idle sessions,
//! forms from another origin, logout, the forced password change, the `user` commands, the
//! cookie's attributes and the audit of all of it, with reqwest on both databases and in a real
//! Chromium.

use std::time::Duration;

use cntt_collector::admin::people::{
    user_create, user_disable, user_reset_password, users_list, InitialPassword, UserSpec,
};
use cntt_collector::domain::auth::Role;
use cntt_collector::http::console::SESSION_COOKIE;
use cntt_collector::store::{AuditEntry, AuditFilter};
use cntt_common::Secret;
use e2e::browser::{Browser, DESKTOP, PHONE};
use e2e::console::{console_client, log_in, post_login, session_from};
use e2e::{spawn_collector_with, sqlite_db, test_db, CollectorOptions, TestCollector};

/// What every refused login says, whatever the cause.
const REFUSED: &str = "Tên đăng nhập hoặc mật khẩu không đúng.";

async fn audit(collector: &TestCollector, action: &str) -> Vec<AuditEntry> {
    let mut entries = collector
        .store
        .audit_list(&AuditFilter {
            action: Some(action.to_owned()),
            limit: 1000,
        })
        .await
        .unwrap();
    entries.reverse();
    entries
}

fn details(entry: &AuditEntry) -> serde_json::Value {
    serde_json::from_str(&entry.details).unwrap()
}

fn from_loopback(entry: &AuditEntry) -> bool {
    entry
        .remote_addr
        .as_deref()
        // Aggregated refusals (guard.rs) keep the IP without the port.
        .is_some_and(|address| address == "127.0.0.1" || address.starts_with("127.0.0.1:"))
}

/// The form token of the page `html` (every page's logout form carries it).
fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("a form token") + 19;
    html[start..].split('"').next().unwrap().to_owned()
}

async fn create(collector: &TestCollector, username: &str, password: InitialPassword) -> String {
    user_create(
        &collector.store,
        UserSpec {
            username: username.to_owned(),
            full_name: "Nguyễn Văn Tuấn".to_owned(),
            role: Role::Officer,
            unit: Some("663".to_owned()),
            password,
        },
    )
    .await
    .unwrap()
}

/// The one-time password printed by `user create` or `user reset-password`.
fn one_time_password(output: &str) -> String {
    output
        .lines()
        .find_map(|line| line.strip_prefix("one-time password: "))
        .expect("a one-time password in the output")
        .to_owned()
}

/// Submits a form and waits until the answer's page has replaced the current one (a page marked
/// before the click must be gone), then returns the new page's text.
async fn submit_and_read(browser: &Browser, form_css: &str) -> String {
    let mark = "document.body.dataset.before = 'yes'; return true;";
    browser.client.execute(mark, vec![]).await.unwrap();
    browser.submit(form_css).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let fresh = browser
            .client
            .execute(
                "return document.readyState === 'complete' && document.body !== null \
                 && document.body.dataset.before !== 'yes' ? document.body.innerText : null;",
                vec![],
            )
            .await;
        if let Ok(serde_json::Value::String(text)) = fresh {
            return text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no new page after submitting {form_css}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

both_databases! {
    async fn lockout_sessions_forms_and_accounts_hold_and_are_audited(db: Db) {
        let db = test_db(db).await;
        let options = CollectorOptions {
            extra_config: "[console]\nlockout_duration = \"3s\"\nidle_timeout = \"4s\"\n\
                           [limits]\nunauthenticated_burst = 100\n"
                .into(),
            ..CollectorOptions::default()
        };
        let collector = spawn_collector_with(&db, &options).await;
        let client = console_client(&collector);
        let base = collector.base_url.clone();
        let right = "sông Hồng chảy về xuôi";
        create(&collector, "tuan.nv", InitialPassword::Known(Secret::new(right))).await;

        // Five wrong passwords, then the right one: all refused with the same answer.
        for attempt in 1..=6 {
            let password = if attempt == 6 { right.to_owned() } else { format!("sai mật khẩu {attempt}") };
            let answer = post_login(&collector, "tuan.nv", &password).await;
            assert_eq!(answer.status(), 401, "attempt {attempt}");
            assert!(session_from(&answer).is_none(), "attempt {attempt} set no session");
            assert!(answer.text().await.unwrap().contains(REFUSED), "attempt {attempt}");
        }
        // An unknown username gets the same answer.
        let unknown = post_login(&collector, "khong.ai", right).await;
        assert_eq!(unknown.status(), 401);
        assert!(unknown.text().await.unwrap().contains(REFUSED));
        // After the lockout the right password works, with a strict cookie.
        tokio::time::sleep(Duration::from_millis(3200)).await;
        let answer = post_login(&collector, "TUAN.NV", right).await;
        assert_eq!(answer.status(), 303);
        assert_eq!(answer.headers()["location"], "/");
        let cookie = answer.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(cookie.starts_with(&format!("{SESSION_COOKIE}=cntt_session_")), "{cookie}");
        for attribute in ["Path=/", "Secure", "HttpOnly", "SameSite=Strict", "Max-Age=43200"] {
            assert!(cookie.contains(attribute), "{attribute} missing from {cookie}");
        }
        assert!(!cookie.contains("Domain"), "{cookie}");
        let session = session_from(&answer).unwrap();
        let header = format!("{SESSION_COOKIE}={session}");

        let failures = audit(&collector, "person.login").await;
        let wrong: Vec<_> = failures.iter().filter(|entry| details(entry)["reason"] == "wrong_password").collect();
        assert_eq!(wrong.len(), 5, "{failures:#?}");
        assert!(wrong.iter().all(|entry| entry.actor == "person:tuan.nv" && entry.outcome == "denied" && from_loopback(entry)));
        assert_eq!(details(wrong[4])["failed_logins"], 5);
        let locked_refusal = failures.iter().find(|entry| details(entry)["reason"] == "locked").expect("the sixth attempt audited");
        assert!(from_loopback(locked_refusal) && locked_refusal.target == "person:tuan.nv");
        let unknown_refusal = failures.iter().find(|entry| details(entry)["reason"] == "unknown_user").expect("the unknown username audited");
        assert_eq!(unknown_refusal.target, "person:khong.ai");
        let ok = failures.iter().find(|entry| entry.outcome == "ok").expect("the login audited");
        assert!(ok.actor == "person:tuan.nv" && from_loopback(ok));
        let locked = audit(&collector, "person.locked").await;
        assert_eq!(locked.len(), 1);
        assert!(locked[0].actor == "person:tuan.nv" && from_loopback(&locked[0]));
        let everything = collector.store.audit_list(&AuditFilter { action: None, limit: 1000 }).await.unwrap();
        assert!(everything.iter().all(|entry| !entry.details.contains("sai mật khẩu") && !entry.details.contains(right)), "no password in the audit log");

        // Guesses in parallel neither slip past the limit nor lock twice.
        create(&collector, "song.da", InitialPassword::Known(Secret::new(right))).await;
        let mut guesses = tokio::task::JoinSet::new();
        for n in 0..12 {
            let (client, base) = (client.clone(), base.clone());
            guesses.spawn(async move {
                let form = [("username", "song.da".to_owned()), ("password", format!("đoán {n} lần"))];
                client.post(format!("{base}/login")).header("origin", &base).form(&form).send().await.unwrap().status()
            });
        }
        let statuses = guesses.join_all().await;
        assert!(statuses.iter().all(|status| *status == 401), "{statuses:?}");
        let song = |entries: Vec<AuditEntry>| entries.into_iter().filter(|entry| entry.target == "person:song.da").collect::<Vec<_>>();
        let counted = song(audit(&collector, "person.login").await).into_iter().filter(|entry| details(entry)["reason"] == "wrong_password").count();
        assert_eq!(counted, 5, "exactly the limit is counted");
        assert_eq!(song(audit(&collector, "person.locked").await).len(), 1);
        assert_eq!(post_login(&collector, "song.da", right).await.status(), 401, "locked");

        // The session works; a form from another origin, or without the form token, is refused
        // and changes nothing.
        let page = client.get(format!("{base}/")).header("cookie", &header).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let csrf = csrf_of(&page.text().await.unwrap());
        let foreign = client.post(format!("{base}/logout")).header("cookie", &header)
            .header("origin", "https://ke-gian.example").form(&[("csrf", csrf.as_str())]).send().await.unwrap();
        assert_eq!(foreign.status(), 403);
        let tokenless = client.post(format!("{base}/logout")).header("cookie", &header)
            .header("origin", &base).form(&[("next", "/")]).send().await.unwrap();
        assert_eq!(tokenless.status(), 403);
        let forged_login = client.post(format!("{base}/login")).header("origin", "https://ke-gian.example")
            .form(&[("username", "tuan.nv"), ("password", right)]).send().await.unwrap();
        assert_eq!(forged_login.status(), 400);
        assert!(session_from(&forged_login).is_none());
        let denied = audit(&collector, "access.denied").await;
        let reasons: Vec<String> = denied.iter().map(|entry| details(entry)["reason"].as_str().unwrap().to_owned()).collect();
        assert_eq!(reasons, ["form posted from another origin", "form token missing or wrong"]);
        assert!(denied.iter().all(|entry| entry.actor == "person:tuan.nv" && from_loopback(entry) && entry.target == "/logout"));
        assert!(audit(&collector, "person.login").await.iter().any(|entry| details(entry)["reason"] == "cross_origin"));

        // Idle past the timeout: the session ends, once, audited with the reason.
        let answer = client.get(format!("{base}/?since=7d")).header("cookie", &header).send().await.unwrap();
        assert_eq!(answer.status(), 200, "the refused forms did not end the session");
        tokio::time::sleep(Duration::from_millis(4300)).await;
        let expired = client.get(format!("{base}/?since=7d")).header("cookie", &header).send().await.unwrap();
        assert_eq!(expired.status(), 303);
        assert_eq!(expired.headers()["location"], "/login?next=/%3Fsince%3D7d&expired=1");
        assert!(expired.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
        let again = client.get(format!("{base}/")).header("cookie", &header).send().await.unwrap();
        assert_eq!(again.headers()["location"], "/login?next=/");
        let expiries = audit(&collector, "session.expired").await;
        assert_eq!(expiries.len(), 1, "{expiries:#?}");
        assert!(expiries[0].actor == "person:tuan.nv" && from_loopback(&expiries[0]));
        assert_eq!(details(&expiries[0])["reason"], "idle");
        let login = client.get(format!("{base}/login?next=/%3Fsince%3D7d&expired=1")).send().await.unwrap();
        assert!(login.text().await.unwrap().contains("Phiên làm việc đã hết hạn"));

        // Logout ends the session on the server.
        let person = log_in(&collector, Role::Viewer, Some("663")).await;
        let page = client.get(format!("{base}/")).header("cookie", person.cookie_header()).send().await.unwrap();
        let csrf = csrf_of(&page.text().await.unwrap());
        let out = client.post(format!("{base}/logout")).header("cookie", person.cookie_header())
            .header("origin", &base).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
        assert_eq!(out.status(), 303);
        assert_eq!(out.headers()["location"], "/login");
        let after = client.get(format!("{base}/")).header("cookie", person.cookie_header()).send().await.unwrap();
        assert_eq!(after.status(), 303);
        let logouts = audit(&collector, "person.logout").await;
        assert!(logouts.len() == 1 && logouts[0].actor == format!("person:{}", person.username) && from_loopback(&logouts[0]));

        // The commands: a reset gives a one-time password that must be changed first; disabling
        // ends the sessions at once.
        let live = log_in(&collector, Role::Officer, Some("24700")).await;
        let output = user_reset_password(&collector.store, &live.username, InitialPassword::Generate).await.unwrap();
        let fresh = one_time_password(&output);
        let old = client.get(format!("{base}/")).header("cookie", live.cookie_header()).send().await.unwrap();
        assert_eq!(old.status(), 303, "a reset ends the sessions");
        let answer = post_login(&collector, &live.username, &fresh).await;
        assert_eq!(answer.status(), 303);
        assert_eq!(answer.headers()["location"], "/password");
        let forced = format!("{SESSION_COOKIE}={}", session_from(&answer).unwrap());
        let anywhere = client.get(format!("{base}/?since=1d")).header("cookie", &forced).send().await.unwrap();
        assert_eq!(anywhere.headers()["location"], "/password");
        user_disable(&collector.store, &live.username).await.unwrap();
        let gone = client.get(format!("{base}/password")).header("cookie", &forced).send().await.unwrap();
        assert_eq!(gone.status(), 303);
        let refused = post_login(&collector, &live.username, &fresh).await;
        assert_eq!(refused.status(), 401);
        let list = users_list(&collector.store).await.unwrap();
        let line = list.lines().find(|line| line.starts_with(&live.username)).unwrap();
        assert!(line.contains("officer") && line.contains("24700") && line.contains("disabled since"), "{list}");
        assert!(list.lines().any(|line| line.starts_with("tuan.nv ") && line.contains(" active")), "{list}");
        for action in ["user.create", "user.reset_password", "user.disable"] {
            let entries = audit(&collector, action).await;
            assert!(!entries.is_empty(), "{action} audited");
            assert!(entries.iter().all(|entry| entry.actor.starts_with("cli:") && entry.target.starts_with("person:")));
        }
        collector.stop().await;
        db.drop_database().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_try_many_accounts() {
    let db = sqlite_db();
    let options = CollectorOptions {
        extra_config: "[limits]\nunauthenticated_burst = 3\nunauthenticated_per_minute = 1\n"
            .into(),
        ..CollectorOptions::default()
    };
    let collector = spawn_collector_with(&db, &options).await;
    for n in 0..3 {
        let answer = post_login(&collector, &format!("nguoi{n}"), "một mật khẩu nào đó").await;
        assert_eq!(answer.status(), 401);
    }
    let answer = post_login(&collector, "nguoi4", "một mật khẩu nào đó").await;
    assert_eq!(answer.status(), 429);
    assert!(
        answer.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert!(answer
        .text()
        .await
        .unwrap()
        .contains("Quá nhiều lần đăng nhập"));
    let limited = audit(&collector, "person.login").await;
    assert!(limited
        .iter()
        .any(|entry| details(entry)["reason"] == "rate_limited" && from_loopback(entry)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_browser_a_first_login_changes_the_password_and_a_lockout_holds() {
    let db = sqlite_db();
    let options = CollectorOptions {
        extra_config: "[console]\nlockout_duration = \"3s\"\nidle_timeout = \"8s\"\n".into(),
        ..CollectorOptions::default()
    };
    let collector = spawn_collector_with(&db, &options).await;
    let base = collector.base_url.clone();
    let output = create(&collector, "tuan.nv", InitialPassword::Generate).await;
    assert!(output.contains("must set a new password"), "{output}");
    let first = one_time_password(&output);

    let browser = Browser::start().await;
    browser.goto(&format!("{base}/?since=7d")).await;
    let url = browser.client.current_url().await.unwrap();
    assert_eq!(url.path(), "/login");
    assert_eq!(url.query(), Some("next=/%3Fsince%3D7d"));
    assert!(browser.text().await.contains("Tên đăng nhập"));
    browser.screenshots("login", &[DESKTOP, PHONE]).await;
    browser.resize(PHONE).await;
    assert!(
        !browser.overflows_horizontally().await,
        "the login page is wider than a phone"
    );
    browser.resize(DESKTOP).await;

    // The first login leads to the password page, from any page, until a new one is set.
    browser.fill("#login", "username", "tuan.nv").await;
    browser.fill("#login", "password", &first).await;
    browser.submit("#login").await;
    browser.wait_until_left("/login").await;
    assert_eq!(
        browser.client.current_url().await.unwrap().path(),
        "/password"
    );
    assert!(browser.text().await.contains("đặt mật khẩu riêng"));
    let cookie = browser
        .client
        .get_named_cookie(SESSION_COOKIE)
        .await
        .unwrap();
    assert_eq!(cookie.secure(), Some(true));
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.path(), Some("/"));
    assert_eq!(format!("{:?}", cookie.same_site()), "Some(Strict)");
    browser.goto(&format!("{base}/")).await;
    assert_eq!(
        browser.client.current_url().await.unwrap().path(),
        "/password"
    );
    browser.screenshots("password", &[DESKTOP, PHONE]).await;
    browser.resize(PHONE).await;
    assert!(
        !browser.overflows_horizontally().await,
        "the password page is wider than a phone"
    );
    browser.resize(DESKTOP).await;

    // Too short: refused with the rule in Vietnamese. Then a good one.
    browser.fill("#password", "current", &first).await;
    browser.fill("#password", "new", "ngắn").await;
    browser.fill("#password", "repeat", "ngắn").await;
    // The browser's own minlength check would stop the form: lift it to reach the server's.
    browser
        .client
        .execute(
            "document.querySelectorAll('#password input').forEach(i => i.removeAttribute('minlength'))",
            vec![],
        )
        .await
        .unwrap();
    let text = submit_and_read(&browser, "#password").await;
    assert!(text.contains("ít nhất 10 ký tự"), "{text}");
    let mine = "hoa sen nở trong đầm";
    browser.fill("#password", "current", &first).await;
    browser.fill("#password", "new", mine).await;
    browser.fill("#password", "repeat", mine).await;
    browser.submit("#password").await;
    browser.wait_until_left("/password").await;
    assert_eq!(browser.client.current_url().await.unwrap().path(), "/");
    assert!(browser.text().await.contains("Tổng quan"));
    let changed = audit(&collector, "person.password_changed").await;
    let ok: Vec<_> = changed
        .iter()
        .filter(|entry| entry.outcome == "ok")
        .collect();
    assert!(ok.len() == 1 && ok[0].actor == "person:tuan.nv" && from_loopback(ok[0]));
    assert_eq!(details(ok[0])["forced"], true);

    // Log out with the header's button; the one-time password no longer works, the new one does.
    browser
        .find("form[action=\"/logout\"] button")
        .await
        .click()
        .await
        .unwrap();
    browser.wait_until_left("/password").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(browser.client.current_url().await.unwrap().path(), "/login");
    assert_eq!(
        post_login(&collector, "tuan.nv", &first).await.status(),
        401
    );

    // Five wrong passwords in the browser lock the account; the right one is refused until the
    // lockout ends.
    for attempt in 1..=5 {
        browser.fill("#login", "username", "tuan.nv").await;
        browser
            .fill("#login", "password", &format!("không đúng {attempt}"))
            .await;
        let text = submit_and_read(&browser, "#login").await;
        assert!(text.contains(REFUSED), "attempt {attempt}: {text}");
    }
    browser.fill("#login", "username", "tuan.nv").await;
    browser.fill("#login", "password", mine).await;
    let text = submit_and_read(&browser, "#login").await;
    assert!(
        text.contains(REFUSED),
        "the sixth attempt is refused: {text}"
    );
    assert_eq!(browser.client.current_url().await.unwrap().path(), "/login");
    browser.screenshots("login-refused", &[PHONE]).await;
    tokio::time::sleep(Duration::from_millis(3200)).await;
    browser.fill("#login", "username", "tuan.nv").await;
    browser.fill("#login", "password", mine).await;
    browser.submit("#login").await;
    browser.wait_until_left("/login").await;
    assert_eq!(browser.client.current_url().await.unwrap().path(), "/");
    assert_eq!(audit(&collector, "person.locked").await.len(), 1);

    // Idle past the timeout: the next page is the login page, saying why.
    tokio::time::sleep(Duration::from_millis(8300)).await;
    browser.goto(&format!("{base}/")).await;
    assert_eq!(browser.client.current_url().await.unwrap().path(), "/login");
    assert!(browser.text().await.contains("Phiên làm việc đã hết hạn"));
    let expiries = audit(&collector, "session.expired").await;
    assert!(expiries.iter().any(|entry| entry.actor == "person:tuan.nv"
        && details(entry)["reason"] == "idle"
        && from_loopback(entry)));
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_session_still_ends_at_its_absolute_lifetime() {
    let db = sqlite_db();
    let options = CollectorOptions {
        extra_config: "[console]\nidle_timeout = \"2s\"\nsession_lifetime = \"3s\"\n".into(),
        ..CollectorOptions::default()
    };
    let collector = spawn_collector_with(&db, &options).await;
    let person = log_in(&collector, Role::Leadership, Some("663")).await;
    let client = console_client(&collector);
    let started = std::time::Instant::now();
    let mut answers = Vec::new();
    while started.elapsed() < Duration::from_millis(3600) {
        let answer = client
            .get(format!("{}/", collector.base_url))
            .header("cookie", person.cookie_header())
            .send()
            .await
            .unwrap();
        answers.push(answer.status().as_u16());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(answers.first(), Some(&200), "{answers:?}");
    assert_eq!(answers.last(), Some(&303), "{answers:?}");
    let expiries = audit(&collector, "session.expired").await;
    assert_eq!(expiries.len(), 1, "{expiries:#?}");
    assert_eq!(details(&expiries[0])["reason"], "absolute");
    assert_eq!(expiries[0].actor, format!("person:{}", person.username));
}
