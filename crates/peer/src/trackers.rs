//! One tracker of the session, whatever its protocol: UDP (BEP 15) or HTTP(S) (BEP 3). The announcer drives this
//! and never needs to know which.

use std::net::IpAddr;

use crate::http_tracker::{HttpTracker, HttpTrackerError, is_http};
use crate::tracker_client::{Announce, AnnounceReply, Timeouts, TrackerClient, TrackerError};

/// A tracker client of either protocol.
#[derive(Debug)]
pub enum Tracker {
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

impl Tracker {
    /// Whether this kind of URL is supported: `udp://`, `http://` and `https://`.
    #[must_use]
    pub fn supports(url: &str) -> bool {
        url.starts_with("udp://") || is_http(url)
    }

    /// A client for `url`, sending from `local` if given.
    ///
    /// # Errors
    ///
    /// A bad or unresolvable UDP URL, or an HTTP client that cannot be built.
    pub async fn new(url: &str, local: Option<IpAddr>, timeouts: Timeouts) -> Result<Self, AnnounceError> {
        if is_http(url) {
            Ok(Tracker::Http(HttpTracker::new(url, local, timeouts)?))
        } else {
            Ok(Tracker::Udp(TrackerClient::new(url, local, timeouts).await?))
        }
    }

    /// Announces: for UDP with retries on the current schedule, for HTTP once within its deadline.
    ///
    /// # Errors
    ///
    /// See [`TrackerClient::announce`] and [`HttpTracker::announce`].
    pub async fn announce(&mut self, announce: &Announce) -> Result<AnnounceReply, AnnounceError> {
        match self {
            Tracker::Udp(client) => Ok(client.announce(announce).await?),
            Tracker::Http(client) => Ok(client.announce(announce).await?),
        }
    }

    /// Changes the retry schedule (UDP) or deadline (HTTP) of the next announces.
    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        match self {
            Tracker::Udp(client) => client.set_timeouts(timeouts),
            Tracker::Http(client) => client.set_timeouts(timeouts),
        }
    }
}
