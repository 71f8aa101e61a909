//! Magnet links (BEP 9 form): `magnet:?xt=urn:btih:<hex>&dn=<name>&tr=<tracker>...`, written for a torrent and
//! read from outside.
//!
//! Reading follows what libtorrent and aria2 accept: the info-hash in 40 hex digits or 32 base32 letters (either
//! case), any number of `tr` (also `tr.1`, `tr.2`... as some sites write them) and `x.pe` peers, parameters in any
//! order, values percent-decoded. A link with only a v2 hash (`urn:btmh:`) is refused for now. Everything that can
//! grow is capped, so a hostile link costs a bounded amount of memory.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::infohash::InfoHash;
use crate::torrent::Torrent;

/// Longest magnet link read (browsers cap URLs near this too).
pub const MAX_MAGNET_LEN: usize = 64 * 1024;
/// Most trackers and most `x.pe` peers kept from one link; the rest are ignored.
pub const MAX_MAGNET_ENTRIES: usize = 100;

/// What a magnet link names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Magnet {
    pub info_hash: InfoHash,
    /// `dn`: a display name, until the metadata gives the real one.
    pub name: Option<String>,
    /// `tr`: tracker URLs, in link order, without repeats.
    pub trackers: Vec<String>,
    /// `x.pe`: peers to try directly, `HOST:PORT` as written (resolved by the caller).
    pub peers: Vec<String>,
}

/// Why a magnet link is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MagnetError {
    #[error("not a magnet link (it must start with `magnet:?`)")]
    NotAMagnet,
    #[error("the magnet link is longer than {MAX_MAGNET_LEN} bytes")]
    TooLong,
    #[error("the magnet link has no `xt=urn:btih:` info-hash")]
    NoInfoHash,
    #[error("the magnet link has only a BitTorrent v2 hash (`urn:btmh:`), which is not supported yet")]
    OnlyV2,
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
/// A text that is not a magnet link, too long, without a usable v1 info-hash, with a malformed hash, value or
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
    let (mut info_hash, mut v2_only, mut name) = (None, false, None);
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
                } else if strip_prefix_ignore_case(&urn, "urn:btmh:").is_some() {
                    v2_only = true;
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
    let info_hash = match info_hash {
        Some(hash) => hash,
        None if v2_only => return Err(MagnetError::OnlyV2),
        None => return Err(MagnetError::NoInfoHash),
    };
    Ok(Magnet { info_hash, name, trackers, peers })
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

/// A .torrent file around `info` (an info dictionary as fetched from peers, BEP 9) with `trackers`, each in a
/// tier of its own as a magnet link lists them. The info bytes are kept exactly, so the info-hash is unchanged.
pub fn torrent_file_from_metadata(info: &[u8], trackers: &[String]) -> Vec<u8> {
    let mut out = Vec::with_capacity(info.len() + 64 + trackers.iter().map(|url| url.len() + 8).sum::<usize>());
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
            ("magnet:?xt=urn:btmh:1220".to_owned() + &"ab".repeat(32), MagnetError::OnlyV2),
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
    fn lists_are_capped() {
        let mut link = format!("magnet:?xt=urn:btih:{HEX}");
        for i in 0..1000 {
            link.push_str(&format!("&tr=udp%3A%2F%2Ft{i}%3A1&x.pe=10.0.0.1:{}", i + 1));
        }
        let magnet = parse_magnet(&link).expect("valid");
        assert_eq!((magnet.trackers.len(), magnet.peers.len()), (MAX_MAGNET_ENTRIES, MAX_MAGNET_ENTRIES));
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
