//! Choosing a hashing path by timing it on the running CPU: the SHA-1 pairs, the SHA-1 lanes and the SHA-256
//! lanes each beat the plain path on some CPUs and lose on others, so each is timed once per process against it.

use std::time::{Duration, Instant};

/// Whether the faster path should be used. The environment variable `env` forces it: `1` uses it wherever the CPU
/// `can` run it, `0` never. Otherwise `fast` and `plain` (the same work two ways, tiny) are timed interleaved, best
/// of five each, and the fast path wins only if it took at most `(100 - margin_percent)%` of the plain one's time.
/// `fast` returns false if it could not run after all.
pub(crate) fn prefer(
    env: &str,
    can: bool,
    margin_percent: u128,
    mut fast: impl FnMut() -> bool,
    mut plain: impl FnMut(),
) -> bool {
    match std::env::var(env).as_deref() {
        Ok("1") => can,
        Ok("0") => false,
        _ if !can => false,
        _ => {
            let (mut best_fast, mut best_plain) = (Duration::MAX, Duration::MAX);
            for _ in 0..5 {
                let started = Instant::now();
                if !fast() {
                    return false;
                }
                best_fast = best_fast.min(started.elapsed());
                let started = Instant::now();
                plain();
                best_plain = best_plain.min(started.elapsed());
            }
            best_fast.as_nanos() * 100 <= best_plain.as_nanos() * (100 - margin_percent.min(100))
        }
    }
}

/// Test data for the timings: the same bytes for every path.
pub(crate) fn sample(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_the_cpu_cannot_run_or_that_fails_is_never_chosen() {
        let env = "BT_HASH_PATH_TEST_UNSET";
        assert!(!prefer(env, false, 10, || true, || {}));
        assert!(!prefer(env, true, 10, || false, || std::thread::sleep(Duration::from_millis(1))));
        // Far faster than the plain path: chosen.
        assert!(prefer(env, true, 10, || true, || std::thread::sleep(Duration::from_millis(2))));
        // Far slower: not.
        assert!(!prefer(
            env,
            true,
            10,
            || {
                std::thread::sleep(Duration::from_millis(2));
                true
            },
            || {}
        ));
    }
}
