//! The client's side of the query: announce and scrape URLs (BEP 3, BEP 23, BEP 48).
//!
//! The tracker URL from the torrent is kept as it stands (private trackers put a passkey in its path or its
//! query) and the BEP 3 fields are appended to it, joined with `&` when it already has a query.

use std::fmt::Write;

use crate::AnnounceEvent;
use crate::http::percent;

/// What the client reports in one announce, and the options it asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HttpAnnounce<'a> {
    /// SHA-1 of the torrent's bencoded info dictionary.
    pub info_hash: [u8; 20],
    /// The client's 20-byte peer id.
    pub peer_id: [u8; 20],
    /// The TCP port the client accepts peers on.
    pub port: u16,
    /// Bytes uploaded so far in this session.
    pub uploaded: u64,
    /// Bytes downloaded so far in this session.
    pub downloaded: u64,
    /// Bytes still missing; 0 means the client is a seeder.
    pub left: u64,
    /// Why the client announces now; [`AnnounceEvent::None`] (a regular announce) sends no `event`.
    pub event: AnnounceEvent,
    /// Peers wanted; `None` leaves the tracker's default.
    pub numwant: Option<u32>,
    /// A random value kept for the session, so that the tracker recognises the client after an address
    /// change. Sent as 8 uppercase hex digits, as libtorrent does.
    pub key: u32,
    /// The `tracker id` from the tracker's last reply, to be echoed back (BEP 3).
    pub tracker_id: Option<&'a [u8]>,
}

/// `base_url` with the BEP 3 announce query appended:
/// `info_hash`, `peer_id`, `port`, `uploaded`, `downloaded`, `left`, `compact=1`, then `event` unless regular,
/// `numwant` when set, `key`, `trackerid` when the tracker gave one, and `no_peer_id=1`.
///
/// `compact=1` asks for BEP 23 peer strings (many trackers send nothing else), and `no_peer_id=1` tells older
/// trackers that a peer list of dictionaries may leave out the ids: we never use them. A `#fragment` on the base
/// URL is dropped, since a fragment is never sent and would swallow the query.
#[must_use]
pub fn announce_url(base_url: &str, announce: &HttpAnnounce<'_>) -> String {
    let mut url = start_query(base_url, 200);
    url.push_str("info_hash=");
    percent::encode_into(&announce.info_hash, &mut url);
    url.push_str("&peer_id=");
    percent::encode_into(&announce.peer_id, &mut url);
    // Writing to a String cannot fail.
    let _ = write!(
        url,
        "&port={}&uploaded={}&downloaded={}&left={}&compact=1",
        announce.port, announce.uploaded, announce.downloaded, announce.left
    );
    if let Some(event) = event_name(announce.event) {
        url.push_str("&event=");
        url.push_str(event);
    }
    if let Some(numwant) = announce.numwant {
        let _ = write!(url, "&numwant={numwant}");
    }
    let _ = write!(url, "&key={:08X}", announce.key);
    if let Some(tracker_id) = announce.tracker_id {
        url.push_str("&trackerid=");
        percent::encode_into(tracker_id, &mut url);
    }
    url.push_str("&no_peer_id=1");
    url
}

/// The scrape URL for `announce_url` with an `info_hash` parameter per hash, or `None` when the tracker has
/// no scrape URL by BEP 48's rule: the last path component must start with `announce`, and that word is replaced
/// by `scrape` (`/x/announce.php?passkey=1` → `/x/scrape.php?passkey=1&info_hash=…`).
#[must_use]
pub fn scrape_url(announce_url: &str, info_hashes: &[[u8; 20]]) -> Option<String> {
    let (before_fragment, _) = split_fragment(announce_url);
    let path_end = before_fragment.find('?').unwrap_or(before_fragment.len());
    let up_to_query = &before_fragment[..path_end];
    // Skip the `//` of `scheme://`, so that a URL with no path has no slash left to find.
    let authority_start = up_to_query.find("://").map_or(0, |scheme_end| scheme_end + 3);
    let last_slash = authority_start + up_to_query[authority_start..].rfind('/')?;
    let component = last_slash + 1;
    if !before_fragment[component..path_end].starts_with("announce") {
        return None;
    }
    let replaced =
        format!("{}scrape{}", &before_fragment[..component], &before_fragment[component + "announce".len()..]);
    let mut url = start_query(&replaced, 64 * info_hashes.len());
    for (index, info_hash) in info_hashes.iter().enumerate() {
        if index > 0 {
            url.push('&');
        }
        url.push_str("info_hash=");
        percent::encode_into(info_hash, &mut url);
    }
    Some(url)
}

/// The query-string value of an event, or `None` for a regular announce.
pub(crate) fn event_name(event: AnnounceEvent) -> Option<&'static str> {
    match event {
        AnnounceEvent::None => None,
        AnnounceEvent::Completed => Some("completed"),
        AnnounceEvent::Started => Some("started"),
        AnnounceEvent::Stopped => Some("stopped"),
    }
}

/// `url` without its fragment, followed by the separator that starts a new query parameter: `?` when it has no
/// query, `&` when it has one, nothing when it already ends in `?` or `&`.
fn start_query(url: &str, extra: usize) -> String {
    let (url, _) = split_fragment(url);
    let mut out = String::with_capacity(url.len() + 1 + extra);
    out.push_str(url);
    if !url.contains('?') {
        out.push('?');
    } else if !url.ends_with(['?', '&']) {
        out.push('&');
    }
    out
}

fn split_fragment(url: &str) -> (&str, &str) {
    url.split_once('#').unwrap_or((url, ""))
}
