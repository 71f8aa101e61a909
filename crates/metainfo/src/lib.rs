//! BitTorrent metainfo: parse `.torrent` files (BEP 3, BEP 12 announce-list, BEP 19 url-list) keeping
//! the info-hash of the raw bytes, validate them, make new ones from files on disk with pieces hashed on
//! all cores, and print magnet links. No network, no async.

pub mod bencode;
mod create;
mod error;
mod feed;
pub mod hashing;
mod infohash;
mod magnet;
pub mod path;
mod sha1_pair;
mod torrent;
mod walk;

pub use create::{
    CreateOptions, Created, MAX_PIECE_LENGTH, MIN_PIECE_LENGTH, Progress, SourceTree, auto_piece_length, collect_files,
    create, create_from_path, input_name,
};
pub use error::{CreateError, MetainfoError};
pub use infohash::InfoHash;
pub use magnet::{
    MAX_MAGNET_ENTRIES, MAX_MAGNET_LEN, Magnet, MagnetError, magnet_link, parse_magnet, torrent_file_from_metadata,
};
pub use torrent::{FileEntry, Info, Torrent};

/// Largest .torrent file we read (libtorrent's default limit is 10 MB; the biggest real ones with
/// millions of pieces stay well under this).
pub const MAX_TORRENT_FILE_BYTES: u64 = 100 << 20;
