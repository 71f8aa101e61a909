//! SHA-256 of sixteen 16 KiB leaves at once, one per 32-bit lane of AVX-512 registers.
//!
//! BEP 52's leaves are independent 16 KiB blocks, so they can be hashed side by side. One SHA-256 stream with the
//! SHA extensions runs at about 1.38 GB/s per core here (OpenSSL and the `sha2` crate alike), bound by the
//! latency of each round's `sha256rnds2`. Sixteen streams in the lanes of 512-bit registers do each round's work
//! with plain vector instructions (rotates, three-input logic, adds), sixteen leaves per instruction: faster where
//! the vector units are wide and fast. Whether it is faster on the running CPU is measured once (see
//! [`preferred`]), as for the SHA-1 pairs; `BT_SHA256_LANES=1` or `=0` forces either.
//!
//! The `unsafe` here is calling the `#[target_feature]` function once the CPU has been checked for its features,
//! and its gathers, which read at offsets checked against the slice first.

#![allow(unsafe_code)]

use std::sync::OnceLock;

use crate::merkle::Hash32;

/// Leaves hashed together.
pub(crate) const LANES: usize = 16;
/// Bytes of one leaf.
pub(crate) const LEAF: usize = 16 * 1024;

/// Whether this CPU can run [`leaves16`] (and `sha1_lanes`): AVX-512F and AVX-512BW.
pub(crate) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bw")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether [`leaves16`] is the faster way to hash full leaves here: timed once per process against the `sha2`
/// crate (which uses the SHA extensions where the CPU has them) on the same 256 KiB, best of five each, and used
/// only when at least 10% faster.
pub(crate) fn preferred() -> bool {
    static PREFERRED: OnceLock<bool> = OnceLock::new();
    *PREFERRED.get_or_init(|| {
        let data = crate::hash_path::sample(LANES * LEAF);
        let mut out = [[0u8; 32]; LANES];
        let lanes = || leaves16(&data, std::hint::black_box(&mut out));
        let one_by_one = || {
            for leaf in data.chunks(LEAF) {
                std::hint::black_box(crate::merkle::leaf(leaf));
            }
        };
        crate::hash_path::prefer("BT_SHA256_LANES", available(), 10, lanes, one_by_one)
    })
}

/// The SHA-256 of each of the sixteen 16 KiB leaves that `data` (at least 256 KiB) starts with, into `out`.
/// False (and `out` untouched) where the CPU cannot: call [`preferred`] first.
pub(crate) fn leaves16(data: &[u8], out: &mut [Hash32; LANES]) -> bool {
    if data.len() < LANES * LEAF || !available() {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `available()` confirmed AVX-512F and AVX-512BW, every feature `x86::leaves16` enables.
    unsafe {
        x86::leaves16(data, out);
    }
    true
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use std::arch::x86_64::{
        __m512i, _mm_setr_epi8, _mm512_add_epi32, _mm512_broadcast_i32x4, _mm512_i32gather_epi32, _mm512_mullo_epi32,
        _mm512_ror_epi32, _mm512_set1_epi32, _mm512_setr_epi32, _mm512_shuffle_epi8, _mm512_srli_epi32,
        _mm512_storeu_si512, _mm512_ternarylogic_epi32,
    };

    use super::{LANES, LEAF};
    use crate::merkle::Hash32;

    /// FIPS 180-4, 4.2.2.
    const K: [u32; 64] = [
        0x428a_2f98,
        0x7137_4491,
        0xb5c0_fbcf,
        0xe9b5_dba5,
        0x3956_c25b,
        0x59f1_11f1,
        0x923f_82a4,
        0xab1c_5ed5,
        0xd807_aa98,
        0x1283_5b01,
        0x2431_85be,
        0x550c_7dc3,
        0x72be_5d74,
        0x80de_b1fe,
        0x9bdc_06a7,
        0xc19b_f174,
        0xe49b_69c1,
        0xefbe_4786,
        0x0fc1_9dc6,
        0x240c_a1cc,
        0x2de9_2c6f,
        0x4a74_84aa,
        0x5cb0_a9dc,
        0x76f9_88da,
        0x983e_5152,
        0xa831_c66d,
        0xb003_27c8,
        0xbf59_7fc7,
        0xc6e0_0bf3,
        0xd5a7_9147,
        0x06ca_6351,
        0x1429_2967,
        0x27b7_0a85,
        0x2e1b_2138,
        0x4d2c_6dfc,
        0x5338_0d13,
        0x650a_7354,
        0x766a_0abb,
        0x81c2_c92e,
        0x9272_2c85,
        0xa2bf_e8a1,
        0xa81a_664b,
        0xc24b_8b70,
        0xc76c_51a3,
        0xd192_e819,
        0xd699_0624,
        0xf40e_3585,
        0x106a_a070,
        0x19a4_c116,
        0x1e37_6c08,
        0x2748_774c,
        0x34b0_bcb5,
        0x391c_0cb3,
        0x4ed8_aa4a,
        0x5b9c_ca4f,
        0x682e_6ff3,
        0x748f_82ee,
        0x78a5_636f,
        0x84c8_7814,
        0x8cc7_0208,
        0x90be_fffa,
        0xa450_6ceb,
        0xbef9_a3f7,
        0xc671_78f2,
    ];
    /// FIPS 180-4, 5.3.3.
    const H0: [u32; 8] =
        [0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a, 0x510e_527f, 0x9b05_688c, 0x1f83_d9ab, 0x5be0_cd19];

    // Three-input logic tables for `_mm512_ternarylogic_epi32(a, b, c)`: bit (a << 2 | b << 1 | c) of the table.
    // Shared with the SHA-1 lanes, whose Ch and Maj are the same functions.
    pub(crate) const XOR3: i32 = 0x96;
    /// `a ? b : c`: SHA-256's Ch(e, f, g).
    pub(crate) const CHOOSE: i32 = 0xCA;
    /// The majority of three: Maj(a, b, c).
    pub(crate) const MAJORITY: i32 = 0xE8;

    /// Lane-wise addition modulo 2^32.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) fn add(a: __m512i, b: __m512i) -> __m512i {
        _mm512_add_epi32(a, b)
    }

    /// σ0 of the message schedule: rotr 7, rotr 18, shr 3.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn small_sigma0(x: __m512i) -> __m512i {
        _mm512_ternarylogic_epi32::<XOR3>(
            _mm512_ror_epi32::<7>(x),
            _mm512_ror_epi32::<18>(x),
            _mm512_srli_epi32::<3>(x),
        )
    }

    /// σ1: rotr 17, rotr 19, shr 10.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn small_sigma1(x: __m512i) -> __m512i {
        _mm512_ternarylogic_epi32::<XOR3>(
            _mm512_ror_epi32::<17>(x),
            _mm512_ror_epi32::<19>(x),
            _mm512_srli_epi32::<10>(x),
        )
    }

    /// Σ0: rotr 2, 13, 22.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn big_sigma0(x: __m512i) -> __m512i {
        _mm512_ternarylogic_epi32::<XOR3>(
            _mm512_ror_epi32::<2>(x),
            _mm512_ror_epi32::<13>(x),
            _mm512_ror_epi32::<22>(x),
        )
    }

    /// Σ1: rotr 6, 11, 25.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn big_sigma1(x: __m512i) -> __m512i {
        _mm512_ternarylogic_epi32::<XOR3>(
            _mm512_ror_epi32::<6>(x),
            _mm512_ror_epi32::<11>(x),
            _mm512_ror_epi32::<25>(x),
        )
    }

    /// The 64 rounds of one block of each lane, `w` its 16 message words.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn compress(state: &mut [__m512i; 8], mut w: [__m512i; 16]) {
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
        for (t, &k) in K.iter().enumerate() {
            let word = if t < 16 {
                w[t]
            } else {
                // W[t] = σ1(W[t-2]) + W[t-7] + σ0(W[t-15]) + W[t-16], in a ring of the last 16.
                let next = add(
                    add(w[t % 16], small_sigma0(w[(t + 1) % 16])),
                    add(w[(t + 9) % 16], small_sigma1(w[(t + 14) % 16])),
                );
                w[t % 16] = next;
                next
            };
            let t1 = add(
                add(h, big_sigma1(e)),
                add(_mm512_ternarylogic_epi32::<CHOOSE>(e, f, g), add(_mm512_set1_epi32(k as i32), word)),
            );
            let t2 = add(big_sigma0(a), _mm512_ternarylogic_epi32::<MAJORITY>(a, b, c));
            h = g;
            g = f;
            f = e;
            e = add(d, t1);
            d = c;
            c = b;
            b = a;
            a = add(t1, t2);
        }
        for (word, new) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
            *word = add(*word, new);
        }
    }

    /// The message words of sixteen lanes `stride` bytes apart, gathered one 64-byte block at a time and turned
    /// big-endian, as SHA-1 and SHA-256 read them: word `t` of lane `i` is the 4 bytes at `at + i * stride + 4 * t`.
    pub(crate) struct LaneWords {
        /// Byte offsets `0, stride, 2 * stride, ...`: lane `i` gathers from `i * stride` on.
        offsets: __m512i,
        /// The `_mm512_shuffle_epi8` mask that turns each 32-bit word around.
        swap: __m512i,
        stride: usize,
    }

    impl LaneWords {
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw")]
        pub(crate) fn new(stride: usize) -> LaneWords {
            let step = i32::try_from(stride)
                .ok()
                .filter(|step| step.checked_mul(15).is_some())
                .expect("lane offsets fit in 32 bits");
            let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
            let offsets = _mm512_mullo_epi32(lanes, _mm512_set1_epi32(step));
            let swap = _mm512_broadcast_i32x4(_mm_setr_epi8(3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12));
            LaneWords { offsets, swap, stride }
        }

        /// The sixteen words of the block at `at` in every lane of `data`.
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw")]
        pub(crate) fn block(&self, data: &[u8], at: usize) -> [__m512i; 16] {
            assert!(at + 15 * self.stride + 64 <= data.len(), "a block past the end of the lanes");
            std::array::from_fn(|t| {
                // SAFETY: the furthest byte read is `at + 15 * stride + 4 * t + 3 < at + 15 * stride + 64`, which
                // the assert above keeps within `data`.
                let words =
                    unsafe { _mm512_i32gather_epi32::<1>(self.offsets, data.as_ptr().add(at + 4 * t).cast::<i32>()) };
                _mm512_shuffle_epi8(words, self.swap)
            })
        }
    }

    /// See [`super::leaves16`]; `data` holds at least `LANES * LEAF` bytes.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) fn leaves16(data: &[u8], out: &mut [Hash32; LANES]) {
        assert!(data.len() >= LANES * LEAF, "sixteen whole leaves");
        let mut state = H0.map(|h| _mm512_set1_epi32(h as i32));
        // Lane i reads leaf i.
        let words = LaneWords::new(LEAF);
        for block in 0..LEAF / 64 {
            compress(&mut state, words.block(data, block * 64));
        }
        // The padding block is the same for every leaf of 16 KiB: 0x80, zeros, the length in bits.
        let mut last = [_mm512_set1_epi32(0); 16];
        last[0] = _mm512_set1_epi32(0x8000_0000_u32 as i32);
        last[15] = _mm512_set1_epi32((LEAF * 8) as i32);
        compress(&mut state, last);
        let mut words = [[0u32; LANES]; 8];
        for (row, word) in words.iter_mut().zip(state) {
            // SAFETY: `row` is 16 u32s, exactly one 512-bit register.
            unsafe { _mm512_storeu_si512(row.as_mut_ptr().cast(), word) };
        }
        for (leaf, digest) in out.iter_mut().enumerate() {
            for (i, row) in words.iter().enumerate() {
                digest[4 * i..4 * i + 4].copy_from_slice(&row[leaf].to_be_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_leaves_hash_as_sha2_does_one_at_a_time() {
        if !available() {
            eprintln!("SKIP: this CPU has no AVX-512; the lanes are never used here");
            return;
        }
        for seed in [0u32, 1, 0xdead_beef] {
            // A little more than sixteen leaves, so the reads must stop at the sixteenth.
            let data: Vec<u8> = (0..LANES * LEAF + 100)
                .map(|i| (i as u32 ^ seed).wrapping_mul(2_654_435_761).to_le_bytes()[2])
                .collect();
            let mut out = [[0u8; 32]; LANES];
            assert!(leaves16(&data, &mut out));
            for (leaf, got) in data.chunks(LEAF).zip(&out) {
                assert_eq!(*got, crate::merkle::leaf(leaf));
            }
        }
        let zeros = vec![0u8; LANES * LEAF];
        let mut out = [[1u8; 32]; LANES];
        assert!(leaves16(&zeros, &mut out));
        assert!(out.iter().all(|digest| *digest == crate::merkle::leaf(&zeros[..LEAF])));
        assert!(!leaves16(&zeros[1..], &mut out), "fewer than sixteen whole leaves");
    }
}
