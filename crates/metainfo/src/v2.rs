//! The BitTorrent v2 part of a torrent (BEP 52): the `file tree`, each file's `pieces root`, and the top-level
//! `piece layers`, read from the raw bencode and checked.
//!
//! A file tree is nested dictionaries: each key is one path component, and a file is the dictionary whose only key
//! is the empty string, mapping to `{length, pieces root}` (no `pieces root` for an empty file). Keys are checked as
//! path components (no `..`, separators or control characters), nesting is bounded by [`MAX_TREE_DEPTH`] and the
//! number of nodes by [`MAX_TREE_NODES`]. Every file longer than one piece must have its piece layer in a v2-only
//! torrent; a hybrid may lack some (its v1 pieces check every file: a magnet link's fetch saves what peers proved).
//! A layer that is there must hash up to its file's root.

use std::collections::HashMap;

use bencode::Value;

use crate::error::MetainfoError;
use crate::infohash::InfoHashV2;
use crate::merkle::{self, Hash32};
use crate::path;

/// Deepest folder nesting accepted in a file tree (the bencode scan stops at 64 levels of any kind anyway).
pub const MAX_TREE_DEPTH: usize = 64;
/// Most dictionaries (folders and files) accepted in one file tree.
pub const MAX_TREE_NODES: usize = 1 << 20;

/// The v2 part of a v2-only or hybrid torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2Info {
    /// SHA-256 of the `info` value's bytes exactly as they stand in the file.
    pub info_hash: InfoHashV2,
    /// In file-tree order (keys sorted as bytes at every level, depth first).
    pub files: Vec<V2File>,
}

/// One file of a v2 file tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2File {
    /// Components below the torrent's folder; empty for a single-file torrent.
    pub path: Vec<String>,
    pub length: u64,
    /// The root of the file's merkle tree; `None` for an empty file.
    pub pieces_root: Option<Hash32>,
    /// The file's piece layer (one hash per piece); empty for files of at most one piece, and for a hybrid's file
    /// whose layer the torrent lacks (its pieces are then checked by their v1 SHA-1 alone).
    pub piece_layer: Vec<Hash32>,
}

impl V2Info {
    /// Whether the tree is one file directly named `name` (a single-file torrent).
    pub(crate) fn is_single_file(&self) -> bool {
        self.files.len() == 1 && self.files[0].path.is_empty()
    }
}

/// Reads the v2 part: `info` is the info dictionary's bytes, `piece_layers` the top-level `piece layers` value.
pub(crate) fn parse(
    info_bytes: &[u8],
    info_hash: InfoHashV2,
    name: &str,
    piece_length: u64,
    piece_layers: Option<&Value<'_>>,
) -> Result<V2Info, MetainfoError> {
    if piece_length < merkle::BLOCK_SIZE {
        return Err(MetainfoError::invalid(
            "info.piece length",
            format!("{piece_length} is below 16 KiB, the least a v2 torrent allows"),
        ));
    }
    let info = bencode::decode_exact(info_bytes)?;
    let tree = info.get(b"file tree").ok_or_else(|| MetainfoError::invalid("info.file tree", "missing"))?;
    let mut files = Vec::new();
    walk_tree(tree, &mut files)?;
    if files.is_empty() {
        return Err(MetainfoError::invalid("info.file tree", "holds no file"));
    }
    // A tree of one file named as the torrent is a single-file torrent: its path below the "folder" is empty.
    if files.len() == 1 && files[0].path.len() == 1 && files[0].path[0] == name {
        files[0].path.clear();
    }
    // A hybrid's v1 `pieces` check every byte: a layer it lacks costs only the v2 checks of that file.
    let hybrid = info.get(b"pieces").and_then(Value::as_bytes).is_some_and(|pieces| !pieces.is_empty());
    attach_layers(&mut files, piece_length, piece_layers, hybrid)?;
    Ok(V2Info { info_hash, files })
}

/// Walks the tree depth first in key order, with an explicit stack.
fn walk_tree(tree: &Value<'_>, files: &mut Vec<V2File>) -> Result<(), MetainfoError> {
    const FIELD: &str = "info.file tree";
    let root = tree.as_dict().ok_or_else(|| MetainfoError::invalid(FIELD, "is not a dictionary"))?;
    if root.is_empty() {
        return Err(MetainfoError::invalid(FIELD, "is empty"));
    }
    let mut nodes = 0usize;
    let mut stack: Vec<Frame<'_, '_>> = vec![(sorted(root), 0, Vec::new())];
    while let Some((entries, next, folder)) = stack.last_mut() {
        let Some((key, value)) = entries.get(*next).copied() else {
            stack.pop();
            continue;
        };
        *next += 1;
        nodes += 1;
        if nodes > MAX_TREE_NODES {
            return Err(MetainfoError::invalid(FIELD, format!("has more than {MAX_TREE_NODES} entries")));
        }
        let mut path = folder.clone();
        let shown = || format!("{}/{}", path_text(folder), String::from_utf8_lossy(key));
        if key.is_empty() {
            return Err(MetainfoError::invalid(FIELD, format!("{}: a file key beside other keys", path_text(folder))));
        }
        let component = std::str::from_utf8(key)
            .map_err(|_| MetainfoError::invalid(FIELD, format!("{}: name is not valid UTF-8", shown())))?;
        path::check_component(component)
            .map_err(|reason| MetainfoError::invalid(FIELD, format!("{reason}: {component:?}")))?;
        path.push(component.to_owned());
        let node =
            value.as_dict().ok_or_else(|| MetainfoError::invalid(FIELD, format!("{} is not a dictionary", shown())))?;
        match node {
            [] => return Err(MetainfoError::invalid(FIELD, format!("{} is an empty folder", shown()))),
            [(b"", file)] => files.push(file_entry(file, path)?),
            entries if entries.iter().any(|(key, _)| key.is_empty()) => {
                return Err(MetainfoError::invalid(FIELD, format!("{} is both a file and a folder", shown())));
            }
            entries => {
                if stack.len() >= MAX_TREE_DEPTH {
                    return Err(MetainfoError::invalid(FIELD, format!("nests deeper than {MAX_TREE_DEPTH} folders")));
                }
                stack.push((sorted(entries), 0, path));
            }
        }
    }
    Ok(())
}

/// A folder being walked: its entries sorted by key, the next one to visit, and the folder's path.
type Frame<'v, 'a> = (Vec<&'v (&'a [u8], Value<'a>)>, usize, Vec<String>);

fn sorted<'v, 'a>(entries: &'v [(&'a [u8], Value<'a>)]) -> Vec<&'v (&'a [u8], Value<'a>)> {
    let mut sorted: Vec<_> = entries.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    sorted
}

fn path_text(path: &[String]) -> String {
    path.join("/")
}

fn file_entry(file: &Value<'_>, path: Vec<String>) -> Result<V2File, MetainfoError> {
    let field = format!("info.file tree.{}", path_text(&path));
    if file.as_dict().is_none() {
        return Err(MetainfoError::invalid(field, "file entry is not a dictionary"));
    }
    let length = file
        .get(b"length")
        .and_then(Value::as_int)
        .ok_or_else(|| MetainfoError::invalid(&field, "no integer `length`"))?;
    let length =
        u64::try_from(length).map_err(|_| MetainfoError::invalid(&field, format!("negative length {length}")))?;
    let pieces_root = match (file.get(b"pieces root"), length) {
        (None, 0) => None,
        (None, _) => return Err(MetainfoError::invalid(field, "no `pieces root` for a file that is not empty")),
        (Some(root), _) => {
            let root = root
                .as_bytes()
                .and_then(|bytes| <Hash32>::try_from(bytes).ok())
                .ok_or_else(|| MetainfoError::invalid(&field, "`pieces root` is not 32 bytes"))?;
            // libtorrent writes no root for empty files; one that is there must not claim content.
            if length == 0 {
                return Err(MetainfoError::invalid(field, "an empty file with a `pieces root`"));
            }
            Some(root)
        }
    };
    Ok(V2File { path, length, pieces_root, piece_layer: Vec::new() })
}

/// Finds each long file's piece layer and checks that it hashes up to the file's root. A layer missing is refused,
/// unless the torrent is a `hybrid` (the file's `piece_layer` then stays empty); one that is there is checked all
/// the same.
fn attach_layers(
    files: &mut [V2File],
    piece_length: u64,
    layers: Option<&Value<'_>>,
    hybrid: bool,
) -> Result<(), MetainfoError> {
    const FIELD: &str = "piece layers";
    let mut by_root: HashMap<&[u8], &[u8]> = HashMap::new();
    if let Some(layers) = layers {
        let entries = layers.as_dict().ok_or_else(|| MetainfoError::invalid(FIELD, "is not a dictionary"))?;
        for (root, layer) in entries {
            let layer = layer.as_bytes().ok_or_else(|| MetainfoError::invalid(FIELD, "a layer is not a string"))?;
            by_root.insert(root, layer);
        }
    }
    for file in files.iter_mut().filter(|file| file.length > piece_length) {
        let Some(root) = file.pieces_root else { continue };
        let shown =
            || format!("{FIELD} of {}", if file.path.is_empty() { "the file".into() } else { path_text(&file.path) });
        let Some(layer) = by_root.get(&root[..]) else {
            if hybrid {
                continue;
            }
            return Err(MetainfoError::invalid(shown(), "missing"));
        };
        let pieces = file.length.div_ceil(piece_length);
        if layer.len() as u64 != pieces * 32 {
            return Err(MetainfoError::invalid(
                shown(),
                format!(
                    "holds {} bytes but {} bytes in pieces of {piece_length} need {} hashes",
                    layer.len(),
                    file.length,
                    pieces
                ),
            ));
        }
        let hashes: Vec<Hash32> = layer.chunks_exact(32).filter_map(|chunk| <Hash32>::try_from(chunk).ok()).collect();
        if merkle::root_from_piece_layer(&hashes, piece_length) != root {
            return Err(MetainfoError::invalid(shown(), "does not hash up to the file's `pieces root`"));
        }
        file.piece_layer = hashes;
    }
    Ok(())
}

#[cfg(test)]
#[path = "v2_tests.rs"]
mod tests;
