//! A real SMTP server for notification tests, and the mail it received, decoded.
//!
//! [`SmtpServer`] runs `tests/smtp_sink.py` (Python's aiosmtpd) as its own process on
//! 127.0.0.1: plain SMTP, STARTTLS or implicit TLS with a certificate made by the collector's own
//! `tls::init`, optionally demanding AUTH, optionally refusing the first messages with
//! `451 4.3.0 try again later`. The sink files every accepted message in a folder (the layout is
//! described at the top of `smtp_sink.py`); [`SmtpServer::messages`] reads that folder back and
//! decodes each message with `mailparse` (RFC 2047 headers, quoted-printable and base64 parts,
//! charsets), so tests assert on the Vietnamese text people will read.
//!
//! A missing `python3` or aiosmtpd is a failure that says how to install it, never a skip;
//! `scripts/test` installs both.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use cntt_common::Secret;
use serde::Deserialize;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long the sink may take to print `ready` (Python starts in well under a second).
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How long the sink may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The exit code of `smtp_sink.py` when aiosmtpd cannot be imported.
const EXIT_NO_AIOSMTPD: i32 = 3;

/// The address the sink listens on.
const HOST: &str = "127.0.0.1";

/// How the sink encrypts its connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain SMTP, no TLS on offer.
    #[default]
    None,
    /// Plain SMTP offering STARTTLS (port 587 style); with AUTH, TLS comes first.
    StartTls,
    /// TLS from the first byte (SMTPS, port 465 style).
    Implicit,
}

/// The one user the sink accepts when it demands AUTH.
#[derive(Debug, Clone)]
pub struct SmtpCredentials {
    /// User name.
    pub user: String,
    /// Password; must not contain a newline.
    pub password: Secret,
}

/// How an [`SmtpServer`] behaves.
#[derive(Debug, Clone, Default)]
pub struct SmtpOptions {
    /// Plain, STARTTLS or implicit TLS.
    pub tls: SmtpTls,
    /// When set, AUTH PLAIN or LOGIN with these credentials is required before MAIL.
    pub auth: Option<SmtpCredentials>,
    /// The first this many messages are refused after DATA with `451 4.3.0 try again later`
    /// (counted again from zero by [`SmtpServer::start_again`]).
    pub fail_first: u32,
}

/// The envelope of one message as the sink saw it (`<seq>.json` or `refused-<n>.json`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Envelope {
    /// Order of arrival, from 1: accepted and refused messages are numbered apart.
    pub seq: u64,
    /// `MAIL FROM` address.
    pub mail_from: String,
    /// `RCPT TO` addresses, in order (Bcc recipients appear here only).
    pub rcpt_tos: Vec<String>,
    /// The client's `IP:PORT`.
    pub peer: String,
    /// The user that authenticated, if any.
    pub auth_user: Option<String>,
    /// Whether the message travelled over TLS (STARTTLS or implicit).
    pub tls: bool,
    /// When the sink finished receiving it, Unix milliseconds.
    pub received_at_ms: i64,
}

/// One accepted message: its envelope, its main headers decoded and its text parts decoded.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// Order of arrival, from 1, across [`SmtpServer::stop`] and [`SmtpServer::start_again`].
    pub seq: u64,
    /// `MAIL FROM` address.
    pub mail_from: String,
    /// `RCPT TO` addresses, in order.
    pub rcpt_tos: Vec<String>,
    /// The client's `IP:PORT`.
    pub peer: String,
    /// The user that authenticated, if any.
    pub auth_user: Option<String>,
    /// Whether the message travelled over TLS.
    pub tls: bool,
    /// When the sink finished receiving it, Unix milliseconds.
    pub received_at_ms: i64,
    /// `Subject`, RFC 2047 encoded words decoded.
    pub subject: Option<String>,
    /// `From`, decoded (`Name <address>` as written).
    pub from: Option<String>,
    /// `To`, decoded.
    pub to: Option<String>,
    /// `Cc`, decoded.
    pub cc: Option<String>,
    /// `Message-ID`.
    pub message_id: Option<String>,
    /// `Date`, as written.
    pub date: Option<String>,
    /// Every header of the message in order, names as written, values decoded.
    pub headers: Vec<(String, String)>,
    /// The first `text/plain` part that is not an attachment, decoded to UTF-8, line ends `\n`.
    pub text: Option<String>,
    /// The first `text/html` part that is not an attachment, decoded to UTF-8, line ends `\n`.
    pub html: Option<String>,
    /// The message exactly as received.
    pub raw: Vec<u8>,
}

impl ReceivedMail {
    /// The first header called `name` (any case), decoded.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The bare addresses of an address header (`To`, `Cc`, `From`, `Reply-To`), in order, with
    /// groups flattened; empty when the header is absent.
    ///
    /// # Panics
    ///
    /// When the header is not a valid address list.
    pub fn addresses(&self, name: &str) -> Vec<String> {
        let parsed = mailparse::parse_mail(&self.raw).expect("the sink's message parsed before");
        let Some(header) = parsed
            .headers
            .iter()
            .find(|header| header.get_key_ref().eq_ignore_ascii_case(name))
        else {
            return Vec::new();
        };
        let list = mailparse::addrparse_header(header)
            .unwrap_or_else(|err| panic!("header {name} is not an address list: {err}"));
        list.iter()
            .flat_map(|address| match address {
                mailparse::MailAddr::Single(single) => vec![single.addr.clone()],
                mailparse::MailAddr::Group(group) => group
                    .addrs
                    .iter()
                    .map(|single| single.addr.clone())
                    .collect(),
            })
            .collect()
    }
}

/// A running `smtp_sink.py`, killed when dropped.
#[derive(Debug)]
pub struct SmtpServer {
    options: SmtpOptions,
    /// The port the sink listens on; kept while it is stopped, so that it comes back there.
    port: u16,
    /// Holds `mail/` (the sink's folder), `tls/` and `smtp_sink.log` (the sink's stderr).
    dir: TempDir,
    ca_pem: Option<PathBuf>,
    /// The sink process; `None` while stopped. `Drop` kills and reaps it.
    child: Option<Child>,
}

impl SmtpServer {
    /// Starts a sink on a free port of 127.0.0.1 and waits until it listens.
    ///
    /// # Panics
    ///
    /// When `python3` or aiosmtpd is missing (the message says how to install them), or the sink
    /// does not start (the message holds its output).
    pub async fn start(options: SmtpOptions) -> SmtpServer {
        let dir = tempfile::tempdir().expect("temporary folder");
        let ca_pem = match options.tls {
            SmtpTls::None => None,
            SmtpTls::StartTls | SmtpTls::Implicit => {
                let hosts = ["localhost".to_owned(), HOST.to_owned()];
                let files =
                    cntt_collector::config::tls::init(&dir.path().join("tls"), &hosts, false)
                        .expect("making the SMTP sink's certificates");
                Some(files.ca_cert)
            }
        };
        let mut server = SmtpServer {
            options,
            port: 0,
            dir,
            ca_pem,
            child: None,
        };
        server.spawn().await;
        server
    }

    /// The port the sink listens on (the same after [`SmtpServer::start_again`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1`, where the sink listens.
    pub fn host(&self) -> &str {
        HOST
    }

    /// The CA that signed the sink's certificate (valid for `localhost` and `127.0.0.1`); `None`
    /// without TLS. Clients must trust it and nothing else.
    pub fn ca_pem(&self) -> Option<&Path> {
        self.ca_pem.as_deref()
    }

    /// The folder where the sink files messages.
    pub fn maildir(&self) -> PathBuf {
        self.dir.path().join("mail")
    }

    /// Every message accepted so far, in order of arrival.
    ///
    /// # Panics
    ///
    /// When a filed message cannot be read or is not a parsable message.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        let maildir = self.maildir();
        let mut seqs: Vec<u64> = file_names(&maildir)
            .iter()
            .filter_map(|name| name.strip_suffix(".eml")?.parse().ok())
            .collect();
        seqs.sort_unstable();
        seqs.into_iter()
            .map(|seq| {
                // The sink renames <seq>.json into place before <seq>.eml.
                let envelope = read_envelope(&maildir.join(format!("{seq}.json")));
                let raw_path = maildir.join(format!("{seq}.eml"));
                let raw = std::fs::read(&raw_path)
                    .unwrap_or_else(|err| panic!("reading {}: {err}", raw_path.display()));
                decode(envelope, raw)
            })
            .collect()
    }

    /// The envelopes of the messages refused by [`SmtpOptions::fail_first`], in order.
    pub fn refused(&self) -> Vec<Envelope> {
        let maildir = self.maildir();
        let mut envelopes: Vec<Envelope> = file_names(&maildir)
            .iter()
            .filter(|name| name.starts_with("refused-") && name.ends_with(".json"))
            .map(|name| read_envelope(&maildir.join(name)))
            .collect();
        envelopes.sort_by_key(|envelope| envelope.seq);
        envelopes
    }

    /// Waits until at least `n` messages were accepted and returns them all.
    ///
    /// # Panics
    ///
    /// After `timeout`, naming what did arrive.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            if tokio::time::Instant::now() > deadline {
                let subjects: Vec<_> = messages.iter().map(|mail| &mail.subject).collect();
                panic!(
                    "timed out after {timeout:?} waiting for {n} messages; {} arrived: {subjects:?}",
                    messages.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the sink with SIGTERM, as an SMTP server going down: new connections are refused
    /// until [`SmtpServer::start_again`]. The port and the messages received are kept.
    ///
    /// # Panics
    ///
    /// When the signal cannot be sent.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            let pid = i32::try_from(pid)
                .ok()
                .and_then(rustix::process::Pid::from_raw)
                .expect("a child's process id is a positive i32");
            // The process may have just exited on its own, which is as good as stopped.
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        match tokio::time::timeout(STOP_TIMEOUT, child.wait()).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => panic!("waiting for the SMTP sink to exit: {err}"),
            Err(_) => {
                let _ = child.kill().await;
                panic!(
                    "the SMTP sink did not exit within {STOP_TIMEOUT:?} of SIGTERM; its log:\n{}",
                    self.log()
                );
            }
        }
    }

    /// Starts the sink again after [`SmtpServer::stop`], on the same port, with the same
    /// certificate, credentials and folder (numbering goes on; `fail_first` counts afresh).
    ///
    /// # Panics
    ///
    /// When the port was taken meanwhile, or as [`SmtpServer::start`].
    pub async fn start_again(&mut self) {
        if self.child.is_none() {
            self.spawn().await;
        }
    }

    /// Runs `smtp_sink.py` on `self.port` (0 the first time) and records the port it chose.
    async fn spawn(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("smtp_sink.py");
        let log_path = self.dir.path().join("smtp_sink.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("opening the SMTP sink's log");
        let mut command = Command::new("python3");
        command
            .arg(&script)
            .args(["--host", HOST, "--port", &self.port.to_string()])
            .arg("--maildir")
            .arg(self.maildir())
            .args(["--fail-first", &self.options.fail_first.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true);
        if self.options.tls != SmtpTls::None {
            let tls = self.dir.path().join("tls");
            command
                .arg("--tls-cert")
                .arg(tls.join("server.pem"))
                .arg("--tls-key")
                .arg(tls.join("server-key.pem"));
        }
        if self.options.tls == SmtpTls::Implicit {
            command.arg("--implicit-tls");
        }
        if let Some(auth) = &self.options.auth {
            command.args([
                "--auth",
                &format!("{}:{}", auth.user, auth.password.expose()),
            ]);
        }
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => panic!(
                "python3 is not installed, and the SMTP tests need it with aiosmtpd: \
                 apt-get install python3 python3-pip && pip install aiosmtpd \
                 (scripts/test does this)"
            ),
            Err(err) => panic!("starting {}: {err}", script.display()),
        };
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(START_TIMEOUT, lines.next_line()).await;
        let port = match first {
            Ok(Ok(Some(line))) => match line.strip_prefix("ready ").map(str::parse::<u16>) {
                Some(Ok(port)) => port,
                _ => {
                    let _ = child.kill().await;
                    panic!("the SMTP sink printed {line:?} instead of `ready PORT`");
                }
            },
            // Standard output closed: the sink exited before listening.
            Ok(Ok(None) | Err(_)) => {
                let status = child.wait().await.expect("waiting for the SMTP sink");
                self.explain_failed_start(status);
            }
            Err(_) => {
                let _ = child.kill().await;
                panic!(
                    "the SMTP sink did not print `ready` within {START_TIMEOUT:?}; its log:\n{}",
                    self.log()
                );
            }
        };
        assert!(
            self.port == 0 || self.port == port,
            "the SMTP sink came back on port {port}, not {}",
            self.port
        );
        self.port = port;
        self.child = Some(child);
    }

    fn explain_failed_start(&self, status: ExitStatus) -> ! {
        if status.code() == Some(EXIT_NO_AIOSMTPD) {
            panic!(
                "the Python package aiosmtpd is missing, and the SMTP tests need it: \
                 pip install aiosmtpd (scripts/test does this)\n{}",
                self.log()
            );
        }
        panic!(
            "the SMTP sink did not start on port {} ({status}); its log:\n{}",
            self.port,
            self.log()
        );
    }

    /// What the sink wrote on stderr so far.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("smtp_sink.log")).unwrap_or_default()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = child.start_kill();
        // Reap it here, briefly blocking: the test process may exit before tokio's reaper runs,
        // which would leave a zombie behind.
        for _ in 0..200 {
            match child.try_wait() {
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Ok(Some(_)) | Err(_) => break,
            }
        }
    }
}

/// The names of the files in `dir`; none when it does not exist yet.
fn file_names(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .collect()
}

fn read_envelope(path: &Path) -> Envelope {
    let text =
        std::fs::read(path).unwrap_or_else(|err| panic!("reading {}: {err}", path.display()));
    serde_json::from_slice(&text)
        .unwrap_or_else(|err| panic!("{} is not an envelope: {err}", path.display()))
}

/// Decodes a received message into a [`ReceivedMail`].
fn decode(envelope: Envelope, raw: Vec<u8>) -> ReceivedMail {
    let parsed = mailparse::parse_mail(&raw)
        .unwrap_or_else(|err| panic!("message {} is not a MIME message: {err}", envelope.seq));
    let headers: Vec<(String, String)> = parsed
        .headers
        .iter()
        .map(|header| (header.get_key(), header.get_value()))
        .collect();
    let first = |name: &str| {
        headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.clone())
    };
    let mut text = None;
    let mut html = None;
    collect_text_parts(&parsed, &mut text, &mut html, envelope.seq);
    ReceivedMail {
        subject: first("Subject"),
        from: first("From"),
        to: first("To"),
        cc: first("Cc"),
        message_id: first("Message-ID"),
        date: first("Date"),
        headers,
        text,
        html,
        seq: envelope.seq,
        mail_from: envelope.mail_from,
        rcpt_tos: envelope.rcpt_tos,
        peer: envelope.peer,
        auth_user: envelope.auth_user,
        tls: envelope.tls,
        received_at_ms: envelope.received_at_ms,
        raw,
    }
}

/// Walks the MIME tree depth first and keeps the first inline `text/plain` and `text/html`.
fn collect_text_parts(
    part: &mailparse::ParsedMail<'_>,
    text: &mut Option<String>,
    html: &mut Option<String>,
    seq: u64,
) {
    if !part.subparts.is_empty() {
        for subpart in &part.subparts {
            collect_text_parts(subpart, text, html, seq);
        }
        return;
    }
    let disposition = part.get_content_disposition().disposition;
    if disposition == mailparse::DispositionType::Attachment {
        return;
    }
    let slot = match part.ctype.mimetype.as_str() {
        "text/plain" => text,
        "text/html" => html,
        _ => return,
    };
    if slot.is_none() {
        let body = part
            .get_body()
            .unwrap_or_else(|err| panic!("message {seq}: undecodable text part: {err}"));
        *slot = Some(body.replace("\r\n", "\n"));
    }
}
