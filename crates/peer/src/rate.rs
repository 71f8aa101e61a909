//! Transfer rates, and the upload and download limits.

use std::sync::{Arc, Mutex};
use std::time::Duration;

// The runtime's clock, not the wall's: a simulation runs this code in virtual time.
use tokio::time::Instant;

/// Bytes per second, smoothed over a few seconds so one burst does not swing choking decisions.
#[derive(Debug, Clone, Copy, Default)]
pub struct RateMeter {
    rate: f64,
    total_at_last_tick: u64,
}

impl RateMeter {
    /// Folds the counter's growth since the last tick (`elapsed` ago) into the rate.
    pub fn tick(&mut self, total: u64, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        if secs <= 0.0 {
            return;
        }
        let sample = total.saturating_sub(self.total_at_last_tick) as f64 / secs;
        self.total_at_last_tick = total;
        // Weight 0.5: a rate that stops falls to 1/8 within three ticks.
        self.rate = 0.5 * self.rate + 0.5 * sample;
    }

    /// The smoothed rate in bytes per second.
    pub fn bytes_per_second(&self) -> u64 {
        self.rate as u64
    }
}

/// A token bucket shared by every connection: `--upload-limit` caps the sum of what they send, `--download-limit`
/// the sum of what they read; a torrent's own limit caps its connections'. Its rate can change while it is in use,
/// and it can be unlimited.
#[derive(Debug)]
pub struct TransferLimiter {
    /// Bytes per second; 0 when unlimited.
    bytes_per_second: std::sync::atomic::AtomicU64,
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// May go negative: a sender takes what it needs and the debt delays the next ones.
    tokens: f64,
    refilled_at: Instant,
}

impl TransferLimiter {
    /// A limiter allowing `bytes_per_second` (at least 1), with a burst of a quarter second.
    pub fn new(bytes_per_second: u64) -> Self {
        Self::with_rate(Some(bytes_per_second))
    }

    /// A limiter at `rate` bytes per second (at least 1), or unlimited when `None`.
    pub fn with_rate(rate: Option<u64>) -> Self {
        Self {
            bytes_per_second: std::sync::atomic::AtomicU64::new(rate.map_or(0, |rate| rate.max(1))),
            bucket: Mutex::new(Bucket { tokens: 0.0, refilled_at: Instant::now() }),
        }
    }

    /// The rate now, `None` when unlimited.
    pub fn rate(&self) -> Option<u64> {
        Some(self.bytes_per_second.load(std::sync::atomic::Ordering::Relaxed)).filter(|&rate| rate > 0)
    }

    /// Changes the rate (`None`: unlimited) for what is reserved from now on; a debt already taken is kept.
    pub fn set_rate(&self, rate: Option<u64>) {
        self.bytes_per_second.store(rate.map_or(0, |rate| rate.max(1)), std::sync::atomic::Ordering::Relaxed);
    }

    /// Takes `bytes` from the bucket and returns how long the caller must wait before sending (or, for downloads,
    /// reading more than) them; nothing while unlimited.
    pub fn reserve(&self, bytes: u64) -> Duration {
        let Some(rate) = self.rate() else { return Duration::ZERO };
        let rate = rate as f64;
        let mut bucket = self.bucket.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let burst = rate / 4.0;
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.refilled_at).as_secs_f64() * rate).min(burst);
        bucket.refilled_at = now;
        bucket.tokens -= bytes as f64;
        if bucket.tokens >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-bucket.tokens / rate) }
    }
}

/// The limits one direction of a torrent's transfers is under: the session's (shared by every torrent) and the
/// torrent's own; a transfer waits for both.
#[derive(Debug, Clone)]
pub struct Limits {
    pub session: Option<Arc<TransferLimiter>>,
    pub torrent: Arc<TransferLimiter>,
}

impl Default for Limits {
    /// Unlimited.
    fn default() -> Self {
        Limits { session: None, torrent: Arc::new(TransferLimiter::with_rate(None)) }
    }
}

impl Limits {
    /// The lower of the two rates, `None` when neither limits.
    pub fn rate(&self) -> Option<u64> {
        let session = self.session.as_ref().and_then(|limiter| limiter.rate());
        match (session, self.torrent.rate()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Takes `bytes` from both and returns the longer wait.
    pub fn reserve(&self, bytes: u64) -> Duration {
        let session = self.session.as_ref().map_or(Duration::ZERO, |limiter| limiter.reserve(bytes));
        session.max(self.torrent.reserve(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meter_follows_a_steady_rate_and_decays_when_it_stops() {
        let mut meter = RateMeter::default();
        let mut total = 0;
        for _ in 0..20 {
            total += 1_000_000;
            meter.tick(total, Duration::from_secs(1));
        }
        assert!((990_000..=1_000_000).contains(&meter.bytes_per_second()), "{}", meter.bytes_per_second());
        for _ in 0..3 {
            meter.tick(total, Duration::from_secs(1));
        }
        assert!(meter.bytes_per_second() <= 125_000, "{}", meter.bytes_per_second());
    }

    #[test]
    fn limiter_makes_senders_wait_for_their_share() {
        let limiter = TransferLimiter::new(1_000_000);
        // The bucket starts empty: the first 16 KiB waits about 16 ms.
        let first = limiter.reserve(16_384);
        assert!(first > Duration::from_millis(10) && first < Duration::from_millis(20), "{first:?}");
        // A second megabyte queues behind the first: about one second more.
        let second = limiter.reserve(1_000_000);
        assert!(second > Duration::from_millis(900) && second < Duration::from_millis(1100), "{second:?}");
    }

    #[test]
    fn a_transfer_waits_for_the_stricter_of_the_session_and_the_torrent() {
        let limits = Limits { session: Some(Arc::new(TransferLimiter::new(4_000_000))), ..Limits::default() };
        assert_eq!(limits.rate(), Some(4_000_000));
        limits.torrent.set_rate(Some(1_000_000));
        assert_eq!(limits.rate(), Some(1_000_000));
        let wait = limits.reserve(1_000_000);
        assert!(wait > Duration::from_millis(900) && wait < Duration::from_millis(1100), "the torrent's: {wait:?}");
        limits.torrent.set_rate(None);
        assert_eq!(limits.rate(), Some(4_000_000), "unlimited alone: the session's holds");
        assert!(limits.torrent.reserve(1 << 30).is_zero(), "an unlimited bucket never makes anyone wait");
        assert_eq!(Limits::default().rate(), None);
    }
}
