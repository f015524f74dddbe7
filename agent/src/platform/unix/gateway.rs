//! Finds the default gateway, the first LAN target an agent watches without being told: when it
//! stops answering, everything beyond it (WAN, Internet, servers) fails for the same reason.
//!
//! On Linux the kernel's routing table is text in `/proc/net/route` (IPv4) and
//! `/proc/net/ipv6_route` (IPv6); reading is separated from parsing so the parsers are tested on
//! sample text. Other Unix systems have no gateway discovery yet; Windows asks its routing table
//! (`platform/windows/gateway.rs`).
//!
//! `/proc/net/route`: a header line, then one route per line, tab-separated:
//! `Iface Destination Gateway Flags RefCnt Use Metric Mask MTU Window IRTT`, with addresses as 8
//! hex digits of the address in host (little-endian on x86 and ARM) byte order and flags in hex
//! (`RTF_UP` = 1, `RTF_GATEWAY` = 2).
//!
//! `/proc/net/ipv6_route`: no header, space-separated: destination (32 hex digits, network
//! order), prefix length (hex), source, source prefix length, next hop, metric, reference count,
//! use count, flags (all hex), interface.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Route flag: the route is up.
const RTF_UP: u32 = 0x1;
/// Route flag: the destination is reached through a gateway.
const RTF_GATEWAY: u32 = 0x2;

/// The default gateway of this machine: the IPv4 one with the lowest metric, else the IPv6 one;
/// `None` when there is none or on Unix systems other than Linux.
pub fn default_gateway() -> Option<IpAddr> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let ipv4 = std::fs::read_to_string("/proc/net/route")
        .ok()
        .and_then(|text| parse_route(&text));
    match ipv4 {
        Some(gateway) => Some(IpAddr::V4(gateway)),
        None => std::fs::read_to_string("/proc/net/ipv6_route")
            .ok()
            .and_then(|text| parse_ipv6_route(&text))
            .map(IpAddr::V6),
    }
}

/// The IPv4 default gateway in `/proc/net/route` text: the up route through a gateway to
/// 0.0.0.0/0 with the lowest metric.
fn parse_route(text: &str) -> Option<Ipv4Addr> {
    let hex = |field: &str| u32::from_str_radix(field, 16).ok();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (destination, gateway, flags, metric, mask) = (
                hex(fields.get(1)?)?,
                hex(fields.get(2)?)?,
                hex(fields.get(3)?)?,
                fields.get(6)?.parse::<u32>().ok()?,
                hex(fields.get(7)?)?,
            );
            let is_default = destination == 0 && mask == 0;
            let usable = flags & (RTF_UP | RTF_GATEWAY) == RTF_UP | RTF_GATEWAY && gateway != 0;
            // The kernel prints the address in host byte order.
            (is_default && usable).then(|| (metric, Ipv4Addr::from(gateway.to_ne_bytes())))
        })
        .min_by_key(|(metric, _)| *metric)
        .map(|(_, gateway)| gateway)
}

/// The IPv6 default gateway in `/proc/net/ipv6_route` text: the up route through a gateway to
/// ::/0 with the lowest metric.
fn parse_ipv6_route(text: &str) -> Option<Ipv6Addr> {
    let address = |field: &str| u128::from_str_radix(field, 16).ok().map(Ipv6Addr::from);
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (destination, prefix_len, next_hop, metric, flags) = (
                address(fields.first()?)?,
                u8::from_str_radix(fields.get(1)?, 16).ok()?,
                address(fields.get(4)?)?,
                u32::from_str_radix(fields.get(5)?, 16).ok()?,
                u32::from_str_radix(fields.get(8)?, 16).ok()?,
            );
            let is_default = destination.is_unspecified() && prefix_len == 0;
            let usable = flags & (RTF_UP | RTF_GATEWAY) == RTF_UP | RTF_GATEWAY
                && !next_hop.is_unspecified();
            (is_default && usable).then_some((metric, next_hop))
        })
        .min_by_key(|(metric, _)| *metric)
        .map(|(_, gateway)| gateway)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n";

    fn check(routes: &str, expected: Option<&str>) {
        let text = format!("{HEADER}{routes}");
        let expected = expected.map(|ip| ip.parse::<Ipv4Addr>().unwrap());
        assert_eq!(parse_route(&text), expected, "{routes}");
    }

    fn check_ipv6(routes: &str, expected: Option<&str>) {
        let expected = expected.map(|ip| ip.parse::<Ipv6Addr>().unwrap());
        assert_eq!(parse_ipv6_route(routes), expected, "{routes}");
    }

    /// Encodes an IPv4 address as the kernel prints it on this machine.
    fn kernel_hex(ip: &str) -> String {
        let ip: Ipv4Addr = ip.parse().unwrap();
        format!("{:08X}", u32::from_ne_bytes(ip.octets()))
    }

    fn route(
        iface: &str,
        destination: &str,
        gateway: &str,
        flags: &str,
        metric: u32,
        mask: &str,
    ) -> String {
        format!(
            "{iface}\t{}\t{}\t{flags}\t0\t0\t{metric}\t{}\t0\t0\t0\n",
            kernel_hex(destination),
            kernel_hex(gateway),
            kernel_hex(mask)
        )
    }

    #[test]
    fn ipv4_default_route() {
        let default = route("eth0", "0.0.0.0", "192.168.2.1", "0003", 100, "0.0.0.0");
        let lan = route(
            "eth0",
            "192.168.2.0",
            "0.0.0.0",
            "0001",
            100,
            "255.255.255.0",
        );
        let backup = route("wlan0", "0.0.0.0", "10.10.0.1", "0003", 600, "0.0.0.0");
        let down = route("eth1", "0.0.0.0", "172.16.0.1", "0002", 0, "0.0.0.0");
        let direct = route("ppp0", "0.0.0.0", "0.0.0.0", "0001", 0, "0.0.0.0");
        check(&format!("{default}{lan}"), Some("192.168.2.1"));
        check(&format!("{backup}{lan}{default}"), Some("192.168.2.1"));
        check(&format!("{down}{backup}"), Some("10.10.0.1"));
        check(&format!("{direct}{lan}"), None);
        check(&lan, None);
        check("", None);
        check("eth0\tnot hex\n", None);
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn ipv4_sample_from_an_x86_machine() {
        check(
            "eth0\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
             eth0\t0002A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n",
            Some("192.168.2.1"),
        );
    }

    #[test]
    fn ipv6_default_route() {
        let zero = "00000000000000000000000000000000";
        let default = format!("{zero} 00 {zero} 00 fe800000000000000000000000000001 00000400 00000001 00000000 00450003     eth0\n");
        let backup = format!("{zero} 00 {zero} 00 fe800000000000000000000000000002 00000064 00000001 00000000 00000003    wlan0\n");
        let lan = format!("fd000000000000000000000000000000 40 {zero} 00 {zero} 00000100 00000001 00000000 00000001     eth0\n");
        let unreachable =
            format!("{zero} 00 {zero} 00 {zero} ffffffff 00000001 00000000 00200200       lo\n");
        check_ipv6(&format!("{lan}{default}{unreachable}"), Some("fe80::1"));
        check_ipv6(&format!("{default}{backup}"), Some("fe80::2"));
        check_ipv6(&format!("{lan}{unreachable}"), None);
        check_ipv6("", None);
    }
}
