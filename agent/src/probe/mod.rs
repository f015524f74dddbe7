//! Probes: how the agent tells whether a target answers.
//!
//! A [`Target`] names something an agency depends on (its gateway, the provincial WAN edge, a
//! portal, a name server) together with the [`Check`] that tells whether it is up.
//! [`Prober::probe`] runs one check and returns an [`Outcome`]. A target being down is an outcome
//! like any other, never an `Err`: a failing probe is data, and its `error` is a short lowercase
//! English phrase that ends up in incident evidence.
//!
//! One file per kind of check: `icmp.rs` (echo over unprivileged or raw ICMP sockets), `tcp.rs`
//! (connect), `http.rs` (GET with reqwest and rustls, with `cert.rs` reading the expiry date of
//! the server's certificate) and `dns.rs` (one A query over UDP, or the system resolver).
//! The default gateway, the first LAN target an agent watches, is found by `crate::platform`.
//!
//! The scheduler turns outcomes into [`cntt_common::wire::ProbeResult`] with [`Target::result`]
//! and writes them to the outbox; this module never touches the outbox or the network beyond the
//! checked target.

mod cert;
mod dns;
mod http;
mod icmp;
mod tcp;
#[cfg(test)]
mod tests;

use std::fmt;
use std::io;
use std::time::Duration;

use cntt_common::wire::{CheckKind, ProbeResult, TargetKind};
use time::OffsetDateTime;

pub use crate::platform::default_gateway;

/// One thing the agent watches: what it is, where it sits and how often it is checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The target's name in the agent's config, unique per agent.
    pub name: String,
    /// Where it sits, which decides what its failure means.
    pub kind: TargetKind,
    /// How it is checked.
    pub check: Check,
    /// Time between two checks.
    pub interval: Duration,
    /// How long one check may take before it counts as failed.
    pub timeout: Duration,
    /// For a LAN target: this is the agency's gateway, whose failure explains every other failure.
    pub gateway: bool,
    /// Code of the information system it checks, in the collector's register.
    pub system: Option<String>,
}

impl Target {
    /// Shapes `outcome`, the latest check of this target, as the event sent to the collector.
    pub fn result(&self, outcome: &Outcome) -> ProbeResult {
        ProbeResult {
            target: self.name.clone(),
            target_kind: self.kind,
            check: self.check.kind(),
            address: self.check.address(),
            ok: outcome.ok,
            rtt_ms: outcome.rtt.map(|rtt| rtt.as_secs_f64() * 1000.0),
            error: outcome.error.clone(),
            http_status: outcome.http_status,
            cert_not_after: outcome.cert_not_after,
        }
    }
}

/// How a target is checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// ICMP echo to a host name or IP address.
    Icmp {
        /// Host name or IP address; names are resolved before every check.
        host: String,
    },
    /// TCP connect.
    Tcp {
        /// `host:port`, e.g. `10.0.0.5:3389` or `mail.example.gov.vn:25`.
        address: String,
    },
    /// HTTP(S) GET.
    Http(HttpCheck),
    /// DNS resolution of a name.
    Dns {
        /// The name server, `ip` or `ip:port` (port 53 by default, IPv6 as `[ip]:port`); `None`
        /// asks the system resolver.
        server: Option<String>,
        /// The name to resolve.
        query: String,
    },
}

impl Check {
    /// The kind of check, as the wire protocol names it.
    pub fn kind(&self) -> CheckKind {
        match self {
            Check::Icmp { .. } => CheckKind::Icmp,
            Check::Tcp { .. } => CheckKind::Tcp,
            Check::Http(_) => CheckKind::Http,
            Check::Dns { .. } => CheckKind::Dns,
        }
    }

    /// What is checked, for people: the host, `host:port`, the URL, or the name (followed by
    /// ` @server` when a server is set, as `dig` writes it).
    pub fn address(&self) -> String {
        match self {
            Check::Icmp { host } => host.clone(),
            Check::Tcp { address } => address.clone(),
            Check::Http(http) => http.url.clone(),
            Check::Dns {
                server: Some(server),
                query,
            } => format!("{query} @{server}"),
            Check::Dns {
                server: None,
                query,
            } => query.clone(),
        }
    }
}

/// An HTTP(S) check: one GET, following at most 5 redirects.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpCheck {
    /// The URL to get, `http://` or `https://`.
    pub url: String,
    /// Statuses that count as up; empty means any of 200..=399.
    pub expect_status: Vec<u16>,
    /// Text the body must contain, searched in its first MiB.
    pub body_contains: Option<String>,
    /// Whether the server's certificate must be trusted by the system's root store and valid for
    /// the host name; `false` accepts any certificate (self-signed internal servers).
    pub tls_verify: bool,
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Whether the check passed.
    pub ok: bool,
    /// Round-trip time: echo reply, TCP connect, HTTP response headers, or DNS answer.
    pub rtt: Option<Duration>,
    /// Why the check failed, as a short lowercase English phrase; `None` when it passed.
    pub error: Option<String>,
    /// The final HTTP status, for HTTP checks that got a response.
    pub http_status: Option<u16>,
    /// When the server's leaf certificate expires, for HTTPS checks that got a response.
    pub cert_not_after: Option<OffsetDateTime>,
}

impl Outcome {
    /// A passed check that took `rtt`.
    pub fn up(rtt: Duration) -> Outcome {
        Outcome {
            ok: true,
            rtt: Some(rtt),
            error: None,
            http_status: None,
            cert_not_after: None,
        }
    }

    /// A failed check, with why.
    pub fn down(error: impl Into<String>) -> Outcome {
        Outcome {
            ok: false,
            rtt: None,
            error: Some(error.into()),
            http_status: None,
            cert_not_after: None,
        }
    }
}

/// Which kind of ICMP socket the agent can open, found once when the [`Prober`] is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IcmpMode {
    /// Unprivileged ICMP datagram sockets (Linux, when `net.ipv4.ping_group_range` includes the
    /// agent's group); the kernel fills in the identifier and checksum.
    Unprivileged,
    /// Raw ICMP sockets (root or `CAP_NET_RAW`).
    Raw,
    /// The system's echo service, which needs no privilege (Windows' `icmp.dll`).
    System,
    /// Neither works; ICMP checks fail with `reason`, which says how to enable them.
    Unavailable {
        /// Why, and how to enable ICMP checks.
        reason: String,
    },
}

impl fmt::Display for IcmpMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IcmpMode::Unprivileged => f.write_str("unprivileged icmp sockets"),
            IcmpMode::Raw => f.write_str("raw icmp sockets"),
            IcmpMode::System => f.write_str("the system's icmp echo service"),
            IcmpMode::Unavailable { reason } => write!(f, "unavailable: {reason}"),
        }
    }
}

/// Runs checks. Built once per agent and shared behind an `Arc`; calls to [`Prober::probe`] may
/// run concurrently, each on its own sockets.
#[derive(Debug, Clone)]
pub struct Prober {
    /// Which ICMP sockets work on this machine.
    icmp_mode: IcmpMode,
    /// The two HTTP clients, built once.
    http: http::Clients,
}

impl Prober {
    /// Finds which ICMP sockets this process may open and builds the HTTP clients.
    ///
    /// Never fails: when ICMP sockets cannot be opened, ICMP checks fail with a message saying
    /// how to enable them (see [`IcmpMode::Unavailable`]); when an HTTP client cannot be built,
    /// HTTP checks fail saying why.
    pub fn new() -> Prober {
        Prober {
            icmp_mode: icmp::detect_mode(),
            http: http::Clients::new(),
        }
    }

    /// A prober with a given ICMP mode, to test what checks do in each.
    #[cfg(test)]
    fn with_icmp_mode(icmp_mode: IcmpMode) -> Prober {
        Prober {
            icmp_mode,
            http: http::Clients::new(),
        }
    }

    /// Which ICMP sockets ICMP checks use, for the startup log.
    pub fn icmp_mode(&self) -> &IcmpMode {
        &self.icmp_mode
    }

    /// Runs `check` once and reports its outcome.
    ///
    /// Gives up after `timeout` with the error `timed out after <timeout>`; the sockets of a
    /// check given up are closed. Host names are resolved within the same time.
    pub async fn probe(&self, check: &Check, timeout: Duration) -> Outcome {
        let run = async {
            match check {
                Check::Icmp { host } => icmp::ping(&self.icmp_mode, host, timeout).await,
                Check::Tcp { address } => tcp::connect(address).await,
                Check::Http(http_check) => http::get(&self.http, http_check).await,
                Check::Dns {
                    server: Some(server),
                    query,
                } => dns::query_server(server, query).await,
                Check::Dns {
                    server: None,
                    query,
                } => dns::query_system(query).await,
            }
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(outcome) => outcome,
            Err(_elapsed) => Outcome::down(timed_out(timeout)),
        }
    }
}

impl Default for Prober {
    fn default() -> Prober {
        Prober::new()
    }
}

/// The error of a check that ran out of time.
fn timed_out(timeout: Duration) -> String {
    format!("timed out after {}", humantime::format_duration(timeout))
}

/// A short lowercase phrase for an I/O error: its kind when the kind says it all
/// (`connection refused`), else the operating system's message without `(os error N)`.
fn io_error_text(err: &io::Error) -> String {
    use io::ErrorKind::*;
    match err.kind() {
        ConnectionRefused | ConnectionReset | ConnectionAborted | NotConnected | AddrInUse
        | AddrNotAvailable | HostUnreachable | NetworkUnreachable | NetworkDown
        | PermissionDenied | TimedOut | BrokenPipe | UnexpectedEof => err.kind().to_string(),
        _ => {
            let text = err.to_string();
            let text = match text.find(" (os error") {
                Some(end) => &text[..end],
                None => &text,
            };
            text.to_lowercase()
        }
    }
}
