//! Errors of the metainfo crate; each names the field or file it is about.

use std::path::PathBuf;

use crate::bencode::BencodeError;

/// A torrent that cannot be parsed or is not valid.
#[derive(Debug, thiserror::Error)]
pub enum MetainfoError {
    #[error("not valid bencode: {0}")]
    Bencode(#[from] BencodeError),
    /// `field` is a dotted path such as `info.files[3].path`.
    #[error("field `{field}`: {reason}")]
    Invalid { field: String, reason: String },
}

impl MetainfoError {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl ToString) -> MetainfoError {
        MetainfoError::Invalid { field: field.into(), reason: reason.to_string() }
    }
}

/// Why a torrent could not be made from a file or folder.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: {reason}", path.display())]
    BadInput { path: PathBuf, reason: String },
    #[error("{}: nothing to share: the total size is 0 bytes", path.display())]
    Empty { path: PathBuf },
    #[error("piece length {0} is not a power of two between 16 KiB and 256 MiB")]
    BadPieceLength(u64),
    #[error("name {name:?}: {reason}")]
    BadName { name: String, reason: &'static str },
    /// A DHT node (BEP 5 `nodes`) that cannot be written: `node` is `"HOST":PORT`.
    #[error("DHT node {node}: {reason}")]
    BadNode { node: String, reason: &'static str },
}
