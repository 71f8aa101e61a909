//! Transfer rates, and the upload and download limits.

use std::sync::Mutex;
use std::time::{Duration, Instant};

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
/// the sum of what they read.
#[derive(Debug)]
pub struct TransferLimiter {
    bytes_per_second: u64,
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
        Self {
            bytes_per_second: bytes_per_second.max(1),
            bucket: Mutex::new(Bucket { tokens: 0.0, refilled_at: Instant::now() }),
        }
    }

    /// The configured rate.
    pub fn bytes_per_second(&self) -> u64 {
        self.bytes_per_second
    }

    /// Takes `bytes` from the bucket and returns how long the caller must wait before sending (or, for downloads,
    /// reading more than) them.
    pub fn reserve(&self, bytes: u64) -> Duration {
        let rate = self.bytes_per_second as f64;
        let mut bucket = self.bucket.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let burst = rate / 4.0;
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.refilled_at).as_secs_f64() * rate).min(burst);
        bucket.refilled_at = now;
        bucket.tokens -= bytes as f64;
        if bucket.tokens >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-bucket.tokens / rate) }
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
}
