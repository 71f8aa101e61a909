//! The BEP 10 extended handshake: extended message id 0, a bencoded dictionary each side sends once after the
//! BEP 3 handshake (and may send again to change its extensions).
//!
//! ```text
//! m              dict   extension name -> the id the sender wants that extension's messages under; 0 = disabled
//! v              str    client name and version ("libtorrent/2.0.8.0")
//! p              int    the sender's TCP listen port (useful when it connected to us from another port)
//! metadata_size  int    bytes of the info dictionary (BEP 9), when the sender has it
//! reqq           int    how many outstanding requests the sender accepts (libtorrent: 2000)
//! yourip         str    our address as the sender sees it, 4 or 16 bytes
//! ipv4, ipv6     str    the sender's own addresses, 4 and 16 bytes
//! ```
//!
//! What libtorrent 2.0.8 sends on an incoming connection (its default extensions, with metadata):
//!
//! ```text
//! d12:complete_agoi-1e1:md11:lt_donthavei7e10:share_modei8e11:upload_onlyi3e12:ut_holepunchi4e
//!  11:ut_metadatai2e6:ut_pexi1ee13:metadata_sizei149e4:reqqi2000e1:v18:libtorrent/2.0.8.06:yourip4:<4 bytes>e
//! ```
//!
//! Every key is optional. As libtorrent does, a key of the wrong type or with an unusable value (a port of 0 or
//! past 65535, a `yourip` of 5 bytes) is ignored rather than refused, as are keys we do not know (`complete_ago`,
//! `upload_only`, `e`, ...). `m` entries are kept whatever their name, so a caller can see every extension the
//! peer offers, except those we could never speak: names that are not UTF-8 or longer than
//! [`MAX_EXTENSION_NAME_LEN`], and ids that are not integers in 0..=255.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::{NonZeroU8, NonZeroU16};

use bencode::Value;

use super::{ExtensionError, HANDSHAKE, bytes, decode_exact_dict, int};

/// Extended message id of the extended handshake; every other id names an extension message.
pub const EXTENDED_HANDSHAKE_ID: u8 = 0;

/// Name of the BEP 9 metadata exchange extension in `m`.
pub const UT_METADATA: &str = "ut_metadata";

/// Name of the BEP 11 peer exchange extension in `m`.
pub const UT_PEX: &str = "ut_pex";

/// Most `m` entries accepted. libtorrent announces 6 by default and clients in the wild fewer than 20; a peer
/// sending more is refused, so a handshake never makes us keep more than 64 small strings.
pub const MAX_EXTENSIONS: usize = 64;

/// Longest extension name kept (bytes). Real names are under 20 bytes ("ut_holepunch").
pub const MAX_EXTENSION_NAME_LEN: usize = 64;

/// Longest client name (`v`) kept, in bytes (after invalid UTF-8 is replaced); a longer one is ignored, as libtorrent
/// ignores values it cannot use.
pub const MAX_CLIENT_NAME_LEN: usize = 256;

/// A decoded or to-be-sent extended handshake. `Default` is a handshake announcing nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtendedHandshake {
    /// `m`: extension name -> extended message id the sender receives it under; 0 means the sender disables that
    /// extension (meaningful in a repeated handshake). Sorted by name, as it is encoded.
    pub extensions: BTreeMap<String, u8>,
    /// `v`: client name and version, UTF-8 (invalid sequences replaced) as BEP 10 asks.
    pub client: Option<String>,
    /// `p`: the sender's TCP listen port.
    pub listen_port: Option<NonZeroU16>,
    /// `metadata_size` (BEP 9): bytes of the info dictionary. Unchecked here; check it against a cap before
    /// fetching (see [`crate::MetadataAssembler::new`]).
    pub metadata_size: Option<u64>,
    /// `reqq`: outstanding requests the sender accepts.
    pub request_queue: Option<u32>,
    /// `yourip`: the receiver's address as the sender sees it (a v4-mapped IPv6 address is kept as sent).
    pub your_ip: Option<IpAddr>,
    /// `ipv4`: the sender's own IPv4 address.
    pub ipv4: Option<Ipv4Addr>,
    /// `ipv6`: the sender's own IPv6 address.
    pub ipv6: Option<Ipv6Addr>,
}

impl ExtendedHandshake {
    /// Decodes the payload of an extended message with id [`EXTENDED_HANDSHAKE_ID`] (the bytes after that id).
    ///
    /// # Errors
    ///
    /// [`ExtensionError::Bencode`], [`ExtensionError::NotADictionary`] or [`ExtensionError::TrailingData`] when
    /// the payload is not exactly one bencoded dictionary, [`ExtensionError::TooManyExtensions`] when `m` has
    /// more than [`MAX_EXTENSIONS`] entries. Nothing else is an error; see the module notes.
    pub fn decode(payload: &[u8]) -> Result<Self, ExtensionError> {
        let dict = decode_exact_dict(payload, HANDSHAKE)?;
        let mut handshake = Self::default();
        if let Some(m) = dict.get(b"m").and_then(Value::as_dict) {
            if m.len() > MAX_EXTENSIONS {
                return Err(ExtensionError::TooManyExtensions { count: m.len(), max: MAX_EXTENSIONS });
            }
            for (name, id) in m {
                let Ok(name) = std::str::from_utf8(name) else { continue };
                let Some(id) = id.as_int().and_then(|id| u8::try_from(id).ok()) else { continue };
                if name.len() <= MAX_EXTENSION_NAME_LEN {
                    handshake.extensions.insert(name.to_owned(), id);
                }
            }
        }
        // Checked again after the conversion, which can only lengthen it (a stray byte becomes 3 bytes of U+FFFD),
        // so that what we keep re-encodes to something we would keep.
        handshake.client = bytes(&dict, "v")
            .filter(|v| v.len() <= MAX_CLIENT_NAME_LEN)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .filter(|v| v.len() <= MAX_CLIENT_NAME_LEN);
        handshake.listen_port = int(&dict, "p").and_then(|p| u16::try_from(p).ok()).and_then(NonZeroU16::new);
        handshake.metadata_size = int(&dict, "metadata_size").and_then(|n| u64::try_from(n).ok());
        handshake.request_queue = int(&dict, "reqq").and_then(|n| u32::try_from(n).ok());
        handshake.your_ip = bytes(&dict, "yourip").and_then(ip_from_bytes);
        handshake.ipv4 = bytes(&dict, "ipv4").and_then(|b| <[u8; 4]>::try_from(b).ok()).map(Ipv4Addr::from);
        handshake.ipv6 = bytes(&dict, "ipv6").and_then(|b| <[u8; 16]>::try_from(b).ok()).map(Ipv6Addr::from);
        Ok(handshake)
    }

    /// Appends the payload (canonical bencode, keys sorted; `m` always present, other keys only when set); send it
    /// as `Message::Extended { id: EXTENDED_HANDSHAKE_ID, payload }`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let m = self.extensions.iter().map(|(name, &id)| (name.as_bytes(), Value::Int(i64::from(id)))).collect();
        let your_ip = self.your_ip.map(|ip| match ip {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => v6.octets().to_vec(),
        });
        let ipv4 = self.ipv4.map(|ip| ip.octets());
        let ipv6 = self.ipv6.map(|ip| ip.octets());

        let mut dict: Vec<(&[u8], Value<'_>)> = vec![(b"m", Value::Dict(m))];
        let ints = [
            ("p", self.listen_port.map(|p| i64::from(p.get()))),
            ("metadata_size", self.metadata_size.and_then(|n| i64::try_from(n).ok())),
            ("reqq", self.request_queue.map(i64::from)),
        ];
        for (key, value) in ints {
            if let Some(value) = value {
                dict.push((key.as_bytes(), Value::Int(value)));
            }
        }
        let strings = [
            ("v", self.client.as_deref().map(str::as_bytes)),
            ("yourip", your_ip.as_deref()),
            ("ipv4", ipv4.as_ref().map(|b| &b[..])),
            ("ipv6", ipv6.as_ref().map(|b| &b[..])),
        ];
        for (key, value) in strings {
            if let Some(value) = value {
                dict.push((key.as_bytes(), Value::Bytes(value)));
            }
        }
        Value::Dict(dict).encode(out);
    }

    /// The id to send extension `name`'s messages under, or `None` when the peer did not announce it or disabled
    /// it (id 0).
    #[must_use]
    pub fn extension_id(&self, name: &str) -> Option<NonZeroU8> {
        self.extensions.get(name).copied().and_then(NonZeroU8::new)
    }
}

/// An IPv4 address from 4 bytes or an IPv6 one from 16; `None` for any other length.
fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        Some(IpAddr::from(v4))
    } else {
        <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from)
    }
}
