//! One tracker of the session, whatever its protocol: UDP (BEP 15) or HTTP(S) (BEP 3). The announcer drives this
//! and never needs to know which.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, OnceLock};

use tokio::sync::OnceCell;

use crate::http_tracker::{HttpTracker, HttpTrackerError, http_client, is_http};
use crate::tracker_client::{Announce, AnnounceReply, Timeouts, TrackerClient, TrackerError, UdpEndpoint, resolve};

/// What the tracker clients of a session share: one UDP socket per address family (one file descriptor, one
/// connection id per tracker, however many torrents announce there) and one HTTP client (one connection pool, one
/// set of trusted certificates). Made as first needed.
#[derive(Debug, Default)]
pub struct TrackerEndpoints {
    /// The local IP to send from, if one was chosen.
    local: Option<IpAddr>,
    v4: OnceCell<Arc<UdpEndpoint>>,
    v6: OnceCell<Arc<UdpEndpoint>>,
    http: OnceLock<Result<reqwest::Client, String>>,
}

impl TrackerEndpoints {
    /// Endpoints that send from `local` when given (and of the tracker's family).
    #[must_use]
    pub fn new(local: Option<IpAddr>) -> TrackerEndpoints {
        TrackerEndpoints { local: local.filter(|ip| !ip.is_unspecified()), ..TrackerEndpoints::default() }
    }

    /// The UDP endpoint for trackers of `tracker`'s family, bound on first use.
    async fn udp(&self, tracker: SocketAddr) -> Result<Arc<UdpEndpoint>, TrackerError> {
        let (cell, unspecified) = match tracker {
            SocketAddr::V4(_) => (&self.v4, IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            SocketAddr::V6(_) => (&self.v6, IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
        };
        let ip = self.local.filter(|ip| ip.is_ipv4() == tracker.is_ipv4()).unwrap_or(unspecified);
        let local = SocketAddr::new(ip, 0);
        let endpoint = cell.get_or_try_init(|| UdpEndpoint::bind(local)).await.map_err(|source| TrackerError::Io {
            action: format!("binding a UDP socket on {local} for trackers"),
            source,
        })?;
        Ok(endpoint.clone())
    }
}

/// A tracker client of either protocol.
#[derive(Debug)]
pub enum AnnounceClient {
    Udp(TrackerClient),
    Http(HttpTracker),
}

/// Why an announce failed, in either protocol.
#[derive(Debug, thiserror::Error)]
pub enum AnnounceError {
    #[error(transparent)]
    Udp(#[from] TrackerError),
    #[error(transparent)]
    Http(#[from] HttpTrackerError),
}

impl AnnounceClient {
    /// Whether this kind of URL is supported: `udp://`, `http://` and `https://`.
    #[must_use]
    pub fn supports(url: &str) -> bool {
        url.starts_with("udp://") || is_http(url)
    }

    /// A client for `url` that talks through `shared`: the session's UDP socket for the tracker's family, or its
    /// HTTP client.
    ///
    /// # Errors
    ///
    /// A bad or unresolvable UDP URL, a UDP socket that cannot be bound, or an HTTP client that cannot be built.
    pub async fn new(url: &str, shared: &TrackerEndpoints, timeouts: Timeouts) -> Result<Self, AnnounceError> {
        if is_http(url) {
            let client = shared
                .http
                .get_or_init(|| http_client(shared.local))
                .clone()
                .map_err(|reason| HttpTrackerError::Request { url: url.to_owned(), reason })?;
            Ok(AnnounceClient::Http(HttpTracker::with_client(client, url, timeouts)))
        } else {
            let tracker = resolve(url, shared.local).await?;
            let endpoint = shared.udp(tracker).await?;
            Ok(AnnounceClient::Udp(TrackerClient::on_endpoint(endpoint, tracker, timeouts)))
        }
    }

    /// Announces: for UDP with retries on the current schedule, for HTTP once within its deadline.
    ///
    /// # Errors
    ///
    /// See [`TrackerClient::announce`] and [`HttpTracker::announce`].
    pub async fn announce(&mut self, announce: &Announce) -> Result<AnnounceReply, AnnounceError> {
        match self {
            AnnounceClient::Udp(client) => Ok(client.announce(announce).await?),
            AnnounceClient::Http(client) => Ok(client.announce(announce).await?),
        }
    }

    /// Changes the retry schedule (UDP) or deadline (HTTP) of the next announces.
    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        match self {
            AnnounceClient::Udp(client) => client.set_timeouts(timeouts),
            AnnounceClient::Http(client) => client.set_timeouts(timeouts),
        }
    }
}
