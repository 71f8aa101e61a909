//! Local service discovery (BEP 14) as a peer source: announce the torrent to the local network by multicast, and
//! hand on the peers that announce it too.
//!
//! Every announce goes to 239.192.152.143:6771, from a UDP socket bound to 0.0.0.0:6771 with SO_REUSEADDR and
//! SO_REUSEPORT (every client on the host binds that port, and all of them hear every announce), joined to the
//! group, with multicast loopback on so that clients on one host hear each other; our own announces come back
//! too and are recognised by their cookie. When to announce is [`neighbours`]' choice.
//!
//! IPv4 only: the IPv6 group (`[ff15::efc0:988f]:6771`) would hand on link-local senders, which need the
//! interface's scope to be dialled, and the same neighbour twice over two families.
//!
//! Never for private torrents (BEP 27): the caller decides. The codec ([`message`]) and the filter
//! ([`neighbours`]) are sans-IO; this module is the socket around them.

pub mod message;
pub mod neighbours;
#[cfg(test)]
mod tests;

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

pub use neighbours::{ANNOUNCE_INTERVAL, REPEAT_AFTER};

use message::MAX_DATAGRAM_LEN;
use neighbours::{Ignored, Neighbours};

/// The UDP port every client listens on.
pub const LSD_PORT: u16 = 6771;
/// The IPv4 group (organisation-local scope).
pub const GROUP_V4: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(239, 192, 152, 143), LSD_PORT);
/// Hops an announce may travel: BEP 14 suggests more than 1, as the group's scope is wider than one link;
/// libtorrent uses 32.
const MULTICAST_TTL: u32 = 32;
/// Pause after a failed read, so that a persistent error cannot spin.
const READ_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The socket, bound and joined to the group: ready to [`run`](Lsd::run).
#[derive(Debug)]
pub struct Lsd {
    socket: tokio::net::UdpSocket,
    /// The interface (by its address) announces leave from and the group was joined on; the routing table's
    /// choice when `None`.
    interface: Option<Ipv4Addr>,
}

impl Lsd {
    /// Binds and joins for a peer listening on `listen`: on that interface when it is an IPv4 address, on the
    /// routing table's choice when it is unspecified. `Ok(None)` when discovery does not apply: bound to
    /// loopback (no network to discover; tests' peers stay apart) or to an IPv6 address. Call within a Tokio
    /// runtime.
    ///
    /// # Errors
    ///
    /// The socket could not be made, bound (another program holds the port without SO_REUSEADDR) or joined to
    /// the group (no multicast route). The caller warns and goes on without discovery.
    pub fn start(listen: IpAddr) -> io::Result<Option<Lsd>> {
        let interface = match listen.to_canonical() {
            ip if ip.is_unspecified() => None,
            IpAddr::V4(ip) if !ip.is_loopback() => Some(ip),
            ip => {
                tracing::debug!("local service discovery is off: bound to {ip}, which it does not apply to");
                return Ok(None);
            }
        };
        let socket = bind(interface)?;
        Ok(Some(Lsd { socket: tokio::net::UdpSocket::from_std(socket)?, interface }))
    }

    /// Announces `info_hash` with TCP `port` and hands every neighbour that announces it to `found`
    /// (`SocketAddr::new(sender_ip, port)`). Runs until dropped.
    pub async fn run(self, info_hash: [u8; 20], port: u16, found: impl Fn(SocketAddr)) {
        let own = self.interface.map(|ip| SocketAddr::from((ip, port)));
        let mut neighbours = Neighbours::new(info_hash, own, Instant::now());
        let announce = match neighbours.announce(port, GROUP_V4.into()) {
            Ok(announce) => announce,
            Err(err) => {
                tracing::warn!("local service discovery is off: {err}");
                return;
            }
        };
        let mut send_warned = false;
        let mut buffer = [0u8; MAX_DATAGRAM_LEN + 1];
        loop {
            let due = tokio::time::Instant::from_std(neighbours.next_announce());
            tokio::select! {
                () = tokio::time::sleep_until(due) => {
                    match self.socket.send_to(&announce, GROUP_V4).await {
                        Ok(_) => tracing::debug!(port, "LSD announce sent"),
                        Err(err) if !send_warned => {
                            send_warned = true;
                            tracing::warn!("local service discovery cannot announce (tried again later): {err}");
                        }
                        Err(err) => tracing::debug!("LSD announce failed: {err}"),
                    }
                    neighbours.announced(Instant::now());
                }
                received = self.socket.recv_from(&mut buffer) => {
                    match received {
                        Ok((len, from)) => hear(&mut neighbours, buffer.get(..len).unwrap_or_default(), from, &found),
                        Err(err) => {
                            tracing::debug!("LSD read failed: {err}");
                            tokio::time::sleep(READ_ERROR_PAUSE).await;
                        }
                    }
                    // The next read waits for a token: a flood stays in the kernel's buffer, which drops the rest.
                    while let Err(wait) = neighbours.admit(Instant::now()) {
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        }
    }
}

/// Names the step an I/O error came from.
fn step(what: &str) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |err| io::Error::new(err.kind(), format!("{what}: {err}"))
}

/// Hands on the peer a datagram names, if any.
fn hear(neighbours: &mut Neighbours, datagram: &[u8], from: SocketAddr, found: &impl Fn(SocketAddr)) {
    match neighbours.receive(datagram, from, Instant::now()) {
        Ok(peer) => {
            tracing::debug!(%from, %peer, "LSD: a neighbour announced the torrent");
            found(peer);
        }
        Err(Ignored::Ours | Ignored::OtherTorrent) => {}
        Err(why) => tracing::trace!(%from, "LSD datagram ignored: {why}"),
    }
}

/// The socket on 0.0.0.0:[`LSD_PORT`], shared with every other client on the host, joined to the group on
/// `interface` (the routing table's choice when `None`), sending there with loopback on.
fn bind(interface: Option<Ipv4Addr>) -> io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(step("a UDP socket"))?;
    socket.set_reuse_address(true).map_err(step("SO_REUSEADDR"))?;
    socket.set_reuse_port(true).map_err(step("SO_REUSEPORT"))?;
    let any = SocketAddr::from((Ipv4Addr::UNSPECIFIED, LSD_PORT));
    socket.bind(&any.into()).map_err(step(&format!("binding UDP {any}")))?;
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
