//! The notification test harness itself: the SMTP sink (`e2e::mail`) and the webhook receiver
//! (`e2e::webhook`) behave like the real servers the collector will talk to.
//!
//! Mail is sent with lettre over rustls, trusting only the sink's test CA, in each TLS mode, with
//! and without AUTH; the Vietnamese subject and body must come back exactly as written.

use std::time::Duration;

use cntt_common::Secret;
use e2e::mail::{ReceivedMail, SmtpCredentials, SmtpOptions, SmtpServer, SmtpTls};
use e2e::webhook::WebhookReceiver;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::transport::smtp::Error as SmtpError;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::WAIT;

const SUBJECT: &str = "[TBSC] Sự cố mất kết nối WAN: Huyện Đắk Mil";
const TEXT: &str = "Mất kết nối WAN tại Huyện Đắk Mil từ 08:15 ngày 03/06/2025.\n\
                    Số hiệu sự cố: SC-2025-0001. Đề nghị kiểm tra đường truyền.";
const HTML: &str = "<p>Mất kết nối WAN tại <b>Huyện Đắk Mil</b> từ 08:15 ngày 03/06/2025.</p>";
const MESSAGE_ID: &str = "<SC-2025-0001.1@cntt.daknong.gov.vn>";
const USER: &str = "canhbao@daknong.gov.vn";
const PASSWORD: &str = "mật-khẩu-thử";

/// An incident notice as the collector will send it: plain text in quoted-printable, HTML in
/// base64 (so both decodings are exercised), a Cc and a Bcc.
fn incident_mail() -> Message {
    let mailbox = |text: &str| -> Mailbox { text.parse().expect("valid test mailbox") };
    Message::builder()
        .from(mailbox("Sở TT&TT Đắk Nông <canhbao@daknong.gov.vn>"))
        .to(mailbox(
            "Trực ban Huyện Đắk Mil <trucban@dakmil.daknong.gov.vn>",
        ))
        .cc(mailbox(
            "Phòng Văn hóa - Thông tin <vhtt@dakmil.daknong.gov.vn>",
        ))
        .bcc(mailbox("luu-tru@daknong.gov.vn"))
        .subject(SUBJECT)
        .message_id(Some(MESSAGE_ID.to_owned()))
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .header(ContentTransferEncoding::QuotedPrintable)
                        .body(TEXT.to_owned()),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .header(ContentTransferEncoding::Base64)
                        .body(HTML.to_owned()),
                ),
        )
        .expect("valid test message")
}

/// How the test client (lettre) talks to the sink.
#[derive(Debug, Clone, Copy)]
struct Client {
    tls: SmtpTls,
    password: Option<&'static str>,
    /// Whether the client trusts the sink's CA; it never trusts anything else.
    trusts_ca: bool,
}

impl Client {
    fn new(tls: SmtpTls, password: Option<&'static str>) -> Client {
        Client {
            tls,
            password,
            trusts_ca: true,
        }
    }
}

/// Sends `message` to the sink the way `client` says, over a new connection.
async fn send(server: &SmtpServer, client: Client, message: Message) -> Result<(), SmtpError> {
    let parameters = || {
        let mut builder = TlsParameters::builder("localhost".to_owned())
            .certificate_store(CertificateStore::None);
        if client.trusts_ca {
            let ca_pem = server.ca_pem().expect("the sink has a CA in TLS modes");
            let ca = std::fs::read(ca_pem).expect("reading the sink's CA");
            builder = builder.add_root_certificate(Certificate::from_pem(&ca).expect("CA PEM"));
        }
        builder.build_rustls().expect("TLS parameters")
    };
    let tls = match client.tls {
        SmtpTls::None => Tls::None,
        SmtpTls::StartTls => Tls::Required(parameters()),
        SmtpTls::Implicit => Tls::Wrapper(parameters()),
    };
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server.host())
        .port(server.port())
        .tls(tls)
        .timeout(Some(Duration::from_secs(10)));
    if let Some(password) = client.password {
        transport = transport.credentials(Credentials::new(USER.to_owned(), password.to_owned()));
    }
    transport.build().send(message).await.map(|_| ())
}

fn options(tls: SmtpTls, auth: bool) -> SmtpOptions {
    SmtpOptions {
        tls,
        auth: auth.then(|| SmtpCredentials {
            user: USER.to_owned(),
            password: Secret::new(PASSWORD),
        }),
        fail_first: 0,
    }
}

/// Asserts that `mail` is [`incident_mail`], decoded exactly.
fn assert_incident_mail(mail: &ReceivedMail) {
    assert_eq!(mail.subject.as_deref(), Some(SUBJECT));
    assert_eq!(
        mail.from.as_deref(),
        Some("Sở TT&TT Đắk Nông <canhbao@daknong.gov.vn>")
    );
    assert_eq!(
        mail.to.as_deref(),
        Some("Trực ban Huyện Đắk Mil <trucban@dakmil.daknong.gov.vn>")
    );
    assert_eq!(mail.addresses("To"), ["trucban@dakmil.daknong.gov.vn"]);
    assert_eq!(mail.addresses("Cc"), ["vhtt@dakmil.daknong.gov.vn"]);
    assert_eq!(mail.header("Bcc"), None, "Bcc never travels in the headers");
    assert_eq!(mail.message_id.as_deref(), Some(MESSAGE_ID));
    assert!(mail.date.is_some(), "lettre dates every message");
    let raw = String::from_utf8_lossy(&mail.raw);
    for encoding in ["quoted-printable", "base64"] {
        let header = format!("Content-Transfer-Encoding: {encoding}");
        assert!(raw.contains(&header), "the message has a {encoding} part");
    }
    assert!(!raw.contains("Đắk"), "non-ASCII text travels encoded");
    assert_eq!(mail.text.as_deref(), Some(TEXT));
    assert_eq!(mail.html.as_deref(), Some(HTML));
    assert_eq!(mail.mail_from, "canhbao@daknong.gov.vn");
    assert_eq!(
        mail.rcpt_tos,
        [
            "trucban@dakmil.daknong.gov.vn",
            "vhtt@dakmil.daknong.gov.vn",
            "luu-tru@daknong.gov.vn"
        ]
    );
    assert!(mail.peer.starts_with("127.0.0.1:"), "{}", mail.peer);
}

#[tokio::test]
async fn smtp_sink_receives_vietnamese_mail_in_every_tls_mode() {
    for tls in [SmtpTls::None, SmtpTls::StartTls, SmtpTls::Implicit] {
        let server = SmtpServer::start(options(tls, false)).await;
        send(&server, Client::new(tls, None), incident_mail())
            .await
            .unwrap_or_else(|err| panic!("{tls:?}: sending failed: {err}"));
        let messages = server.wait_for(1, WAIT).await;
        assert_eq!(messages.len(), 1, "{tls:?}");
        let mail = &messages[0];
        assert_incident_mail(mail);
        assert_eq!(mail.seq, 1);
        assert_eq!(mail.tls, tls != SmtpTls::None, "{tls:?}");
        assert_eq!(mail.auth_user, None, "{tls:?}");
    }
}

/// What one attempt to send through the sink comes to.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Accepted and filed, over TLS or not, by this user.
    Delivered {
        tls: bool,
        auth_user: Option<&'static str>,
    },
    /// The sink answered this reply code.
    Refused(String),
    /// The client gave up before sending: the sink offered no AUTH it could use.
    NoAuthOffered,
    /// The TLS handshake failed: the client does not trust the sink.
    Untrusted,
}

/// Starts a sink with `server` options, sends once as `client` says and checks the outcome.
async fn check_send(server: SmtpOptions, client: Client, expected: Outcome) {
    let what = format!("server {server:?}, client {client:?}");
    let server = SmtpServer::start(server).await;
    let outcome = match send(&server, client, incident_mail()).await {
        Ok(()) => {
            let mail = server.wait_for(1, WAIT).await.remove(0);
            assert_incident_mail(&mail);
            Outcome::Delivered {
                tls: mail.tls,
                auth_user: mail.auth_user.map(|user| {
                    assert_eq!(user, USER);
                    USER
                }),
            }
        }
        Err(err) if rejects_certificate(&err) => Outcome::Untrusted,
        Err(err) => match err.status() {
            Some(code) => Outcome::Refused(code.to_string()),
            None if err.to_string().contains("authentication mechanism") => Outcome::NoAuthOffered,
            None => panic!("{what}: unexpected error: {err:?}"),
        },
    };
    assert_eq!(outcome, expected, "{what}");
    if !matches!(outcome, Outcome::Delivered { .. }) {
        assert!(server.messages().is_empty(), "{what}: nothing is filed");
    }
}

/// Whether rustls, somewhere under `err`, refused the server's certificate as of an unknown CA.
fn rejects_certificate(err: &SmtpError) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = source {
        let tls = current
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        if let Some(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)) =
            tls
        {
            return true;
        }
        source = current.source();
    }
    false
}

#[tokio::test]
async fn smtp_sink_demands_auth_and_tls_before_auth_as_real_servers_do() {
    let delivered = |tls| Outcome::Delivered {
        tls,
        auth_user: Some(USER),
    };
    let refused = |code: &str| Outcome::Refused(code.to_owned());
    let (plain, starttls, implicit) = (SmtpTls::None, SmtpTls::StartTls, SmtpTls::Implicit);

    // STARTTLS: AUTH after TLS only.
    check_send(
        options(starttls, true),
        Client::new(starttls, Some(PASSWORD)),
        delivered(true),
    )
    .await;
    check_send(
        options(starttls, true),
        Client::new(starttls, Some("sai-mật-khẩu")),
        refused("535"),
    )
    .await;
    check_send(
        options(starttls, true),
        Client::new(starttls, None),
        refused("530"),
    )
    .await;
    check_send(
        options(starttls, true),
        Client::new(plain, Some(PASSWORD)),
        Outcome::NoAuthOffered,
    )
    .await;
    check_send(
        options(starttls, false),
        Client {
            trusts_ca: false,
            ..Client::new(starttls, None)
        },
        Outcome::Untrusted,
    )
    .await;

    // SMTPS: TLS from the first byte, so AUTH right away.
    check_send(
        options(implicit, true),
        Client::new(implicit, Some(PASSWORD)),
        delivered(true),
    )
    .await;
    check_send(
        options(implicit, true),
        Client::new(implicit, Some("sai-mật-khẩu")),
        refused("535"),
    )
    .await;
    check_send(
        options(implicit, false),
        Client {
            trusts_ca: false,
            ..Client::new(implicit, None)
        },
        Outcome::Untrusted,
    )
    .await;

    // Plain SMTP on loopback: AUTH without TLS, still required.
    check_send(
        options(plain, true),
        Client::new(plain, Some(PASSWORD)),
        delivered(false),
    )
    .await;
    check_send(
        options(plain, true),
        Client::new(plain, None),
        refused("530"),
    )
    .await;
}

#[tokio::test]
async fn smtp_sink_answers_451_to_the_first_messages_when_told() {
    let server = SmtpServer::start(SmtpOptions {
        fail_first: 2,
        ..options(SmtpTls::StartTls, true)
    })
    .await;
    let client = Client::new(SmtpTls::StartTls, Some(PASSWORD));
    for attempt in 1..=2 {
        let err = send(&server, client, incident_mail())
            .await
            .expect_err("the first two attempts are refused");
        assert!(err.is_transient(), "attempt {attempt}: {err}");
        assert_eq!(
            err.status().map(|code| code.to_string()).as_deref(),
            Some("451")
        );
        assert!(err.to_string().contains("try again later"), "{err}");
        assert!(server.messages().is_empty());
    }
    send(&server, client, incident_mail())
        .await
        .expect("the third attempt is accepted");
    let messages = server.wait_for(1, WAIT).await;
    assert_eq!(messages.len(), 1);
    assert_incident_mail(&messages[0]);
    let refused = server.refused();
    assert_eq!(
        refused
            .iter()
            .map(|envelope| envelope.seq)
            .collect::<Vec<_>>(),
        [1, 2]
    );
    assert!(refused.iter().all(|envelope| envelope.tls
        && envelope.auth_user.as_deref() == Some(USER)
        && envelope.mail_from == "canhbao@daknong.gov.vn"));
}

#[tokio::test]
async fn smtp_sink_stops_and_starts_again_on_the_same_port() {
    let mut server = SmtpServer::start(options(SmtpTls::StartTls, true)).await;
    let client = Client::new(SmtpTls::StartTls, Some(PASSWORD));
    let port = server.port();
    send(&server, client, incident_mail())
        .await
        .expect("sent while up");

    server.stop().await;
    let err = send(&server, client, incident_mail())
        .await
        .expect_err("a stopped sink refuses connections");
    assert_eq!(
        err.status(),
        None,
        "no SMTP reply from a stopped sink: {err}"
    );
    server.stop().await; // Stopping twice is harmless.

    server.start_again().await;
    assert_eq!(server.port(), port);
    send(&server, client, incident_mail())
        .await
        .expect("sent after the restart");
    let messages = server.wait_for(2, WAIT).await;
    assert_eq!(
        messages.iter().map(|mail| mail.seq).collect::<Vec<_>>(),
        [1, 2],
        "numbering goes on across restarts"
    );
    for mail in &messages {
        assert_incident_mail(mail);
    }
}

/// Posts `body` to the receiver with a signature header and returns the status answered.
async fn post(client: &reqwest::Client, url: &str, body: &serde_json::Value) -> u16 {
    client
        .post(url)
        .header("X-CNTT-Signature", "sha256=00ff")
        .json(body)
        .send()
        .await
        .expect("webhook receiver reachable")
        .status()
        .as_u16()
}

#[tokio::test]
async fn webhook_receiver_records_requests_and_fails_when_told() {
    let receiver = WebhookReceiver::start().await;
    let client = reqwest::Client::new();
    let body = serde_json::json!({"number": "SC-2025-0001", "unit": "Huyện Đắk Mil"});
    let before = time::OffsetDateTime::now_utc();

    assert_eq!(post(&client, &receiver.url(), &body).await, 200);
    let requests = receiver.wait_for(1, WAIT).await;
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/hooks/cntt");
    assert_eq!(request.header("x-cntt-signature"), Some("sha256=00ff"));
    assert_eq!(request.header("Content-Type"), Some("application/json"));
    assert_eq!(request.json(), body);
    assert!(request.text().contains("Huyện Đắk Mil"));
    assert_eq!(request.status, 200);
    assert!(request.received_at >= before);

    receiver.fail_next(2, 503);
    let statuses = [
        post(&client, &receiver.url(), &body).await,
        post(&client, &receiver.url(), &body).await,
        post(&client, &receiver.url(), &body).await,
    ];
    assert_eq!(statuses, [503, 503, 200]);
    let recorded: Vec<u16> = receiver
        .wait_for(4, WAIT)
        .await
        .iter()
        .map(|request| request.status.as_u16())
        .collect();
    assert_eq!(
        recorded,
        [200, 503, 503, 200],
        "failed requests are recorded too"
    );
}

#[tokio::test]
async fn webhook_receiver_stops_and_starts_again_on_the_same_port() {
    let mut receiver = WebhookReceiver::start().await;
    let port = receiver.port();
    // One client throughout: its pooled keep-alive connection must die with the receiver.
    let client = reqwest::Client::new();
    let body = serde_json::json!({"n": 1});
    assert_eq!(post(&client, &receiver.url(), &body).await, 200);

    receiver.stop().await;
    let refused = client.post(receiver.url()).json(&body).send().await;
    assert!(
        refused.is_err(),
        "a stopped receiver answers nothing: {refused:?}"
    );

    receiver.start_again().await;
    assert_eq!(receiver.port(), port);
    assert_eq!(post(&client, &receiver.url(), &body).await, 200);
    assert_eq!(receiver.wait_for(2, WAIT).await.len(), 2);
}
