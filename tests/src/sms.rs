//! A local stand-in for a carrier's HTTP SMS gateway (issue 17), shaped like many Vietnamese
//! brandname gateways: `POST /api/send` with a form body (`phone`, `message`, `ref`) and a
//! credential in a header, answered with HTTP 200 and JSON whose `status` says what happened
//! (`"0"`: accepted; anything else: refused), so the collector must read the answer, not only the
//! HTTP status.
//!
//! [`SmsGateway`] records every request, refuses a wrong credential (401), and fails on demand:
//! the next N requests ([`SmsGateway::fail_next`], HTTP 200 with `status` `"99"`) or every
//! request while it is down ([`SmsGateway::set_down`], HTTP 503).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One request the gateway got.
#[derive(Debug, Clone)]
pub struct SmsRequest {
    /// `phone` of the form.
    pub phone: String,
    /// `message` of the form, decoded.
    pub message: String,
    /// `ref` of the form: the sender's request id.
    pub reference: String,
    /// The `content-type` header.
    pub content_type: String,
    /// The JSON answered.
    pub answer: Value,
}

impl SmsRequest {
    /// Whether the gateway took the message.
    pub fn delivered(&self) -> bool {
        self.answer["status"] == "0"
    }
}

#[derive(Debug, Default)]
struct Shared {
    /// Every request so far, in order of arrival; appended by the handler.
    requests: Mutex<Vec<SmsRequest>>,
    /// Requests still to fail, and whether every request fails (set by the test).
    failing: Mutex<(u32, bool)>,
}

/// A running gateway on 127.0.0.1; stops when dropped.
#[derive(Debug)]
pub struct SmsGateway {
    address: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for SmsGateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Decodes one `application/x-www-form-urlencoded` value.
fn decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => out.push(b' '),
            b'%' if index + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(byte) => {
                        out.push(byte);
                        index += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl SmsGateway {
    /// Starts a gateway on a free port of 127.0.0.1 that wants header `auth_header` to be
    /// `auth_value`.
    pub async fn start(auth_header: &str, auth_value: &str) -> SmsGateway {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the SMS gateway");
        let address = listener.local_addr().expect("bound address");
        let shared = Arc::new(Shared::default());
        let router = Router::new().fallback(answer).with_state((
            shared.clone(),
            auth_header.to_owned(),
            auth_value.to_owned(),
        ));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        SmsGateway {
            address,
            shared,
            task,
        }
    }

    /// `http://127.0.0.1:PORT/api/send`.
    pub fn url(&self) -> String {
        format!("http://{}/api/send", self.address)
    }

    /// Every request so far, in order of arrival.
    pub fn requests(&self) -> Vec<SmsRequest> {
        self.shared
            .requests
            .lock()
            .expect("the request log is never poisoned")
            .clone()
    }

    /// The messages the gateway took, in order.
    pub fn delivered(&self) -> Vec<SmsRequest> {
        self.requests()
            .into_iter()
            .filter(SmsRequest::delivered)
            .collect()
    }

    /// Waits until the gateway took at least `n` messages and returns them.
    ///
    /// # Panics
    ///
    /// After `timeout`, naming what did arrive.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<SmsRequest> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let delivered = self.delivered();
            if delivered.len() >= n {
                return delivered;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {n} SMS; {} taken: {delivered:#?}\nall requests: {:#?}",
                    delivered.len(),
                    self.requests()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Refuses the next `n` messages (HTTP 200, `status` `"99"`).
    pub fn fail_next(&self, n: u32) {
        self.shared
            .failing
            .lock()
            .expect("the failure plan is never poisoned")
            .0 = n;
    }

    /// While `down`, answers every request 503.
    pub fn set_down(&self, down: bool) {
        self.shared
            .failing
            .lock()
            .expect("the failure plan is never poisoned")
            .1 = down;
    }
}

/// The only handler: checks the credential, records the request, answers.
async fn answer(
    State((shared, auth_header, auth_value)): State<(Arc<Shared>, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, axum::Json<Value>) {
    let text = String::from_utf8_lossy(&body).into_owned();
    let field = |name: &str| {
        text.split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| decode(value))
            .unwrap_or_default()
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (status, answer) = if header(&auth_header) != auth_value {
        (
            StatusCode::UNAUTHORIZED,
            json!({"status": "401", "message": "Sai thông tin xác thực"}),
        )
    } else {
        let mut failing = shared
            .failing
            .lock()
            .expect("the failure plan is never poisoned");
        if failing.1 {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"status": "503", "message": "Hệ thống bận"}),
            )
        } else if failing.0 > 0 {
            failing.0 -= 1;
            (
                StatusCode::OK,
                json!({"status": "99", "message": "Nhà mạng từ chối"}),
            )
        } else {
            (
                StatusCode::OK,
                json!({"status": "0", "id": format!("sms-{}", field("ref"))}),
            )
        }
    };
    shared
        .requests
        .lock()
        .expect("the request log is never poisoned")
        .push(SmsRequest {
            phone: field("phone"),
            message: field("message"),
            reference: field("ref"),
            content_type: header("content-type"),
            answer: answer.clone(),
        });
    (status, axum::Json(answer))
}
