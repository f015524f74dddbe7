//! A real HTTP receiver for webhook notification tests.
//!
//! [`WebhookReceiver`] is an HTTP/1.1 server (hyper serving an axum router) on 127.0.0.1 that
//! records every request it gets, whatever the method or path, and answers 200, or an error
//! status for as many requests as [`WebhookReceiver::fail_next`] says. Tests stop it and start it
//! again on the same port to play a receiver that is down for a while; stopping closes the
//! connections open too, so a client's pooled keep-alive connection dies as it would in life.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    /// `POST`, `GET`, …
    pub method: Method,
    /// Path and query, as requested (`/hooks/cntt?x=1`).
    pub path: String,
    /// Every header; lookups ignore case.
    pub headers: HeaderMap,
    /// The body, exactly as received.
    pub body: Vec<u8>,
    /// When the receiver finished reading it.
    pub received_at: OffsetDateTime,
    /// The status the receiver answered.
    pub status: StatusCode,
}

impl ReceivedRequest {
    /// The first value of header `name` (any case), when present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }

    /// The body as UTF-8 text.
    ///
    /// # Panics
    ///
    /// When the body is not UTF-8.
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("the webhook body is UTF-8")
    }

    /// The body as JSON.
    ///
    /// # Panics
    ///
    /// When the body is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|err| panic!("the webhook body is not JSON ({err}): {}", self.text()))
    }
}

/// What the connections share with the test.
#[derive(Debug, Default)]
struct Shared {
    /// Every request so far, in order of arrival; appended by the handler.
    requests: Mutex<Vec<ReceivedRequest>>,
    /// How many of the next requests to fail, and with which status; set by `fail_next`.
    failures: Mutex<(u32, StatusCode)>,
}

/// A running HTTP receiver on 127.0.0.1.
#[derive(Debug)]
pub struct WebhookReceiver {
    address: SocketAddr,
    shared: Arc<Shared>,
    /// The accept loop, which owns every connection: aborting it closes them all. `None` while
    /// stopped.
    task: Option<JoinHandle<()>>,
}

impl WebhookReceiver {
    /// Starts a receiver on a free port of 127.0.0.1.
    pub async fn start() -> WebhookReceiver {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the webhook receiver");
        let mut receiver = WebhookReceiver {
            address: listener.local_addr().expect("bound address"),
            shared: Arc::default(),
            task: None,
        };
        receiver.serve(listener);
        receiver
    }

    /// `http://127.0.0.1:PORT/hooks/cntt`: any path is recorded, this one reads well in configs.
    pub fn url(&self) -> String {
        format!("http://{}/hooks/cntt", self.address)
    }

    /// The port the receiver listens on (the same after [`WebhookReceiver::start_again`]).
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Every request so far, in order of arrival, across restarts.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.shared
            .requests
            .lock()
            .expect("webhook request log is never poisoned")
            .clone()
    }

    /// Waits until at least `n` requests arrived and returns them all.
    ///
    /// # Panics
    ///
    /// After `timeout`, naming what did arrive.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedRequest> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let requests = self.requests();
            if requests.len() >= n {
                return requests;
            }
            if tokio::time::Instant::now() > deadline {
                let seen: Vec<String> = requests
                    .iter()
                    .map(|request| {
                        format!("{} {} → {}", request.method, request.path, request.status)
                    })
                    .collect();
                panic!(
                    "timed out after {timeout:?} waiting for {n} webhook requests; {} arrived: {seen:?}",
                    requests.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Answers `status` to the next `n` requests (they are still recorded), then 200 again.
    ///
    /// # Panics
    ///
    /// When `status` is not a valid HTTP status code.
    pub fn fail_next(&self, n: u32, status: u16) {
        let status = StatusCode::from_u16(status).expect("a valid HTTP status code");
        *self
            .shared
            .failures
            .lock()
            .expect("webhook failure plan is never poisoned") = (n, status);
    }

    /// Stops listening and closes every open connection: new connections are refused until
    /// [`WebhookReceiver::start_again`]. The requests received are kept.
    pub async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens again on the same port after [`WebhookReceiver::stop`].
    ///
    /// # Panics
    ///
    /// When the port was taken meanwhile.
    pub async fn start_again(&mut self) {
        if self.task.is_none() {
            let listener = TcpListener::bind(self.address)
                .await
                .expect("rebinding the webhook receiver on its port");
            self.serve(listener);
        }
    }

    fn serve(&mut self, listener: TcpListener) {
        let router = Router::new()
            .fallback(record)
            .with_state(self.shared.clone());
        self.task = Some(tokio::spawn(async move {
            // Connections live in this set, so aborting the accept task drops (closes) them all.
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((tcp, _peer)) = accepted else { continue };
                        let service = TowerToHyperService::new(router.clone());
                        connections.spawn(async move {
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(tcp), service)
                                .await;
                        });
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        }));
    }
}

/// The only handler: records the request and answers the planned status.
async fn record(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let status = {
        let mut failures = shared
            .failures
            .lock()
            .expect("webhook failure plan is never poisoned");
        match *failures {
            (0, _) => StatusCode::OK,
            (ref mut left, status) => {
                *left -= 1;
                status
            }
        }
    };
    let path = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), ToString::to_string);
    shared
        .requests
        .lock()
        .expect("webhook request log is never poisoned")
        .push(ReceivedRequest {
            method,
            path,
            headers,
            body: body.to_vec(),
            received_at: OffsetDateTime::now_utc(),
            status,
        });
    let answer = if status.is_success() {
        "ok"
    } else {
        "planned failure"
    };
    (status, answer)
}
