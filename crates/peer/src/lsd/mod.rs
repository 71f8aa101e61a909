//! Local service discovery (BEP 14) as a peer source: announce the session's torrents to the local network by
//! multicast, and hand on the peers that announce them too ([`service`]: one socket per family for every torrent).
//!
//! Over IPv4, every announce goes to 239.192.152.143:6771, from a UDP socket bound to 0.0.0.0:6771 with
//! SO_REUSEADDR and SO_REUSEPORT (every client on the host binds that port, and all of them hear every announce),
//! joined to the group, with multicast loopback on so that clients on one host hear each other; our own announces
//! come back too and are recognised by their cookie. Over IPv6 the same goes to `[ff15::efc0:988f]:6771` (its
//! `Host` header written so, as libtorrent does), from a socket bound to `[::]:6771` (IPv6 only), joined on the
//! listen address's interface (the routing table's choice when unbound). Which families run is [`families`]'
//! choice: a peer listening on `::` (dual-stack on Linux) runs both, and either one failing to start leaves the
//! other. When to announce is [`neighbours`]' choice, made for each family apart (same cookie, caps and
//! schedule), so that a flood on one family cannot starve the other.
//!
//! A link-local IPv6 neighbour (fe80::/10) is handed on with the scope (interface index) its datagram came in on,
//! without which it could not be dialled.
//!
//! Never for private torrents (BEP 27): the caller decides. The codec ([`message`]), the filter ([`neighbours`])
//! and the interface lookup ([`interfaces`]) are sans-IO or nearly; this module is the sockets around them.

pub mod interfaces;
pub mod message;
pub mod neighbours;
pub mod service;
#[cfg(test)]
mod tests;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::Duration;

pub use neighbours::{ANNOUNCE_INTERVAL, REPEAT_AFTER};

/// The UDP port every client listens on.
pub const LSD_PORT: u16 = 6771;
/// The IPv4 group (organisation-local scope).
pub const GROUP_V4: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(239, 192, 152, 143), LSD_PORT);
/// The IPv6 group (site-local scope, transient).
pub const GROUP_V6: SocketAddrV6 =
    SocketAddrV6::new(Ipv6Addr::new(0xff15, 0, 0, 0, 0, 0, 0xefc0, 0x988f), LSD_PORT, 0, 0);
/// Hops an announce may travel: BEP 14 suggests more than 1, as the group's scope is wider than one link;
/// libtorrent uses 32.
const MULTICAST_TTL: u32 = 32;
/// Pause after a failed read, so that a persistent error cannot spin.
const READ_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// A family discovery runs on, and the interface (by its address) it runs on: the routing table's choice when
/// `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4(Option<Ipv4Addr>),
    V6(Option<Ipv6Addr>),
}

/// The families discovery runs on for a peer listening on `listen`: IPv4 for an IPv4 address or `0.0.0.0`, IPv6
/// for a global or unique-local IPv6 address, both for `::` (which takes IPv4 peers too), none for loopback (no
/// network to discover; tests' peers stay apart), a link-local address (announcing it would need its scope) or
/// anything else no neighbour could dial.
#[must_use]
pub fn families(listen: IpAddr) -> Vec<Family> {
    match listen.to_canonical() {
        IpAddr::V4(ip) if ip.is_unspecified() => vec![Family::V4(None)],
        IpAddr::V4(ip) if ip.is_loopback() || ip.is_multicast() || ip.is_broadcast() => Vec::new(),
        IpAddr::V4(ip) => vec![Family::V4(Some(ip))],
        IpAddr::V6(ip) if ip.is_unspecified() => vec![Family::V4(None), Family::V6(None)],
        IpAddr::V6(ip) if ip.is_loopback() || ip.is_unicast_link_local() || ip.is_multicast() => Vec::new(),
        IpAddr::V6(ip) => vec![Family::V6(Some(ip))],
    }
}

/// The sockets, bound and joined to their groups: ready for the session's service ([`service::LsdService`]).
#[derive(Debug)]
pub struct Lsd {
    v4: Option<Channel>,
    v6: Option<Channel>,
}

/// One family's socket.
#[derive(Debug)]
struct Channel {
    socket: tokio::net::UdpSocket,
    group: SocketAddr,
    /// Our listen address when bound to one, never handed on.
    own: Option<IpAddr>,
}

impl Lsd {
    /// Binds and joins for a peer listening on `listen`, on the [`families`] that apply. `Ok(None)` when none
    /// does. A family that fails to start beside one that starts is logged (debug) and left out. Call within a
    /// Tokio runtime.
    ///
    /// # Errors
    ///
    /// No family could start: a socket could not be made, bound (another program holds the port without
    /// SO_REUSEADDR) or joined to the group (no multicast route, no IPv6). The caller warns and goes on without
    /// discovery.
    pub fn start(listen: IpAddr) -> io::Result<Option<Lsd>> {
        let families = families(listen);
        if families.is_empty() {
            tracing::debug!("local service discovery is off: bound to {listen}, which it does not apply to");
            return Ok(None);
        }
        let mut lsd = Lsd { v4: None, v6: None };
        let mut errors = Vec::new();
        for family in families {
            match (Channel::start(family), family) {
                (Ok(channel), Family::V4(_)) => lsd.v4 = Some(channel),
                (Ok(channel), Family::V6(_)) => lsd.v6 = Some(channel),
                (Err(err), _) => errors.push(err),
            }
        }
        if lsd.v4.is_none() && lsd.v6.is_none() {
            let kind = errors.first().map_or(io::ErrorKind::Other, io::Error::kind);
            let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
            return Err(io::Error::new(kind, text.join("; ")));
        }
        for err in errors {
            tracing::debug!("local service discovery runs on one family only: {err}");
        }
        Ok(Some(lsd))
    }
}

impl Channel {
    /// Binds and joins for `family`.
    fn start(family: Family) -> io::Result<Channel> {
        let (socket, group, own) = match family {
            Family::V4(interface) => (bind_v4(interface)?, GROUP_V4.into(), interface.map(IpAddr::V4)),
            Family::V6(interface) => (bind_v6(interface)?, GROUP_V6.into(), interface.map(IpAddr::V6)),
        };
        Ok(Channel { socket: tokio::net::UdpSocket::from_std(socket)?, group, own })
    }
}

/// Names the step an I/O error came from.
fn step(what: &str) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |err| io::Error::new(err.kind(), format!("{what}: {err}"))
}

/// A UDP socket of `domain` with SO_REUSEADDR and SO_REUSEPORT, IPv6 only when IPv6, bound to `any`:
/// [`LSD_PORT`] shared with every other client on the host.
fn shared_socket(domain: socket2::Domain, any: SocketAddr) -> io::Result<socket2::Socket> {
    use socket2::{Protocol, Socket, Type};
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).map_err(step("a UDP socket"))?;
    if any.is_ipv6() {
        socket.set_only_v6(true).map_err(step("IPV6_V6ONLY"))?;
    }
    socket.set_reuse_address(true).map_err(step("SO_REUSEADDR"))?;
    socket.set_reuse_port(true).map_err(step("SO_REUSEPORT"))?;
    socket.bind(&any.into()).map_err(step(&format!("binding UDP {any}")))?;
    Ok(socket)
}

/// The socket on 0.0.0.0:[`LSD_PORT`], joined to the IPv4 group on `interface` (the routing table's choice when
/// `None`), sending there with loopback on.
fn bind_v4(interface: Option<Ipv4Addr>) -> io::Result<std::net::UdpSocket> {
    let socket = shared_socket(socket2::Domain::IPV4, SocketAddr::from((Ipv4Addr::UNSPECIFIED, LSD_PORT)))?;
    let interface_ip = interface.unwrap_or(Ipv4Addr::UNSPECIFIED);
    let joining = format!("joining {} on {interface_ip} (no multicast route?)", GROUP_V4.ip());
    socket.join_multicast_v4(GROUP_V4.ip(), &interface_ip).map_err(step(&joining))?;
    if let Some(ip) = interface {
        socket.set_multicast_if_v4(&ip).map_err(step("IP_MULTICAST_IF"))?;
    }
    socket.set_multicast_loop_v4(true).map_err(step("IP_MULTICAST_LOOP"))?;
    socket.set_multicast_ttl_v4(MULTICAST_TTL).map_err(step("IP_MULTICAST_TTL"))?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// The socket on `[::]:`[`LSD_PORT`] (IPv6 only), joined to the IPv6 group on the interface holding `interface`
/// (the routing table's choice when `None` or when its interface is not found), sending there with loopback on.
fn bind_v6(interface: Option<Ipv6Addr>) -> io::Result<std::net::UdpSocket> {
    let socket = shared_socket(socket2::Domain::IPV6, SocketAddr::from((Ipv6Addr::UNSPECIFIED, LSD_PORT)))?;
    let index = interface.and_then(interfaces::index_of).unwrap_or(0);
    let joining = format!("joining {} on interface {index} (no IPv6 multicast route?)", GROUP_V6.ip());
    socket.join_multicast_v6(GROUP_V6.ip(), index).map_err(step(&joining))?;
    if index != 0 {
        socket.set_multicast_if_v6(index).map_err(step("IPV6_MULTICAST_IF"))?;
    }
    socket.set_multicast_loop_v6(true).map_err(step("IPV6_MULTICAST_LOOP"))?;
    socket.set_multicast_hops_v6(MULTICAST_TTL).map_err(step("IPV6_MULTICAST_HOPS"))?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}
