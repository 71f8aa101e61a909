//! The client side of HTTP(S) trackers (BEP 3 announces, BEP 23 compact and BEP 7 `peers6` replies): a thin
//! reqwest layer over the sans-IO codec in `tracker_protocol::http`, which builds every URL and parses every reply.
//!
//! TLS is rustls (no system OpenSSL). It trusts the webpki roots and the system's store, or, in place of the
//! system's store, the PEM certificates in `SSL_CERT_FILE` / `SSL_CERT_DIR` when either is set (rustls-native-certs
//! reads them, as curl and OpenSSL do): that is how a user trusts a tracker with a private CA. A machine without a
//! system store still gets the webpki roots. Redirects are followed at most 5 times, the reply body is read up to
//! [`MAX_REPLY_LEN`] and refused past it, and each announce has one deadline. HTTP runs over TCP, so an announce
//! is one attempt: the caller retries on its own schedule.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tracker_protocol::TorrentStats;
use tracker_protocol::http::{
    HttpAnnounce, HttpAnnounceReply, HttpReplyError, HttpScrapeReply, MAX_REPLY_LEN, announce_url,
    parse_announce_reply, parse_scrape_reply, scrape_url,
};

use crate::tracker_client::{Announce, AnnounceReply, Timeouts};

/// Redirects followed before an announce fails (a loop ends here).
const MAX_REDIRECTS: usize = 5;
/// Re-announce interval when a tracker gives none (libtorrent's default).
const DEFAULT_INTERVAL: u32 = 1800;
/// Info-hashes named in one HTTP scrape (BEP 48). opentracker answers at most 64 a request and ours 70; 64 keeps
/// the URL near 4 KB, under the 8 KB request line that common web servers in front of trackers accept.
pub const MAX_HTTP_SCRAPE_HASHES: usize = 64;

/// Why an HTTP announce failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpTrackerError {
    #[error("tracker {url}: {reason}")]
    Request { url: String, reason: String },
    #[error("tracker {url} answered with HTTP status {status}")]
    Status { url: String, status: u16 },
    #[error("tracker {url} sent more than {MAX_REPLY_LEN} bytes")]
    TooLarge { url: String },
    #[error("tracker {url} sent a reply that is not a valid announce reply: {source}")]
    Reply { url: String, source: HttpReplyError },
    #[error("tracker {url} sent a reply that is not a valid scrape reply: {source}")]
    ScrapeReply { url: String, source: HttpReplyError },
    #[error("tracker {url} has no scrape URL: the last part of its path does not start with `announce` (BEP 48)")]
    NoScrapeUrl { url: String },
    #[error("a scrape asks about 1 to {MAX_HTTP_SCRAPE_HASHES} torrents, not {0}")]
    ScrapeSize(usize),
    #[error("tracker refused: {0}")]
    Refused(String),
}

/// An HTTP client for trackers, sending from `local` if given: redirects limited, our user agent.
///
/// # Errors
///
/// The client cannot be built (`SSL_CERT_FILE` holds certificates of which rustls can use none, say), in words.
pub fn http_client(local: Option<IpAddr>) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
        .local_address(local)
        .user_agent(concat!("bittorrent-tools/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(describe)
}

/// One HTTP(S) tracker of the session.
#[derive(Debug)]
pub struct HttpTracker {
    client: reqwest::Client,
    url: String,
    timeout: Duration,
    /// The `tracker id` of its last reply, sent back as BEP 3 asks.
    tracker_id: Option<Vec<u8>>,
}

impl HttpTracker {
    /// A client for the tracker at `url` (http:// or https://), sending from `local` if given.
    ///
    /// # Errors
    ///
    /// The HTTP client could not be built: say, `SSL_CERT_FILE` holds certificates of which rustls can use none.
    pub fn new(url: &str, local: Option<IpAddr>, timeouts: Timeouts) -> Result<Self, HttpTrackerError> {
        let client = http_client(local).map_err(|reason| HttpTrackerError::Request { url: url.to_owned(), reason })?;
        Ok(Self::with_client(client, url, timeouts))
    }

    /// A client for the tracker at `url` through `client` (from [`http_client`]), which other trackers may share:
    /// one pool of connections and one set of trusted certificates for a whole session.
    #[must_use]
    pub fn with_client(client: reqwest::Client, url: &str, timeouts: Timeouts) -> Self {
        Self { client, url: url.to_owned(), timeout: request_timeout(timeouts), tracker_id: None }
    }

    /// Uses `timeouts` for the next announces (see [`request_timeout`]).
    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        self.timeout = request_timeout(timeouts);
    }

    /// Announces once.
    ///
    /// # Errors
    ///
    /// A connection, TLS, redirect or timeout failure; a status other than 200; a body over [`MAX_REPLY_LEN`] or
    /// one that is not a valid reply; the tracker's `failure reason` ([`HttpTrackerError::Refused`]).
    pub async fn announce(&mut self, announce: &Announce) -> Result<AnnounceReply, HttpTrackerError> {
        let query = HttpAnnounce {
            info_hash: announce.info_hash,
            peer_id: announce.peer_id,
            port: announce.port,
            uploaded: announce.uploaded,
            downloaded: announce.downloaded,
            left: announce.left,
            event: announce.event,
            numwant: u32::try_from(announce.num_want).ok(),
            key: announce.key,
            tracker_id: self.tracker_id.as_deref(),
        };
        let url = announce_url(&self.url, &query);
        let body = self.fetch(&url).await?;
        let reply = match parse_announce_reply(&body) {
            Ok(HttpAnnounceReply::Success(reply)) => reply,
            Ok(HttpAnnounceReply::Failure(reason)) => return Err(HttpTrackerError::Refused(reason)),
            Err(source) => return Err(HttpTrackerError::Reply { url: self.url.clone(), source }),
        };
        if let Some(warning) = &reply.warning {
            tracing::warn!(tracker = %self.url, "{warning}");
        }
        if reply.tracker_id.is_some() {
            self.tracker_id.clone_from(&reply.tracker_id);
        }
        let interval = reply.interval.unwrap_or(DEFAULT_INTERVAL).max(reply.min_interval.unwrap_or(0));
        let peers = reply
            .peers
            .iter()
            .map(|&peer| SocketAddr::V4(peer))
            .chain(reply.peers6.iter().map(|&peer| SocketAddr::V6(peer)))
            .filter(|peer| peer.port() != 0)
            .collect();
        Ok(AnnounceReply {
            interval,
            leechers: reply.incomplete.unwrap_or(0),
            seeders: reply.complete.unwrap_or(0),
            peers,
        })
    }

    /// Asks the tracker about up to [`MAX_HTTP_SCRAPE_HASHES`] torrents in one request (BEP 48), at the URL that
    /// BEP 48 derives from the announce URL. One answer per hash, in the order asked: its counts, or `None` when
    /// the reply leaves it out (the tracker does not know it).
    ///
    /// # Errors
    ///
    /// No scrape URL for this tracker, an empty or oversized batch, the failures of [`HttpTracker::announce`], or
    /// the tracker's `failure reason` ([`HttpTrackerError::Refused`]).
    pub async fn scrape(&self, info_hashes: &[[u8; 20]]) -> Result<Vec<Option<TorrentStats>>, HttpTrackerError> {
        if info_hashes.is_empty() || info_hashes.len() > MAX_HTTP_SCRAPE_HASHES {
            return Err(HttpTrackerError::ScrapeSize(info_hashes.len()));
        }
        let url = scrape_url(&self.url, info_hashes)
            .ok_or_else(|| HttpTrackerError::NoScrapeUrl { url: self.url.clone() })?;
        let body = self.fetch(&url).await?;
        let entries = match parse_scrape_reply(&body) {
            Ok(HttpScrapeReply::Files(entries)) => entries,
            Ok(HttpScrapeReply::Failure(reason)) => return Err(HttpTrackerError::Refused(reason)),
            Err(source) => return Err(HttpTrackerError::ScrapeReply { url: self.url.clone(), source }),
        };
        Ok(info_hashes
            .iter()
            .map(|hash| entries.iter().find(|entry| entry.info_hash == *hash).map(|entry| entry.stats))
            .collect())
    }

    /// GETs `url` and reads its body, at most [`MAX_REPLY_LEN`] bytes, all within the request's deadline.
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, HttpTrackerError> {
        tokio::time::timeout(self.timeout, self.fetch_body(url))
            .await
            .map_err(|_| self.request_error(format!("no answer within {:?}", self.timeout)))?
    }

    async fn fetch_body(&self, url: &str) -> Result<Vec<u8>, HttpTrackerError> {
        let mut response = self.client.get(url).send().await.map_err(|err| self.request_error(describe(err)))?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            return Err(HttpTrackerError::Status { url: self.url.clone(), status: status.as_u16() });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|err| self.request_error(describe(err)))? {
            if body.len() + chunk.len() > MAX_REPLY_LEN {
                return Err(HttpTrackerError::TooLarge { url: self.url.clone() });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn request_error(&self, reason: String) -> HttpTrackerError {
        HttpTrackerError::Request { url: self.url.clone(), reason }
    }
}

/// One HTTP announce's deadline: as long as all the attempts a UDP announce would make under `timeouts` (it has
/// only one), between 1 s and 60 s.
fn request_timeout(timeouts: Timeouts) -> Duration {
    timeouts.base.saturating_mul(timeouts.max_attempts.max(1)).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// reqwest's error with its causes, which say what actually went wrong (refused, TLS, too many redirects...).
///
/// The URL is left out: the caller names the tracker already, and the full announce URL would bury the cause
/// under a query string and print the session's `key`, which stands in for the peer at the tracker.
fn describe(err: reqwest::Error) -> String {
    let err = err.without_url();
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Whether `url` names an HTTP(S) tracker.
#[must_use]
pub fn is_http(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tracker_protocol::AnnounceEvent;

    use super::*;

    /// An HTTP server on loopback that answers every request with `response` (its `{port}` replaced by its own
    /// port), for as many requests as come within the test.
    async fn server(response: impl Fn(u16) -> Vec<u8> + Send + 'static) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let reply = response(port);
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = stream.write_all(&reply).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        format!("http://127.0.0.1:{port}/announce")
    }

    fn ok(body: &[u8]) -> Vec<u8> {
        let mut reply =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).into_bytes();
        reply.extend_from_slice(body);
        reply
    }

    fn announce() -> Announce {
        Announce {
            info_hash: [0xab; 20],
            peer_id: *b"-BT0001-123456789012",
            downloaded: 0,
            left: 100,
            uploaded: 0,
            event: AnnounceEvent::Started,
            key: 7,
            num_want: 50,
            port: 6881,
        }
    }

    const FAST: Timeouts = Timeouts { base: Duration::from_millis(500), max_attempts: 4 };

    async fn announce_to(
        response: impl Fn(u16) -> Vec<u8> + Send + 'static,
    ) -> Result<AnnounceReply, HttpTrackerError> {
        let url = server(response).await;
        HttpTracker::new(&url, None, FAST).expect("client").announce(&announce()).await
    }

    #[tokio::test]
    async fn a_good_reply_gives_peers_of_both_families_and_the_longer_interval() {
        let mut body = b"d8:completei2e10:incompletei3e8:intervali60e12:min intervali120e5:peers6:".to_vec();
        body.extend_from_slice(&[127, 0, 0, 1, 0x1a, 0xe1]);
        body.extend_from_slice(b"6:peers618:");
        body.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x1a, 0xe2]);
        body.push(b'e');
        let reply = announce_to(move |_| ok(&body)).await.expect("a good reply");
        assert_eq!(reply.interval, 120, "min interval wins over a shorter interval");
        assert_eq!((reply.seeders, reply.leechers), (2, 3));
        let expected: Vec<SocketAddr> = vec!["127.0.0.1:6881".parse().expect("v4"), "[::1]:6882".parse().expect("v6")];
        assert_eq!(reply.peers, expected);
    }

    #[tokio::test]
    async fn a_failure_reason_is_a_refusal_with_its_text() {
        let error = announce_to(|_| ok(b"d14:failure reason17:torrent not founde")).await.expect_err("refused");
        assert!(matches!(&error, HttpTrackerError::Refused(reason) if reason == "torrent not found"), "{error}");
    }

    #[tokio::test]
    async fn ten_megabytes_of_garbage_are_refused_at_the_size_cap() {
        let error = announce_to(|_| ok(&vec![b'x'; 10 << 20])).await.expect_err("too large");
        assert!(matches!(error, HttpTrackerError::TooLarge { .. }), "{error}");
    }

    #[tokio::test]
    async fn a_redirect_loop_ends_with_an_error() {
        let redirect = |port: u16| {
            format!("HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{port}/announce\r\nContent-Length: 0\r\n\r\n")
                .into_bytes()
        };
        let error = announce_to(redirect).await.expect_err("a loop");
        assert!(matches!(&error, HttpTrackerError::Request { reason, .. } if reason.contains("redirect")), "{error}");
    }

    #[tokio::test]
    async fn bodies_that_are_not_announce_replies_are_errors_naming_the_problem() {
        let error = announce_to(|_| ok(b"<html>It works!</html>")).await.expect_err("not bencode");
        assert!(matches!(error, HttpTrackerError::Reply { .. }), "{error}");
        let error = announce_to(|_| ok(b"d8:intervali60e5:peers5:abcdee")).await.expect_err("odd peers");
        assert!(error.to_string().contains("peers"), "{error}");
        let not_found = |_| b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec();
        let error = announce_to(not_found).await.expect_err("404");
        assert!(matches!(error, HttpTrackerError::Status { status: 404, .. }), "{error}");
    }

    #[tokio::test]
    async fn a_tracker_that_never_answers_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/announce", listener.local_addr().expect("address"));
        let quick = Timeouts { base: Duration::from_millis(300), max_attempts: 1 };
        let started = std::time::Instant::now();
        let error =
            HttpTracker::new(&url, None, quick).expect("client").announce(&announce()).await.expect_err("silent");
        assert!(matches!(&error, HttpTrackerError::Request { reason, .. } if reason.contains("no answer")), "{error}");
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(listener);
    }

    #[tokio::test]
    async fn a_failed_request_names_its_cause_and_not_the_announce_query() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/announce", listener.local_addr().expect("address"));
        drop(listener);
        let error =
            HttpTracker::new(&url, None, FAST).expect("client").announce(&announce()).await.expect_err("closed");
        let text = error.to_string();
        assert!(text.starts_with(&format!("tracker {url}: ")), "{text}");
        assert!(!text.contains("info_hash=") && !text.contains("key="), "{text}");
        assert!(text.to_ascii_lowercase().contains("connect"), "{text}");
    }

    fn scrape_body(entries: &[([u8; 20], u32, u32, u32)]) -> Vec<u8> {
        let mut body = b"d5:filesd".to_vec();
        for (hash, complete, downloaded, incomplete) in entries {
            body.extend_from_slice(b"20:");
            body.extend_from_slice(hash);
            body.extend_from_slice(
                format!("d8:completei{complete}e10:downloadedi{downloaded}e10:incompletei{incomplete}ee").as_bytes(),
            );
        }
        body.extend_from_slice(b"ee");
        body
    }

    #[tokio::test]
    async fn a_scrape_gives_each_hash_its_counts_in_the_order_asked_and_none_for_one_left_out() {
        let body = scrape_body(&[([2; 20], 5, 9, 1), ([1; 20], 3, 4, 7)]);
        let url = server(move |_| ok(&body)).await;
        let tracker = HttpTracker::new(&url, None, FAST).expect("client");
        let stats = tracker.scrape(&[[1; 20], [2; 20], [3; 20]]).await.expect("a good reply");
        let counts = |s: &Option<TorrentStats>| s.map(|s| (s.seeders, s.completed, s.leechers));
        assert_eq!(stats.iter().map(counts).collect::<Vec<_>>(), vec![Some((3, 4, 7)), Some((5, 9, 1)), None]);
    }

    #[tokio::test]
    async fn a_scrape_goes_to_the_bep_48_url_with_every_hash_and_keeps_the_passkey() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let body = scrape_body(&[]);
        let serve = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("one request");
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf).await.expect("read");
                assert!(n > 0, "the client hung up mid-request");
                request.extend_from_slice(&buf[..n]);
            }
            stream.write_all(&ok(&body)).await.expect("reply");
            String::from_utf8(request).expect("an ASCII request")
        });
        let url = format!("http://127.0.0.1:{port}/p/announce.php?passkey=s3cret");
        let tracker = HttpTracker::new(&url, None, FAST).expect("client");
        let stats = tracker.scrape(&[[0xab; 20], [0x41; 20]]).await.expect("an empty reply is a reply");
        assert_eq!(stats, vec![None, None]);
        let request = serve.await.expect("the server ran");
        let line = request.lines().next().expect("a request line");
        let ab = "%AB".repeat(20);
        let a = "A".repeat(20);
        assert_eq!(line, format!("GET /p/scrape.php?passkey=s3cret&info_hash={ab}&info_hash={a} HTTP/1.1"));
    }

    #[tokio::test]
    async fn a_scrape_that_cannot_be_made_or_is_refused_says_why() {
        let tracker = HttpTracker::new("http://127.0.0.1:9/tracker", None, FAST).expect("client");
        let error = tracker.scrape(&[[1; 20]]).await.expect_err("no scrape URL");
        assert!(matches!(error, HttpTrackerError::NoScrapeUrl { .. }), "{error}");
        assert!(error.to_string().contains("BEP 48"), "{error}");
        let error = tracker.scrape(&[]).await.expect_err("nothing to ask");
        assert!(matches!(error, HttpTrackerError::ScrapeSize(0)), "{error}");
        let error = tracker.scrape(&[[1; 20]; MAX_HTTP_SCRAPE_HASHES + 1]).await.expect_err("too many");
        assert!(matches!(error, HttpTrackerError::ScrapeSize(65)), "{error}");

        let url = server(|_| ok(b"d14:failure reason10:scrape offe")).await;
        let error = HttpTracker::new(&url, None, FAST).expect("client").scrape(&[[1; 20]]).await.expect_err("refused");
        assert!(matches!(&error, HttpTrackerError::Refused(reason) if reason == "scrape off"), "{error}");
        let url = server(|_| ok(b"d5:filesi3ee")).await;
        let error = HttpTracker::new(&url, None, FAST).expect("client").scrape(&[[1; 20]]).await.expect_err("bad");
        assert!(matches!(error, HttpTrackerError::ScrapeReply { .. }), "{error}");
        assert!(error.to_string().contains("not a valid scrape reply"), "{error}");
    }

    #[test]
    fn http_urls_are_told_from_others() {
        assert!(is_http("http://t.example/announce") && is_http("HTTPS://t.example/a"));
        assert!(!is_http("udp://t.example:80") && !is_http("wss://t.example") && !is_http("http"));
    }
}
