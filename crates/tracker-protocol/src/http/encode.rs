//! The tracker's reply bodies: canonical bencode (keys sorted as raw bytes, as BEP 3 requires), built through
//! [`bencode::Value`] so that the order is right by construction.
//!
//! Peers are always written compact (BEP 23 `peers`, BEP 7 `peers6`): it is what every current client asks
//! for, a sixth of the size of the dictionary form, and many trackers send nothing else.

use bencode::Value;

use crate::CompactPeer;
use crate::http::{HttpAnnounceSuccess, ScrapeEntry};

/// The body of a successful announce reply: each optional field that is set, `peers` always (empty or not, as
/// clients expect the key), and `peers6` when there are IPv6 peers. A tracker should set `interval`.
///
/// Every peer listed is written, so cap the lists (numwant, the tracker's own limit) before calling.
#[must_use]
pub fn encode_announce_reply(reply: &HttpAnnounceSuccess) -> Vec<u8> {
    let peers = compact(&reply.peers);
    let peers6 = compact(&reply.peers6);
    let mut entries: Vec<(&[u8], Value<'_>)> = Vec::with_capacity(9);
    let counts = [
        (&b"interval"[..], reply.interval),
        (b"min interval", reply.min_interval),
        (b"complete", reply.complete),
        (b"incomplete", reply.incomplete),
        (b"downloaded", reply.downloaded),
    ];
    entries.extend(counts.into_iter().filter_map(|(key, count)| Some((key, Value::Int(count?.into())))));
    if let Some(tracker_id) = &reply.tracker_id {
        entries.push((b"tracker id", Value::Bytes(tracker_id)));
    }
    if let Some(warning) = &reply.warning {
        entries.push((b"warning message", Value::Bytes(warning.as_bytes())));
    }
    entries.push((b"peers", Value::Bytes(&peers)));
    if !peers6.is_empty() {
        entries.push((b"peers6", Value::Bytes(&peers6)));
    }
    Value::Dict(entries).to_bytes()
}

/// The body that refuses an announce or a scrape: `d14:failure reason<len>:<reason>e`.
///
/// Send it with HTTP status 200: clients (libtorrent among them) only read the body of a 200 reply, and would
/// report any other status as an HTTP error without showing the reason.
#[must_use]
pub fn encode_failure(reason: &str) -> Vec<u8> {
    Value::Dict(vec![(b"failure reason", Value::Bytes(reason.as_bytes()))]).to_bytes()
}

/// The body of a scrape reply: `files`, info-hash → `complete`, `downloaded`, `incomplete`, sorted by
/// info-hash. An info-hash listed twice is written once (its first entry), since a dictionary cannot hold a key
/// twice and clients refuse one that does.
#[must_use]
pub fn encode_scrape_reply(entries: &[ScrapeEntry]) -> Vec<u8> {
    let mut sorted: Vec<&ScrapeEntry> = entries.iter().collect();
    // Stable: the first of equal hashes stays first and survives the dedup.
    sorted.sort_by_key(|entry| entry.info_hash);
    sorted.dedup_by_key(|entry| entry.info_hash);
    let files = sorted
        .into_iter()
        .map(|entry| {
            let counts = vec![
                (&b"complete"[..], Value::Int(entry.stats.seeders.into())),
                (b"downloaded", Value::Int(entry.stats.completed.into())),
                (b"incomplete", Value::Int(entry.stats.leechers.into())),
            ];
            (&entry.info_hash[..], Value::Dict(counts))
        })
        .collect();
    Value::Dict(vec![(b"files", Value::Dict(files))]).to_bytes()
}

fn compact<A: CompactPeer>(peers: &[A]) -> Vec<u8> {
    let mut out = Vec::with_capacity(peers.len() * A::LEN);
    for &peer in peers {
        peer.write_compact(&mut out);
    }
    out
}
