//! MD5 of many messages at once: one message per SIMD lane.
//!
//! One MD5 is a single chain of dependent steps (about 4.5 cycles per byte on a modern
//! core, whatever the implementation), so a batch of short texts is bound by latency, not
//! by the core's width. Here the state of `L` independent messages sits in `[u32; L]`
//! arrays and every step runs on all lanes at once: LLVM turns the lane loops into SIMD
//! (8 lanes with AVX2, 16 with AVX-512, chosen at run time; 4 lanes of SSE2, the x86_64
//! baseline, otherwise). The messages come padded (see [`pad`]); a lane whose message ends
//! takes the next one. Lanes left without work at the end of a batch compute garbage that
//! is never read, until fewer than a quarter of the lanes are busy: a compression of all
//! lanes costs about three scalar ones (16 lanes, measured with `examples/phases.rs`), so
//! the last messages finish one by one with the scalar [`crate::md5`] compression.
//!
//! The technique is the "multi-buffer" hashing of Intel's ISA-L crypto library and of
//! OpenSSL's `md5-mb` proposal; the code follows RFC 1321 and the scalar module.

use crate::md5::{compress, md5_rounds, INITIAL_STATE, K};

/// One message of a padded arena: it starts at byte `start` and spans `blocks` blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Padded {
    pub start: usize,
    pub blocks: usize,
}

/// Pads the message `arena[start..]` in place (RFC 1321, 3.1-3.2): a 0x80 byte, zeros up
/// to 56 mod 64, then its length in bits as 8 little-endian bytes.
pub fn pad(arena: &mut Vec<u8>, start: usize) -> Padded {
    let len = arena.len() - start;
    let blocks = (len + 8) / 64 + 1;
    let end = start + blocks * 64;
    // Fixed-size writes (at most 72 bytes of padding), then the length cut back: no memset
    // or memcpy call.
    arena.extend_from_slice(&[0u8; 72]);
    arena[start + len] = 0x80;
    arena.truncate(end);
    let bits = (len as u64).wrapping_mul(8).to_le_bytes();
    *arena[end - 8..].first_chunk_mut::<8>().expect("8 bytes") = bits;
    Padded { start, blocks }
}

/// The MD5 digest of each padded message of `arena`, in order, into `out`.
///
/// # Panics
///
/// If `out` and `messages` differ in length, or a message does not lie within `arena`.
pub fn digest_padded(arena: &[u8], messages: &[Padded], out: &mut [[u8; 16]]) {
    assert_eq!(messages.len(), out.len(), "one digest per message");
    for m in messages {
        assert!(
            m.blocks > 0 && m.start + 64 * m.blocks <= arena.len(),
            "{m:?} past the arena"
        );
    }
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked just above.
            return unsafe { lanes_avx512(arena, messages, out) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { lanes_avx2(arena, messages, out) };
        }
    }
    lanes::<4>(arena, messages, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn lanes_avx512(arena: &[u8], messages: &[Padded], out: &mut [[u8; 16]]) {
    lanes::<16>(arena, messages, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn lanes_avx2(arena: &[u8], messages: &[Padded], out: &mut [[u8; 16]]) {
    lanes::<8>(arena, messages, out);
}

/// Digest bytes of lane `lane` of `state`.
#[inline(always)]
fn lane_digest<const L: usize>(state: &[[u32; L]; 4], lane: usize) -> [u8; 16] {
    let mut digest = [0u8; 16];
    for (bytes, word) in digest.chunks_exact_mut(4).zip(state) {
        bytes.copy_from_slice(&word[lane].to_le_bytes());
    }
    digest
}

/// The scheduler: `L` lanes take messages in order until none is left.
#[inline(always)]
fn lanes<const L: usize>(arena: &[u8], messages: &[Padded], out: &mut [[u8; 16]]) {
    let mut state = [[0u32; L]; 4];
    // Per lane: the message it hashes, the byte offset of its next block, blocks left.
    let mut owner = [usize::MAX; L];
    let mut at = [0usize; L];
    let mut left = [0usize; L];
    let mut next = 0;
    let take = |lane: usize,
                next: &mut usize,
                state: &mut [[u32; L]; 4],
                owner: &mut [usize; L],
                at: &mut [usize; L],
                left: &mut [usize; L]| {
        if let Some(m) = messages.get(*next) {
            owner[lane] = *next;
            at[lane] = m.start;
            left[lane] = m.blocks;
            for (word, init) in state.iter_mut().zip(INITIAL_STATE) {
                word[lane] = init;
            }
            *next += 1;
        }
    };
    for lane in 0..L {
        take(lane, &mut next, &mut state, &mut owner, &mut at, &mut left);
    }
    loop {
        let busy = left.iter().filter(|&&n| n > 0).count();
        if busy == 0 {
            return;
        }
        if next == messages.len() && 4 * busy < L {
            // A full compression costs about three scalar ones: finish one by one.
            break;
        }
        let mut words = [[0u32; L]; 16];
        for lane in 0..L {
            // An idle lane hashes the first block again; its result is never read.
            let base = if left[lane] > 0 { at[lane] } else { 0 };
            let block = &arena[base..base + 64];
            for (j, word) in words.iter_mut().enumerate() {
                let b = &block[4 * j..4 * j + 4];
                word[lane] = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        compress_lanes(&mut state, &words);
        for lane in 0..L {
            if left[lane] == 0 {
                continue;
            }
            at[lane] += 64;
            left[lane] -= 1;
            if left[lane] == 0 {
                out[owner[lane]] = lane_digest(&state, lane);
                take(lane, &mut next, &mut state, &mut owner, &mut at, &mut left);
            }
        }
    }
    for lane in 0..L {
        if left[lane] == 0 {
            continue;
        }
        let mut one = [
            state[0][lane],
            state[1][lane],
            state[2][lane],
            state[3][lane],
        ];
        for block in arena[at[lane]..at[lane] + 64 * left[lane]].chunks_exact(64) {
            compress(&mut one, block.try_into().expect("64 bytes"));
        }
        let mut digest = [0u8; 16];
        for (bytes, word) in digest.chunks_exact_mut(4).zip(one) {
            bytes.copy_from_slice(&word.to_le_bytes());
        }
        out[owner[lane]] = digest;
    }
}

/// One MD5 step on every lane: `a = b + ((a + f(b, c, d) + m + k) <<< s)`.
macro_rules! step {
    ($f:ident, $a:ident, $b:ident, $c:ident, $d:ident, $m:expr, $k:expr, $s:expr) => {
        for l in 0..L {
            $a[l] = $a[l]
                .wrapping_add($f($b[l], $c[l], $d[l]))
                .wrapping_add($m[l])
                .wrapping_add($k)
                .rotate_left($s)
                .wrapping_add($b[l]);
        }
    };
}

#[inline(always)]
fn f(b: u32, c: u32, d: u32) -> u32 {
    d ^ (b & (c ^ d))
}
#[inline(always)]
fn g(b: u32, c: u32, d: u32) -> u32 {
    (b & d) | (c & !d)
}
#[inline(always)]
fn h(b: u32, c: u32, d: u32) -> u32 {
    b ^ c ^ d
}
#[inline(always)]
fn i(b: u32, c: u32, d: u32) -> u32 {
    c ^ (b | !d)
}

/// Folds one block per lane into `state` (RFC 1321, 3.4); `m[j][lane]` is word j of the
/// lane's block.
#[inline(always)]
fn compress_lanes<const L: usize>(state: &mut [[u32; L]; 4], m: &[[u32; L]; 16]) {
    let [mut a, mut b, mut c, mut d] = *state;

    md5_rounds!(step, a, b, c, d, m);

    for l in 0..L {
        state[0][l] = state[0][l].wrapping_add(a[l]);
        state[1][l] = state[1][l].wrapping_add(b[l]);
        state[2][l] = state[2][l].wrapping_add(c[l]);
        state[3][l] = state[3][l].wrapping_add(d[l]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::md5::Md5;

    fn arena_of(messages: &[Vec<u8>]) -> (Vec<u8>, Vec<Padded>) {
        let mut arena = Vec::new();
        let padded = messages
            .iter()
            .map(|m| {
                let start = arena.len();
                arena.extend_from_slice(m);
                pad(&mut arena, start)
            })
            .collect();
        (arena, padded)
    }

    fn check_all_paths(messages: &[Vec<u8>]) {
        let want: Vec<[u8; 16]> = messages.iter().map(|m| Md5::digest(m)).collect();
        let (arena, padded) = arena_of(messages);
        let mut got = vec![[0u8; 16]; messages.len()];
        digest_padded(&arena, &padded, &mut got);
        assert_eq!(got, want, "dispatched");
        for lanes_run in [lanes::<1>, lanes::<4>, lanes::<8>, lanes::<16>] {
            let mut got = vec![[0u8; 16]; messages.len()];
            lanes_run(&arena, &padded, &mut got);
            assert_eq!(got, want);
        }
    }

    #[test]
    fn pad_gives_whole_blocks_with_the_bit_length() {
        for len in 0..=200 {
            let mut arena = vec![7u8; 3];
            arena.extend(std::iter::repeat_n(b'x', len));
            let p = pad(&mut arena, 3);
            assert_eq!(p.start, 3);
            assert_eq!(arena.len(), 3 + 64 * p.blocks, "len {len}");
            assert_eq!(p.blocks, (len + 8) / 64 + 1, "len {len}");
            assert_eq!(arena[3 + len], 0x80);
            let bits = u64::from_le_bytes(arena[arena.len() - 8..].try_into().unwrap());
            assert_eq!(bits, 8 * len as u64);
        }
    }

    #[test]
    fn every_length_at_every_lane_count() {
        // Lengths 0..=300 (1 to 5 blocks, every padding case) in an order that mixes
        // short and long messages, so that lanes finish at different times.
        let messages: Vec<Vec<u8>> = (0..=300u32)
            .map(|i| (i * 37) % 301)
            .map(|len| (0..len).map(|k| (k * 131 + len) as u8).collect())
            .collect();
        check_all_paths(&messages);
    }

    #[test]
    fn few_messages_and_none() {
        check_all_paths(&[]);
        check_all_paths(&[b"abc".to_vec()]);
        check_all_paths(&[vec![b'q'; 5000], b"".to_vec(), vec![0xff; 64]]);
    }

    #[test]
    fn one_long_message_among_short_ones() {
        let mut messages: Vec<Vec<u8>> = (0..40).map(|i| vec![i as u8; i]).collect();
        messages.insert(3, (0..100_000u32).map(|k| (k % 253) as u8).collect());
        check_all_paths(&messages);
    }
}
