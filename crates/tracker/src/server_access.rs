//! Putting an access list ([`crate::access`]) in force on every worker, as set_named does for named torrents.

use super::*;

/// What replacing the access list did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessChange {
    /// Peers dropped with the swarms the new list refuses.
    pub peers_dropped: usize,
    /// Named torrents the new list refuses, by name: named, yet not served (a hybrid when either of its two
    /// info-hashes is refused).
    pub named_refused: Vec<String>,
}

impl Tracker {
    /// Puts `access` in force: every worker takes it before its next datagram or HTTP request. The swarms it
    /// refuses are dropped at once (a named torrent's stays, empty), so that their peers are neither kept nor
    /// counted until they would have expired. A peer recorded by a worker in the instant of the swap is not
    /// shown (its scrape gives zeros) and expires as usual.
    pub fn set_access(&self, access: Access) -> AccessChange {
        let access = Arc::new(access);
        {
            let mut current = self.shared.access.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            *current = access.clone();
            self.shared.epoch.fetch_add(1, Ordering::Release);
        }
        let peers_dropped = self.shared.shards.forget(|hash| !access.permits(hash));
        let named = self.shared.named.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let named_refused = each_named(&named)
            .into_iter()
            .filter(|torrent| torrent.info_hashes().any(|hash| !access.permits(&hash)))
            .map(|torrent| torrent.name.clone())
            .collect();
        AccessChange { peers_dropped, named_refused }
    }

    /// Whether the access list in force on this worker lets `info_hash` be served.
    pub fn permits(&self, info_hash: &[u8; 20]) -> bool {
        self.access.permits(info_hash)
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

    use tracker_protocol::http::{HttpScrapeReply, ScrapeEntry, parse_scrape_reply};
    use tracker_protocol::{
        AnnounceEvent, AnnounceOptions, AnnounceRequest, ConnectRequest, InfoHashes, Response, ScrapeRequest,
        TorrentStats, TransactionId,
    };

    use super::*;
    use crate::access::AccessList;

    const LISTED: [u8; 20] = [0x11; 20];
    const OTHER: [u8; 20] = [0x22; 20];
    const ZERO: TorrentStats = TorrentStats { seeders: 0, completed: 0, leechers: 0 };

    fn list(hashes: &[[u8; 20]]) -> AccessList {
        let text: String = hashes.iter().map(|hash| format!("{}\n", hex(hash))).collect();
        AccessList::parse(text.as_bytes()).expect("a good list")
    }

    fn client(n: u8) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::new(127, 0, 0, n), 40_000))
    }

    /// Connects from `from` and sends `request` (built with that connection ID); the parsed reply.
    fn exchange(
        tracker: &mut Tracker,
        from: SocketAddr,
        request: impl Fn(ConnectionId, &mut Vec<u8>),
    ) -> Response<'static, SocketAddrV4> {
        let mut packet = Vec::new();
        ConnectRequest { transaction_id: TransactionId(1) }.write(&mut packet);
        let reply = tracker.handle(&packet, from, 10).expect("connect answered").to_vec();
        let Ok(Response::Connect(connected)) = Response::<SocketAddrV4>::parse(&reply) else { panic!("{reply:?}") };
        packet.clear();
        request(connected.connection_id, &mut packet);
        let reply = tracker.handle(&packet, from, 10).expect("answered").to_vec();
        Response::<SocketAddrV4>::parse(&reply).expect("a valid reply").into_owned()
    }

    /// A UDP announce of `info_hash` as a seeder on `port`: Ok((seeders, leechers)) or the error's text.
    fn announce(tracker: &mut Tracker, info_hash: [u8; 20], from: SocketAddr, port: u16) -> Result<(u32, u32), String> {
        let reply = exchange(tracker, from, |connection_id, packet| {
            AnnounceRequest {
                connection_id,
                transaction_id: TransactionId(7),
                info_hash,
                peer_id: [port as u8; 20],
                downloaded: 0,
                left: 0,
                uploaded: 0,
                event: AnnounceEvent::Started,
                ip_address: None,
                key: 0,
                num_want: -1,
                port,
                options: AnnounceOptions::EMPTY,
            }
            .write(packet);
        });
        match reply {
            Response::Announce(reply) => Ok((reply.seeders, reply.leechers)),
            Response::Error(error) => Err(error.message.into_owned()),
            other => panic!("not an announce reply: {other:?}"),
        }
    }

    fn udp_scrape(tracker: &mut Tracker, hashes: &[[u8; 20]]) -> Vec<TorrentStats> {
        let reply = exchange(tracker, client(9), |connection_id, packet| {
            ScrapeRequest { connection_id, transaction_id: TransactionId(3), info_hashes: InfoHashes::new(hashes) }
                .write(packet);
        });
        let Response::Scrape(reply) = reply else { panic!("not a scrape reply: {reply:?}") };
        reply.torrents
    }

    fn http_scrape(tracker: &mut Tracker, hashes: &[[u8; 20]]) -> Vec<ScrapeEntry> {
        let query: Vec<String> = hashes
            .iter()
            .map(|hash| format!("info_hash={}", hash.iter().map(|byte| format!("%{byte:02X}")).collect::<String>()))
            .collect();
        let target = format!("/scrape?{}", query.join("&"));
        let reply = tracker.handle_http(target.as_bytes(), client(9).ip(), 10);
        match parse_scrape_reply(&reply.body) {
            Ok(HttpScrapeReply::Files(entries)) => entries,
            other => panic!("not a scrape reply: {other:?}"),
        }
    }

    fn http_announce(tracker: &mut Tracker, info_hash: [u8; 20]) -> String {
        let hash: String = info_hash.iter().map(|byte| format!("%{byte:02X}")).collect();
        let target =
            format!("/announce?info_hash={hash}&peer_id={}&port=7000&uploaded=0&downloaded=0&left=0", "p".repeat(20));
        String::from_utf8_lossy(&tracker.handle_http(target.as_bytes(), client(8).ip(), 10).body).into_owned()
    }

    #[test]
    fn an_allow_list_serves_only_its_hashes_over_udp_and_http() {
        let mut tracker = Tracker::new(Config::default(), Vec::new(), true);
        tracker.set_access(Access::Allow(list(&[LISTED])));
        assert_eq!(announce(&mut tracker, LISTED, client(1), 6001), Ok((1, 0)));
        assert_eq!(announce(&mut tracker, OTHER, client(1), 6001), Err(access::NOT_ALLOWED.to_owned()));
        assert_eq!(tracker.shards().scrape(&OTHER), None, "a refused announce records nothing");
        assert_eq!(http_announce(&mut tracker, OTHER), format!("d14:failure reason24:{}e", access::NOT_ALLOWED));
        assert!(http_announce(&mut tracker, LISTED).starts_with("d8:complete"));
        let listed = TorrentStats { seeders: 2, completed: 0, leechers: 0 };
        assert_eq!(udp_scrape(&mut tracker, &[OTHER, LISTED]), [ZERO, listed]);
        let over_http = http_scrape(&mut tracker, &[OTHER, LISTED]);
        let expected =
            [ScrapeEntry { info_hash: LISTED, stats: listed }, ScrapeEntry { info_hash: OTHER, stats: ZERO }];
        assert_eq!(over_http, expected, "both hashes, the refused one with zeros (sorted by hash)");
    }

    #[test]
    fn a_new_deny_list_drops_the_swarm_it_refuses_on_every_worker_and_scrapes_show_zeros() {
        let mut workers = Tracker::workers(Config::default(), Vec::new(), true, 2);
        let mut second = workers.pop().expect("two workers");
        let mut first = workers.pop().expect("two workers");
        assert_eq!(announce(&mut first, LISTED, client(1), 6001), Ok((1, 0)));
        assert_eq!(announce(&mut second, OTHER, client(2), 6002), Ok((1, 0)));
        let change = first.set_access(Access::Deny(list(&[LISTED])));
        assert_eq!(change, AccessChange { peers_dropped: 1, named_refused: Vec::new() });
        assert_eq!(first.shards().scrape(&LISTED), None, "the refused swarm is gone");
        assert_eq!(announce(&mut second, LISTED, client(3), 6003), Err(access::NOT_ALLOWED.to_owned()));
        assert_eq!(announce(&mut second, OTHER, client(3), 6003), Ok((2, 0)));
        assert_eq!(udp_scrape(&mut second, &[LISTED])[0], ZERO);
        // Lifting the list serves the hash again, from an empty swarm.
        first.set_access(Access::Everyone);
        assert_eq!(announce(&mut second, LISTED, client(4), 6004), Ok((1, 0)));
    }

    #[test]
    fn an_allow_list_over_named_torrents_serves_those_both_named_and_listed_and_reports_the_rest() {
        let named =
            |info_hash, name: &str| NamedTorrent { info_hash, v2_info_hash: None, name: name.into(), total_length: 1 };
        let mut tracker =
            Tracker::new(Config::default(), vec![named(LISTED, "listed"), named(OTHER, "unlisted")], false);
        assert_eq!(announce(&mut tracker, OTHER, client(1), 6001), Ok((1, 0)));
        let change = tracker.set_access(Access::Allow(list(&[LISTED, [0x33; 20]])));
        assert_eq!(change, AccessChange { peers_dropped: 1, named_refused: vec!["unlisted".to_owned()] });
        assert_eq!(announce(&mut tracker, LISTED, client(1), 6001), Ok((1, 0)));
        assert_eq!(announce(&mut tracker, OTHER, client(1), 6001), Err(access::NOT_ALLOWED.to_owned()));
        assert_eq!(announce(&mut tracker, [0x33; 20], client(1), 6001), Err("unknown torrent".to_owned()));
        // The named torrent stays named: allowed again, it is served again.
        tracker.set_access(Access::Allow(list(&[LISTED, OTHER])));
        assert_eq!(announce(&mut tracker, OTHER, client(1), 6001), Ok((1, 0)));
    }

    #[test]
    fn an_http_scrape_answers_every_hash_asked_with_zeros_for_those_not_served() {
        let mut tracker = Tracker::new(Config::default(), Vec::new(), true);
        assert_eq!(announce(&mut tracker, LISTED, client(1), 6001), Ok((1, 0)));
        let entries = http_scrape(&mut tracker, &[OTHER, LISTED, OTHER]);
        let listed = TorrentStats { seeders: 1, completed: 0, leechers: 0 };
        let expected =
            [ScrapeEntry { info_hash: LISTED, stats: listed }, ScrapeEntry { info_hash: OTHER, stats: ZERO }];
        assert_eq!(entries, expected, "each hash once, the unknown one with zeros");
        assert_eq!(udp_scrape(&mut tracker, &[OTHER, LISTED]), [ZERO, listed], "as over UDP");
    }
}
