//! Magnet links (BEP 9 form): `magnet:?xt=urn:btih:<hex>&dn=<name>&tr=<tracker>...`.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::torrent::Torrent;

/// Characters left as they are in a query value: RFC 3986 unreserved ones.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// The magnet link of `torrent`: info-hash, display name and every tracker.
pub fn magnet_link(torrent: &Torrent) -> String {
    let mut link = format!("magnet:?xt=urn:btih:{}", torrent.info_hash);
    link.push_str("&dn=");
    link.extend(utf8_percent_encode(&torrent.info.name, QUERY_VALUE));
    for tracker in torrent.trackers() {
        link.push_str("&tr=");
        link.extend(utf8_percent_encode(&tracker, QUERY_VALUE));
    }
    link
}
