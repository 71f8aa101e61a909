//! Fuzz target: the HTTP tracker codec's four parsers (announce and scrape replies on the client side, announce
//! and scrape query strings on the tracker side) must never panic, and whatever parses must encode, with the
//! other side's encoder, to something that parses back to the same value.

#![no_main]

use tracker_protocol::http::{
    HttpAnnounce, HttpAnnounceReply, HttpAnnounceRequest, HttpScrapeReply, IpParam, announce_url,
    encode_announce_reply, encode_failure, encode_scrape_reply, parse_announce_query, parse_announce_reply,
    parse_scrape_query, parse_scrape_reply, scrape_url,
};

/// The most info-hashes one scrape may name (the UDP limit); a second parse with 1 exercises the refusal.
const MAX_SCRAPE: usize = 74;

fn announce_reply(data: &[u8]) {
    let reply = match parse_announce_reply(data) {
        Ok(reply) => reply,
        Err(error) => {
            let _ = error.to_string();
            return;
        }
    };
    let body = match &reply {
        HttpAnnounceReply::Success(success) => encode_announce_reply(success),
        HttpAnnounceReply::Failure(reason) => encode_failure(reason),
    };
    assert_eq!(parse_announce_reply(&body).expect("an encoded reply parses"), reply);
}

fn scrape_reply(data: &[u8]) {
    match parse_scrape_reply(data) {
        Ok(HttpScrapeReply::Files(mut entries)) => {
            let body = encode_scrape_reply(&entries);
            // The encoder sorts by info-hash; the parser keeps the input's order, and the input cannot name a
            // hash twice (bencode refuses repeated keys).
            entries.sort_by_key(|entry| entry.info_hash);
            assert_eq!(parse_scrape_reply(&body).expect("an encoded reply parses"), HttpScrapeReply::Files(entries));
        }
        Ok(HttpScrapeReply::Failure(reason)) => {
            let body = encode_failure(&reason);
            assert_eq!(parse_scrape_reply(&body).expect("an encoded failure parses"), HttpScrapeReply::Failure(reason));
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
}

fn announce_query(data: &[u8]) {
    let ignored = parse_announce_query(data, IpParam::Ignore);
    let request = match parse_announce_query(data, IpParam::Accept) {
        Ok(request) => request,
        Err(error) => {
            let _ = error.to_string();
            return;
        }
    };
    // Reading `ip` changes nothing else.
    let ignored = ignored.expect("a query that parses with ip parses without");
    assert_eq!(ignored.ip, None);
    assert_eq!(ignored, HttpAnnounceRequest { ip: None, ..request.clone() });

    // The client's encoder writes every field the tracker reads, except the key (a u32 there) and the address.
    let announce = HttpAnnounce {
        info_hash: request.info_hash,
        peer_id: request.peer_id,
        port: request.port,
        uploaded: request.uploaded,
        downloaded: request.downloaded,
        left: request.left,
        event: request.event,
        numwant: request.numwant,
        key: 0,
        tracker_id: request.tracker_id.as_deref(),
    };
    let url = announce_url("http://tracker.example/announce?passkey=x", &announce);
    let (_, query) = url.split_once('?').expect("the URL has a query");
    let again = parse_announce_query(query.as_bytes(), IpParam::Accept).expect("an encoded announce parses");
    let expected = HttpAnnounceRequest { compact: true, key: Some(b"00000000".to_vec()), ip: None, ..request };
    assert_eq!(again, expected);
}

fn scrape_query(data: &[u8]) {
    let _ = parse_scrape_query(data, 1);
    match parse_scrape_query(data, MAX_SCRAPE) {
        Ok(info_hashes) => {
            let url = scrape_url("http://tracker.example/announce", &info_hashes).expect("ends in announce");
            let (_, query) = url.split_once('?').expect("the URL has a query");
            assert_eq!(
                parse_scrape_query(query.as_bytes(), MAX_SCRAPE).expect("an encoded scrape parses"),
                info_hashes
            );
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    announce_reply(data);
    scrape_reply(data);
    announce_query(data);
    scrape_query(data);
});
