//! DNS resolution, the check that tells "the Internet is down" from "only name resolution is".
//!
//! With a server set, one A query goes over UDP to that server, encoded and decoded here: a full
//! DNS library would be a large dependency for one question. Without one, the system resolver
//! (`getaddrinfo`) answers, as it would for every program on the machine.
//!
//! Wire format (RFC 1035, section 4): a 12-byte header (id, flags with QR bit and RCODE in the low
//! 4 bits, then question, answer, authority and additional counts, all big-endian u16), then the
//! questions (name as length-prefixed labels ending in 0, type, class) and the answers (name,
//! type, class, TTL u32, data length, data). Names in answers may end with a 2-byte compression
//! pointer (top two bits set); we never follow pointers, only skip them.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use tokio::net::UdpSocket;

use super::{io_error_text, Outcome};

/// The standard DNS port.
const DNS_PORT: u16 = 53;
/// Record type A (IPv4 address).
const TYPE_A: u16 = 1;
/// Class IN (Internet).
const CLASS_IN: u16 = 1;
/// Header flags of a query: recursion desired.
const FLAGS_RD: u16 = 0x0100;
/// The QR bit: set in responses.
const FLAG_QR: u16 = 0x8000;
/// The largest UDP response read (EDNS-sized responses are cut, which only loses records).
const MAX_RESPONSE: usize = 4096;

/// Resolves `query` with the system resolver; up when it yields at least one address.
pub(super) async fn query_system(query: &str) -> Outcome {
    let start = Instant::now();
    match tokio::net::lookup_host((query, 0)).await {
        Ok(mut addresses) => match addresses.next() {
            Some(_) => Outcome::up(start.elapsed()),
            None => Outcome::down("no answer"),
        },
        Err(err) => {
            // getaddrinfo's message reads "failed to lookup address information: <reason>".
            let text = io_error_text(&err);
            let reason = text.rsplit(": ").next().unwrap_or(&text);
            Outcome::down(format!("cannot resolve name: {reason}"))
        }
    }
}

/// Asks `server` (`ip` or `ip:port`) for the A records of `query`; up when it answers NOERROR
/// with at least one A record. The round-trip time runs from sending the query to its answer.
pub(super) async fn query_server(server: &str, query: &str) -> Outcome {
    let Some(server) = parse_server(server) else {
        return Outcome::down("invalid dns server address");
    };
    let random = uuid::Uuid::new_v4();
    let id = u16::from_be_bytes([random.as_bytes()[0], random.as_bytes()[1]]);
    let request = match encode_query(id, query) {
        Ok(request) => request,
        Err(err) => return Outcome::down(err),
    };
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (IpAddr::from([0u8; 4]), 0).into(),
        SocketAddr::V6(_) => (IpAddr::from([0u16; 8]), 0).into(),
    };
    let socket = match UdpSocket::bind(local).await {
        Ok(socket) => socket,
        Err(err) => {
            return Outcome::down(format!("cannot open udp socket: {}", io_error_text(&err)))
        }
    };
    // A connected socket only receives from the server, and hears "port unreachable" as
    // "connection refused".
    if let Err(err) = socket.connect(server).await {
        return Outcome::down(io_error_text(&err));
    }
    let start = Instant::now();
    if let Err(err) = socket.send(&request).await {
        return Outcome::down(io_error_text(&err));
    }
    let mut buffer = vec![0u8; MAX_RESPONSE];
    loop {
        let n_bytes = match socket.recv(&mut buffer).await {
            Ok(n_bytes) => n_bytes,
            Err(err) => return Outcome::down(io_error_text(&err)),
        };
        // A late answer to an earlier query, or garbage: keep waiting for ours.
        let Some(response) =
            decode_response(&buffer[..n_bytes]).filter(|response| response.id == id)
        else {
            continue;
        };
        return match (response.rcode, response.n_addresses) {
            (0, 0) => Outcome::down("no answer"),
            (0, _) => Outcome::up(start.elapsed()),
            (rcode, _) => Outcome::down(rcode_name(rcode)),
        };
    }
}

/// Reads `ip`, `ip:port` or `[ipv6]:port`, with port 53 by default.
fn parse_server(server: &str) -> Option<SocketAddr> {
    let server = server.trim();
    if let Ok(address) = server.parse::<SocketAddr>() {
        return Some(address);
    }
    let ip = server
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(server);
    ip.parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, DNS_PORT))
}

/// The usual name of a response code, as `dig` prints it.
fn rcode_name(rcode: u8) -> String {
    match rcode {
        1 => "FORMERR".to_owned(),
        2 => "SERVFAIL".to_owned(),
        3 => "NXDOMAIN".to_owned(),
        4 => "NOTIMP".to_owned(),
        5 => "REFUSED".to_owned(),
        other => format!("rcode {other}"),
    }
}

/// Encodes a recursive query for the A records of `name`.
fn encode_query(id: u16, name: &str) -> Result<Vec<u8>, &'static str> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return Err("invalid name");
    }
    let mut packet = Vec::with_capacity(18 + name.len());
    packet.extend_from_slice(&id.to_be_bytes());
    packet.extend_from_slice(&FLAGS_RD.to_be_bytes());
    packet.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        let valid = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
        if !valid {
            return Err("invalid name");
        }
        packet.push(label.len() as u8);
        packet.extend_from_slice(label.as_bytes());
    }
    packet.push(0);
    packet.extend_from_slice(&TYPE_A.to_be_bytes());
    packet.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(packet)
}

/// What we read of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Response {
    /// The id of the query answered.
    id: u16,
    /// The response code: 0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, ...
    rcode: u8,
    /// How many A records of class IN the answer section holds.
    n_addresses: usize,
}

/// Decodes a response; `None` when it is not a well-formed response.
fn decode_response(packet: &[u8]) -> Option<Response> {
    let word = |at: usize| {
        packet
            .get(at..at + 2)
            .map(|bytes| u16::from_be_bytes([bytes[0], bytes[1]]))
    };
    let id = word(0)?;
    let flags = word(2)?;
    if flags & FLAG_QR == 0 {
        return None;
    }
    let n_questions = word(4)?;
    let n_answers = word(6)?;
    let mut at = 12;
    for _ in 0..n_questions {
        at = skip_name(packet, at)? + 4;
    }
    let mut n_addresses = 0;
    for _ in 0..n_answers {
        at = skip_name(packet, at)?;
        let (record_type, class, data_len) = (word(at)?, word(at + 2)?, word(at + 8)?);
        at += 10 + usize::from(data_len);
        if at > packet.len() {
            return None;
        }
        if record_type == TYPE_A && class == CLASS_IN && data_len == 4 {
            n_addresses += 1;
        }
    }
    Some(Response {
        id,
        rcode: (flags & 0x000f) as u8,
        n_addresses,
    })
}

/// The offset just past the name starting at `at`; a compression pointer ends a name.
fn skip_name(packet: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *packet.get(at)?;
        match len >> 6 {
            0b00 if len == 0 => return Some(at + 1),
            0b00 => at += 1 + usize::from(len),
            0b11 => return packet.get(at + 1).map(|_| at + 2),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries() {
        let check = |name: &str, expected: Result<&[u8], &str>| {
            assert_eq!(
                encode_query(0xabcd, name).as_deref().map_err(|err| *err),
                expected,
                "{name:?}"
            );
        };
        let query: &[u8] = b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\
            \x03www\x07daknong\x03gov\x02vn\x00\x00\x01\x00\x01";
        check("www.daknong.gov.vn", Ok(query));
        check("www.daknong.gov.vn.", Ok(query));
        check("", Err("invalid name"));
        check(".", Err("invalid name"));
        check("a..b", Err("invalid name"));
        check("sở.gov.vn", Err("invalid name"));
        check(&format!("{}.vn", "a".repeat(64)), Err("invalid name"));
        check(&["a"; 128].join("."), Err("invalid name"));
    }

    #[test]
    fn responses() {
        let check = |packet: &[u8], expected: Option<(u8, usize)>| {
            let got =
                decode_response(packet).map(|response| (response.rcode, response.n_addresses));
            assert_eq!(got, expected, "{packet:02x?}");
        };
        let question: &[u8] = b"\x03www\x02vn\x00\x00\x01\x00\x01";
        let header = |flags: u16, n_answers: u8| {
            let mut header = vec![0xab, 0xcd];
            header.extend_from_slice(&flags.to_be_bytes());
            header.extend_from_slice(&[0, 1, 0, n_answers, 0, 0, 0, 0]);
            header
        };
        let a_record: &[u8] = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x0e\x10\x00\x04\x7f\x00\x00\x01";
        let cname_record: &[u8] = b"\xc0\x0c\x00\x05\x00\x01\x00\x00\x0e\x10\x00\x05\x02cn\xc0\x10";
        let a_record_full_name: &[u8] =
            b"\x03www\x02vn\x00\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x0a\x00\x00\x01";
        check(
            &[header(0x8180, 1), question.into(), a_record.into()].concat(),
            Some((0, 1)),
        );
        check(
            &[
                header(0x8180, 3),
                question.into(),
                cname_record.into(),
                a_record.into(),
                a_record_full_name.into(),
            ]
            .concat(),
            Some((0, 2)),
        );
        check(
            &[header(0x8180, 1), question.into(), cname_record.into()].concat(),
            Some((0, 0)),
        );
        check(&[header(0x8183, 0), question.into()].concat(), Some((3, 0)));
        check(&[header(0x8182, 0), question.into()].concat(), Some((2, 0)));
        // A query, not a response.
        check(&[header(0x0100, 0), question.into()].concat(), None);
        // Truncated in the question, in the answer's data, and in a pointer.
        check(&[header(0x8180, 0), question[..5].into()].concat(), None);
        let full = [header(0x8180, 1), question.into(), a_record.into()].concat();
        check(&full[..full.len() - 1], None);
        check(
            &[header(0x8180, 1), question.into(), vec![0xc0]].concat(),
            None,
        );
        // A label length with the reserved top bits 01.
        check(
            &[header(0x8180, 1), question.into(), vec![0x41, 0]].concat(),
            None,
        );
        check(&[], None);
    }

    #[test]
    fn servers() {
        let check = |text: &str, expected: Option<&str>| {
            assert_eq!(
                parse_server(text),
                expected.map(|address| address.parse().unwrap()),
                "{text:?}"
            );
        };
        check("10.0.0.1", Some("10.0.0.1:53"));
        check("10.0.0.1:5353", Some("10.0.0.1:5353"));
        check("::1", Some("[::1]:53"));
        check("[::1]", Some("[::1]:53"));
        check("[::1]:5353", Some("[::1]:5353"));
        check("dns.google", None);
        check("10.0.0.1:port", None);
    }
}
