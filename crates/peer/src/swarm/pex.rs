//! Peer exchange (BEP 11, ut_pex): telling each peer whom else we are connected to, and taking the peers it tells
//! us about as candidates.
//!
//! What we send: at most [`MAX_PEX_SENT`] added and as many dropped per message, the first about
//! [`PEX_FIRST_AFTER`] after the connection starts, then at most once per [`PEX_EVERY`]; never on a private
//! torrent. An address is only told to peers in the same or a wider scope: a loopback address to loopback peers,
//! a private one (RFC 1918, unique-local, link-local) to private or loopback peers.
//! What we take: from each message at most [`MAX_PEX_TAKEN`] peers, only addresses that the sender could rightly
//! have told us (the same scope rule, so a peer on the internet cannot steer us at our own network), and nothing
//! from a peer that sends more often than [`PEX_MIN_SPACING`]. The candidate table caps what all messages
//! together can add.

use super::*;
use peer_wire::{PexFlags, PexMessage, PexPeer};

/// Our extended message id for ut_pex.
pub(super) const UT_PEX_ID: u8 = 2;
/// First message to a peer this long after it connected: its neighbours have had time to connect too.
const PEX_FIRST_AFTER: Duration = Duration::from_secs(10);
/// Then at most one message per peer this often (BEP 11).
const PEX_EVERY: Duration = Duration::from_secs(60);
/// Added (and dropped) peers per message we send (BEP 11's limit).
const MAX_PEX_SENT: usize = 50;
/// Peers taken from one message we receive.
const MAX_PEX_TAKEN: usize = 50;
/// Messages from one peer closer together than this are ignored.
const PEX_MIN_SPACING: Duration = Duration::from_secs(20);

/// How far an address reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Scope {
    Loopback,
    Private,
    Global,
}

fn scope(ip: IpAddr) -> Scope {
    match ip {
        IpAddr::V4(ip) if ip.is_loopback() => Scope::Loopback,
        IpAddr::V4(ip)
            if ip.is_private() || ip.is_link_local() || ip.octets()[0] == 100 && ip.octets()[1] & 0xc0 == 64 =>
        {
            Scope::Private
        }
        IpAddr::V6(ip) if ip.is_loopback() => Scope::Loopback,
        IpAddr::V6(ip) if ip.is_unique_local() || ip.is_unicast_link_local() => Scope::Private,
        IpAddr::V6(ip) => ip.to_ipv4_mapped().map_or(Scope::Global, |v4| scope(IpAddr::V4(v4))),
        IpAddr::V4(_) => Scope::Global,
    }
}

/// Whether a peer at `to` may be told about a peer at `about`: only when `to` can reach it as well as we can.
fn may_tell(about: IpAddr, to: IpAddr) -> bool {
    scope(about) >= scope(to) || scope(about) == Scope::Global
}

fn dialable(addr: SocketAddr) -> bool {
    let ip = addr.ip();
    addr.port() != 0 && !ip.is_unspecified() && !ip.is_multicast() && ip != IpAddr::V4(std::net::Ipv4Addr::BROADCAST)
}

impl Swarm {
    /// A ut_pex message from `key`: the peers it names become candidates (after the handler lets go of the state
    /// lock). A malformed message ends the connection, as in libtorrent.
    pub(super) fn on_pex(&self, state: &mut State, key: PeerKey, payload: &[u8]) -> Result<(), CloseReason> {
        if self.private {
            return Ok(());
        }
        let Some(peer) = state.peers.get_mut(&key) else { return Ok(()) };
        let now = Instant::now();
        if peer.pex_received.is_some_and(|at| now.duration_since(at) < PEX_MIN_SPACING) {
            return Ok(());
        }
        peer.pex_received = Some(now);
        let (message, _skipped) =
            PexMessage::decode(payload).map_err(|err| CloseReason::protocol(format_args!("ut_pex: {err}")))?;
        let from = peer.addr.ip();
        let learned = message
            .added
            .iter()
            .filter(|added| dialable(added.addr) && may_tell(added.addr.ip(), from) && !self.is_own_address(added.addr))
            .map(|added| (added.addr, added.flags.contains(PexFlags::SEED)))
            .take(MAX_PEX_TAKEN);
        state.pex_learned.extend(learned);
        Ok(())
    }

    /// Whether `addr` is where we listen (a peer may pass our own address back to us).
    fn is_own_address(&self, addr: SocketAddr) -> bool {
        self.listen_port == Some(addr.port()) && (addr.ip().is_loopback() || self.local_ip == Some(addr.ip()))
    }

    /// Sends each peer that speaks ut_pex the changes in whom we are connected to, when its turn has come.
    pub(super) fn send_pex(&self, state: &mut State, now: Instant) {
        if self.private {
            return;
        }
        let since_start = self.started.elapsed();
        // Where each connected peer listens, as far as we know, and what we know about it.
        let listening: Vec<PexPeer> = state
            .peers
            .values()
            .filter_map(|peer| {
                let addr = peer.listen_addr()?;
                let mut flags = PexFlags(0);
                if peer.bitfield.is_complete() {
                    flags = flags | PexFlags::SEED;
                }
                if peer.direction == Direction::Outgoing {
                    flags = flags | PexFlags::REACHABLE;
                }
                Some(PexPeer { addr, flags })
            })
            .collect();
        for peer in state.peers.values_mut() {
            let Some(their_id) = peer.ut_pex else { continue };
            let due = match peer.pex_sent {
                None => since_start.saturating_sub(peer.connected_at) >= PEX_FIRST_AFTER,
                Some(at) => now.duration_since(at) >= PEX_EVERY,
            };
            if !due {
                continue;
            }
            let to = peer.addr.ip();
            let current: HashSet<SocketAddr> = listening
                .iter()
                .map(|other| other.addr)
                .filter(|&addr| addr != peer.addr && may_tell(addr.ip(), to))
                .collect();
            let added: Vec<PexPeer> = listening
                .iter()
                .filter(|other| current.contains(&other.addr) && !peer.pex_told.contains(&other.addr))
                .take(MAX_PEX_SENT)
                .copied()
                .collect();
            let dropped: Vec<SocketAddr> =
                peer.pex_told.iter().filter(|addr| !current.contains(addr)).take(MAX_PEX_SENT).copied().collect();
            peer.pex_sent = Some(now);
            if added.is_empty() && dropped.is_empty() {
                continue;
            }
            for addr in &dropped {
                peer.pex_told.remove(addr);
            }
            peer.pex_told.extend(added.iter().map(|added| added.addr));
            let mut payload = Vec::new();
            PexMessage { added, dropped }.encode(&mut payload);
            peer.outbox.push(&Message::Extended { id: their_id, payload: &payload });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn addresses_are_told_only_to_peers_that_can_reach_them_as_we_do() {
        assert!(may_tell(ip("127.0.0.2"), ip("127.0.0.1")));
        assert!(!may_tell(ip("127.0.0.2"), ip("192.168.1.5")));
        assert!(!may_tell(ip("127.0.0.2"), ip("8.8.8.8")));
        assert!(may_tell(ip("192.168.1.9"), ip("10.0.0.1")));
        assert!(may_tell(ip("192.168.1.9"), ip("127.0.0.1")));
        assert!(!may_tell(ip("192.168.1.9"), ip("8.8.8.8")));
        assert!(!may_tell(ip("100.64.0.1"), ip("8.8.8.8")), "carrier-grade NAT space is private");
        assert!(!may_tell(ip("fd00::1"), ip("2001:db8::1")));
        assert!(!may_tell(ip("::ffff:10.0.0.1"), ip("8.8.8.8")));
        assert!(may_tell(ip("8.8.8.8"), ip("127.0.0.1")));
        assert!(may_tell(ip("2001:db8::1"), ip("10.1.1.1")));
    }

    #[test]
    fn unusable_addresses_are_not_dialled() {
        assert!(!dialable("0.0.0.0:6881".parse().expect("addr")));
        assert!(!dialable("1.2.3.4:0".parse().expect("addr")));
        assert!(!dialable("224.0.0.1:6881".parse().expect("addr")));
        assert!(!dialable("255.255.255.255:6881".parse().expect("addr")));
        assert!(dialable("1.2.3.4:6881".parse().expect("addr")));
    }
}
