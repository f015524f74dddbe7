//! Logging people in to the console, for tests that drive it with a browser or with reqwest.
//!
//! FIXME(issue 14): until people accounts land, a session is an API token carried in the session
//! cookie (see `collector/src/http/console/session.rs`). Tests call only these functions, so the
//! switch to real accounts changes this file and not the tests.

use cntt_collector::domain::auth::Role;
use cntt_collector::http::console::SESSION_COOKIE;
use fantoccini::cookies::Cookie;

use crate::browser::Browser;
use crate::TestCollector;

/// A logged-in person, as a test sees them.
#[derive(Debug, Clone)]
pub struct TestPerson {
    /// The session cookie's value.
    pub session: String,
    /// The role they were given.
    pub role: Role,
    /// The unit whose subtree they see (none: the whole province).
    pub unit: Option<String>,
}

impl TestPerson {
    /// The `Cookie` header a reqwest client sends for this person.
    pub fn cookie_header(&self) -> String {
        format!("{SESSION_COOKIE}={}", self.session)
    }
}

/// Creates a person with `role` over `unit`'s subtree and logs them in.
pub async fn log_in(collector: &TestCollector, role: Role, unit: Option<&str>) -> TestPerson {
    let session = collector.api_token(role, unit).await;
    TestPerson {
        session,
        role,
        unit: unit.map(str::to_owned),
    }
}

impl Browser {
    /// Makes the browser act as `person` on `collector` (sets the session cookie on its origin).
    pub async fn act_as(&self, collector: &TestCollector, person: &TestPerson) {
        self.goto(&format!("{}/static/console.css", collector.base_url))
            .await;
        let mut cookie = Cookie::new(SESSION_COOKIE, person.session.clone());
        cookie.set_path("/");
        if let Some(host) = collector
            .base_url
            .split("//")
            .nth(1)
            .and_then(|rest| rest.split(':').next())
        {
            cookie.set_domain(host.to_owned());
        }
        cookie.set_secure(true);
        cookie.set_http_only(true);
        self.client
            .delete_all_cookies()
            .await
            .expect("clearing cookies");
        self.client
            .add_cookie(cookie)
            .await
            .expect("setting the session cookie");
    }
}
