//! Logging people in to the console, for tests that drive it with a browser or with reqwest.
//!
//! Every person is a real account (made with `admin::people::user_create`, as `cntt-collector
//! user create` does, with a known password and no forced change) who logs in through the real
//! `POST /login`, so tests go through the same sessions, cookies and form tokens as people.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cntt_collector::admin::people::{user_create, InitialPassword, UserSpec};
use cntt_collector::domain::auth::Role;
use cntt_collector::http::console::SESSION_COOKIE;
use cntt_common::Secret;

use crate::browser::Browser;
use crate::TestCollector;

/// The password every test person has.
pub const TEST_PASSWORD: &str = "mật khẩu thử nghiệm 2026";

/// A logged-in person, as a test sees them.
#[derive(Debug, Clone)]
pub struct TestPerson {
    /// The session cookie's value.
    pub session: String,
    /// The role they were given.
    pub role: Role,
    /// The unit whose subtree they see (none: the whole province).
    pub unit: Option<String>,
    /// Their login name.
    pub username: String,
    /// Their password.
    pub password: String,
}

impl TestPerson {
    /// The `Cookie` header a reqwest client sends for this person.
    pub fn cookie_header(&self) -> String {
        format!("{SESSION_COOKIE}={}", self.session)
    }
}

/// A username no other test person of this process has.
fn fresh_username(role: Role, unit: Option<&str>) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let unit = unit.unwrap_or("tinh").to_ascii_lowercase();
    format!("{role}-{unit}-{n}")
}

/// A reqwest client that trusts `collector`'s CA and does not follow redirects (so a test sees
/// the 303 and its `Set-Cookie`).
pub fn console_client(collector: &TestCollector) -> reqwest::Client {
    let ca = std::fs::read(&collector.ca_pem).expect("reading the test CA");
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("the test CA"))
        .build()
        .expect("building a client")
}

/// Posts the login form as a browser on the console's own page would; returns the answer.
pub async fn post_login(
    collector: &TestCollector,
    username: &str,
    password: &str,
) -> reqwest::Response {
    console_client(collector)
        .post(format!("{}/login", collector.base_url))
        .header("origin", &collector.base_url)
        .form(&[
            ("username", username),
            ("password", password),
            ("next", "/"),
        ])
        .send()
        .await
        .expect("posting the login form")
}

/// The session secret a login answer sets, if it set one.
pub fn session_from(answer: &reqwest::Response) -> Option<String> {
    answer
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| {
            let (pair, _) = value.split_once(';').unwrap_or((value, ""));
            let (name, secret) = pair.split_once('=')?;
            (name == SESSION_COOKIE && !secret.is_empty()).then(|| secret.to_owned())
        })
}

/// Creates a person with `role` over `unit`'s subtree and logs them in.
pub async fn log_in(collector: &TestCollector, role: Role, unit: Option<&str>) -> TestPerson {
    let username = fresh_username(role, unit);
    user_create(
        &collector.store,
        UserSpec {
            username: username.clone(),
            full_name: format!("Người thử {username}"),
            role,
            unit: unit.map(str::to_owned),
            password: InitialPassword::Known(Secret::new(TEST_PASSWORD)),
        },
    )
    .await
    .expect("creating a test person");
    let answer = post_login(collector, &username, TEST_PASSWORD).await;
    assert_eq!(answer.status(), 303, "logging in {username}");
    let session = session_from(&answer).expect("the login set a session cookie");
    TestPerson {
        session,
        role,
        unit: unit.map(str::to_owned),
        username,
        password: TEST_PASSWORD.to_owned(),
    }
}

impl Browser {
    /// Makes the browser act as `person` on `collector`: logs in through the login form (a
    /// session of its own, beside the one `person.session` holds).
    ///
    /// # Panics
    ///
    /// When the login does not leave the login page within 10 seconds.
    pub async fn act_as(&self, collector: &TestCollector, person: &TestPerson) {
        let login = format!("{}/login", collector.base_url);
        self.goto(&login).await;
        self.client
            .delete_all_cookies()
            .await
            .expect("clearing cookies");
        self.goto(&login).await;
        self.fill("#login", "username", &person.username).await;
        self.fill("#login", "password", &person.password).await;
        self.submit("#login").await;
        self.wait_until_left("/login").await;
    }

    /// Waits until the browser's address no longer starts with `path` (a form's answer loaded).
    ///
    /// # Panics
    ///
    /// After 10 seconds.
    pub async fn wait_until_left(&self, path: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let url = self.client.current_url().await.expect("current address");
            if !url.path().starts_with(path) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "still on {url} after 10 s: {}",
                self.text().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
