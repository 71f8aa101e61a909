//! `--trace`: one readable line per wire message, in and out, for a person learning the protocol or chasing a bug:
//!
//! ```text
//!    0.012  127.0.0.1:6881  ->  handshake  info-hash 5c4d…  peer id -BT0001-…  extensions
//!    0.013  127.0.0.1:6881  <-  bitfield 153/153
//!    0.013  127.0.0.1:6881  ->  request 17 +16384 16384
//! ```
//!
//! Off, it costs one `Option` check per batch of messages; on, each line is formatted and written under a lock,
//! which is slow by design and meant for small swarms.

use std::fmt::Write as _;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Instant;

use peer_wire::{Bitfield, Handshake, Message, ReservedBit};

/// Where trace lines go, and the clock they are timed by.
pub struct Trace {
    started: Instant,
    out: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trace").finish_non_exhaustive()
    }
}

impl Trace {
    /// Lines to `out` (stderr, a file), each flushed as it is written so a killed process loses none.
    #[must_use]
    pub fn new(out: Box<dyn Write + Send>) -> Trace {
        Trace { started: Instant::now(), out: Mutex::new(out) }
    }

    /// Writes one line: time since start, the peer, the direction (`->` we sent, `<-` it sent) and `what`.
    pub fn line(&self, peer: SocketAddr, sent: bool, what: &str) {
        let seconds = self.started.elapsed().as_secs_f64();
        let arrow = if sent { "->" } else { "<-" };
        let mut out = self.out.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // A trace that cannot be written (a full disk) must not stop the download.
        let _ = writeln!(out, "{seconds:9.3}  {peer:<21}  {arrow}  {what}");
        let _ = out.flush();
    }

    /// A handshake, sent or received.
    pub fn handshake(&self, peer: SocketAddr, sent: bool, handshake: &Handshake) {
        let mut text = format!(
            "handshake  info-hash {}…  peer id {}",
            hex_prefix(&handshake.info_hash),
            printable(&handshake.peer_id)
        );
        for (bit, name) in
            [(ReservedBit::EXTENSION_PROTOCOL, "extensions"), (ReservedBit::DHT, "dht"), (ReservedBit::FAST, "fast")]
        {
            if handshake.has(bit) {
                text.push_str("  ");
                text.push_str(name);
            }
        }
        self.line(peer, sent, &text);
    }
}

/// A message in words, with its fields: `have 17`, `request 17 +16384 16384`, `bitfield 12/153`.
#[must_use]
pub fn describe(message: &Message<'_>, num_pieces: u32) -> String {
    match message {
        Message::KeepAlive => "keep-alive".into(),
        Message::Choke => "choke".into(),
        Message::Unchoke => "unchoke".into(),
        Message::Interested => "interested".into(),
        Message::NotInterested => "not interested".into(),
        Message::Have { index } => format!("have {index}"),
        Message::Bitfield { bits } => match Bitfield::from_bytes(bits, num_pieces) {
            Ok(bitfield) => format!("bitfield {}/{}", bitfield.count(), num_pieces),
            Err(_) => format!("bitfield of {} bytes (malformed)", bits.len()),
        },
        Message::Request { index, begin, length } => format!("request {index} +{begin} {length}"),
        Message::Piece { index, begin, block } => format!("piece {index} +{begin} {}", block.len()),
        Message::Cancel { index, begin, length } => format!("cancel {index} +{begin} {length}"),
        Message::Port { port } => format!("port {port}"),
        Message::Extended { id: 0, payload } => format!("extended handshake ({} bytes)", payload.len()),
        Message::Extended { id, payload } => format!("extended {id} ({} bytes)", payload.len()),
        Message::HashRequest { pieces_root, base_layer, index, length, proof_layers } => format!(
            "hash request {}… layer {base_layer} +{index} {length} proof {proof_layers}",
            hex_prefix(pieces_root)
        ),
        Message::Hashes { pieces_root, base_layer, index, length, hashes, .. } => format!(
            "hashes {}… layer {base_layer} +{index} {length} ({} hashes)",
            hex_prefix(pieces_root),
            hashes.len() / 32
        ),
        Message::HashReject { pieces_root, base_layer, index, length, .. } => {
            format!("hash reject {}… layer {base_layer} +{index} {length}", hex_prefix(pieces_root))
        }
        Message::Unknown { id, payload } => format!("unknown message {id} ({} bytes)", payload.len()),
    }
}

fn hex_prefix(bytes: &[u8]) -> String {
    let mut text = String::new();
    for byte in bytes.iter().take(4) {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// A peer id as text where it is printable (Azureus-style ids are), dots elsewhere.
fn printable(bytes: &[u8]) -> String {
    bytes.iter().map(|&byte| if byte.is_ascii_graphic() { byte as char } else { '.' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_described_with_their_fields() {
        assert_eq!(describe(&Message::Have { index: 17 }, 153), "have 17");
        assert_eq!(
            describe(&Message::Request { index: 17, begin: 16384, length: 16384 }, 153),
            "request 17 +16384 16384"
        );
        assert_eq!(describe(&Message::Piece { index: 3, begin: 0, block: &[0; 100] }, 153), "piece 3 +0 100");
        assert_eq!(describe(&Message::Bitfield { bits: &[0xff, 0x80] }, 9), "bitfield 9/9");
        assert_eq!(describe(&Message::Bitfield { bits: &[0xff] }, 9), "bitfield of 1 bytes (malformed)");
        assert_eq!(describe(&Message::NotInterested, 9), "not interested");
        assert_eq!(describe(&Message::Extended { id: 0, payload: b"de" }, 9), "extended handshake (2 bytes)");
        assert_eq!(printable(b"-BT0001-ab\x00c"), "-BT0001-ab.c");
    }
}
