//! BitTorrent metainfo: parse `.torrent` files (BEP 3, BEP 12 announce-list, BEP 19 url-list, BEP 5 nodes) keeping
//! the info-hash of the raw bytes, validate them, make new ones from files on disk with pieces hashed on
//! all cores, and print magnet links. No network, no async. BitTorrent v2 and hybrid torrents (BEP 52, BEP 47):
//! [`merkle`] trees, [`v2`] file trees and piece layers, made with [`MetaVersion::V2`] or [`MetaVersion::Hybrid`].

pub mod bencode;
mod create;
mod create_v2;
mod error;
mod feed;
mod hash_path;
pub mod hashing;
mod infohash;
mod magnet;
mod mapped;
pub mod merkle;
pub mod merkle_proof;
pub mod nodes;
pub mod path;
mod sha1_lanes;
mod sha1_pair;
mod sha256_lanes;
mod torrent;
pub mod v2;
mod walk;

pub use create::{
    CreateOptions, Created, MAX_PIECE_LENGTH, MIN_PIECE_LENGTH, Progress, SourceTree, auto_piece_length, collect_files,
    create, create_from_path, input_name,
};
pub use create_v2::MetaVersion;
pub use error::{CreateError, MetainfoError};
pub use infohash::{InfoHash, InfoHashV2};
pub use magnet::{
    LayersWanted, MAX_MAGNET_ENTRIES, MAX_MAGNET_LEN, Magnet, MagnetError, magnet_link, parse_magnet,
    piece_layers_wanted, torrent_file_from_metadata, torrent_file_with_layers,
};
pub use nodes::{MAX_NODE_HOST_LEN, MAX_NODES, check_node};
pub use torrent::{FileEntry, Info, Torrent, V1Hashes};
pub use v2::{V2File, V2Info};

/// Largest .torrent file we read (libtorrent's default limit is 10 MB; the biggest real ones with
/// millions of pieces stay well under this).
pub const MAX_TORRENT_FILE_BYTES: u64 = 100 << 20;
