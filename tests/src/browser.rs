//! A real headless Chromium driven over WebDriver (Debian's `chromium` and `chromium-driver`,
//! which `scripts/test` installs), for the console's tests.
//!
//! Each [`Browser`] runs its own `chromedriver` on a free loopback port with its own profile
//! folder, so tests run in parallel without sharing cookies. Screenshots go to
//! `target/console-screenshots/` (or `CNTT_TEST_SCREENSHOTS`), named `PAGE-WIDTHxHEIGHT.png`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use tempfile::TempDir;
use tokio::process::{Child, Command};

/// The desktop size the issue asks screenshots at.
pub const DESKTOP: (u32, u32) = (1366, 768);
/// A phone (390 × 844, an iPhone 12–15).
pub const PHONE: (u32, u32) = (390, 844);

/// A headless Chromium with its own driver process.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: Child,
    _profile: TempDir,
}

/// Where `chromedriver` is, or a panic that says how to install it.
fn chromedriver() -> PathBuf {
    for candidate in ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"] {
        let path = PathBuf::from(candidate);
        if path.exists() {
            return path;
        }
    }
    panic!(
        "chromedriver not found: install Debian's chromium and chromium-driver \
         (apt-get install chromium chromium-driver), as scripts/test does"
    );
}

impl Browser {
    /// Starts a driver and a headless browser at the desktop size.
    ///
    /// # Panics
    ///
    /// When Chromium or its driver is missing or does not start.
    pub async fn start() -> Browser {
        let profile = tempfile::tempdir().expect("browser profile folder");
        let port = free_port();
        let driver = Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("starting chromedriver");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("acceptInsecureCerts".into(), true.into());
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--hide-scrollbars", "--lang=vi-VN", "--no-first-run",
                    format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let mut last_error = String::new();
        for _ in 0..100 {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    let browser = Browser {
                        client,
                        driver,
                        _profile: profile,
                    };
                    browser.resize(DESKTOP).await;
                    return browser;
                }
                Err(err) => last_error = err.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("could not start a headless Chromium through chromedriver: {last_error}");
    }

    /// Sets the size of the page's viewport (not the window's, which has borders when headful).
    pub async fn resize(&self, (width, height): (u32, u32)) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("resizing the window");
        // Headless windows have no frame, but ask the page to be sure, and correct once.
        let inner = self
            .client
            .execute("return [window.innerWidth, window.innerHeight];", vec![])
            .await
            .expect("reading the viewport");
        let inner_width = inner[0].as_u64().unwrap_or(u64::from(width)) as u32;
        let inner_height = inner[1].as_u64().unwrap_or(u64::from(height)) as u32;
        if (inner_width, inner_height) != (width, height) {
            self.client
                .set_window_size(
                    width + width.saturating_sub(inner_width),
                    height + height.saturating_sub(inner_height),
                )
                .await
                .expect("resizing the window");
        }
    }

    /// Opens a URL and waits until the page has loaded.
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("opening a page");
    }

    /// The current page's HTML.
    pub async fn source(&self) -> String {
        self.client.source().await.expect("reading the page")
    }

    /// The visible text of the page's `<body>`.
    pub async fn text(&self) -> String {
        self.find("body").await.text().await.expect("reading text")
    }

    /// The first element matching a CSS selector.
    ///
    /// # Panics
    ///
    /// When nothing matches; the message shows the page's address.
    pub async fn find(&self, css: &str) -> Element {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element,
            Err(err) => {
                let url = self.client.current_url().await.map(|url| url.to_string());
                panic!("no element {css:?} on {url:?}: {err}");
            }
        }
    }

    /// Fills the form field called `name` (an input, select or textarea) inside `form_css`.
    pub async fn fill(&self, form_css: &str, name: &str, value: &str) {
        let field = self.find(&format!("{form_css} [name=\"{name}\"]")).await;
        let tag = field.tag_name().await.expect("tag name");
        if tag == "select" {
            field
                .select_by_value(value)
                .await
                .expect("choosing an option");
        } else {
            field.clear().await.expect("clearing a field");
            field.send_keys(value).await.expect("typing");
        }
    }

    /// Submits a form by clicking its submit button and waits for the next page.
    pub async fn submit(&self, form_css: &str) {
        let button = self
            .find(&format!("{form_css} button[type=\"submit\"]"))
            .await;
        button.click().await.expect("clicking submit");
        self.client
            .wait()
            .for_element(Locator::Css("body"))
            .await
            .expect("next page");
    }

    /// Saves a screenshot of the viewport at each size, as `NAME-WIDTHxHEIGHT.png`, and returns
    /// the paths. Restores the desktop size afterwards.
    pub async fn screenshots(&self, name: &str, sizes: &[(u32, u32)]) -> Vec<PathBuf> {
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot folder");
        let mut paths = Vec::new();
        for size in sizes {
            self.resize(*size).await;
            // Let layout settle after the resize.
            tokio::time::sleep(Duration::from_millis(150)).await;
            let png = self.client.screenshot().await.expect("taking a screenshot");
            let path = dir.join(format!("{name}-{}x{}.png", size.0, size.1));
            std::fs::write(&path, png).expect("writing a screenshot");
            paths.push(path);
        }
        self.resize(DESKTOP).await;
        paths
    }

    /// Whether the page is wider than its viewport (something does not fit a phone).
    pub async fn overflows_horizontally(&self) -> bool {
        self.client
            .execute(
                "return document.documentElement.scrollWidth > window.innerWidth + 1;",
                vec![],
            )
            .await
            .expect("measuring the page")
            .as_bool()
            .unwrap_or(false)
    }

    /// Ends the session and the driver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill().await;
    }
}

/// Where screenshots go.
pub fn screenshot_dir() -> PathBuf {
    std::env::var_os("CNTT_TEST_SCREENSHOTS").map_or_else(
        || crate::repo_file("target/console-screenshots"),
        PathBuf::from,
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port for chromedriver")
}
