//! The BitTorrent peer: one torrent's download and upload over the BEP 3 peer wire protocol.
//!
//! The decisions are pure state machines that take time and randomness from the caller: which blocks to request
//! from whom ([`picker`]) and whom to upload to ([`choker`]). Around them, thin tokio layers do the I/O: the
//! [`session`] (listen, announce, connect), one task pair per connection, [`storage`] (pieces mapped onto files,
//! positional I/O, nothing outside the download folder) and the BEP 15 [`tracker_client`].

mod admission;
mod announcer;
pub mod block_proof;
pub mod budget;
pub mod choker;
pub mod close;
mod connection;
pub mod dht_peers;
mod dozing;
pub mod events;
mod fetching;
#[doc(hidden)]
pub mod fuzzing;
pub mod hashing;
pub mod http_tracker;
pub mod lsd;
pub mod magnet;
pub mod metadata;
pub mod metadata_harness;
mod offers;
pub mod open_files;
mod outbox;
pub mod picker;
pub mod rate;
pub mod reputation;
pub mod resume;
pub mod scrape;
pub mod selection;
pub mod session;
pub mod session_state;
pub mod simulated;
pub mod sources;
pub mod storage;
mod swarm;
pub mod torrent;
pub mod torrents;
pub mod trace;
pub mod tracker_client;
pub mod trackers;
pub mod v2;
pub mod watch;
