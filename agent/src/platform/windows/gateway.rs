//! Finds the default gateway on Windows from the routing table iphlpapi keeps
//! (`GetIpForwardTable2`, IPv4 and IPv6 in one call); the rule that picks one is the pure
//! [`crate::platform::pick_default_route`].

#![allow(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ptr;

use windows_sys::Win32::Foundation::NO_ERROR;
use windows_sys::Win32::NetworkManagement::IpHelper::{
    FreeMibTable, GetIpForwardTable2, MIB_IPFORWARD_TABLE2,
};
use windows_sys::Win32::Networking::WinSock::{AF_INET, AF_INET6, AF_UNSPEC, SOCKADDR_INET};

use crate::platform::{pick_default_route, Route};

/// The default gateway of this machine: the IPv4 one with the lowest metric, else the IPv6 one;
/// `None` when there is none or the table cannot be read.
pub fn default_gateway() -> Option<IpAddr> {
    pick_default_route(&routes()?)
}

/// Every route of the system's table (IPv4 and IPv6).
fn routes() -> Option<Vec<Route>> {
    let mut table: *mut MIB_IPFORWARD_TABLE2 = ptr::null_mut();
    // SAFETY: on success the system allocates `table`, freed with FreeMibTable below.
    let status = unsafe { GetIpForwardTable2(AF_UNSPEC, &mut table) };
    if status != NO_ERROR || table.is_null() {
        tracing::debug!(status, "cannot read the routing table");
        return None;
    }
    // SAFETY: the table holds `NumEntries` rows from its `Table` field on (a C flexible array).
    let rows = unsafe {
        std::slice::from_raw_parts((*table).Table.as_ptr(), (*table).NumEntries as usize)
    };
    let routes = rows
        .iter()
        .filter_map(|row| {
            Some(Route {
                prefix_len: row.DestinationPrefix.PrefixLength,
                next_hop: address(&row.NextHop)?,
                metric: row.Metric,
            })
        })
        .collect();
    // SAFETY: `table` came from GetIpForwardTable2 and is freed once, after its last use.
    unsafe { FreeMibTable(table.cast()) };
    Some(routes)
}

/// The IP address in a `SOCKADDR_INET`, by its family.
fn address(socket: &SOCKADDR_INET) -> Option<IpAddr> {
    // SAFETY: every variant starts with the family, which says which variant is filled in.
    unsafe {
        match socket.si_family {
            AF_INET => Some(IpAddr::V4(Ipv4Addr::from(
                socket.Ipv4.sin_addr.S_un.S_addr.to_ne_bytes(),
            ))),
            AF_INET6 => Some(IpAddr::V6(Ipv6Addr::from(socket.Ipv6.sin6_addr.u.Byte))),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs on the Windows target (under Wine in `scripts/test`): the table can be read, has the
    /// loopback routes every stack has, and the gateway found, if any, is one of its next hops.
    #[test]
    fn routing_table_is_read() {
        let routes = routes().expect("GetIpForwardTable2 answers");
        assert!(!routes.is_empty(), "a routing table has routes");
        match default_gateway() {
            Some(gateway) => assert!(
                routes
                    .iter()
                    .any(|route| route.prefix_len == 0 && route.next_hop == gateway),
                "{gateway} is the next hop of a default route in {routes:?}"
            ),
            None => assert!(
                routes
                    .iter()
                    .all(|route| route.prefix_len != 0 || route.next_hop.is_unspecified()),
                "no gateway though {routes:?} has a default route"
            ),
        }
    }
}
