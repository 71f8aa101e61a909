//! Which interface holds an IPv6 address: the index IPv6 multicast is joined and sent on. Read from Linux's
//! `/proc/net/if_inet6` (one address a line: 32 hex digits, then the interface index in hex, prefix length, scope,
//! flags and name), as the standard library has no `getifaddrs` and this workspace writes no `unsafe`.

use std::net::Ipv6Addr;

/// Where Linux lists the host's IPv6 addresses.
pub const IF_INET6: &str = "/proc/net/if_inet6";

/// The index of the interface holding `ip`, from the host's table; `None` where there is no such table (not
/// Linux, IPv6 off) or the address is not in it.
#[must_use]
pub fn index_of(ip: Ipv6Addr) -> Option<u32> {
    index_in(&std::fs::read_to_string(IF_INET6).ok()?, ip)
}

/// The index of the interface holding `ip` in `table`, the text of [`IF_INET6`]. Lines that do not read are
/// skipped; an index 0 (no interface) is none.
#[must_use]
pub fn index_in(table: &str, ip: Ipv6Addr) -> Option<u32> {
    table.lines().find_map(|line| {
        let mut fields = line.split_ascii_whitespace();
        let address = fields.next()?;
        let index = fields.next()?;
        if address.len() != 32 || !address.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return None;
        }
        let address = Ipv6Addr::from(u128::from_str_radix(address, 16).ok()?);
        let index = u32::from_str_radix(index, 16).ok()?;
        (address == ip && index != 0).then_some(index)
    })
}
