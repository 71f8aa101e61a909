//! Token buckets for incoming queries: one per source IP address (a bounded map) and one for all sources.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// Source addresses tracked at once. Past it, addresses whose bucket has refilled are forgotten; if none has,
/// queries from new addresses are refused until some have (a flood from many spoofed sources then costs new
/// sources their answers, never memory).
pub(crate) const MAX_TRACKED_IPS: usize = 8192;

/// The query rate limits of a node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimits {
    /// Queries answered per second per source IP address, on average.
    pub per_ip_per_sec: f64,
    /// Queries one source IP address may send at once before `per_ip_per_sec` applies.
    pub per_ip_burst: f64,
    /// Queries answered per second from all sources together (the burst is one second's worth).
    pub global_per_sec: f64,
}

impl Default for RateLimits {
    /// 20 queries a second per address with a burst of 40 (libtorrent allows 5 a second per address by default, but
    /// a busy client's lookups send more), and 500 answered a second in all.
    fn default() -> Self {
        RateLimits { per_ip_per_sec: 20.0, per_ip_burst: 40.0, global_per_sec: 500.0 }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn full(burst: f64, now: Instant) -> Self {
        Bucket { tokens: burst, last: now }
    }

    fn refill(&mut self, rate: f64, burst: f64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.last = now;
    }

    fn take(&mut self, rate: f64, burst: f64, now: Instant) -> bool {
        self.refill(rate, burst, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Decides whether a query gets an answer.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limits: RateLimits,
    per_ip: HashMap<IpAddr, Bucket>,
    global: Bucket,
}

impl RateLimiter {
    pub(crate) fn new(limits: RateLimits, now: Instant) -> Self {
        RateLimiter { limits, per_ip: HashMap::new(), global: Bucket::full(limits.global_per_sec, now) }
    }

    /// Whether a query from `ip` may be answered now; takes a token from its bucket and the global one if so.
    pub(crate) fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        let RateLimits { per_ip_per_sec: rate, per_ip_burst: burst, global_per_sec } = self.limits;
        let ip = ip.to_canonical();
        if !self.per_ip.contains_key(&ip) && self.per_ip.len() >= MAX_TRACKED_IPS {
            self.per_ip.retain(|_, bucket| {
                bucket.refill(rate, burst, now);
                bucket.tokens < burst
            });
            if self.per_ip.len() >= MAX_TRACKED_IPS {
                return false;
            }
        }
        let bucket = self.per_ip.entry(ip).or_insert_with(|| Bucket::full(burst, now));
        bucket.take(rate, burst, now) && self.global.take(global_per_sec, global_per_sec, now)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use super::*;

    #[test]
    fn burst_then_rate() {
        let now = Instant::now();
        let limits = RateLimits { per_ip_per_sec: 10.0, per_ip_burst: 5.0, global_per_sec: 1000.0 };
        let mut limiter = RateLimiter::new(limits, now);
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        assert_eq!((0..100).filter(|_| limiter.allow(ip, now)).count(), 5);
        let later = now + Duration::from_millis(500);
        assert_eq!((0..100).filter(|_| limiter.allow(ip, later)).count(), 5);
        let other = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        assert!(limiter.allow(other, later));
    }

    #[test]
    fn global_cap() {
        let now = Instant::now();
        let limits = RateLimits { per_ip_per_sec: 1000.0, per_ip_burst: 1000.0, global_per_sec: 50.0 };
        let mut limiter = RateLimiter::new(limits, now);
        let allowed = (0..200u32).filter(|&i| limiter.allow(IpAddr::V4(Ipv4Addr::from(i)), now)).count();
        assert_eq!(allowed, 50);
    }

    #[test]
    fn tracked_ips_bounded() {
        let now = Instant::now();
        let mut limiter = RateLimiter::new(RateLimits { global_per_sec: 1e9, ..RateLimits::default() }, now);
        for i in 0..(MAX_TRACKED_IPS as u32 + 100) {
            limiter.allow(IpAddr::V4(Ipv4Addr::from(i)), now);
        }
        assert!(limiter.per_ip.len() <= MAX_TRACKED_IPS);
    }
}
