//! Scrapes batched by tracker: every torrent of a session is asked about in one request with the others naming
//! the same tracker. A UDP tracker (BEP 15) gets at most [`MAX_SCRAPE_HASHES`] a request, over the session's
//! socket and cached connection id; an HTTP(S) tracker (BEP 48) at most [`MAX_HTTP_SCRAPE_HASHES`] a request, on
//! the session's HTTP client. A tracker named by a thousand torrents gets 15 or 16 requests, not a thousand.

use std::collections::BTreeMap;
use std::sync::Arc;

pub use tracker_protocol::TorrentStats;

use crate::http_tracker::MAX_HTTP_SCRAPE_HASHES;
use crate::tracker_client::{MAX_SCRAPE_HASHES, Timeouts};
use crate::trackers::{AnnounceClient, TrackerEndpoints};

/// What one tracker said of one torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeReport {
    pub info_hash: [u8; 20],
    pub tracker: String,
    /// Its seeders, completed downloads and leechers; or why the tracker could not be asked.
    pub result: Result<TorrentStats, String>,
}

/// Scrapes every UDP and HTTP(S) tracker of `torrents` (each an info-hash and the trackers it names) about all of
/// the torrents that name it; the trackers are asked at once, each one's batches in turn. Other schemes (`wss://`)
/// are left out.
pub(crate) async fn scrape_all(
    endpoints: &Arc<TrackerEndpoints>,
    timeouts: Timeouts,
    torrents: impl IntoIterator<Item = ([u8; 20], Vec<String>)>,
) -> Vec<ScrapeReport> {
    let mut by_tracker: BTreeMap<String, Vec<[u8; 20]>> = BTreeMap::new();
    for (info_hash, trackers) in torrents {
        for url in trackers.into_iter().filter(|url| AnnounceClient::supports(url)) {
            let hashes = by_tracker.entry(url).or_default();
            if !hashes.contains(&info_hash) {
                hashes.push(info_hash);
            }
        }
    }
    let mut asking = tokio::task::JoinSet::new();
    for (url, hashes) in by_tracker {
        let endpoints = endpoints.clone();
        asking.spawn(async move { scrape_one(&endpoints, timeouts, url, hashes).await });
    }
    let mut reports = Vec::new();
    while let Some(done) = asking.join_next().await {
        if let Ok(mut some) = done {
            reports.append(&mut some);
        }
    }
    reports.sort_by(|a, b| (&a.tracker, a.info_hash).cmp(&(&b.tracker, b.info_hash)));
    reports
}

/// Asks `url` about `hashes`, as many a request as its protocol allows. A torrent an HTTP tracker leaves out of
/// its reply is reported as not listed there.
async fn scrape_one(
    endpoints: &TrackerEndpoints,
    timeouts: Timeouts,
    url: String,
    hashes: Vec<[u8; 20]>,
) -> Vec<ScrapeReport> {
    let report = |info_hash: [u8; 20], result: Result<TorrentStats, String>| ScrapeReport {
        info_hash,
        tracker: url.clone(),
        result,
    };
    let mut reports = Vec::with_capacity(hashes.len());
    match AnnounceClient::new(&url, endpoints, timeouts).await {
        Ok(AnnounceClient::Udp(mut client)) => {
            for batch in hashes.chunks(MAX_SCRAPE_HASHES) {
                match client.scrape(batch).await {
                    Ok(stats) => reports.extend(batch.iter().zip(stats).map(|(&hash, stats)| report(hash, Ok(stats)))),
                    Err(err) => reports.extend(batch.iter().map(|&hash| report(hash, Err(err.to_string())))),
                }
            }
        }
        Ok(AnnounceClient::Http(client)) => {
            for batch in hashes.chunks(MAX_HTTP_SCRAPE_HASHES) {
                match client.scrape(batch).await {
                    Ok(stats) => reports.extend(batch.iter().zip(stats).map(|(&hash, stats)| {
                        report(hash, stats.ok_or_else(|| "the tracker does not list this torrent".to_owned()))
                    })),
                    Err(err) => reports.extend(batch.iter().map(|&hash| report(hash, Err(err.to_string())))),
                }
            }
        }
        Err(err) => reports.extend(hashes.iter().map(|&hash| report(hash, Err(err.to_string())))),
    }
    reports
}
