//! The Mainline DHT (BEP 5), first layer: plain data with no sockets, no clock and no randomness of its own.
//! Callers pass the time (`now: Instant`) and a random source, as in the tracker's swarm registry. The next layer,
//! [`node`], owns a tokio UDP socket and runs the node loop (answers, lookups, bootstrap, rate limits).
//!
//! - [`krpc`]: KRPC messages (BEP 5) with BEP 32 `nodes6`/`want`, BEP 42 `ip`, BEP 43 `ro` and libtorrent's
//!   additions (`bs`, `seed`, `p`), decoded from and encoded to one UDP datagram, with bounds on everything kept.
//! - [`routing`]: the k-bucket routing table: good, questionable and bad nodes, replacement caches, splitting of
//!   our own bucket only, at most one node per IP address per bucket.
//! - [`token`]: announce tokens bound to the requester's IP, from a secret that rotates every 5 minutes.
//! - [`peer_store`]: the peers others announced to us, per info-hash, expiring after 30 minutes, bounded.
//! - [`node`]: the async node on one UDP socket (IPv4): [`Node::bind`], bootstrap, get_peers, announce, and
//!   table maintenance (bucket refreshes, pings of questionable nodes).
//! - [`NodeId`], the XOR metric, and BEP 42's node ids derived from an IP address.
//!
//! A node speaks one address family per table: BEP 32 runs the IPv4 and IPv6 DHTs as two separate networks, so a
//! dual-stack node keeps one [`routing::RoutingTable`] and one [`peer_store::PeerStore`] per family (and may use
//! the same node id in both).

mod id;
pub mod krpc;
pub mod node;
pub mod peer_store;
pub mod routing;
pub mod token;

pub use id::{Distance, NodeId, NodeInfo, bep42_node_id, bep42_valid, is_global};
pub use krpc::{Body, ErrorMessage, KrpcError, Message, Method, Query, Response, TransactionId, Want};
pub use node::{Node, NodeConfig};
pub use peer_store::{PeerStore, PeerStoreLimits};
pub use routing::{Insertion, NodeState, RoutingTable};
pub use token::TokenSecret;
