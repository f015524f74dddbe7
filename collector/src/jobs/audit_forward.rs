//! A copy of every audit entry off the machine (issue 13): each committed entry is sent to a
//! syslog server as an RFC 5424 message, over UDP (RFC 5426), TCP with octet counting (RFC 6587)
//! or TLS (RFC 5425), per `[audit.syslog]`.
//!
//! # Design note
//!
//! - **Never in the way.** The store tells the forwarder of an entry after its transaction has
//!   committed ([`crate::store::AuditSink`]); the forwarder only puts it in a bounded queue
//!   (`audit.syslog.queue`, 10,000 by default) and returns. One task sends, in order. A database
//!   write is therefore never delayed or failed by syslog.
//! - **Server away.** A message that cannot be sent is retried, with a backoff from 1 s to 30 s,
//!   while the next ones wait in the queue; a full queue drops new entries, each counted in
//!   `cntt_collector_audit_forward_dropped_total` and logged (the first of a run of drops, then
//!   every 1,000th). The database keeps every entry and `audit verify` still checks them; the
//!   copy has a gap, which the hashes in it show.
//! - **Delivery.** UDP has no acknowledgement, and neither has syslog over TCP: a message written
//!   just before the server went away can be lost. Before each write over TCP the forwarder
//!   checks that the server has not closed the connection, which catches a restarted server.
//! - **Message.** `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] BOM MSG`: PRI from the
//!   facility and a severity by outcome (`ok` notice, `denied` warning, anything else error);
//!   TIMESTAMP the entry's time in UTC with milliseconds; MSGID the action; one SD-ELEMENT
//!   `cntt-audit@32473` (32473 is the enterprise number RFC 5612 reserves for documentation: we
//!   have none of our own) with the entry's fields and its chain hash; MSG a readable line in
//!   UTF-8, after the byte order mark RFC 5424 asks for. Target and details are cut to
//!   [`MAX_FIELD_CHARS`] characters so a message fits a datagram; the hash still covers the
//!   whole entry in the database.
//! - **At shutdown** `Store::close` gives the queue up to 3 s to empty.

use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use prometheus::IntCounter;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;

use crate::config::{AuditConfig, SyslogConfig, SyslogTransport, SYSLOG_FACILITIES};
use crate::store::{from_millis, AuditEntry, AuditSink, AuditTap, Store};

/// Longest target or details kept in a message, in characters.
pub const MAX_FIELD_CHARS: usize = 2_000;

/// The SD-ID of the element carrying the audit fields.
pub const SD_ID: &str = "cntt-audit@32473";

/// Time allowed to connect or to write one message.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest wait between two attempts to send a message.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The checked settings of the forwarder.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `host:port` of the server.
    pub address: String,
    /// How messages travel.
    pub transport: SyslogTransport,
    /// Facility number (0 to 23).
    pub facility: u8,
    /// APP-NAME.
    pub app_name: String,
    /// HOSTNAME.
    pub hostname: String,
    /// PROCID: this process's id.
    pub procid: u32,
    /// Most entries waiting.
    pub queue: usize,
    /// The TLS client for `tls`.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Settings {
    /// Settings from the checked `[audit.syslog]` table; loads the CA file for `tls`.
    ///
    /// # Errors
    ///
    /// When the CA file cannot be read or holds no certificate.
    pub fn from_config(config: &SyslogConfig) -> anyhow::Result<Settings> {
        let facility = SYSLOG_FACILITIES
            .iter()
            .position(|name| *name == config.facility)
            .with_context(|| format!("unknown syslog facility {:?}", config.facility))?;
        let hostname = if config.hostname.is_empty() {
            machine_name()
        } else {
            config.hostname.clone()
        };
        let tls = match (&config.transport, &config.ca_file) {
            (SyslogTransport::Tls, Some(ca_file)) => Some(tls_client(ca_file)?),
            _ => None,
        };
        Ok(Settings {
            address: config.address.clone(),
            transport: config.transport,
            facility: u8::try_from(facility).expect("24 facilities fit in u8"),
            app_name: config.app_name.clone(),
            hostname,
            procid: std::process::id(),
            queue: config.queue,
            tls,
        })
    }
}

/// This machine's name for HOSTNAME, or `-` (the NILVALUE) when it has none we can send.
fn machine_name() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name = name.trim();
    if name.is_empty() || name.len() > 255 || !name.bytes().all(|b| (33..=126).contains(&b)) {
        "-".to_owned()
    } else {
        name.to_owned()
    }
}

/// A TLS client trusting only the CA in `ca_file`.
fn tls_client(ca_file: &Path) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca_file)
        .with_context(|| format!("reading audit.syslog.ca_file {}", ca_file.display()))?
    {
        let cert = cert.with_context(|| format!("parsing {}", ca_file.display()))?;
        roots
            .add(cert)
            .with_context(|| format!("adding a CA of {}", ca_file.display()))?;
    }
    if roots.is_empty() {
        anyhow::bail!(
            "audit.syslog.ca_file {} holds no certificate",
            ca_file.display()
        );
    }
    let config = rustls::ClientConfig::builder_with_provider(crate::config::tls::provider())
        .with_safe_default_protocol_versions()
        .context("choosing TLS versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Gives `store` a forwarder when `[audit.syslog]` is set; `dropped` counts entries the full
/// queue refused (a counter of the metrics registry for `serve`, any counter for a command).
/// Must be called inside the Tokio runtime: it starts the sending task.
///
/// # Errors
///
/// When the settings cannot be used (the CA file of `tls`).
pub fn attach(store: Store, config: &AuditConfig, dropped: IntCounter) -> anyhow::Result<Store> {
    let Some(syslog) = &config.syslog else {
        return Ok(store);
    };
    let settings = Settings::from_config(syslog)?;
    Ok(store.with_audit_tap(start(settings, dropped)))
}

/// Starts the sending task and returns the tap the store tells.
pub fn start(settings: Settings, dropped: IntCounter) -> AuditTap {
    let (sender, receiver) = mpsc::channel(settings.queue);
    let pending = Arc::new(AtomicUsize::new(0));
    tokio::spawn(run(settings, receiver, pending.clone()));
    AuditTap::new(Forwarder {
        sender,
        pending,
        dropped,
        dropped_in_run: AtomicU64::new(0),
    })
}

/// The queue's sending end, as the store sees it.
struct Forwarder {
    /// Sends entries to [`run`]; closed when the last store clone is dropped, which ends it.
    sender: mpsc::Sender<AuditEntry>,
    /// Entries queued or being sent.
    pending: Arc<AtomicUsize>,
    /// Entries dropped because the queue was full.
    dropped: IntCounter,
    /// Drops since the queue last took an entry, to log only some of them.
    dropped_in_run: AtomicU64,
}

impl AuditSink for Forwarder {
    fn tell(&self, entry: &AuditEntry) {
        self.pending.fetch_add(1, Ordering::SeqCst);
        if self.sender.try_send(entry.clone()).is_ok() {
            self.dropped_in_run.store(0, Ordering::Relaxed);
            return;
        }
        self.pending.fetch_sub(1, Ordering::SeqCst);
        self.dropped.inc();
        let run = self.dropped_in_run.fetch_add(1, Ordering::Relaxed);
        if run.is_multiple_of(1_000) {
            tracing::warn!(
                id = entry.id,
                dropped_in_a_row = run + 1,
                "syslog forwarding queue is full: audit entry not forwarded (it is in the database)"
            );
        }
    }

    fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }
}

/// An open way to the server.
enum Connection {
    Udp(UdpSocket),
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// Sends queued entries in order until every store is gone, retrying each until it goes.
async fn run(
    settings: Settings,
    mut receiver: mpsc::Receiver<AuditEntry>,
    pending: Arc<AtomicUsize>,
) {
    let mut connection: Option<Connection> = None;
    while let Some(entry) = receiver.recv().await {
        let message = format_message(&settings, &entry);
        let mut backoff = Duration::from_secs(1);
        let mut failures = 0_u32;
        loop {
            match send(&settings, &mut connection, &message).await {
                Ok(()) => break,
                Err(err) => {
                    connection = None;
                    if failures == 0 {
                        tracing::warn!(error = %format!("{err:#}"), address = %settings.address, id = entry.id,
                            "cannot forward audit entries to syslog; retrying");
                    }
                    failures += 1;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        if failures > 0 {
            tracing::info!(address = %settings.address, "forwarding audit entries to syslog again");
        }
        pending.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Sends one message, opening the connection first when there is none.
async fn send(
    settings: &Settings,
    connection: &mut Option<Connection>,
    message: &str,
) -> anyhow::Result<()> {
    if let Some(Connection::Tcp(stream)) = connection {
        // A syslog server never writes to us: readable means it closed the connection.
        let mut byte = [0_u8; 1];
        match stream.try_read(&mut byte) {
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
            _ => *connection = None,
        }
    }
    if connection.is_none() {
        *connection = Some(
            tokio::time::timeout(IO_TIMEOUT, connect(settings))
                .await
                .context("connecting to the syslog server timed out")??,
        );
    }
    let framed = format!("{} {message}", message.len());
    let sent = async {
        match connection.as_mut().expect("connected above") {
            Connection::Udp(socket) => socket.send(message.as_bytes()).await.map(|_| ()),
            Connection::Tcp(stream) => stream.write_all(framed.as_bytes()).await,
            Connection::Tls(stream) => {
                stream.write_all(framed.as_bytes()).await?;
                stream.flush().await
            }
        }
    };
    tokio::time::timeout(IO_TIMEOUT, sent)
        .await
        .context("writing to the syslog server timed out")?
        .context("writing to the syslog server")
}

/// Opens the transport of `settings`.
async fn connect(settings: &Settings) -> anyhow::Result<Connection> {
    let address = &settings.address;
    match settings.transport {
        SyslogTransport::Udp => {
            let target = tokio::net::lookup_host(address)
                .await
                .with_context(|| format!("resolving {address}"))?
                .next()
                .with_context(|| format!("{address} has no address"))?;
            let local = if target.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            };
            let socket = UdpSocket::bind(local)
                .await
                .context("opening a UDP socket")?;
            socket
                .connect(target)
                .await
                .with_context(|| format!("connecting UDP to {address}"))?;
            Ok(Connection::Udp(socket))
        }
        SyslogTransport::Tcp => Ok(Connection::Tcp(
            TcpStream::connect(address)
                .await
                .with_context(|| format!("connecting TCP to {address}"))?,
        )),
        SyslogTransport::Tls => {
            let config = settings
                .tls
                .clone()
                .context("TLS transport without a TLS client")?;
            let host = address
                .rsplit_once(':')
                .map_or(address.as_str(), |(host, _)| host)
                .trim_start_matches('[')
                .trim_end_matches(']');
            let name = rustls::pki_types::ServerName::try_from(host.to_owned())
                .with_context(|| format!("{host} is not a server name"))?;
            let stream = TcpStream::connect(address)
                .await
                .with_context(|| format!("connecting TCP to {address}"))?;
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, stream)
                .await
                .with_context(|| format!("TLS handshake with {address}"))?;
            Ok(Connection::Tls(Box::new(stream)))
        }
    }
}

/// The RFC 5424 message of an entry (see the module's design note).
pub fn format_message(settings: &Settings, entry: &AuditEntry) -> String {
    let severity = match entry.outcome.as_str() {
        "ok" => 5,
        "denied" => 4,
        _ => 3,
    };
    let pri = u32::from(settings.facility) * 8 + severity;
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    let timestamp = from_millis(entry.at)
        .format(&format)
        .expect("a stored time formats");
    let msgid = header_field(&entry.action, 32);
    let mut sd = format!(
        "[{SD_ID} id=\"{}\" at=\"{}\" actor=\"{}\" action=\"{}\" target=\"{}\" outcome=\"{}\"",
        entry.id,
        entry.at,
        param(&entry.actor),
        param(&entry.action),
        param(&cut(&entry.target)),
        param(&entry.outcome)
    );
    if let Some(address) = &entry.remote_addr {
        sd.push_str(&format!(" remote_addr=\"{}\"", param(address)));
    }
    sd.push_str(&format!(" details=\"{}\"", param(&cut(&entry.details))));
    if let Some(hash) = &entry.hash {
        sd.push_str(&format!(" hash=\"{hash}\""));
    }
    sd.push(']');
    let text = format!(
        "{} {} {}: {}",
        entry.actor,
        entry.action,
        cut(&entry.target),
        entry.outcome
    );
    format!(
        "<{pri}>1 {timestamp} {} {} {} {msgid} {sd} \u{feff}{text}",
        header_field(&settings.hostname, 255),
        header_field(&settings.app_name, 48),
        settings.procid,
    )
}

/// A header field: printable ASCII without spaces, at most `max` characters, `-` when empty.
fn header_field(text: &str, max: usize) -> String {
    let field: String = text
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if field.is_empty() {
        "-".to_owned()
    } else {
        field
    }
}

/// A PARAM-VALUE: `"`, `\` and `]` escaped with a backslash.
fn param(text: &str) -> String {
    let mut value = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '"' | '\\' | ']') {
            value.push('\\');
        }
        value.push(c);
    }
    value
}

/// `text` cut to [`MAX_FIELD_CHARS`] characters, marked with `…` when cut.
fn cut(text: &str) -> String {
    match text.char_indices().nth(MAX_FIELD_CHARS) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            address: "127.0.0.1:514".into(),
            transport: SyslogTransport::Udp,
            facility: 10,
            app_name: "cntt-collector".into(),
            hostname: "collector.so-tttt".into(),
            procid: 4242,
            queue: 10,
            tls: None,
        }
    }

    fn check(entry: AuditEntry, expected: &str) {
        assert_eq!(format_message(&settings(), &entry), expected);
    }

    #[test]
    fn messages_follow_rfc_5424() {
        let entry = AuditEntry {
            id: 7,
            at: 1_795_431_599_999,
            actor: "anonymous".into(),
            action: "auth.failed".into(),
            target: "/api/v1/units\"]\\".into(),
            outcome: "denied".into(),
            remote_addr: Some("10.0.0.1".into()),
            details: r#"{"reason":"unknown"}"#.into(),
            hash: Some("ab".repeat(32)),
        };
        check(
            entry.clone(),
            &format!(
                "<84>1 2026-11-23T10:59:59.999Z collector.so-tttt cntt-collector 4242 auth.failed \
                 [cntt-audit@32473 id=\"7\" at=\"1795431599999\" actor=\"anonymous\" action=\"auth.failed\" \
                 target=\"/api/v1/units\\\"\\]\\\\\" outcome=\"denied\" remote_addr=\"10.0.0.1\" \
                 details=\"{{\\\"reason\\\":\\\"unknown\\\"}}\" hash=\"{}\"] \u{feff}anonymous auth.failed \
                 /api/v1/units\"]\\: denied",
                "ab".repeat(32)
            ),
        );
        // An entry of the command line: notice, no address; Vietnamese stays UTF-8.
        check(
            AuditEntry {
                outcome: "ok".into(),
                actor: "cli:root".into(),
                action: "unit.import".into(),
                target: "Đắk Mil".into(),
                remote_addr: None,
                details: "{}".into(),
                hash: None,
                ..entry
            },
            "<85>1 2026-11-23T10:59:59.999Z collector.so-tttt cntt-collector 4242 unit.import \
             [cntt-audit@32473 id=\"7\" at=\"1795431599999\" actor=\"cli:root\" action=\"unit.import\" \
             target=\"Đắk Mil\" outcome=\"ok\" details=\"{}\"] \u{feff}cli:root unit.import Đắk Mil: ok",
        );
        assert_eq!(header_field("a b\tc", 2), "ab");
        assert_eq!(header_field("", 5), "-");
        assert_eq!(cut(&"x".repeat(5_000)).chars().count(), MAX_FIELD_CHARS + 1);
    }
}
