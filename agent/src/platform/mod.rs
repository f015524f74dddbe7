//! What differs between Unix and Windows, behind one small set of functions, so the rest of the
//! agent has no `cfg` in its logic.
//!
//! `unix.rs` and `windows.rs` expose the same functions; this module picks one and re-exports it:
//! where the config file and the state folder live, how the state folder and private files are
//! kept from other users, how a folder's changes are made durable, how CPU use and the load average are read (sysinfo's performance
//! counters on Windows abort under Wine), how the default gateway is found, whether the system has an ICMP echo
//! service usable without privileges (Windows' `icmp.dll`; Unix uses sockets, see
//! `probe/icmp.rs`), and the `cntt-agent service` commands (the Windows service; on Unix the
//! answer names the systemd unit).
//!
//! The pure pieces both sides can test on any machine live here: [`pick_default_route`] (the
//! rule that chooses a default gateway among routes) and [`sddl_is_private`] (whether a
//! folder's access list lets anyone but SYSTEM and the Administrators in).

use std::net::IpAddr;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as imp;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as imp;

pub use imp::{
    create_file, default_config_path, default_gateway, default_state_dir, load_average,
    privacy_problem, restrict_dir, service, sync_dir, system_ping, CpuMeter, SYSTEM_ICMP,
};

/// What `cntt-agent service` is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceAction {
    /// Register the service (automatic start, LocalSystem).
    Install,
    /// Stop it if running and remove it.
    Uninstall,
    /// Start it.
    Start,
    /// Ask it to stop, and wait until it has.
    Stop,
}

/// One route of the system's table, as the rule that picks the default gateway sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Length of the destination prefix: 0 for a default route.
    pub prefix_len: u8,
    /// The next hop; unspecified (`0.0.0.0`, `::`) for an on-link route.
    pub next_hop: IpAddr,
    /// Route metric (on Windows, the route's plus its interface's); lower wins.
    pub metric: u32,
}

/// The default gateway among `routes`: a default route (prefix length 0) through a next hop,
/// IPv4 before IPv6 (every agency network has IPv4), then the lowest metric.
pub fn pick_default_route(routes: &[Route]) -> Option<IpAddr> {
    routes
        .iter()
        .filter(|route| route.prefix_len == 0 && !route.next_hop.is_unspecified())
        .min_by_key(|route| (route.next_hop.is_ipv6(), route.metric))
        .map(|route| route.next_hop)
}

/// The protected access list the state folder gets on Windows, in SDDL: inheritance from the
/// parent cut (`P`), full control for SYSTEM (`SY`) and the Administrators (`BA`) only, inherited
/// by every file and folder inside (`OICI`).
pub const PRIVATE_SDDL: &str = "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)";

/// Whether a DACL written in SDDL (as `ConvertSecurityDescriptorToStringSecurityDescriptorW`
/// writes it) lets only SYSTEM and the Administrators in: every allowing entry names `SY` or
/// `BA`, and the owner's implicit rights are not granted to others. Deny entries are fine.
///
/// A DACL that is absent (`D:NO_ACCESS_CONTROL`) or gives anything to anyone else (Users `BU`,
/// Everyone `WD`, Authenticated Users `AU`, a user's SID) is not private.
pub fn sddl_is_private(sddl: &str) -> bool {
    let Some(dacl) = sddl.split_once("D:").map(|(_, dacl)| dacl) else {
        return false;
    };
    if dacl.starts_with("NO_ACCESS_CONTROL") {
        return false;
    }
    // Each entry is "(type;flags;rights;object;inherited object;sid)"; a following "S:" part
    // (the SACL) is not asked for, so the DACL runs to the end.
    dacl.split('(').skip(1).all(|entry| {
        let fields: Vec<&str> = entry.trim_end_matches(')').split(';').collect();
        match (fields.first(), fields.get(5)) {
            (Some(&kind), Some(&sid)) if kind.starts_with('A') => matches!(sid, "SY" | "BA"),
            (Some(_), Some(_)) => true,
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(prefix_len: u8, next_hop: &str, metric: u32) -> Route {
        Route {
            prefix_len,
            next_hop: next_hop.parse().unwrap(),
            metric,
        }
    }

    fn check_route(routes: &[Route], expected: Option<&str>) {
        let expected = expected.map(|ip| ip.parse::<IpAddr>().unwrap());
        assert_eq!(pick_default_route(routes), expected, "{routes:?}");
    }

    #[test]
    fn default_route_is_ipv4_first_then_lowest_metric() {
        let lan = route(24, "0.0.0.0", 5);
        let wired = route(0, "192.168.2.1", 25);
        let wifi = route(0, "10.10.0.1", 55);
        let ipv6 = route(0, "fe80::1", 1);
        let on_link_default = route(0, "0.0.0.0", 0);
        check_route(&[lan, wifi, wired], Some("192.168.2.1"));
        check_route(&[ipv6, wifi], Some("10.10.0.1"));
        check_route(&[ipv6, lan], Some("fe80::1"));
        check_route(&[on_link_default, lan], None);
        check_route(&[], None);
    }

    fn check_sddl(sddl: &str, expected: bool) {
        assert_eq!(sddl_is_private(sddl), expected, "{sddl}");
    }

    #[test]
    fn only_system_and_administrators_make_a_private_dacl() {
        check_sddl(PRIVATE_SDDL, true);
        check_sddl("O:BAG:SYD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)", true);
        check_sddl("D:P(A;OICIID;FA;;;SY)(D;;FA;;;WD)(A;;FA;;;BA)", true);
        // ProgramData's default: users may read and create.
        check_sddl(
            "D:AI(A;OICIID;FA;;;SY)(A;OICIID;FA;;;BA)(A;OICIID;0x1200a9;;;BU)",
            false,
        );
        check_sddl("D:(A;;FA;;;WD)", false);
        check_sddl("D:(A;;FA;;;S-1-5-21-1-2-3-1001)", false);
        check_sddl("D:NO_ACCESS_CONTROL", false);
        check_sddl("O:BA", false);
        check_sddl("D:(A;broken", false);
    }
}
