//! SHA-1 of sixteen pieces at once, one per 32-bit lane of AVX-512 registers.
//!
//! v1 pieces are independent, as v2's leaves are: where one SHA-1 stream with the SHA extensions is bound by the
//! latency of `sha1rnds4` (1.37 GB/s per core here, OpenSSL and the `sha1` crate alike), sixteen streams in the
//! lanes of 512-bit registers do each round with plain vector instructions (a rotate, a three-input logic
//! function, adds) for sixteen pieces at once. Whether that is faster on the running CPU is measured once
//! ([`preferred`]), as for the SHA-1 pairs; `BT_SHA1_LANES=1` or `=0` forces either.
//!
//! The caller reads the same span of each of the sixteen pieces into one buffer, one after the other at a fixed
//! stride, and feeds it to [`LaneHasher::update`]; the lanes gather their words from it.
//!
//! The `unsafe` here is calling the `#[target_feature]` function once the CPU has been checked for its features,
//! and its gathers, which read at offsets checked against the buffer first.

#![allow(unsafe_code)]

use std::sync::OnceLock;

/// Pieces hashed together.
pub(crate) const LANES: usize = 16;

/// SHA-1's initial state (FIPS 180-4, 5.3.1).
const INITIAL: [u32; 5] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0];

use crate::sha256_lanes::available;

/// Whether hashing pieces sixteen at a time is the faster way here: timed once per process against the `sha1`
/// crate on the same sixteen 16 KiB pieces, best of five each (about 2 ms in all), and used only when at least
/// 10% faster.
pub(crate) fn preferred() -> bool {
    static PREFERRED: OnceLock<bool> = OnceLock::new();
    *PREFERRED.get_or_init(|| {
        use sha1::Digest as _;
        const PIECE: usize = 16 * 1024;
        let data = crate::hash_path::sample(LANES * PIECE);
        let lanes = || {
            let Some(mut lanes) = LaneHasher::new() else { return false };
            lanes.update(&data, PIECE);
            std::hint::black_box(lanes.finish());
            true
        };
        let one_by_one = || {
            for piece in data.chunks(PIECE) {
                std::hint::black_box(sha1::Sha1::digest(piece));
            }
        };
        crate::hash_path::prefer("BT_SHA1_LANES", available(), 10, lanes, one_by_one)
    })
}

/// Sixteen SHA-1 computations fed in step, with equal lengths; made only where the CPU can run them.
pub(crate) struct LaneHasher {
    state: [[u32; LANES]; 5],
    length: u64,
}

impl LaneHasher {
    pub(crate) fn new() -> Option<LaneHasher> {
        available().then_some(LaneHasher { state: INITIAL.map(|word| [word; LANES]), length: 0 })
    }

    /// Hashes the next `len` bytes of each message: message `i`'s are `spans[i * len..(i + 1) * len]`. `len` is a
    /// whole number of 64-byte blocks.
    pub(crate) fn update(&mut self, spans: &[u8], len: usize) {
        self.update_strided(spans, len, len);
    }

    /// Hashes the next `len` bytes of each message, message `i`'s being `base[i * stride..i * stride + len]`: the
    /// same span of sixteen consecutive pieces lying in one mapped file, say. `len` is a whole number of 64-byte
    /// blocks, and the sixteenth span must fit in `base` at an offset below 2^31.
    pub(crate) fn update_strided(&mut self, base: &[u8], stride: usize, len: usize) {
        assert!(len.is_multiple_of(64) && stride >= len, "sixteen spans of whole blocks, apart");
        assert!(i32::try_from((LANES - 1) * stride + len).is_ok(), "spans fit 32-bit offsets");
        assert!(base.len() >= (LANES - 1) * stride + len, "sixteen spans inside the bytes");
        self.length += len as u64;
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a `LaneHasher` exists only after `available()` confirmed every feature `x86::compress` enables.
        unsafe {
            x86::compress(&mut self.state, base, stride, len);
        }
    }

    /// The sixteen digests: the padding block (0x80, zeros, the length in bits) goes through the same path.
    pub(crate) fn finish(mut self) -> [[u8; 20]; LANES] {
        let mut last = [0u8; 64 * LANES];
        for lane in last.chunks_exact_mut(64) {
            lane[0] = 0x80;
            lane[56..].copy_from_slice(&(self.length * 8).to_be_bytes());
        }
        self.update(&last, 64);
        std::array::from_fn(|lane| {
            let mut digest = [0u8; 20];
            for (bytes, word) in digest.chunks_exact_mut(4).zip(&self.state) {
                bytes.copy_from_slice(&word[lane].to_be_bytes());
            }
            digest
        })
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{
        __m512i, _mm512_loadu_si512, _mm512_rol_epi32, _mm512_set1_epi32, _mm512_storeu_si512,
        _mm512_ternarylogic_epi32, _mm512_xor_si512,
    };

    use super::LANES;
    use crate::sha256_lanes::x86::{CHOOSE, LaneWords, MAJORITY, XOR3, add};

    const K: [u32; 4] = [0x5A82_7999, 0x6ED9_EBA1, 0x8F1B_BCDC, 0xCA62_C1D6];

    /// The 80 rounds of one block of each lane, `w` its 16 message words.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn rounds(state: &mut [__m512i; 5], mut w: [__m512i; 16]) {
        let [mut a, mut b, mut c, mut d, mut e] = *state;
        for t in 0..80 {
            let word = if t < 16 {
                w[t]
            } else {
                // W[t] = rotl1(W[t-3] ^ W[t-8] ^ W[t-14] ^ W[t-16]), in a ring of the last 16.
                let mixed = _mm512_xor_si512(
                    _mm512_ternarylogic_epi32::<XOR3>(w[(t + 13) % 16], w[(t + 8) % 16], w[(t + 2) % 16]),
                    w[t % 16],
                );
                let next = _mm512_rol_epi32::<1>(mixed);
                w[t % 16] = next;
                next
            };
            let f = match t / 20 {
                0 => _mm512_ternarylogic_epi32::<CHOOSE>(b, c, d),
                2 => _mm512_ternarylogic_epi32::<MAJORITY>(b, c, d),
                _ => _mm512_ternarylogic_epi32::<XOR3>(b, c, d),
            };
            let temp = add(add(_mm512_rol_epi32::<5>(a), f), add(add(e, _mm512_set1_epi32(K[t / 20] as i32)), word));
            e = d;
            d = c;
            c = _mm512_rol_epi32::<30>(b);
            b = a;
            a = temp;
        }
        for (word, new) in state.iter_mut().zip([a, b, c, d, e]) {
            *word = add(*word, new);
        }
    }

    /// See [`super::LaneHasher::update_strided`]: span `i` is `spans[i * stride..][..len]`, `len` whole blocks.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) fn compress(state: &mut [[u32; LANES]; 5], spans: &[u8], stride: usize, len: usize) {
        assert!(
            spans.len() >= (LANES - 1) * stride + len && len.is_multiple_of(64) && i32::try_from(15 * stride).is_ok(),
            "sixteen spans of whole blocks"
        );
        // SAFETY: each row is 16 u32s, exactly one 512-bit register.
        let mut vectors: [__m512i; 5] =
            std::array::from_fn(|i| unsafe { _mm512_loadu_si512(state[i].as_ptr().cast()) });
        let words = LaneWords::new(stride);
        for block in 0..len / 64 {
            rounds(&mut vectors, words.block(spans, block * 64));
        }
        for (row, vector) in state.iter_mut().zip(vectors) {
            // SAFETY: as above.
            unsafe { _mm512_storeu_si512(row.as_mut_ptr().cast(), vector) };
        }
    }
}

#[cfg(test)]
mod tests {
    use sha1::Digest as _;

    use super::*;

    #[test]
    fn sixteen_pieces_hash_as_the_sha1_crate_does_one_at_a_time() {
        let Some(_) = LaneHasher::new() else {
            eprintln!("SKIP: this CPU has no AVX-512; the lanes are never used here");
            return;
        };
        // Pieces of 64 bytes to 64 KiB, fed in one span or several; the lanes' messages differ.
        for (piece, span) in [(64usize, 64usize), (16_384, 16_384), (65_536, 16_384), (32_768, 4096)] {
            let data: Vec<u8> =
                (0..LANES * piece).map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1]).collect();
            let mut hasher = LaneHasher::new().expect("available");
            let mut spans = vec![0u8; LANES * span];
            for done in (0..piece).step_by(span) {
                for lane in 0..LANES {
                    let from = lane * piece + done;
                    spans[lane * span..(lane + 1) * span].copy_from_slice(&data[from..from + span]);
                }
                hasher.update(&spans, span);
            }
            let digests = hasher.finish();
            for (lane, digest) in digests.iter().enumerate() {
                let expected: [u8; 20] = sha1::Sha1::digest(&data[lane * piece..(lane + 1) * piece]).into();
                assert_eq!(*digest, expected, "piece {lane} of {piece} bytes in spans of {span}");
            }
        }
    }
}
