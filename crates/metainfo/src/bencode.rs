//! The structural scan of a torrent file, from the shared `bencode` crate (which also decodes and encodes values
//! for the extension messages and HTTP tracker replies).

pub use bencode::{BencodeError, MAX_DEPTH, Scanned, scan};
