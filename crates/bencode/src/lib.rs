//! Bencode (BEP 3), for everything outside bytes arrive in: torrent files, extension messages, HTTP tracker
//! replies, and later KRPC and v2 file trees.
//!
//! - [`scan`] checks a whole document without recursion (nesting and length prefixes bounded, so a nesting bomb or
//!   a `99999999999:` prefix is an error, never a stack overflow or a huge allocation) and finds the raw span of
//!   its top-level `info` value, whose SHA-1 is the info-hash.
//! - [`decode`] turns the first value of a buffer into a [`Value`] borrowing from it, and says how many bytes it
//!   took (BEP 9 `data` messages carry raw bytes after their dictionary); [`decode_exact`] wants nothing after.
//! - [`Value::encode`] writes canonical bencode: dictionary keys sorted as raw byte strings.

mod scan;
mod value;

pub use scan::{BencodeError, MAX_DEPTH, Scanned, scan, value_end};
pub use value::{Value, decode, decode_exact, encode_bytes};

#[cfg(test)]
mod value_tests;
