//! SHA-1 of two pieces at once, with the x86 SHA extensions.
//!
//! One SHA-1 stream cannot keep a core busy: each `sha1rnds4` waits for the one before it (measured
//! here: 1.68 GB/s per core for the `sha1` crate and for OpenSSL alike, about 6 cycles per 4 rounds).
//! Two independent pieces interleaved fill those gaps: 2.85 GB/s per core on the same machine. Pieces
//! are independent by nature, so the hashers feed this two at a time.
//!
//! The `unsafe` here is calling the `#[target_feature]` functions, which is sound once the CPU has been checked
//! for those features; the bodies are safe code. (The project's other `unsafe` is in `sha1_lanes`,
//! `sha256_lanes` and `mapped`, nowhere else.)

#![allow(unsafe_code)]

/// SHA-1's initial state (FIPS 180-4, 5.3.1).
const INITIAL: [u32; 5] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0];

/// Whether this CPU can run [`PairHasher`]; otherwise hash pieces one at a time.
pub(crate) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("sha")
            && std::arch::is_x86_feature_detected!("sse2")
            && std::arch::is_x86_feature_detected!("ssse3")
            && std::arch::is_x86_feature_detected!("sse4.1")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether hashing pieces in pairs is the faster path on this CPU, measured once per process: the pair beats one
/// stream where `sha1rnds4` has a long latency and enough throughput to run two streams side by side (2.85 against
/// 1.68 GB/s per core on the AMD machine this was written on), but a core that already keeps one stream busy gains
/// nothing and loses to the extra shuffling (a 16-core Xeon was slower with pairs than Debian's mktorrent). So
/// the two are timed on the same 128 KiB, interleaved, best of five each (well under a millisecond in all), and
/// the pair is used only when it is at least 5% faster. `BT_SHA1_PAIRS=1` or `=0` forces the choice (for
/// benchmarks).
pub(crate) fn preferred() -> bool {
    static PREFERRED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PREFERRED.get_or_init(|| {
        use sha1::Digest as _;
        // Two 64 KiB pieces.
        let data = crate::hash_path::sample(128 * 1024);
        let (first, second) = data.split_at(64 * 1024);
        let pair = || {
            let Some(mut pair) = PairHasher::new() else { return false };
            pair.update(first, second);
            std::hint::black_box(pair.finish());
            true
        };
        let single = || {
            std::hint::black_box((sha1::Sha1::digest(first), sha1::Sha1::digest(second)));
        };
        crate::hash_path::prefer("BT_SHA1_PAIRS", available(), 5, pair, single)
    })
}

/// Two SHA-1 computations fed in step, with equal lengths; only made when [`available`] is true.
pub(crate) struct PairHasher {
    states: [[u32; 5]; 2],
    length: u64,
}

impl PairHasher {
    pub(crate) fn new() -> Option<PairHasher> {
        available().then_some(PairHasher { states: [INITIAL; 2], length: 0 })
    }

    /// Hashes the next bytes of both messages: equal lengths, a whole number of 64-byte blocks
    /// (pieces are powers of two of at least 16 KiB, and the reads cut them at 64 KiB).
    pub(crate) fn update(&mut self, first: &[u8], second: &[u8]) {
        assert!(first.len() == second.len() && first.len().is_multiple_of(64), "pair hashing needs equal whole blocks");
        self.length += first.len() as u64;
        let [a, b] = &mut self.states;
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a `PairHasher` exists only after `available()` confirmed every feature that
        // `compress_pair` enables.
        unsafe {
            x86::compress_pair(a, first, b, second);
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (a, b);
    }

    /// Both digests: the padding block (0x80, zeros, the length in bits) goes through the same path.
    pub(crate) fn finish(mut self) -> [[u8; 20]; 2] {
        let mut last = [0u8; 64];
        last[0] = 0x80;
        last[56..].copy_from_slice(&(self.length * 8).to_be_bytes());
        self.update(&last, &last);
        self.states.map(|state| {
            let mut digest = [0u8; 20];
            for (bytes, word) in digest.chunks_exact_mut(4).zip(state) {
                bytes.copy_from_slice(&word.to_be_bytes());
            }
            digest
        })
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{
        __m128i, _mm_add_epi32, _mm_extract_epi32, _mm_set_epi32, _mm_sha1msg1_epu32, _mm_sha1msg2_epu32,
        _mm_sha1nexte_epu32, _mm_sha1rnds4_epu32, _mm_xor_si128,
    };

    /// The 16 words of a block, big-endian, four to a register with the earliest word in the top lane
    /// (the order the SHA instructions expect).
    #[inline]
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    fn load(block: &[u8]) -> [__m128i; 4] {
        let word = |i: usize| i32::from_be_bytes([block[4 * i], block[4 * i + 1], block[4 * i + 2], block[4 * i + 3]]);
        std::array::from_fn(|group| {
            _mm_set_epi32(word(4 * group), word(4 * group + 1), word(4 * group + 2), word(4 * group + 3))
        })
    }

    /// The 80 rounds of one block: 20 groups of four, each group's words derived from the four
    /// before (W[t] = rotl1(W[t-3] ^ W[t-8] ^ W[t-14] ^ W[t-16]) four at a time).
    #[inline]
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    fn rounds(abcd: &mut __m128i, e: &mut __m128i, mut w: [__m128i; 4]) {
        let (abcd_before, e_before) = (*abcd, *e);
        let mut e_next = _mm_add_epi32(*e, w[0]);
        let mut previous = *abcd;
        *abcd = _mm_sha1rnds4_epu32::<0>(*abcd, e_next);
        macro_rules! group {
            ($i:literal, $function:literal) => {
                if $i >= 4 {
                    let mixed = _mm_xor_si128(_mm_sha1msg1_epu32(w[$i % 4], w[($i + 1) % 4]), w[($i + 2) % 4]);
                    w[$i % 4] = _mm_sha1msg2_epu32(mixed, w[($i + 3) % 4]);
                }
                e_next = _mm_sha1nexte_epu32(previous, w[$i % 4]);
                previous = *abcd;
                *abcd = _mm_sha1rnds4_epu32::<$function>(*abcd, e_next);
            };
        }
        group!(1, 0);
        group!(2, 0);
        group!(3, 0);
        group!(4, 0);
        group!(5, 1);
        group!(6, 1);
        group!(7, 1);
        group!(8, 1);
        group!(9, 1);
        group!(10, 2);
        group!(11, 2);
        group!(12, 2);
        group!(13, 2);
        group!(14, 2);
        group!(15, 3);
        group!(16, 3);
        group!(17, 3);
        group!(18, 3);
        group!(19, 3);
        *e = _mm_sha1nexte_epu32(previous, e_before);
        *abcd = _mm_add_epi32(*abcd, abcd_before);
    }

    #[inline]
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    fn to_registers(state: &[u32; 5]) -> (__m128i, __m128i) {
        let [a, b, c, d, e] = state.map(|word| word.cast_signed());
        (_mm_set_epi32(a, b, c, d), _mm_set_epi32(e, 0, 0, 0))
    }

    #[inline]
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    fn from_registers(abcd: __m128i, e: __m128i) -> [u32; 5] {
        [
            _mm_extract_epi32::<3>(abcd),
            _mm_extract_epi32::<2>(abcd),
            _mm_extract_epi32::<1>(abcd),
            _mm_extract_epi32::<0>(abcd),
            _mm_extract_epi32::<3>(e),
        ]
        .map(i32::cast_unsigned)
    }

    /// Runs the blocks of `first` and `second` through their states, block by block in step, so
    /// that the out-of-order core overlaps the two dependency chains.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub(super) fn compress_pair(a: &mut [u32; 5], first: &[u8], b: &mut [u32; 5], second: &[u8]) {
        let (mut abcd_a, mut e_a) = to_registers(a);
        let (mut abcd_b, mut e_b) = to_registers(b);
        for (block_a, block_b) in first.chunks_exact(64).zip(second.chunks_exact(64)) {
            let (w_a, w_b) = (load(block_a), load(block_b));
            rounds(&mut abcd_a, &mut e_a, w_a);
            rounds(&mut abcd_b, &mut e_b, w_b);
        }
        *a = from_registers(abcd_a, e_a);
        *b = from_registers(abcd_b, e_b);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use sha1::{Digest, Sha1};

    use super::PairHasher;

    fn pair_digests(first: &[u8], second: &[u8], chunk: usize) -> Option<[[u8; 20]; 2]> {
        let mut hasher = PairHasher::new()?;
        for (a, b) in first.chunks(chunk).zip(second.chunks(chunk)) {
            hasher.update(a, b);
        }
        Some(hasher.finish())
    }

    #[test]
    fn matches_the_sha1_crate_on_known_and_patterned_input() {
        if !super::available() {
            eprintln!("SKIPPING: this CPU has no SHA extensions; pieces are hashed one at a time");
            return;
        }
        let empty = pair_digests(&[], &[], 64).expect("available");
        assert_eq!(hex::encode(empty[0]), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        let first: Vec<u8> = (0..1u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
        let second: Vec<u8> = first.iter().rev().copied().collect();
        for chunk in [64, 16 * 1024, 64 * 1024] {
            let got = pair_digests(&first, &second, chunk).expect("available");
            let want: [[u8; 20]; 2] = [Sha1::digest(&first).into(), Sha1::digest(&second).into()];
            assert_eq!(got, want, "chunk {chunk}");
        }
    }

    proptest! {
        #[test]
        fn any_pair_of_whole_blocks_matches(blocks in 0usize..40, seed_a: u64, seed_b: u64) {
            prop_assume!(super::available());
            let bytes = |seed: u64| -> Vec<u8> {
                (0..blocks as u64 * 64).map(|i| (i.wrapping_mul(seed | 1).wrapping_add(seed) >> 7) as u8).collect()
            };
            let (first, second) = (bytes(seed_a), bytes(seed_b));
            let got = pair_digests(&first, &second, 128).expect("available");
            let want: [[u8; 20]; 2] = [Sha1::digest(&first).into(), Sha1::digest(&second).into()];
            prop_assert_eq!(got, want);
        }
    }
}
