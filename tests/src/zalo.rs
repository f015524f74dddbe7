//! A local stand-in for the Zalo Bot Platform's bot API (issue 17), speaking its request and
//! response shapes as its documentation gives them: `POST /bot{TOKEN}/sendMessage` with JSON
//! `{"chat_id", "text"}` (text of 1 to 2,000 characters), answered
//! `{"ok": true, "result": {"message_id", "date"}}`, or `{"ok": false, "error_code",
//! "description"}` with the matching HTTP status.
//!
//! [`ZaloBot`] records every request, checks the token in the path (401 otherwise), refuses texts
//! the real API would refuse (400), and fails on demand: the next N requests
//! ([`ZaloBot::fail_next`]) or every request while it is down ([`ZaloBot::set_down`]).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::Router;
use serde_json::{json, Value};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The longest text the API takes, in characters.
pub const MAX_CHARS: usize = 2000;

/// One request the bot API got.
#[derive(Debug, Clone)]
pub struct BotRequest {
    /// The path, token included (`/bot123:abc/sendMessage`).
    pub path: String,
    /// `chat_id` of the JSON body, when there was one.
    pub chat_id: Option<String>,
    /// `text` of the JSON body, when there was one.
    pub text: Option<String>,
    /// When it arrived.
    pub received_at: OffsetDateTime,
    /// The HTTP status answered.
    pub status: StatusCode,
    /// The JSON answered.
    pub answer: Value,
}

impl BotRequest {
    /// Whether the API took the message.
    pub fn delivered(&self) -> bool {
        self.answer["ok"] == true
    }
}

/// What the connections share with the test.
#[derive(Debug, Default)]
struct Shared {
    /// Every request so far, in order of arrival; appended by the handler.
    requests: Mutex<Vec<BotRequest>>,
    /// Requests still to fail, and whether every request fails (set by the test).
    failing: Mutex<(u32, bool)>,
}

/// A running bot API on 127.0.0.1; stops when dropped.
#[derive(Debug)]
pub struct ZaloBot {
    address: SocketAddr,
    token: String,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for ZaloBot {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ZaloBot {
    /// Starts the API on a free port of 127.0.0.1, for the bot whose token is `token`.
    pub async fn start(token: &str) -> ZaloBot {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the Zalo bot API");
        let address = listener.local_addr().expect("bound address");
        let shared = Arc::new(Shared::default());
        let router = Router::new()
            .fallback(answer)
            .with_state((shared.clone(), token.to_owned()));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        ZaloBot {
            address,
            token: token.to_owned(),
            shared,
            task,
        }
    }

    /// `http://127.0.0.1:PORT`, the `base_url` of `[notify.zalo]`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The bot's token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Every request so far, in order of arrival.
    pub fn requests(&self) -> Vec<BotRequest> {
        self.shared
            .requests
            .lock()
            .expect("the request log is never poisoned")
            .clone()
    }

    /// The messages the API took, in order: (chat id, text).
    pub fn delivered(&self) -> Vec<(String, String)> {
        self.requests()
            .into_iter()
            .filter(BotRequest::delivered)
            .map(|request| {
                (
                    request.chat_id.unwrap_or_default(),
                    request.text.unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Waits until the API took at least `n` messages and returns them.
    ///
    /// # Panics
    ///
    /// After `timeout`, naming what did arrive.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<(String, String)> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let delivered = self.delivered();
            if delivered.len() >= n {
                return delivered;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {n} Zalo messages; {} taken: {delivered:#?}\nall requests: {:#?}",
                    delivered.len(),
                    self.requests()
                        .iter()
                        .map(|request| format!("{} {}", request.status, request.answer))
                        .collect::<Vec<_>>()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Fails the next `n` sendMessage requests with HTTP 500 and the API's error envelope.
    pub fn fail_next(&self, n: u32) {
        self.shared
            .failing
            .lock()
            .expect("the failure plan is never poisoned")
            .0 = n;
    }

    /// While `down`, every sendMessage request fails with HTTP 503 and the error envelope.
    pub fn set_down(&self, down: bool) {
        self.shared
            .failing
            .lock()
            .expect("the failure plan is never poisoned")
            .1 = down;
    }
}

/// The only handler: checks the request as the API would, records it, answers.
async fn answer(
    State((shared, token)): State<(Arc<Shared>, String)>,
    uri: Uri,
    body: Bytes,
) -> (StatusCode, axum::Json<Value>) {
    let path = uri.path().to_owned();
    let sent: Option<Value> = serde_json::from_slice(&body).ok();
    let field = |name: &str| {
        sent.as_ref()
            .and_then(|sent| sent.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let (chat_id, text) = (field("chat_id"), field("text"));
    let error = |code: u16, description: &str| {
        (
            StatusCode::from_u16(code).expect("a valid status"),
            json!({"ok": false, "error_code": code, "description": description}),
        )
    };
    let (status, answer) = if path != format!("/bot{token}/sendMessage") {
        error(401, "Unauthorized")
    } else if chat_id.as_deref().is_none_or(str::is_empty) {
        error(400, "Bad Request: chat_id is required")
    } else if text
        .as_deref()
        .is_none_or(|text| text.is_empty() || text.chars().count() > MAX_CHARS)
    {
        error(400, "Bad Request: text must be 1 to 2000 characters")
    } else {
        let mut failing = shared
            .failing
            .lock()
            .expect("the failure plan is never poisoned");
        if failing.1 {
            error(503, "Service Unavailable")
        } else if failing.0 > 0 {
            failing.0 -= 1;
            error(500, "Internal Server Error")
        } else {
            let now = OffsetDateTime::now_utc();
            (
                StatusCode::OK,
                json!({"ok": true, "result": {
                    "message_id": format!("{:020x}", now.unix_timestamp_nanos()),
                    "date": now.unix_timestamp_nanos() / 1_000_000,
                }}),
            )
        }
    };
    shared
        .requests
        .lock()
        .expect("the request log is never poisoned")
        .push(BotRequest {
            path,
            chat_id,
            text,
            received_at: OffsetDateTime::now_utc(),
            status,
            answer: answer.clone(),
        });
    (status, axum::Json(answer))
}
