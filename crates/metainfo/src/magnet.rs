//! Magnet links (BEP 9 form): `magnet:?xt=urn:btih:<hex>&dn=<name>&tr=<tracker>...`, written for a torrent and
//! read from outside.
//!
//! Reading follows what libtorrent and aria2 accept: the info-hash in 40 hex digits or 32 base32 letters (either
//! case), any number of `tr` (also `tr.1`, `tr.2`... as some sites write them) and `x.pe` peers, parameters in any
//! order, values percent-decoded. A BitTorrent v2 hash (BEP 52) comes as `xt=urn:btmh:1220<64 hex>`, a sha2-256
//! multihash; a hybrid's link carries both. Everything that can grow is capped, so a hostile link costs a bounded
//! amount of memory.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use std::collections::BTreeMap;

use crate::MAX_TORRENT_FILE_BYTES;
use crate::error::MetainfoError;
use crate::infohash::{InfoHash, InfoHashV2};
use crate::merkle::Hash32;
use crate::torrent::Torrent;

/// Longest magnet link read (browsers cap URLs near this too).
pub const MAX_MAGNET_LEN: usize = 64 * 1024;
/// Most trackers and most `x.pe` peers kept from one link; the rest are ignored.
pub const MAX_MAGNET_ENTRIES: usize = 100;

/// What a magnet link names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Magnet {
    /// What names the swarm (handshake, trackers, DHT): the `urn:btih:` hash, or for a link with only a v2 hash
    /// that hash truncated to 20 bytes.
    pub info_hash: InfoHash,
    /// The `urn:btmh:` hash (BEP 52), for a v2 or hybrid torrent.
    pub info_hash_v2: Option<InfoHashV2>,
    /// `dn`: a display name, until the metadata gives the real one.
    pub name: Option<String>,
    /// `tr`: tracker URLs, in link order, without repeats.
    pub trackers: Vec<String>,
    /// `x.pe`: peers to try directly, `HOST:PORT` as written (resolved by the caller).
    pub peers: Vec<String>,
}

impl Magnet {
    /// The v1 info-hash (`urn:btih:`), if the link has one: not for a link with only a v2 hash.
    #[must_use]
    pub fn info_hash_v1(&self) -> Option<InfoHash> {
        match self.info_hash_v2 {
            Some(v2) if v2.truncated() == self.info_hash => None,
            _ => Some(self.info_hash),
        }
    }
}

/// Why a magnet link is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MagnetError {
    #[error("not a magnet link (it must start with `magnet:?`)")]
    NotAMagnet,
    #[error("the magnet link is longer than {MAX_MAGNET_LEN} bytes")]
    TooLong,
    #[error("the magnet link has no `xt=urn:btih:` info-hash (nor a v2 `xt=urn:btmh:` one)")]
    NoInfoHash,
    #[error(
        "the magnet link's v2 hash {0:?} is not a sha2-256 multihash (`1220` and 64 hex digits); no other hash \
         function is used by BitTorrent v2"
    )]
    BadInfoHashV2(String),
    #[error("the magnet link's info-hash {0:?} is neither 40 hex digits nor 32 base32 letters")]
    BadInfoHash(String),
    #[error("the magnet link's `{key}` value is not valid percent-encoded UTF-8")]
    BadEncoding { key: String },
    #[error("the magnet link's peer {0:?} is not HOST:PORT")]
    BadPeer(String),
}

/// Reads a magnet link.
///
/// # Errors
///
/// A text that is not a magnet link, too long, without a usable v1 or v2 info-hash, with a malformed hash, value or
/// `x.pe` peer: each [`MagnetError`] names what was wrong.
pub fn parse_magnet(text: &str) -> Result<Magnet, MagnetError> {
    if text.len() > MAX_MAGNET_LEN {
        return Err(MagnetError::TooLong);
    }
    let query = text
        .get(..8)
        .filter(|scheme| scheme.eq_ignore_ascii_case("magnet:?"))
        .map(|_| &text[8..])
        .ok_or(MagnetError::NotAMagnet)?;
    let (mut info_hash, mut info_hash_v2, mut name) = (None, None, None);
    let (mut trackers, mut peers): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, raw) = pair.split_once('=').unwrap_or((pair, ""));
        let value = || {
            percent_decode_str(raw)
                .decode_utf8()
                .map(|value| value.into_owned())
                .map_err(|_| MagnetError::BadEncoding { key: key.to_owned() })
        };
        let base =
            key.split_once('.').filter(|(base, n)| *base == "tr" && n.parse::<u32>().is_ok()).map_or(key, |_| "tr");
        match base {
            "xt" => {
                let urn = value()?;
                if let Some(hash) = strip_prefix_ignore_case(&urn, "urn:btih:") {
                    if info_hash.is_none() {
                        info_hash = Some(decode_info_hash(hash)?);
                    }
                } else if let Some(hash) = strip_prefix_ignore_case(&urn, "urn:btmh:")
                    && info_hash_v2.is_none()
                {
                    info_hash_v2 = Some(decode_info_hash_v2(hash)?);
                }
            }
            "dn" if name.is_none() => name = Some(value()?),
            "tr" => {
                let url = value()?;
                if trackers.len() < MAX_MAGNET_ENTRIES && !url.is_empty() && !trackers.contains(&url) {
                    trackers.push(url);
                }
            }
            "x.pe" => {
                let peer = value()?;
                let port = peer.rsplit_once(':').and_then(|(host, port)| {
                    (!host.is_empty()).then_some(())?;
                    port.parse::<u16>().ok().filter(|port| *port != 0)
                });
                if port.is_none() {
                    return Err(MagnetError::BadPeer(peer));
                }
                if peers.len() < MAX_MAGNET_ENTRIES && !peers.contains(&peer) {
                    peers.push(peer);
                }
            }
            _ => {}
        }
    }
    let info_hash = match (info_hash, info_hash_v2) {
        (Some(hash), _) => hash,
        (None, Some(v2)) => v2.truncated(),
        (None, None) => return Err(MagnetError::NoInfoHash),
    };
    Ok(Magnet { info_hash, info_hash_v2, name, trackers, peers })
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

/// 40 hex digits, or 32 RFC 4648 base32 letters (A-Z, 2-7), either case.
fn decode_info_hash(text: &str) -> Result<InfoHash, MagnetError> {
    let bad = || MagnetError::BadInfoHash(text.chars().take(64).collect());
    let mut hash = [0u8; 20];
    match text.len() {
        40 => hex::decode_to_slice(text, &mut hash).map_err(|_| bad())?,
        32 => {
            let mut bits: u64 = 0;
            let mut held = 0;
            let mut at = 0;
            for byte in text.bytes() {
                let value = match byte.to_ascii_uppercase() {
                    letter @ b'A'..=b'Z' => letter - b'A',
                    digit @ b'2'..=b'7' => digit - b'2' + 26,
                    _ => return Err(bad()),
                };
                bits = (bits << 5) | u64::from(value);
                held += 5;
                if held >= 8 {
                    held -= 8;
                    hash[at] = (bits >> held) as u8;
                    at += 1;
                }
            }
        }
        _ => return Err(bad()),
    }
    Ok(InfoHash(hash))
}

/// A multihash in hex: `12` (sha2-256), `20` (32 bytes), then the 64 hex digits of the digest.
fn decode_info_hash_v2(text: &str) -> Result<InfoHashV2, MagnetError> {
    let bad = || MagnetError::BadInfoHashV2(text.chars().take(80).collect());
    let digest = strip_prefix_ignore_case(text, "1220").filter(|digest| digest.len() == 64).ok_or_else(bad)?;
    InfoHashV2::from_hex(digest).ok_or_else(bad)
}

/// Characters left as they are in a query value: RFC 3986 unreserved ones.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// The magnet link of `torrent`: info-hash (`urn:btih:` for v1, `urn:btmh:1220` and the SHA-256 for v2, both for
/// a hybrid, as libtorrent writes them), display name and every tracker.
pub fn magnet_link(torrent: &Torrent) -> String {
    let mut xts = Vec::new();
    if torrent.has_v1() {
        xts.push(format!("xt=urn:btih:{}", torrent.info_hash));
    }
    if let Some(v2) = torrent.info_hash_v2() {
        // A multihash: 0x12 (SHA2-256), 0x20 (32 bytes), the digest.
        xts.push(format!("xt=urn:btmh:1220{v2}"));
    }
    let mut link = format!("magnet:?{}", xts.join("&"));
    link.push_str("&dn=");
    link.extend(utf8_percent_encode(&torrent.info.name, QUERY_VALUE));
    for tracker in torrent.trackers() {
        link.push_str("&tr=");
        link.extend(utf8_percent_encode(&tracker, QUERY_VALUE));
    }
    link
}

impl Magnet {
    /// The link again: what [`parse_magnet`] reads back as this magnet (hashes, name, trackers and peers).
    #[must_use]
    pub fn to_link(&self) -> String {
        let mut xts = Vec::new();
        if let Some(v1) = self.info_hash_v1() {
            xts.push(format!("xt=urn:btih:{v1}"));
        }
        if let Some(v2) = self.info_hash_v2 {
            xts.push(format!("xt=urn:btmh:1220{v2}"));
        }
        let mut link = format!("magnet:?{}", xts.join("&"));
        let mut push = |key: &str, value: &str| {
            link.push('&');
            link.push_str(key);
            link.push('=');
            link.extend(utf8_percent_encode(value, QUERY_VALUE));
        };
        if let Some(name) = &self.name {
            push("dn", name);
        }
        for tracker in &self.trackers {
            push("tr", tracker);
        }
        for peer in &self.peers {
            push("x.pe", peer);
        }
        link
    }
}

/// A .torrent file around `info` (an info dictionary as fetched from peers, BEP 9) with `trackers`, each in a
/// tier of its own as a magnet link lists them. The info bytes are kept exactly, so the info-hash is unchanged.
pub fn torrent_file_from_metadata(info: &[u8], trackers: &[String]) -> Vec<u8> {
    torrent_file_with_layers(info, trackers, &BTreeMap::new())
}

/// The piece layers a v2 or hybrid info dictionary (BEP 52) needs before it makes a whole .torrent: those of its
/// files longer than one piece, which a magnet link's fetch asks peers for with hash requests. A hybrid's are
/// optional: its v1 `pieces` check every piece, and a .torrent without some of its layers still reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayersWanted {
    pub piece_length: u64,
    /// Each file's `pieces root` and length, once per root (identical files share one layer), in root order.
    pub files: Vec<(Hash32, u64)>,
    /// Whether the dictionary has v1 `pieces` too (a hybrid): then it can do without the layers.
    pub hybrid: bool,
}

impl LayersWanted {
    /// Hashes in all the layers: one per piece of each file.
    #[must_use]
    pub fn hash_count(&self) -> u64 {
        self.files.iter().map(|&(_, length)| length.div_ceil(self.piece_length)).sum()
    }
}

/// Which piece layers `info` (a verified info dictionary) needs; `None` for a v1 one (no `meta version` 2).
///
/// Only what the fetch needs is read here; [`Torrent::from_bytes_any`] checks the whole once the layers are in.
///
/// # Errors
///
/// A dictionary that is not bencode, a v2 one without a usable `piece length` or `file tree`, or one whose layers
/// would not fit in a .torrent file we read ([`MAX_TORRENT_FILE_BYTES`]).
pub fn piece_layers_wanted(info: &[u8]) -> Result<Option<LayersWanted>, MetainfoError> {
    use ::bencode::Value;
    let dict = ::bencode::decode_exact(info)?;
    if dict.get(b"meta version").and_then(Value::as_int) != Some(2) {
        return Ok(None);
    }
    let piece_length = dict
        .get(b"piece length")
        .and_then(Value::as_int)
        .and_then(|length| u64::try_from(length).ok())
        .filter(|&length| length >= crate::merkle::BLOCK_SIZE && length.is_power_of_two())
        .ok_or_else(|| MetainfoError::invalid("info.piece length", "not a power of two of at least 16 KiB"))?;
    let tree = dict.get(b"file tree").ok_or_else(|| MetainfoError::invalid("info.file tree", "missing"))?;
    let mut roots = BTreeMap::new();
    let (mut stack, mut nodes) = (vec![(tree, 0usize)], 0usize);
    while let Some((node, depth)) = stack.pop() {
        let entries = node.as_dict().ok_or_else(|| MetainfoError::invalid("info.file tree", "not a dictionary"))?;
        nodes += entries.len();
        if nodes > crate::v2::MAX_TREE_NODES || depth > crate::v2::MAX_TREE_DEPTH {
            return Err(MetainfoError::invalid("info.file tree", "too large or too deep"));
        }
        for (key, value) in entries {
            if !key.is_empty() {
                stack.push((value, depth + 1));
                continue;
            }
            let length = value.get(b"length").and_then(Value::as_int).and_then(|n| u64::try_from(n).ok());
            let root = value.get(b"pieces root").and_then(Value::as_bytes).and_then(|r| Hash32::try_from(r).ok());
            if let (Some(length), Some(root)) = (length, root)
                && length > piece_length
            {
                roots.insert(root, length);
            }
        }
    }
    let hybrid = dict.get(b"pieces").and_then(Value::as_bytes).is_some_and(|pieces| !pieces.is_empty());
    let wanted = LayersWanted { piece_length, files: roots.into_iter().collect(), hybrid };
    if wanted.hash_count().saturating_mul(32).saturating_add(info.len() as u64) > MAX_TORRENT_FILE_BYTES {
        return Err(MetainfoError::invalid(
            "piece layers",
            format!(
                "{} hashes would not fit in a .torrent file of {MAX_TORRENT_FILE_BYTES} bytes",
                wanted.hash_count()
            ),
        ));
    }
    Ok(Some(wanted))
}

/// As [`torrent_file_from_metadata`], with BEP 52's `piece layers`: each file's layer keyed by its `pieces root`.
pub fn torrent_file_with_layers(info: &[u8], trackers: &[String], layers: &BTreeMap<Hash32, Vec<Hash32>>) -> Vec<u8> {
    let layer_bytes: usize = layers.values().map(|layer| layer.len() * 32 + 48).sum();
    let mut out =
        Vec::with_capacity(info.len() + 64 + layer_bytes + trackers.iter().map(|url| url.len() + 8).sum::<usize>());
    out.push(b'd');
    if let Some(first) = trackers.first() {
        ::bencode::encode_bytes(b"announce", &mut out);
        ::bencode::encode_bytes(first.as_bytes(), &mut out);
        ::bencode::encode_bytes(b"announce-list", &mut out);
        out.push(b'l');
        for url in trackers {
            out.push(b'l');
            ::bencode::encode_bytes(url.as_bytes(), &mut out);
            out.push(b'e');
        }
        out.push(b'e');
    }
    ::bencode::encode_bytes(b"info", &mut out);
    out.extend_from_slice(info);
    if !layers.is_empty() {
        // Keys sorted as raw bytes: a BTreeMap of byte arrays already is.
        ::bencode::encode_bytes(b"piece layers", &mut out);
        out.push(b'd');
        for (root, layer) in layers {
            ::bencode::encode_bytes(root, &mut out);
            let joined: Vec<u8> = layer.iter().flatten().copied().collect();
            ::bencode::encode_bytes(&joined, &mut out);
        }
        out.push(b'e');
    }
    out.push(b'e');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";

    #[test]
    fn golden_links_give_their_hash_name_trackers_and_peers() {
        let link = format!(
            "magnet:?xt=urn:btih:{HEX}&dn=Big%20Buck%20Bunny&tr=udp%3A%2F%2Ftracker.example%3A6969%2Fannounce\
             &tr.1=http%3A%2F%2Ft2.example%2Fannounce&tr=udp%3A%2F%2Ftracker.example%3A6969%2Fannounce\
             &x.pe=127.0.0.1:6881&x.pe=%5B%3A%3A1%5D:6882&ws=http%3A%2F%2Fseed.example%2F"
        );
        let magnet = parse_magnet(&link).expect("a valid link");
        assert_eq!(hex::encode(magnet.info_hash.0), HEX);
        assert_eq!(magnet.name.as_deref(), Some("Big Buck Bunny"));
        assert_eq!(magnet.trackers, ["udp://tracker.example:6969/announce", "http://t2.example/announce"]);
        assert_eq!(magnet.peers, ["127.0.0.1:6881", "[::1]:6882"]);
    }

    #[test]
    fn a_magnet_written_back_as_a_link_reads_the_same() {
        let v2 = "1220".to_owned() + &"ab".repeat(32);
        for link in [
            format!("magnet:?xt=urn:btih:{HEX}&dn=Big%20Buck%20Bunny&tr=udp%3A%2F%2Ft%3A1&x.pe=%5B%3A%3A1%5D:6882"),
            format!("magnet:?xt=urn:btmh:{v2}&tr=http%3A%2F%2Ft%2Fa%3Fb%3Dc"),
            format!("magnet:?xt=urn:btih:{HEX}&xt=urn:btmh:{v2}&dn=hybrid"),
        ] {
            let magnet = parse_magnet(&link).expect("a valid link");
            assert_eq!(parse_magnet(&magnet.to_link()).as_ref(), Ok(&magnet), "{link}");
        }
    }

    #[test]
    fn base32_and_hex_name_the_same_hash_in_either_case() {
        // The same 20 bytes as HEX, in RFC 4648 base32.
        let base32 = "YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK";
        let upper = parse_magnet(&format!("magnet:?xt=urn:btih:{base32}")).expect("base32");
        let lower = parse_magnet(&format!("MAGNET:?XT=urn:BTIH:{}", base32.to_lowercase())).map(|m| m.info_hash);
        let hex = parse_magnet(&format!("magnet:?xt=urn:btih:{}", HEX.to_uppercase())).expect("hex");
        assert_eq!(upper.info_hash, hex.info_hash);
        assert_eq!(lower, Err(MagnetError::NoInfoHash), "parameter names are case-sensitive, as in libtorrent");
        let lower = parse_magnet(&format!("magnet:?xt=urn:BTIH:{}", base32.to_lowercase())).expect("lower base32");
        assert_eq!(lower.info_hash, hex.info_hash);
    }

    #[test]
    fn what_we_write_we_read() {
        let link = "magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&dn=a%20b&tr=udp%3A%2F%2Fx%3A1";
        let magnet = parse_magnet(link).expect("valid");
        assert_eq!((magnet.name.as_deref(), magnet.trackers.as_slice()), (Some("a b"), &["udp://x:1".to_owned()][..]));
    }

    #[test]
    fn bad_links_are_refused_naming_what_is_wrong() {
        let cases = [
            ("http://example.com/?xt=urn:btih:".to_owned() + HEX, MagnetError::NotAMagnet),
            ("magnet:?dn=nothing".to_owned(), MagnetError::NoInfoHash),
            (format!("magnet:?xt=urn:btih:{}", &HEX[..39]), MagnetError::BadInfoHash(HEX[..39].to_owned())),
            (format!("magnet:?xt=urn:btih:{}zz", &HEX[..38]), MagnetError::BadInfoHash(format!("{}zz", &HEX[..38]))),
            (
                "magnet:?xt=urn:btih:YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKE1".to_owned(),
                MagnetError::BadInfoHash("YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKE1".to_owned()),
            ),
            (
                "magnet:?xt=urn:btmh:1114".to_owned() + &"ab".repeat(20),
                MagnetError::BadInfoHashV2(format!("1114{}", "ab".repeat(20))),
            ),
            (
                "magnet:?xt=urn:btmh:1220".to_owned() + &"ab".repeat(31),
                MagnetError::BadInfoHashV2(format!("1220{}", "ab".repeat(31))),
            ),
            (
                "magnet:?xt=urn:btmh:1220".to_owned() + &"zz".repeat(32),
                MagnetError::BadInfoHashV2(format!("1220{}", "zz".repeat(32))),
            ),
            (format!("magnet:?xt=urn:btih:{HEX}&dn=%FF%FE"), MagnetError::BadEncoding { key: "dn".into() }),
            (format!("magnet:?xt=urn:btih:{HEX}&x.pe=no-port"), MagnetError::BadPeer("no-port".into())),
            (format!("magnet:?xt=urn:btih:{HEX}&x.pe=:80"), MagnetError::BadPeer(":80".into())),
            (format!("magnet:?xt=urn:btih:{HEX}&x.pe=h:0"), MagnetError::BadPeer("h:0".into())),
            (format!("magnet:?xt=urn:btih:{HEX}&dn={}", "a".repeat(MAX_MAGNET_LEN)), MagnetError::TooLong),
        ];
        for (link, expected) in cases {
            assert_eq!(parse_magnet(&link), Err(expected), "{}", &link[..link.len().min(80)]);
        }
    }

    #[test]
    fn a_v2_only_link_names_its_swarm_by_the_truncated_hash() {
        let v2 = "ab".repeat(16) + &"cd".repeat(16);
        let magnet = parse_magnet(&format!("magnet:?xt=urn:btmh:1220{v2}&dn=x")).expect("a v2 link");
        assert_eq!(magnet.info_hash_v2.map(|hash| hash.to_string()), Some(v2.clone()));
        assert_eq!(magnet.info_hash.to_string(), v2[..40]);
        assert_eq!(magnet.info_hash_v1(), None);
        let hybrid = parse_magnet(&format!("magnet:?xt=urn:btih:{HEX}&xt=urn:btmh:1220{}", v2.to_uppercase()))
            .expect("a hybrid link");
        assert_eq!(hybrid.info_hash.to_string(), HEX, "a hybrid's swarm is named by its v1 hash");
        assert_eq!(hybrid.info_hash_v2, magnet.info_hash_v2);
        assert_eq!(hybrid.info_hash_v1(), Some(hybrid.info_hash));
        assert_eq!(parse_magnet(&format!("magnet:?xt=urn:btih:{HEX}")).expect("v1").info_hash_v2, None);
    }

    #[test]
    fn lists_are_capped() {
        let mut link = format!("magnet:?xt=urn:btih:{HEX}");
        for i in 0..1000 {
            link.push_str(&format!("&tr=udp%3A%2F%2Ft{i}%3A1&x.pe=10.0.0.1:{}", i + 1));
        }
        let magnet = parse_magnet(&link).expect("valid");
        assert_eq!((magnet.trackers.len(), magnet.peers.len()), (MAX_MAGNET_ENTRIES, MAX_MAGNET_ENTRIES));
    }

    #[test]
    fn a_v2_info_dictionary_names_its_layers_and_the_torrent_with_them_parses() {
        let dir = std::env::temp_dir().join(format!("magnet-layers-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("tree")).expect("temp dir");
        let big: Vec<u8> = (0..100_000u32).map(|i| (i * 31 % 251) as u8).collect();
        std::fs::write(dir.join("tree/big.bin"), &big).expect("write");
        std::fs::write(dir.join("tree/copy.bin"), &big).expect("write");
        std::fs::write(dir.join("tree/small.bin"), b"tiny").expect("write");
        for version in [crate::MetaVersion::V2, crate::MetaVersion::Hybrid] {
            let options = crate::CreateOptions {
                piece_length: Some(16_384),
                meta_version: version,
                ..crate::CreateOptions::default()
            };
            let created = crate::create_from_path(&dir.join("tree"), &options, &|_| {}).expect("created");
            let full = Torrent::from_bytes_any(&created.bytes).expect("parses");
            let wanted = piece_layers_wanted(&full.info_bytes).expect("reads").expect("v2");
            let v2 = full.v2.as_ref().expect("v2");
            let long = v2.files.iter().find(|file| file.length == 100_000).expect("big");
            // The two identical files share one layer; the small one needs none.
            let hybrid = version == crate::MetaVersion::Hybrid;
            assert_eq!(
                wanted,
                LayersWanted { piece_length: 16_384, files: vec![(long.pieces_root.expect("root"), 100_000)], hybrid }
            );
            assert_eq!(wanted.hash_count(), 7);
            let bare = torrent_file_from_metadata(&full.info_bytes, &[]);
            // A v2-only torrent needs every long file's layer; a hybrid's v1 pieces do without.
            match Torrent::from_bytes_any(&bare) {
                Ok(torrent) => {
                    assert!(hybrid, "a v2-only torrent without its layer was read");
                    assert_eq!((torrent.info_hash_v2(), torrent.info_hash), (full.info_hash_v2(), full.info_hash));
                    assert!(torrent.v2.iter().flat_map(|v2| &v2.files).all(|file| file.piece_layer.is_empty()));
                }
                Err(err) => assert!(!hybrid && err.to_string().contains("piece layers"), "{err}"),
            }
            let layers = BTreeMap::from([(long.pieces_root.expect("root"), long.piece_layer.clone())]);
            let file = torrent_file_with_layers(&full.info_bytes, &["udp://t.example:1".into()], &layers);
            let parsed = Torrent::from_bytes_any(&file).expect("a whole torrent");
            assert_eq!((parsed.info_hash_v2(), parsed.info_hash), (full.info_hash_v2(), full.info_hash));
            assert_eq!(parsed.v2, full.v2);
        }
        let v1 = b"d6:lengthi3e4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae";
        assert_eq!(piece_layers_wanted(v1).expect("reads"), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_torrent_file_around_fetched_metadata_keeps_the_info_hash() {
        let info = b"d6:lengthi3e4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae";
        let trackers = ["udp://a.example:1/announce".to_owned(), "http://b.example/announce".to_owned()];
        let file = torrent_file_from_metadata(info, &trackers);
        let torrent = Torrent::from_bytes(&file).expect("a valid torrent");
        assert_eq!(&*torrent.info_bytes, &info[..]);
        assert_eq!(torrent.announce_list, vec![vec![trackers[0].clone()], vec![trackers[1].clone()]]);
        assert_eq!(torrent.trackers(), trackers);
        let bare = Torrent::from_bytes(&torrent_file_from_metadata(info, &[])).expect("trackerless");
        assert_eq!(bare.info_hash, torrent.info_hash);
        assert!(bare.trackers().is_empty());
    }
}
