//! The HTTP front end's requests, answered without sockets: `/announce` and `/scrape` (BEP 3, 23, 7, 48) over the
//! same swarms and rules as UDP, `/metrics`, `/stats.json`, and the live page.

use super::*;

/// An HTTP reply: status, content type and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl HttpReply {
    pub(super) fn bencoded(body: Vec<u8>) -> HttpReply {
        HttpReply { status: 200, content_type: "text/plain", body }
    }
}

impl Tracker {
    /// Answers one HTTP request for `target` (the request-target: path and query, raw bytes) from `client`:
    /// `/announce` (BEP 3, compact BEP 23 and BEP 7 peers) and `/scrape` (BEP 48), over the same swarms and
    /// rules as UDP. A refusal is a `failure reason` with status 200, as clients expect.
    pub fn handle_http(&mut self, target: &[u8], client: IpAddr, now: u32) -> HttpReply {
        self.refresh();
        let (path, query) = match target.iter().position(|&byte| byte == b'?') {
            Some(at) => (&target[..at], &target[at + 1..]),
            None => (target, &b""[..]),
        };
        let client = match client {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(client, IpAddr::V4),
            IpAddr::V4(_) => client,
        };
        match path {
            b"/announce" => {
                let body = match http::parse_announce_query(query, http::IpParam::Ignore) {
                    Ok(request) => {
                        WorkerStats::count(&self.my_stats().announces);
                        self.http_announce(&request, client, now)
                    }
                    Err(err) => self.http_failure(&err.to_string()),
                };
                HttpReply::bencoded(body)
            }
            b"/scrape" => {
                let body = match http::parse_scrape_query(query, self.shared.config.max_scrape_hashes) {
                    Ok(hashes) if hashes.is_empty() => self.http_failure("a scrape must name its info_hash"),
                    Ok(hashes) => {
                        WorkerStats::count(&self.my_stats().scrapes);
                        // Every hash asked is answered, one not served (or refused) with zeros, as over UDP and
                        // as opentracker does: a reply without it reads as invalid to some clients (the npm
                        // bittorrent-tracker), and a failure for the whole reply would hide the hashes we know.
                        let entries: Vec<http::ScrapeEntry> = hashes
                            .into_iter()
                            .map(|info_hash| {
                                let counts = self.scrape_counts(&info_hash);
                                let stats = TorrentStats {
                                    seeders: counts.seeders,
                                    completed: counts.completed,
                                    leechers: counts.leechers,
                                };
                                http::ScrapeEntry { info_hash, stats }
                            })
                            .collect();
                        http::encode_scrape_reply(&entries)
                    }
                    Err(err) => self.http_failure(&err.to_string()),
                };
                HttpReply::bencoded(body)
            }
            b"/metrics" => HttpReply {
                status: 200,
                content_type: "application/openmetrics-text; version=1.0.0; charset=utf-8",
                body: self.snapshot().to_openmetrics().into_bytes(),
            },
            b"/" => HttpReply {
                status: 200,
                content_type: "text/html; charset=utf-8",
                body: dashboard::PAGE.as_bytes().to_vec(),
            },
            b"/dashboard.json" => {
                HttpReply { status: 200, content_type: "application/json", body: self.dashboard_json().into_bytes() }
            }
            b"/stats.json" => HttpReply {
                status: 200,
                content_type: "application/json",
                body: self.snapshot().to_json().into_bytes(),
            },
            _ => HttpReply { status: 404, content_type: "text/plain", body: b"not found\n".to_vec() },
        }
    }

    pub(super) fn http_failure(&self, reason: &str) -> Vec<u8> {
        WorkerStats::count(&self.my_stats().errors_sent);
        http::encode_failure(reason)
    }

    fn http_announce(&mut self, request: &http::HttpAnnounceRequest, client: IpAddr, now: u32) -> Vec<u8> {
        if !self.access.permits(&request.info_hash) {
            tracing::debug!(%client, info_hash = %hex(&request.info_hash), "refused HTTP announce: not allowed");
            return self.http_failure(crate::access::NOT_ALLOWED);
        }
        let wanted = request.numwant.map_or(self.shared.config.default_numwant, |n| n as usize);
        let announce = Announce {
            info_hash: request.info_hash,
            peer_id: request.peer_id,
            key: request
                .key
                .as_deref()
                .map_or(0, |key| key.iter().fold(0u32, |acc, &b| acc.rotate_left(5) ^ u32::from(b))),
            uploaded: request.uploaded,
            downloaded: request.downloaded,
            left: request.left,
            event: request.event,
            num_want: wanted.min(self.shared.config.max_numwant),
        };
        let mut reply = http::HttpAnnounceSuccess { interval: Some(self.shared.config.interval), ..Default::default() };
        let result = match client {
            IpAddr::V4(ip) => {
                let peer = SocketAddrV4::new(ip, request.port);
                let result = self.shared.shards.lock(&request.info_hash).announce(
                    peer,
                    &announce,
                    now,
                    &mut self.rng,
                    &mut reply.peers,
                );
                if let Ok((_, change)) = result {
                    self.journal_announce(&request.info_hash, peer, request.left == 0, change, &reply.peers, now);
                }
                result.map(|(counts, change)| (counts, change, peer.to_string(), reply.peers.len()))
            }
            IpAddr::V6(ip) => {
                let peer = SocketAddrV6::new(ip, request.port, 0, 0);
                let result = self.shared.shards.lock(&request.info_hash).announce(
                    peer,
                    &announce,
                    now,
                    &mut self.rng,
                    &mut reply.peers6,
                );
                if let Ok((_, change)) = result {
                    self.journal_announce(&request.info_hash, peer, request.left == 0, change, &reply.peers6, now);
                }
                result.map(|(counts, change)| (counts, change, peer.to_string(), reply.peers6.len()))
            }
        };
        match result {
            Ok((counts, change, peer, handed)) => {
                self.log_http_announce(&peer, request, change, handed);
                reply.complete = Some(counts.seeders);
                reply.incomplete = Some(counts.leechers);
                reply.downloaded = Some(counts.completed);
                http::encode_announce_reply(&reply)
            }
            Err(err) => self.http_failure(err.reply_message()),
        }
    }

    fn log_http_announce(&self, peer: &str, request: &http::HttpAnnounceRequest, change: Change, handed: usize) {
        let role = if request.left == 0 { "seeder" } else { "leecher" };
        match self.named.get(&request.info_hash) {
            Some(torrent) => {
                tracing::info!(torrent = %torrent.name, %peer, role, event = ?request.event, handed, ?change, "peer announced over HTTP")
            }
            None => {
                tracing::debug!(%peer, info_hash = %hex(&request.info_hash), role, handed, ?change, "HTTP announce")
            }
        }
    }
}
