//! ICMP echo ("ping"), the check for LAN and WAN equipment that answers nothing else.
//!
//! Two kinds of socket can send echo requests. Unprivileged ICMP datagram sockets (Linux, when
//! `net.ipv4.ping_group_range` includes the process's group; most distributions allow every
//! group) need no privilege: the kernel sets the identifier, computes the checksum and delivers
//! only this socket's replies, without IP header. Raw ICMP sockets need root or `CAP_NET_RAW`:
//! they see every ICMP packet the host receives, IPv4 ones with their IP header, so replies are
//! matched on sequence number and a random payload. [`detect_mode`] picks the first that opens,
//! once, when the prober is built; [`ping`] opens a fresh socket per check so concurrent checks
//! never share one.
//!
//! Windows needs an administrator for raw ICMP sockets and has no datagram ones, but offers an
//! echo service any user may call (`icmp.dll`, see `platform/windows/icmp.rs`): where the
//! platform has one ([`crate::platform::SYSTEM_ICMP`]), it is used instead of sockets, one
//! thread per blocking call, so no check waits for another.
//!
//! Packet layout (RFC 792, RFC 4443): type, code, checksum (16 bits), identifier (16 bits),
//! sequence (16 bits), then our 16-byte random payload. Echo request is type 8 (IPv4) or 128
//! (IPv6); echo reply is 0 or 129. The kernel computes ICMPv6 checksums itself.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use super::{io_error_text, IcmpMode, Outcome};

/// Length of the random payload that identifies our echo request.
const TOKEN_LEN: usize = 16;

/// Finds which ICMP sockets this process may open: unprivileged first, then raw.
pub(super) fn detect_mode() -> IcmpMode {
    if crate::platform::SYSTEM_ICMP {
        return IcmpMode::System;
    }
    let dgram = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::ICMPV4));
    if dgram.is_ok() {
        return IcmpMode::Unprivileged;
    }
    match Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)) {
        Ok(_) => IcmpMode::Raw,
        Err(err) => IcmpMode::Unavailable {
            reason: unavailable_reason(&io_error_text(&err)),
        },
    }
}

/// What ICMP checks report when no ICMP socket can be opened, with how to allow one.
pub(super) fn unavailable_reason(why: &str) -> String {
    if cfg!(target_os = "linux") {
        format!(
            "icmp sockets unavailable ({why}): allow unprivileged ping with \
             sysctl net.ipv4.ping_group_range=\"0 2147483647\", \
             or give the agent CAP_NET_RAW (or run it as root) for raw sockets"
        )
    } else {
        format!(
            "icmp sockets unavailable ({why}): run the agent as root or administrator \
             (raw sockets need CAP_NET_RAW or equivalent)"
        )
    }
}

/// Sends one echo request to `host` and waits for its reply; the caller bounds the time, which
/// the system's echo service is given too (`timeout`).
pub(super) async fn ping(mode: &IcmpMode, host: &str, timeout: Duration) -> Outcome {
    let socket_type = match mode {
        IcmpMode::Unprivileged => Type::DGRAM,
        IcmpMode::Raw => Type::RAW,
        IcmpMode::System => return system_ping(host, timeout).await,
        IcmpMode::Unavailable { reason } => return Outcome::down(reason.clone()),
    };
    let ip = match resolve(host).await {
        Ok(ip) => ip,
        Err(err) => return Outcome::down(err),
    };
    let socket = match open(ip, socket_type) {
        Ok(socket) => socket,
        Err(err) => {
            return Outcome::down(format!("cannot open icmp socket: {}", io_error_text(&err)))
        }
    };
    let token: [u8; TOKEN_LEN] = *uuid::Uuid::new_v4().as_bytes();
    let identifier = u16::from_be_bytes([token[0], token[1]]);
    let sequence = u16::from_be_bytes([token[2], token[3]]);
    let request = echo_request(ip.is_ipv4(), identifier, sequence, &token);
    let start = Instant::now();
    if let Err(err) = socket.send_to(&request, SocketAddr::new(ip, 0)).await {
        return Outcome::down(format!("cannot send echo request: {}", io_error_text(&err)));
    }
    let mut buffer = [0u8; 1500];
    loop {
        let (n_bytes, from) = match socket.recv_from(&mut buffer).await {
            Ok(received) => received,
            Err(err) => return Outcome::down(io_error_text(&err)),
        };
        let packet = &buffer[..n_bytes];
        match classify(ip.is_ipv4(), packet, sequence, &token) {
            Reply::Echo if from.ip() == ip => return Outcome::up(start.elapsed()),
            Reply::Unreachable => return Outcome::down("destination unreachable"),
            Reply::TimeExceeded => return Outcome::down("time to live exceeded"),
            Reply::Echo | Reply::Other => continue,
        }
    }
}

/// One echo through the system's service, on a thread of its own since the call blocks.
async fn system_ping(host: &str, timeout: Duration) -> Outcome {
    let ip = match resolve(host).await {
        Ok(ip) => ip,
        Err(err) => return Outcome::down(err),
    };
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("icmp-echo".into())
        .spawn(move || {
            let _ = sender.send(crate::platform::system_ping(ip, timeout));
        });
    if let Err(err) = spawned {
        return Outcome::down(format!("cannot start icmp echo: {}", io_error_text(&err)));
    }
    match receiver.await {
        Ok(Ok(rtt)) => Outcome::up(rtt),
        Ok(Err(reason)) => Outcome::down(reason),
        Err(_) => Outcome::down("icmp echo ended without an answer"),
    }
}

/// Resolves `host` to one address, IPv4 first since every agency network has it.
async fn resolve(host: &str) -> Result<IpAddr, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip);
    }
    let addresses: Vec<IpAddr> = match tokio::net::lookup_host((host, 0)).await {
        Ok(addresses) => addresses.map(|address| address.ip()).collect(),
        Err(_) => return Err("cannot resolve host".to_owned()),
    };
    addresses
        .iter()
        .find(|ip| ip.is_ipv4())
        .or_else(|| addresses.first())
        .copied()
        .ok_or_else(|| "cannot resolve host".to_owned())
}

/// Opens a non-blocking ICMP socket of `socket_type` for `ip`'s family, registered with tokio.
fn open(ip: IpAddr, socket_type: Type) -> std::io::Result<tokio::net::UdpSocket> {
    let (domain, protocol) = match ip {
        IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4),
        IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6),
    };
    let socket = Socket::new(domain, socket_type, Some(protocol))?;
    socket.set_nonblocking(true)?;
    // Tokio's UDP socket only calls sendto and recvfrom, which ICMP sockets answer the same way.
    tokio::net::UdpSocket::from_std(socket.into())
}

/// Encodes an echo request carrying `token` as payload.
fn echo_request(ipv4: bool, identifier: u16, sequence: u16, token: &[u8]) -> Vec<u8> {
    let kind = if ipv4 { 8 } else { 128 };
    let mut packet = vec![kind, 0, 0, 0];
    packet.extend_from_slice(&identifier.to_be_bytes());
    packet.extend_from_slice(&sequence.to_be_bytes());
    packet.extend_from_slice(token);
    if ipv4 {
        let sum = checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    packet
}

/// The Internet checksum (RFC 1071) of `data`.
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in data.chunks(2) {
        let word = match pair {
            [high, low] => u16::from_be_bytes([*high, *low]),
            [high] => u16::from_be_bytes([*high, 0]),
            _ => 0,
        };
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// What a received packet means for our echo request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reply {
    /// The reply to our request.
    Echo,
    /// A router or the host says our request cannot be delivered.
    Unreachable,
    /// Our request's time to live ran out on the way.
    TimeExceeded,
    /// Someone else's packet, our own request seen on loopback, or garbage.
    Other,
}

/// Reads a received ICMP packet (with or without its IPv4 header) against our request's
/// `sequence` and `token`.
fn classify(ipv4: bool, packet: &[u8], sequence: u16, token: &[u8]) -> Reply {
    let icmp = if ipv4 {
        strip_ipv4_header(packet)
    } else {
        Some(packet)
    };
    let Some(icmp) = icmp else {
        return Reply::Other;
    };
    let (echo_reply, unreachable, time_exceeded) = if ipv4 { (0, 3, 11) } else { (129, 1, 3) };
    match icmp.first() {
        Some(&kind) if kind == echo_reply => {
            let same_sequence = icmp.get(6..8) == Some(&sequence.to_be_bytes()[..]);
            let same_token = icmp.get(8..) == Some(token);
            if same_sequence && same_token {
                Reply::Echo
            } else {
                Reply::Other
            }
        }
        Some(&kind) if kind == unreachable || kind == time_exceeded => {
            // The error quotes our request: its IP header, then at least 8 bytes of ICMP.
            let quoted = icmp.get(8..).and_then(|inner| {
                if ipv4 {
                    strip_ipv4_header(inner)
                } else {
                    inner.get(40..)
                }
            });
            let ours = quoted
                .is_some_and(|request| request.get(6..8) == Some(&sequence.to_be_bytes()[..]));
            match (ours, kind == unreachable) {
                (false, _) => Reply::Other,
                (true, true) => Reply::Unreachable,
                (true, false) => Reply::TimeExceeded,
            }
        }
        _ => Reply::Other,
    }
}

/// The ICMP part of `packet`, skipping an IPv4 header when there is one (raw sockets, and
/// datagram sockets on BSDs). ICMP types with 4 in the high nibble are never echo traffic, so a
/// first byte `0x4_` means an IPv4 header.
fn strip_ipv4_header(packet: &[u8]) -> Option<&[u8]> {
    let first = *packet.first()?;
    if first >> 4 != 4 {
        return Some(packet);
    }
    let header_len = usize::from(first & 0x0f) * 4;
    packet.get(header_len..)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: [u8; TOKEN_LEN] = *b"cntt-agent-token";

    /// An IPv4 header of 20 bytes, as raw sockets deliver it.
    fn ipv4_header() -> Vec<u8> {
        let mut header = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0];
        header.extend_from_slice(&[127, 0, 0, 1, 127, 0, 0, 1]);
        header
    }

    fn reply(kind: u8, sequence: u16, token: &[u8]) -> Vec<u8> {
        let mut packet = vec![kind, 0, 0, 0, 0x12, 0x34];
        packet.extend_from_slice(&sequence.to_be_bytes());
        packet.extend_from_slice(token);
        packet
    }

    fn error_quoting(kind: u8, quoted_header: &[u8], sequence: u16) -> Vec<u8> {
        let mut packet = vec![kind, 1, 0, 0, 0, 0, 0, 0];
        packet.extend_from_slice(quoted_header);
        packet.extend_from_slice(&reply(8, sequence, &[])[..8]);
        packet
    }

    fn check(ipv4: bool, packet: &[u8], expected: Reply) {
        assert_eq!(classify(ipv4, packet, 7, &TOKEN), expected, "{packet:02x?}");
    }

    #[test]
    fn replies_are_matched_on_sequence_and_token() {
        let with_header = |icmp: Vec<u8>| [ipv4_header(), icmp].concat();
        check(true, &reply(0, 7, &TOKEN), Reply::Echo);
        check(true, &with_header(reply(0, 7, &TOKEN)), Reply::Echo);
        check(true, &with_header(reply(0, 8, &TOKEN)), Reply::Other);
        check(
            true,
            &with_header(reply(0, 7, b"someone-elses-pl")),
            Reply::Other,
        );
        check(true, &with_header(reply(8, 7, &TOKEN)), Reply::Other);
        check(
            true,
            &with_header(error_quoting(3, &ipv4_header(), 7)),
            Reply::Unreachable,
        );
        check(
            true,
            &with_header(error_quoting(11, &ipv4_header(), 7)),
            Reply::TimeExceeded,
        );
        check(
            true,
            &with_header(error_quoting(3, &ipv4_header(), 9)),
            Reply::Other,
        );
        check(true, &[], Reply::Other);
        check(true, &[0x45, 0, 0], Reply::Other);
        check(false, &reply(129, 7, &TOKEN), Reply::Echo);
        check(false, &reply(128, 7, &TOKEN), Reply::Other);
        check(false, &error_quoting(1, &[0x60; 40], 7), Reply::Unreachable);
        check(false, &error_quoting(1, &[0x60; 12], 7), Reply::Other);
    }

    #[test]
    fn echo_request_has_a_valid_checksum() {
        let request = echo_request(true, 0x1234, 7, &TOKEN);
        assert_eq!(&request[..2], &[8, 0]);
        assert_eq!(&request[4..8], &[0x12, 0x34, 0, 7]);
        assert_eq!(
            checksum(&request),
            0,
            "a packet with its checksum sums to zero"
        );
        // RFC 1071's worked example.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
        assert_eq!(echo_request(false, 1, 2, &TOKEN)[..4], [128, 0, 0, 0]);
    }
}
