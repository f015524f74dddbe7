//! ICMP echo on Windows without administrator rights: `IcmpSendEcho2` (IPv4) and
//! `Icmp6SendEcho2` (IPv6) from iphlpapi, which any user may call, where raw sockets need an
//! administrator. The calls block; `probe/icmp.rs` runs each on its own thread, bounded by the
//! check's timeout, which is also passed to the call.

#![allow(unsafe_code)]

use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ptr;
use std::time::Duration;

use windows_sys::Win32::Foundation::{HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::NetworkManagement::IpHelper::{
    Icmp6CreateFile, Icmp6SendEcho2, IcmpCloseHandle, IcmpCreateFile, IcmpSendEcho2,
    ICMPV6_ECHO_REPLY_LH, ICMP_ECHO_REPLY, IP_DEST_HOST_UNREACHABLE, IP_DEST_NET_UNREACHABLE,
    IP_DEST_PORT_UNREACHABLE, IP_DEST_PROT_UNREACHABLE, IP_DEST_UNREACHABLE, IP_REQ_TIMED_OUT,
    IP_SUCCESS, IP_TTL_EXPIRED_REASSEM, IP_TTL_EXPIRED_TRANSIT,
};
use windows_sys::Win32::Networking::WinSock::{AF_INET6, SOCKADDR_IN6};

/// Our echo request's payload.
const PAYLOAD: &[u8; 16] = b"cntt-agent-echo!";

/// An ICMP handle, closed when dropped.
struct IcmpHandle(HANDLE);

impl Drop for IcmpHandle {
    fn drop(&mut self) {
        // SAFETY: the handle came from Icmp(6)CreateFile and is closed once.
        unsafe { IcmpCloseHandle(self.0) };
    }
}

/// Sends one echo request to `ip` and waits up to `timeout` for the reply: the round trip, or
/// why not (the same short phrases as the socket path: `destination unreachable`, `time to live
/// exceeded`, `timed out`).
///
/// # Errors
///
/// When no reply came, with the reason.
pub fn system_ping(ip: IpAddr, timeout: Duration) -> Result<Duration, String> {
    let timeout_ms = u32::try_from(timeout.as_millis())
        .unwrap_or(u32::MAX)
        .max(1);
    match ip {
        IpAddr::V4(ip) => ping_v4(ip, timeout_ms),
        IpAddr::V6(ip) => ping_v6(ip, timeout_ms),
    }
}

fn ping_v4(ip: Ipv4Addr, timeout_ms: u32) -> Result<Duration, String> {
    // SAFETY: no arguments; INVALID_HANDLE_VALUE on failure.
    let handle = unsafe { IcmpCreateFile() };
    if handle == INVALID_HANDLE_VALUE {
        return Err(format!(
            "icmp.dll unavailable: {}",
            std::io::Error::last_os_error()
        ));
    }
    let handle = IcmpHandle(handle);
    // Room for one reply, its echoed payload, an ICMP error's quoted header, and the
    // IO_STATUS_BLOCK the documentation asks for; u64 keeps the reply aligned.
    let mut buffer = [0u64; 64];
    let buffer_len = std::mem::size_of_val(&buffer) as u32;
    // SAFETY: synchronous call (no event, no APC); the request and reply buffers outlive it and
    // their sizes are given. The address is in network byte order, as the API expects.
    let n_replies = unsafe {
        IcmpSendEcho2(
            handle.0,
            ptr::null_mut(),
            None,
            ptr::null(),
            u32::from_ne_bytes(ip.octets()),
            PAYLOAD.as_ptr().cast(),
            PAYLOAD.len() as u16,
            ptr::null(),
            buffer.as_mut_ptr().cast(),
            buffer_len,
            timeout_ms,
        )
    };
    if n_replies == 0 {
        return Err(failure(std::io::Error::last_os_error()));
    }
    // SAFETY: with at least one reply, the buffer starts with an ICMP_ECHO_REPLY (8-aligned).
    let reply = unsafe { &*(buffer.as_ptr().cast::<ICMP_ECHO_REPLY>()) };
    outcome(reply.Status, reply.RoundTripTime)
}

fn ping_v6(ip: Ipv6Addr, timeout_ms: u32) -> Result<Duration, String> {
    // SAFETY: no arguments; INVALID_HANDLE_VALUE on failure.
    let handle = unsafe { Icmp6CreateFile() };
    if handle == INVALID_HANDLE_VALUE {
        return Err(format!(
            "icmp.dll unavailable: {}",
            std::io::Error::last_os_error()
        ));
    }
    let handle = IcmpHandle(handle);
    // SAFETY: SOCKADDR_IN6 is plain data; all zeros is the unspecified source address.
    let source: SOCKADDR_IN6 = unsafe { std::mem::zeroed() };
    // SAFETY: as above; the family and address are then filled in.
    let mut destination: SOCKADDR_IN6 = unsafe { std::mem::zeroed() };
    destination.sin6_family = AF_INET6;
    destination.sin6_addr.u.Byte = ip.octets();
    let mut buffer = [0u64; 64];
    let buffer_len = std::mem::size_of_val(&buffer) as u32;
    // SAFETY: synchronous call; every pointer outlives it and sizes are given.
    let n_replies = unsafe {
        Icmp6SendEcho2(
            handle.0,
            ptr::null_mut(),
            None,
            ptr::null(),
            &source,
            &destination,
            PAYLOAD.as_ptr().cast(),
            PAYLOAD.len() as u16,
            ptr::null(),
            buffer.as_mut_ptr().cast(),
            buffer_len,
            timeout_ms,
        )
    };
    if n_replies == 0 {
        return Err(failure(std::io::Error::last_os_error()));
    }
    debug_assert!(size_of::<ICMPV6_ECHO_REPLY_LH>() <= std::mem::size_of_val(&buffer));
    // SAFETY: with at least one reply, the buffer starts with an ICMPV6_ECHO_REPLY_LH.
    let reply = unsafe { &*(buffer.as_ptr().cast::<ICMPV6_ECHO_REPLY_LH>()) };
    outcome(reply.Status, reply.RoundTripTime)
}

/// A reply's status as the outcome of the check.
fn outcome(status: u32, round_trip_ms: u32) -> Result<Duration, String> {
    match status {
        IP_SUCCESS => Ok(Duration::from_millis(u64::from(round_trip_ms))),
        other => Err(status_text(other)),
    }
}

/// Why a call returned no reply: the status iphlpapi left as the last error.
fn failure(err: std::io::Error) -> String {
    match err.raw_os_error() {
        Some(code) => status_text(code as u32),
        None => err.to_string(),
    }
}

/// The short phrase for an `IP_*` status, as the socket path words it.
fn status_text(status: u32) -> String {
    match status {
        IP_REQ_TIMED_OUT => "timed out".to_owned(),
        IP_DEST_NET_UNREACHABLE
        | IP_DEST_HOST_UNREACHABLE
        | IP_DEST_PROT_UNREACHABLE
        | IP_DEST_PORT_UNREACHABLE
        | IP_DEST_UNREACHABLE => "destination unreachable".to_owned(),
        IP_TTL_EXPIRED_TRANSIT | IP_TTL_EXPIRED_REASSEM => "time to live exceeded".to_owned(),
        other => format!("icmp error {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_like_the_socket_path() {
        assert_eq!(outcome(IP_SUCCESS, 3), Ok(Duration::from_millis(3)));
        assert_eq!(outcome(IP_REQ_TIMED_OUT, 0), Err("timed out".to_owned()));
        assert_eq!(
            outcome(IP_DEST_HOST_UNREACHABLE, 0),
            Err("destination unreachable".to_owned())
        );
        assert_eq!(
            outcome(IP_TTL_EXPIRED_TRANSIT, 0),
            Err("time to live exceeded".to_owned())
        );
    }

    /// Runs on the Windows target (under Wine in `scripts/test`, where Wine answers loopback
    /// echoes itself or through the host's ICMP sockets): the loopback address answers.
    #[test]
    fn loopback_answers() {
        let rtt = system_ping(IpAddr::V4(Ipv4Addr::LOCALHOST), Duration::from_secs(2));
        assert!(rtt.is_ok(), "{rtt:?}");
    }
}
