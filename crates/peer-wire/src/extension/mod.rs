//! The BEP 10 extension protocol and the two extensions carried over it: BEP 9 `ut_metadata` and BEP 11 `ut_pex`.
//!
//! A peer that sets [`crate::ReservedBit::EXTENSION_PROTOCOL`] in its handshake accepts message id 20
//! ([`crate::Message::Extended`]). Its payload starts with an extended id byte:
//!
//! ```text
//! length 4 | id 20 | extended id 1 | payload (bencode, maybe followed by raw bytes)
//!
//! extended id 0     the extended handshake: which extensions the sender speaks and the id it wants each under
//!                   ([`ExtendedHandshake`])
//! extended id 1-255 an extension message, under the id that the *receiver* announced for that extension in
//!                   its own handshake's `m` dictionary ([`MetadataMessage`] for ut_metadata, [`PexMessage`]
//!                   for ut_pex)
//! ```
//!
//! So each side picks the ids it receives under, and the sender looks them up in the other side's handshake
//! ([`ExtendedHandshake::extension_id`]); libtorrent announces ut_pex as 1 and ut_metadata as 2.
//!
//! Everything here decodes the payload of one [`crate::Message::Extended`] that [`crate::decode`] already framed
//! and bounded, so a payload is never larger than the caller's message limit. The bencode underneath
//! ([`bencode::decode`]) bounds nesting and string lengths and refuses duplicate keys. On top of that each decoder
//! caps what it keeps (extension names, peers per PEX list, metadata size), so a peer cannot make us hold more
//! than a few kilobytes per message, or more metadata than the caller allows.
//!
//! Tolerance follows libtorrent, the client most of a swarm runs: unknown keys are ignored everywhere, and an
//! optional key with the wrong type or an unusable value is treated as absent. What cannot be read at all (not
//! bencode, not a dictionary, bytes after the dictionary where none belong, a required key missing, a length that
//! is not a whole number of entries) is an [`ExtensionError`] naming the message and the key.

mod assembler;
mod error;
mod handshake;
mod metadata;
mod pex;

pub use assembler::{MetadataAssembler, MetadataProgress};
pub use error::ExtensionError;
pub use handshake::{
    EXTENDED_HANDSHAKE_ID, ExtendedHandshake, MAX_CLIENT_NAME_LEN, MAX_EXTENSION_NAME_LEN, MAX_EXTENSIONS, UT_METADATA,
    UT_PEX,
};
pub use metadata::{METADATA_PIECE_LEN, MetadataMessage};
pub use pex::{MAX_PEX_PEERS, PexFlags, PexMessage, PexPeer};

use bencode::Value;

/// Names of the messages, for error text.
const HANDSHAKE: &str = "extended handshake";
const METADATA: &str = "ut_metadata";
const PEX: &str = "ut_pex";

/// Decodes the bencoded dictionary at the start of `payload`; returns it and the bytes it took.
fn decode_dict<'a>(payload: &'a [u8], message: &'static str) -> Result<(Value<'a>, usize), ExtensionError> {
    let (value, used) = bencode::decode(payload).map_err(|source| ExtensionError::Bencode { message, source })?;
    if value.as_dict().is_none() {
        return Err(ExtensionError::NotADictionary { message });
    }
    Ok((value, used))
}

/// Decodes a payload that must be one bencoded dictionary and nothing after it.
fn decode_exact_dict<'a>(payload: &'a [u8], message: &'static str) -> Result<Value<'a>, ExtensionError> {
    let (value, used) = decode_dict(payload, message)?;
    refuse_trailing(payload, used, message)?;
    Ok(value)
}

/// An error if `payload` goes on after its first `used` bytes.
fn refuse_trailing(payload: &[u8], used: usize, message: &'static str) -> Result<(), ExtensionError> {
    match payload.len().saturating_sub(used) {
        0 => Ok(()),
        len => Err(ExtensionError::TrailingData { message, len }),
    }
}

/// The integer under `key`, if there is one.
fn int(dict: &Value<'_>, key: &str) -> Option<i64> {
    dict.get(key.as_bytes()).and_then(Value::as_int)
}

/// The byte string under `key`, if there is one.
fn bytes<'a>(dict: &Value<'a>, key: &str) -> Option<&'a [u8]> {
    dict.get(key.as_bytes()).and_then(Value::as_bytes)
}
