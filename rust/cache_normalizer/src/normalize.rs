//! Normalisation and MD5 keys in plain Rust, identical to the Python reference.
//!
//! The reference is `" ".join(text.lower().split())` and the MD5 of its UTF-8 bytes.
//! Case mapping and whitespace come from [`crate::tables`], which are read off the running
//! Python (see `gen_tables.py`), so the result matches Python rather than Rust's std.
//!
//! The input is read in steps of 16 bytes. A step classifies its bytes at once (SSE2 on
//! x86_64, two 64-bit words elsewhere): ASCII lowercase, and whitespace and non-ASCII as
//! bitmasks, with no data-dependent branch. An all-ASCII step is stored whole; a
//! whitespace byte right after whitespace is shifted out with no branch between dropping
//! none and dropping one, and only a step with two of them takes a byte-by-byte path.
//! A step whose non-ASCII characters are all two bytes long and lower to two bytes
//! (Latin-1, Latin Extended, Greek, Cyrillic, Armenian, Hebrew, Arabic: whitespace,
//! U+03A3 and the few whose lowercase is longer excepted), or three or four bytes long and
//! left as they are by lowercasing (CJK, kana, Hangul, punctuation such as U+2019 and
//! U+201C, symbols, emoji: [`tables::is_plain_long`], keyed by a character's first two
//! bytes; whitespace such as U+2000..U+200A, U+3000 and the letters that change case
//! excepted), is lowered as a whole, one table load per character in a fixed number of
//! iterations ([`lower_step`]), and stored the same way. Any other step stores its ASCII
//! bytes before the first non-ASCII one and decodes and looks up the non-ASCII characters
//! that follow one by one, again without data-dependent branches except for U+03A3 (final
//! sigma). Output collects in a small staging buffer, and each 64-byte block of it goes to
//! the sink with the next four steps interleaved with MD5's four rounds (inlined into
//! them): the rounds are one long dependency chain that leaves most of the core idle, and
//! the normalisation of the next block fills it.
//!
//! What limits the single call on 10 KB of unseen text (benchmarks/bench_cache_normalizer.py)
//! is work beside MD5's dependency chain, which the interleaving hides only while the core
//! has issue slots to spare. Counted with `ONCE=V` of `examples/phases.rs` under
//! `valgrind --tool=cachegrind --branch-sim=yes` (the VM of issue 13 exposes no hardware
//! counters to `perf`), per 10 KB text of the benchmark's mix: MD5 alone executes 105.2K
//! instructions; the fused call 181.4K before [`WHOLE_STEPS`] and [`ONE_DROP`] with 353
//! mispredicted branches (cachegrind's simple predictor), 188.0K with 245 after them;
//! [`LONG_CHARS`] then 188.6K with 218 (on text whose non-ASCII words are all CJK or emoji:
//! 184.6K with 240 before it, 183.6K with 159 after), and the step inlined into the rounds
//! instead of called 180.8K with 234, and with [`Normalizer::step_any`] classifying its
//! step again rather than taking the classification (which every step then stored for it)
//! 179.2K. Text without non-ASCII words: 158.4K with 50, at 0.90-0.94x MD5's speed
//! (`AB=1 NON_ASCII_PCT=0`, CPU time, load 5). What is left with 5% non-ASCII words: each
//! non-ASCII step mispredicts once into its path, and lowering a step of two-byte
//! characters takes a fixed 8 table loads. Not kept: taking only 2 when a step holds at
//! most two of them (3.5K instructions fewer, 29 mispredicts more, fastest pass 3-6%
//! slower); five steps per block instead of four (so that fewer run outside the rounds: as
//! many instructions, 22 mispredicts more, fastest pass 2% slower); lowering into a
//! 128-bit register instead of a buffer (median pass 7-8% slower). Under load the fused
//! call's passes spread by a third while MD5's stay within 5%. `normalize_and_hash_with`
//! turns each way of taking a step off, so that `AB=1 cargo run --release --example phases`
//! measures what each brings.

use rayon::prelude::*;

use crate::md5::Md5;
use crate::md5_lanes;
use crate::tables;

/// Input bytes classified per step.
const STEP: usize = 16;
/// Output goes to the sink in blocks of this many bytes (an MD5 block).
const BLOCK: usize = 64;
/// Steps run while the sink takes one block (one per MD5 round).
const STEPS_PER_BLOCK: usize = 4;
/// Most output bytes of one step: 2 per input byte (`gen_tables.py` asserts the bound) for
/// up to STEP + 3 bytes when a character straddles the step's end.
const STEP_OUTPUT: usize = 2 * (STEP + 3);
/// The steps run while a block is taken stop while the output not yet taken exceeds this
/// (only text whose lowercase is longer than itself gets there).
const STAGE_HIGH: usize = 2 * BLOCK;
/// What stays of the staging buffer when the output not yet taken moves to its start: a
/// step's output on top of STAGE_HIGH bytes, plus the fixed-size overshoot of a step's
/// stores.
const KEPT: usize = 3 * BLOCK;
const _: () = assert!(STAGE_HIGH + STEP_OUTPUT + STEP <= KEPT);
/// Staging buffer: output is written on and blocks are taken from it until the next block
/// would start at RECYCLE, then the KEPT bytes from there move to the start (one fixed-size
/// move every few blocks, instead of one per block).
const STAGE: usize = 8 * BLOCK;
const RECYCLE: usize = STAGE - KEPT;
const _: () = assert!(RECYCLE.is_multiple_of(BLOCK) && RECYCLE >= BLOCK);

const CAPITAL_SIGMA: u32 = 0x3a3;

/// `BYTES_BELOW[k]`: the bytes below byte k of a 16-byte chunk (as a little-endian u128)
/// all ones, the others zero; for k = 16, all ones.
const BYTES_BELOW: [u128; STEP + 1] = {
    let mut masks = [u128::MAX; STEP + 1];
    let mut k = 0;
    while k < STEP {
        masks[k] = (1 << (8 * k)) - 1;
        k += 1;
    }
    masks
};

/// Where normalised output goes, in order: whole blocks, then the rest (under 65 bytes).
trait Sink {
    /// Takes `block`, calling `between` STEPS_PER_BLOCK times along the way.
    fn block(&mut self, block: &[u8; BLOCK], between: impl FnMut());
    /// Takes the first `len` bytes of `rest`, `len` <= BLOCK.
    fn rest(&mut self, rest: &[u8; BLOCK], len: usize);
}

impl Sink for Vec<u8> {
    fn block(&mut self, block: &[u8; BLOCK], mut between: impl FnMut()) {
        self.extend_from_slice(block);
        for _ in 0..STEPS_PER_BLOCK {
            between();
        }
    }
    fn rest(&mut self, rest: &[u8; BLOCK], len: usize) {
        // A fixed-size copy, then the length cut back: no memcpy call for a few bytes.
        let end = self.len() + len;
        self.extend_from_slice(rest);
        self.truncate(end);
    }
}

impl Sink for Md5 {
    #[inline(always)]
    fn block(&mut self, block: &[u8; BLOCK], between: impl FnMut()) {
        self.update_block_with(block, between);
    }
    fn rest(&mut self, rest: &[u8; BLOCK], len: usize) {
        self.update(&rest[..len]);
    }
}

/// Sixteen bytes in a register: an SSE2 vector on x86_64, so that a step's output goes
/// from the classifying compares to the store without passing through general-purpose
/// registers (whose ALUs the MD5 rounds interleaved with the steps need: every integer
/// operation of a step competed with the rounds' dependency chain); a `u128` elsewhere.
#[derive(Clone, Copy)]
struct Bytes16(
    #[cfg(target_arch = "x86_64")] core::arch::x86_64::__m128i,
    #[cfg(not(target_arch = "x86_64"))] u128,
);

impl Bytes16 {
    #[inline(always)]
    fn from_bytes(bytes: [u8; STEP]) -> Self {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: SSE2 is enabled on every x86_64 target; the load reads 16 bytes.
        unsafe {
            Self(core::arch::x86_64::_mm_loadu_si128(bytes.as_ptr().cast()))
        }
        #[cfg(not(target_arch = "x86_64"))]
        Self(u128::from_le_bytes(bytes))
    }

    #[inline(always)]
    fn to_bytes(self) -> [u8; STEP] {
        let mut out = [0u8; STEP];
        self.store(&mut out);
        out
    }

    /// Writes the 16 bytes to `out`.
    #[inline(always)]
    fn store(self, out: &mut [u8; STEP]) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: SSE2 is enabled on every x86_64 target; the store writes 16 bytes.
        unsafe {
            core::arch::x86_64::_mm_storeu_si128(out.as_mut_ptr().cast(), self.0);
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            *out = self.0.to_le_bytes();
        }
    }

    /// Byte `k` (< 16) removed: the bytes above it move down by one.
    #[inline(always)]
    fn without_byte(self, k: usize) -> Self {
        let below = BYTES_BELOW[k];
        #[cfg(target_arch = "x86_64")]
        // SAFETY: SSE2 is enabled on every x86_64 target; the load reads the 16 bytes of
        // `below`.
        unsafe {
            use core::arch::x86_64::{
                _mm_and_si128, _mm_andnot_si128, _mm_loadu_si128, _mm_or_si128, _mm_srli_si128,
            };
            let below = _mm_loadu_si128((&raw const below).cast());
            let above = _mm_andnot_si128(below, _mm_srli_si128::<1>(self.0));
            Self(_mm_or_si128(_mm_and_si128(self.0, below), above))
        }
        #[cfg(not(target_arch = "x86_64"))]
        Self((self.0 & below) | ((self.0 >> 8) & !below))
    }
}

/// Sixteen bytes read as ASCII.
#[derive(Clone, Copy)]
struct Classified {
    /// Each byte lowercased, whitespace turned into b' ' (unchanged where non-ASCII); byte k
    /// of the chunk is byte k of the integer, little-endian.
    lowered: Bytes16,
    /// Bit k set: byte k is ASCII whitespace for `str.split()`: 0x09..=0x0d or 0x1c..=0x20
    /// (checked against `tables::ASCII_LOWER` by the tests).
    space: u32,
    /// Bit k set: byte k is not ASCII.
    non_ascii: u32,
}

/// Classifies sixteen bytes with no data-dependent branch: SSE2 compares, blends and
/// movemasks on x86_64 (where SSE2 is part of the baseline), 64-bit words elsewhere.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn classify(chunk: &[u8; STEP]) -> Classified {
    use core::arch::x86_64::{
        __m128i, _mm_and_si128, _mm_cmpgt_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_max_epu8,
        _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    // SAFETY: SSE2 is enabled on every x86_64 target, so the intrinsics are available; the
    // load reads the 16 bytes of `chunk` (unaligned loads are allowed), and `__m128i` and
    // `u128` are both 16 plain bytes.
    unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>());
        // Signed compares: non-ASCII bytes are negative, so neither upper nor whitespace.
        let between = |lo: i8, hi: i8| {
            _mm_and_si128(
                _mm_cmpgt_epi8(v, _mm_set1_epi8(lo - 1)),
                _mm_cmplt_epi8(v, _mm_set1_epi8(hi + 1)),
            )
        };
        let upper = between(0x41, 0x5a);
        let space = _mm_or_si128(between(0x09, 0x0d), between(0x1c, 0x20));
        let lowered = _mm_or_si128(v, _mm_and_si128(upper, _mm_set1_epi8(0x20)));
        // Whitespace bytes are at most 0x20 and not upper: the maximum with 0x20 is 0x20.
        let lowered = _mm_max_epu8(lowered, _mm_and_si128(space, _mm_set1_epi8(0x20)));
        Classified {
            lowered: Bytes16(lowered),
            space: _mm_movemask_epi8(space) as u32,
            non_ascii: _mm_movemask_epi8(v) as u32,
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn classify(chunk: &[u8; STEP]) -> Classified {
    swar::classify(chunk)
}

/// [`classify`] on two 64-bit words, for targets without a SIMD baseline (and the tests).
#[cfg(any(test, not(target_arch = "x86_64")))]
mod swar {
    use super::{Bytes16, Classified, STEP};

    /// Byte k of `ONES * x` is `x`, for a byte `x`.
    const ONES: u64 = u64::MAX / 0xff;
    const HIGH: u64 = 0x80 * ONES;
    const LOW7: u64 = 0x7f * ONES;

    /// Bit k of the result is the high bit of byte k of `flags` (little-endian; the other
    /// bits of each byte clear): the multiplication moves each to bit 56 + k.
    #[inline(always)]
    fn gather_high_bits(flags: u64) -> u32 {
        (flags.wrapping_mul(0x0002_0408_1020_4081) >> 56) as u32
    }

    /// Eight bytes (little-endian), each lowercased as ASCII with whitespace turned into
    /// b' ', and the high bit of each ASCII whitespace byte.
    ///
    /// On the low seven bits `t` of a byte, `t + (0x80 - x)` has its high bit set iff
    /// `t >= x`, and never carries into the next byte.
    #[inline(always)]
    fn lower_ascii_word(word: u64) -> (u64, u64) {
        let ascii = !word & HIGH;
        let t = word & LOW7;
        let at_least = |x: u64| t + (0x80 - x) * ONES;
        let upper = at_least(0x41) & !at_least(0x5b) & ascii;
        let space =
            ((at_least(0x09) & !at_least(0x0e)) | (at_least(0x1c) & !at_least(0x21))) & ascii;
        // 0xff in each whitespace byte.
        let space_bytes = (space - (space >> 7)) | space;
        let lowered = ((word | (upper >> 2)) & !space_bytes) | (space >> 2);
        (lowered, space)
    }

    pub(super) fn classify(chunk: &[u8; STEP]) -> Classified {
        let (lo, hi) = chunk.split_at(8);
        let [lo, hi] = [lo, hi].map(|half| u64::from_le_bytes(half.try_into().expect("8 bytes")));
        let (lowered_lo, space_lo) = lower_ascii_word(lo);
        let (lowered_hi, space_hi) = lower_ascii_word(hi);
        Classified {
            lowered: Bytes16::from_bytes(
                (u128::from(lowered_lo) | u128::from(lowered_hi) << 64).to_le_bytes(),
            ),
            space: gather_high_bits(space_lo) | gather_high_bits(space_hi) << 8,
            non_ascii: gather_high_bits(lo & HIGH) | gather_high_bits(hi & HIGH) << 8,
        }
    }
}

// The ways of taking a step, as bits of the `V` parameter of `Normalizer`: each can be
// turned off to measure what it brings (`normalize_and_hash_with`, examples/phases.rs).

/// Way of taking a step: non-ASCII steps of two-byte characters lowered as a whole
/// ([`lower_step`]).
pub const WHOLE_STEPS: u8 = 1;
/// Way of taking a step: no branch between dropping no whitespace byte and dropping one.
pub const ONE_DROP: u8 = 2;
/// Way of taking a step: output written along a staging buffer of several blocks, moved
/// back to its start every few blocks instead of after each.
pub const LINEAR_STAGE: u8 = 4;
/// Way of taking a step: with [`WHOLE_STEPS`], steps whose three- and four-byte characters
/// are all left as they are ([`tables::is_plain_long`]) lowered as a whole too.
pub const LONG_CHARS: u8 = 8;
/// The ways every entry point takes its steps: all of them.
pub const ALL: u8 = WHOLE_STEPS | ONE_DROP | LINEAR_STAGE | LONG_CHARS;
/// All of them but [`LONG_CHARS`]: the entry points before it, for A/B measurements.
pub const BEFORE_LONG_CHARS: u8 = ALL & !LONG_CHARS;

/// The normalisation of one text in progress: input read so far, output not yet taken;
/// `V` says which ways of taking a step are on (bits: [`WHOLE_STEPS`], [`ONE_DROP`],
/// [`LINEAR_STAGE`]).
struct Normalizer<'a, const V: u8 = ALL> {
    text: &'a str,
    /// Input bytes read.
    read: usize,
    /// Output: `stage[taken..len]` not yet taken, and room for what the next steps write.
    stage: [u8; STAGE],
    len: usize,
    taken: usize,
    /// 1 when the last character was whitespace or there was none yet; then a space
    /// already sits at `stage[len - 1]` (if `len > 0`) and further whitespace adds nothing.
    after_space: u32,
}

impl<'a, const V: u8> Normalizer<'a, V> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            read: 0,
            stage: [0; STAGE],
            len: 0,
            taken: 0,
            after_space: 1,
        }
    }

    fn done(&self) -> bool {
        self.read >= self.text.len()
    }

    /// Output bytes not yet taken.
    #[inline(always)]
    fn pending(&self) -> usize {
        self.len - self.taken
    }

    /// The 16 input bytes from `start` (< the text's length), padded with spaces past its
    /// end: they collapse into at most one trailing space, which is dropped at the end like
    /// any other.
    #[inline(always)]
    fn chunk_at(&self, start: usize) -> [u8; STEP] {
        let bytes = self.text.as_bytes();
        let end = start + STEP;
        match bytes.get(start..end) {
            Some(chunk) => chunk.try_into().expect("16 bytes"),
            None if bytes.len() >= STEP => {
                // The text's last 16 bytes shifted down over the ones already read: a
                // fixed-size load instead of a memcpy call of a few bytes.
                let last = bytes.last_chunk::<STEP>().expect("16 bytes");
                let missing = 8 * (end - bytes.len()) as u32;
                let spaces = u128::from_le_bytes([b' '; STEP]) & !(u128::MAX >> missing);
                ((u128::from_le_bytes(*last) >> missing) | spaces).to_le_bytes()
            }
            None => {
                let mut padded = [b' '; STEP];
                padded[..bytes.len() - start].copy_from_slice(&bytes[start..]);
                padded
            }
        }
    }

    /// Reads the next 16 input bytes (a little more if a character straddles their end),
    /// appending at most STEP_OUTPUT bytes; does nothing once the input is read.
    #[inline(always)]
    fn step(&mut self) {
        let start = self.read;
        if start >= self.text.len() {
            return;
        }
        let end = start + STEP;
        let chunk = self.chunk_at(start);
        let c = classify(&chunk);
        if c.non_ascii == 0 {
            // All ASCII, the common case: a constant advance keeps the next step's load
            // independent of this step's bytes.
            self.push_ascii(&c, STEP as u32);
            self.read = end;
            return;
        }
        let whole = if V & WHOLE_STEPS != 0 {
            lower_step::<V>(&chunk, &c)
        } else {
            None
        };
        if let Some((lowered, advance)) = whole {
            let c = Classified { lowered, ..c };
            self.push_ascii(&c, advance);
            self.read = start + advance as usize;
            return;
        }
        self.step_any(start);
    }

    /// [`Normalizer::step`] for any text: the ASCII bytes before the first non-ASCII one,
    /// then the non-ASCII characters that follow one by one, up to the end of the step.
    #[inline(never)]
    fn step_any(&mut self, start: usize) {
        // Classified again here rather than passed in: the step's hot path then keeps its
        // classification in registers instead of storing it for this call.
        let c = classify(&self.chunk_at(start));
        let bytes = self.text.as_bytes();
        let end = start + STEP;
        let ascii = c.non_ascii.trailing_zeros();
        self.push_ascii(&c, ascii);
        let mut i = start + ascii as usize;
        // In locals: the stores into `stage` would otherwise reload them.
        let (mut len, mut after_space) = (self.len, self.after_space);
        while i < end && i < bytes.len() && bytes[i] >= 0x80 {
            let four = match bytes.get(i..i + 4) {
                Some(four) => four.try_into().expect("4 bytes"),
                None => {
                    let mut four = [0u8; 4];
                    four[..bytes.len() - i].copy_from_slice(&bytes[i..]);
                    four
                }
            };
            let (cp, width) = decode_non_ascii(four);
            let (utf8, utf8_len, is_space) = lower_non_ascii(self.text, i, cp, (four, width));
            self.stage[len..len + 4].copy_from_slice(&utf8);
            if utf8_len == width {
                // Almost every character: its lowercase is as long as itself (and it is not
                // whitespace, which becomes one byte). A branch, not a select: the next
                // character's position then waits for the decoded width only, not for the
                // three dependent table loads behind `utf8_len` (normalising 10 KB with 5%
                // non-ASCII words: 5.0 -> 4.8 us, examples/phases.rs).
                len += width;
                after_space = 0;
            } else {
                (len, after_space) = resized(len, after_space, utf8_len, is_space);
            }
            i += width;
        }
        (self.len, self.after_space) = (len, after_space);
        self.read = i;
    }

    /// Appends the first `ascii` bytes of `c.lowered` (ASCII, or whole non-ASCII characters
    /// that [`lower_step`] lowered in place, never whitespace), dropping whitespace right
    /// after whitespace; writes up to 16 bytes past the new end.
    #[inline(always)]
    fn push_ascii(&mut self, c: &Classified, ascii: u32) {
        let valid = (1u32 << ascii) - 1;
        let spaces_before = c.space << 1 | self.after_space;
        let dropped = c.space & spaces_before & valid;
        self.after_space = spaces_before >> ascii & 1;
        let lowered = if V & ONE_DROP != 0 && dropped & dropped.wrapping_sub(1) == 0 {
            // None or one byte to drop, without a branch between them: "byte 16" is none.
            c.lowered
                .without_byte((dropped | 1 << STEP).trailing_zeros() as usize)
        } else if dropped == 0 {
            c.lowered
        } else if dropped & (dropped - 1) == 0 {
            // One byte to drop: the bytes above it move down by one.
            c.lowered.without_byte(dropped.trailing_zeros() as usize)
        } else {
            let keep = valid & !dropped;
            let mut len = self.len;
            for (k, b) in c.lowered.to_bytes().into_iter().enumerate() {
                self.stage[len] = b;
                len += (keep >> k & 1) as usize;
            }
            self.len = len;
            return;
        };
        let len = self.len;
        lowered.store(
            self.stage[len..]
                .first_chunk_mut::<STEP>()
                .expect("room for a step's stores"),
        );
        self.len = len + (ascii - u32::from(dropped != 0)) as usize;
    }

    /// Removes the first block of output; only when more follows it, so that it cannot
    /// hold the trailing space that [`Normalizer::finish`] drops.
    #[inline(always)]
    fn take_block(&mut self) -> [u8; BLOCK] {
        debug_assert!(self.pending() > BLOCK);
        let block = *self.stage[self.taken..]
            .first_chunk::<BLOCK>()
            .expect("the stage holds a block");
        self.taken += BLOCK;
        // Without LINEAR_STAGE, as before it: the rest moves to the start every block.
        let recycle = if V & LINEAR_STAGE != 0 {
            RECYCLE
        } else {
            BLOCK
        };
        if self.taken == recycle {
            // A fixed-size move (what is past `len` is garbage anyway).
            self.stage.copy_within(recycle..recycle + KEPT, 0);
            self.len -= recycle;
            self.taken = 0;
        }
        block
    }

    /// The output not yet taken, at the start of a block, and its length (at most BLOCK
    /// bytes) without a trailing space.
    fn finish(&self) -> (&[u8; BLOCK], usize) {
        let pending = self.pending();
        debug_assert!(pending <= BLOCK);
        let len = pending - usize::from(self.after_space == 1 && pending > 0);
        let rest = self.stage[self.taken..].first_chunk::<BLOCK>();
        (rest.expect("a block after the last taken"), len)
    }
}

/// Hands the UTF-8 bytes of `" ".join(text.lower().split())` to `sink`.
#[inline(always)]
fn normalize_into<S: Sink>(text: &str, sink: &mut S) {
    normalize_into_with::<S, ALL>(text, sink);
}

/// [`normalize_into`] with only the ways of taking a step that `V` turns on (bits:
/// [`WHOLE_STEPS`], [`ONE_DROP`], [`LINEAR_STAGE`]); 0 is the step of cache_normalizer before them.
#[inline(always)]
fn normalize_into_with<S: Sink, const V: u8>(text: &str, sink: &mut S) {
    let mut n = Normalizer::<V>::new(text);
    loop {
        while n.pending() <= BLOCK && !n.done() {
            n.step();
        }
        if n.pending() <= BLOCK {
            break;
        }
        let block = n.take_block();
        sink.block(
            &block,
            // Inlined into each round, not called: as a call, the MD5 state and message
            // words were saved and restored around every step (per 10 KB text under
            // cachegrind: 188.6K instructions called, 180.8K inlined; 169.2K and 160.2K on
            // ASCII-only text).
            #[inline(always)]
            || {
                if n.pending() <= STAGE_HIGH {
                    n.step();
                }
            },
        );
    }
    let (rest, len) = n.finish();
    sink.rest(rest, len);
}

/// Most characters a step can hold: 16 bytes of two-byte characters.
const STEP_CHARS: usize = STEP / 2;
/// Most two-byte characters beside a longer one in a step: the longer one takes at least
/// one of its bytes, even when it straddles the step's end.
const STEP_CHARS_BESIDE_LONG: usize = (STEP - 1) / 2;
/// Most three- and four-byte characters that end inside a step: five of three bytes.
const STEP_LONG_CHARS: usize = STEP / 3;
/// Where [`lower_step`]'s spare iterations over two-byte characters read and write, past
/// every real character...
const SPARE: usize = STEP + 2;
/// ... and where those over three- and four-byte characters read.
const SPARE_LONG: usize = SPARE + 2;
/// What the spare iterations read: a two-byte character, "é", then a plain three-byte
/// one, "東", and a byte its decoding ignores.
const SPARE_CHARS: [u8; 6] = *b"\xc3\xa9\xe6\x9d\xb1\0";

/// The step `chunk` lowered as a whole, and how many of its bytes it took (16, or fewer
/// when a character straddles the end: it starts the next step), when every non-ASCII
/// character in it either is two bytes long, not whitespace or U+03A3, and lowers to two
/// bytes (Latin-1, most of Latin Extended, Greek, Cyrillic, Armenian, Hebrew, Arabic), or,
/// with [`LONG_CHARS`] in `V`, is three or four bytes long and left as it is (CJK, kana,
/// most punctuation and symbols, emoji: [`tables::is_plain_long`]). `None` for any other
/// step, which [`Normalizer::step_any`] takes character by character.
///
/// Fixed work instead of a loop counted by the text: on unseen text the exit of a loop
/// over its characters is mispredicted about once per step, and the flush also discards
/// the MD5 work interleaved with it. The step's two-byte characters are taken in
/// STEP_CHARS iterations (those past the last character take a dummy at SPARE), each
/// writing its lowercase over the step's classified bytes at its own position; a step with
/// longer characters checks them in STEP_LONG_CHARS more, which only read (their bytes
/// are already in place). `chunk` starts at a character boundary.
#[inline(always)]
fn lower_step<const V: u8>(chunk: &[u8; STEP], c: &Classified) -> Option<(Bytes16, u32)> {
    let (leads, long, four) = lead_bytes(chunk);
    if V & LONG_CHARS == 0 && long != 0 {
        return None;
    }
    // The lead of a character that does not end inside the step (two bytes at 15, three
    // at 14 or 15, four at 13 to 15; at most one): the step stops before it.
    let straddles = (leads & 1 << (STEP - 1)) | (long & 3 << (STEP - 2)) | (four & 7 << (STEP - 3));
    let advance = straddles.trailing_zeros().min(STEP as u32);
    let taken = (1u32 << advance) - 1;
    let mut todo = leads & !long & taken;
    let mut input = [0u8; SPARE + SPARE_CHARS.len()];
    input[..STEP].copy_from_slice(chunk);
    input[SPARE..].copy_from_slice(&SPARE_CHARS);
    let mut out = [0u8; SPARE + 2];
    c.lowered
        .store(out.first_chunk_mut::<STEP>().expect("SPARE >= STEP"));
    let mut odd = 0;
    // Lowers the next two-byte character (or the dummy); 1 if it cannot be.
    let mut lower_one = |todo: &mut u32| {
        let k = (*todo | 1 << SPARE).trailing_zeros() as usize;
        *todo &= todo.wrapping_sub(1);
        let two = u16::from_le_bytes(*input[k..].first_chunk().expect("SPARE + 2 bytes"));
        let lowered = tables::lower_2_byte(u32::from(two));
        *out[k..].first_chunk_mut().expect("SPARE + 2 bytes") = lowered.to_le_bytes();
        u32::from(lowered == 0)
    };
    if V & LONG_CHARS == 0 || long == 0 {
        for _ in 0..STEP_CHARS {
            odd |= lower_one(&mut todo);
        }
    } else {
        // Three- and four-byte characters, which are left in place or send the step the
        // other way; and the two-byte ones only if there are any (seldom, beside them).
        let mut long = long & taken;
        for _ in 0..STEP_LONG_CHARS {
            let k = (long | 1 << SPARE_LONG).trailing_zeros() as usize;
            long &= long.wrapping_sub(1);
            let utf8 = u32::from_le_bytes(*input[k..].first_chunk().expect("SPARE_LONG + 4 bytes"));
            odd |= u32::from(!tables::is_plain_long(utf8));
        }
        if todo == 0 {
            return (odd == 0).then_some((c.lowered, advance));
        }
        for _ in 0..STEP_CHARS_BESIDE_LONG {
            odd |= lower_one(&mut todo);
        }
    }
    if odd != 0 {
        return None;
    }
    let lowered = Bytes16::from_bytes(*out.first_chunk::<STEP>().expect("SPARE >= STEP"));
    Some((lowered, advance))
}

/// Bit k set: byte k of `chunk` starts a non-ASCII character (it is 0xc0 or above); bit k
/// set: byte k starts a character of three or four bytes (0xe0 or above); and bit k set:
/// byte k starts one of four bytes (0xf0 or above).
#[inline(always)]
fn lead_bytes(chunk: &[u8; STEP]) -> (u32, u32, u32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE2 is enabled on every x86_64 target; the load reads the 16 bytes of
    // `chunk`.
    unsafe {
        use core::arch::x86_64::{
            _mm_cmpgt_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
        };
        let v = _mm_loadu_si128(chunk.as_ptr().cast());
        // Signed: 0xc0..=0xff are -64..=-1, the only bytes above -65 that are negative.
        let negative = _mm_movemask_epi8(v) as u32;
        let at_least = |b: i8| _mm_movemask_epi8(_mm_cmpgt_epi8(v, _mm_set1_epi8(b - 1))) as u32;
        (
            at_least(-64) & negative,
            at_least(-32) & negative,
            at_least(-16) & negative,
        )
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let (mut leads, mut long, mut four) = (0, 0, 0);
        for (k, &b) in chunk.iter().enumerate() {
            leads |= u32::from(b >= 0xc0) << k;
            long |= u32::from(b >= 0xe0) << k;
            four |= u32::from(b >= 0xf0) << k;
        }
        (leads, long, four)
    }
}

/// The output length and whitespace state after a character whose lowercase, `utf8_len`
/// bytes long, differs in length from itself, or which is whitespace (`is_space` 1); out
/// of line, so that the common case in [`Normalizer::step`] stays a predicted branch.
#[cold]
#[inline(never)]
fn resized(len: usize, after_space: u32, utf8_len: usize, is_space: u32) -> (usize, u32) {
    (len + utf8_len - (is_space & after_space) as usize, is_space)
}

/// What the non-ASCII character `cp` at byte `at` of `text`, whose UTF-8 is the first
/// `width` bytes of `four` (`same`), becomes: its lowercase as UTF-8 in the first `len` of
/// 4 bytes, and 0; or b' ' and 1 if it is whitespace. Branches only on U+03A3.
#[inline(always)]
fn lower_non_ascii(
    text: &str,
    at: usize,
    cp: u32,
    same: ([u8; 4], usize),
) -> ([u8; 4], usize, u32) {
    if cp == CAPITAL_SIGMA {
        return if is_final_sigma(text, at) {
            (*b"\xcf\x82\0\0", 2, 0)
        } else {
            (*b"\xcf\x83\0\0", 2, 0)
        };
    }
    let (utf8, len) = tables::lower_non_ascii_or(cp, same);
    // Only whitespace becomes something that starts with a space.
    (utf8, len, u32::from(utf8[0] == b' '))
}

/// The code point of the non-ASCII UTF-8 sequence that starts `four` (valid UTF-8, from a
/// `str`, zero-padded past the text's end), and its length in bytes; without branches.
#[inline(always)]
fn decode_non_ascii(four: [u8; 4]) -> (u32, usize) {
    let lead = u32::from(four[0]);
    let width = 2 + usize::from(lead >= 0xe0) + usize::from(lead >= 0xf0);
    let next = |k: usize| u32::from(four[k] & 0x3f);
    // As if 4 bytes long, then the bits of the bytes past `width` shifted out.
    let all = (lead & (0x7f >> width)) << 18 | next(1) << 12 | next(2) << 6 | next(3);
    (all >> (6 * (4 - width)), width)
}

/// Python's Final_Sigma context for the U+03A3 at byte `at` (`handle_capital_sigma` in
/// CPython's Objects/unicodeobject.c): a cased letter before it and none after it, skipping
/// case-ignorable characters both ways, read on the original text.
fn is_final_sigma(text: &str, at: usize) -> bool {
    let before = text[..at]
        .chars()
        .rev()
        .find(|&c| !tables::is_case_ignorable(c));
    if !before.is_some_and(tables::is_cased) {
        return false;
    }
    let after = text[at + 2..]
        .chars()
        .find(|&c| !tables::is_case_ignorable(c));
    !after.is_some_and(tables::is_cased)
}

/// Appends the UTF-8 bytes of [`normalize`]`(text)` to `out`.
pub fn normalize_to(text: &str, out: &mut Vec<u8>) {
    normalize_into(text, out);
}

/// `" ".join(text.lower().split())`.
pub fn normalize(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len());
    normalize_into(text, &mut out);
    // Every piece is whole UTF-8: ASCII, a space, or a complete character's bytes.
    String::from_utf8(out).expect("normalized text is UTF-8")
}

/// [`normalize_and_hash`] with only the ways of taking a step that `variant` turns on
/// (0, [`WHOLE_STEPS`], [`ONE_DROP`], [`LINEAR_STAGE`], [`BEFORE_LONG_CHARS`] or [`ALL`]); the
/// same digest every way, for A/B
/// measurements in one process (`examples/phases.rs`). Panics on any other `variant`.
#[doc(hidden)]
pub fn normalize_and_hash_with(text: &str, variant: u8) -> [u8; 16] {
    let mut hasher = Md5::new();
    match variant {
        0 => normalize_into_with::<_, 0>(text, &mut hasher),
        WHOLE_STEPS => normalize_into_with::<_, WHOLE_STEPS>(text, &mut hasher),
        ONE_DROP => normalize_into_with::<_, ONE_DROP>(text, &mut hasher),
        LINEAR_STAGE => normalize_into_with::<_, LINEAR_STAGE>(text, &mut hasher),
        ALL => normalize_into_with::<_, ALL>(text, &mut hasher),
        BEFORE_LONG_CHARS => normalize_into_with::<_, BEFORE_LONG_CHARS>(text, &mut hasher),
        _ => panic!("no variant {variant}"),
    }
    hasher.finalize()
}

/// MD5 digest of the UTF-8 bytes of [`normalize`]`(text)`, computed without allocating.
pub fn normalize_and_hash(text: &str) -> [u8; 16] {
    let mut hasher = Md5::new();
    normalize_into(text, &mut hasher);
    hasher.finalize()
}

/// Lowercase hexadecimal of `digest`, as `hashlib`'s `hexdigest()` writes it.
pub fn to_hex(digest: &[u8; 16]) -> [u8; 32] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 32];
    for (pair, byte) in out.chunks_exact_mut(2).zip(digest) {
        pair[0] = HEX[usize::from(byte >> 4)];
        pair[1] = HEX[usize::from(byte & 0x0f)];
    }
    out
}

/// `hashlib.md5(normalize(text).encode("utf-8")).hexdigest()` as 32 ASCII bytes.
pub fn normalize_and_hash_hex(text: &str) -> [u8; 32] {
    to_hex(&normalize_and_hash(text))
}

/// Total input bytes from which [`normalize_and_hash_hex_batch`] spreads work over threads...
pub const PARALLEL_MIN_BYTES: usize = 32 * 1024;
/// ... when its texts average at least this many bytes. Below it the per-text work under
/// the GIL (the `str` pointers in, the hex keys out) is most of a batch and a second thread
/// only adds its hand-offs: on 2 cores, load 1.0, `bench_cache_normalizer.py` gave the
/// batch 8.96x the reference on 2 threads against 10.31x on 1 at 100 B, 14.42x / 14.96x at
/// 1 KB, and 15.47x / 14.40x at 10 KB.
pub const PARALLEL_MIN_AVG_BYTES: usize = 4 * 1024;
/// Input bytes each parallel task gets at least, so tiny texts are not scheduled one by one.
const PARALLEL_TASK_BYTES: usize = 64 * 1024;
/// Texts each parallel task gets at least: enough to keep every MD5 lane busy.
const PARALLEL_TASK_TEXTS: usize = 64;
/// Input bytes normalised into one arena before its messages are hashed side by side (it
/// stays in L2 cache)...
const ARENA_INPUT_BYTES: usize = 64 * 1024;
/// ... unless it holds fewer texts than this, enough to fill every MD5 lane four times...
const ARENA_TEXTS: usize = 64;
/// ... and up to this many input bytes.
const ARENA_MAX_BYTES: usize = 4 * 1024 * 1024;

/// [`normalize_and_hash_hex`] of each text, in order; on rayon's pool (one thread per core)
/// once the batch holds at least [`PARALLEL_MIN_BYTES`] bytes in texts of
/// [`PARALLEL_MIN_AVG_BYTES`] on average.
///
/// Each thread normalises its texts into a padded arena and hashes them with the
/// multi-lane MD5 of [`crate::md5_lanes`] (several texts per SIMD instruction), which is
/// what makes a batch faster than one call per text even on one thread.
pub fn normalize_and_hash_hex_batch(texts: &[&str]) -> Vec<[u8; 32]> {
    let total: usize = texts.iter().map(|t| t.len()).sum();
    if total < PARALLEL_MIN_BYTES
        || texts.len() < 2
        || total < PARALLEL_MIN_AVG_BYTES * texts.len()
        || rayon::current_num_threads() < 2
    {
        return hash_serial(texts);
    }
    let per_task = (texts.len() * PARALLEL_TASK_BYTES / total).max(PARALLEL_TASK_TEXTS);
    texts
        .par_chunks(per_task)
        .flat_map_iter(hash_serial)
        .collect()
}

/// [`normalize_and_hash_hex_batch`] on the calling thread.
fn hash_serial(texts: &[&str]) -> Vec<[u8; 32]> {
    let mut out = Vec::with_capacity(texts.len());
    let mut arena = Vec::new();
    let mut messages = Vec::new();
    let mut digests = Vec::new();
    let mut rest = texts;
    while !rest.is_empty() {
        // At least one text per arena; texts while its input stays under
        // ARENA_INPUT_BYTES, or while it holds fewer than ARENA_TEXTS and stays under
        // ARENA_MAX_BYTES.
        let mut input = 0;
        let mut count = 0;
        for text in rest {
            input += text.len();
            let room =
                input <= ARENA_INPUT_BYTES || (count < ARENA_TEXTS && input <= ARENA_MAX_BYTES);
            if count > 0 && !room {
                break;
            }
            count += 1;
        }
        let (chunk, after) = rest.split_at(count);
        rest = after;
        arena.clear();
        messages.clear();
        for text in chunk {
            let start = arena.len();
            normalize_to(text, &mut arena);
            messages.push(md5_lanes::pad(&mut arena, start));
        }
        digests.clear();
        digests.resize(chunk.len(), [0u8; 16]);
        md5_lanes::digest_padded(&arena, &messages, &mut digests);
        out.extend(digests.iter().map(to_hex));
    }
    out
}

/// [`normalize`] over code points that may include lone surrogates (U+D800..U+DFFF), which
/// a Python `str` can hold and a Rust `str` cannot.
///
/// A lone surrogate is not whitespace, not cased, not case-ignorable and lowers to itself,
/// exactly like [`tables::SURROGATE_PLACEHOLDER`] (`gen_tables.py` checks both). So each
/// surrogate, and each real placeholder, goes in as the placeholder; every placeholder comes
/// out unchanged and in order, and gets its original code point back.
///
/// Code points above U+10FFFF are not Python `str` content; they are treated like surrogates.
pub fn normalize_code_points(code_points: &[u32]) -> Vec<u32> {
    let placeholder = tables::SURROGATE_PLACEHOLDER;
    let mut stood_in = Vec::new();
    let text: String = code_points
        .iter()
        .map(|&cp| match char::from_u32(cp) {
            Some(c) if c != placeholder => c,
            _ => {
                stood_in.push(cp);
                placeholder
            }
        })
        .collect();
    let mut stood_in = stood_in.into_iter();
    normalize(&text)
        .chars()
        .map(|c| {
            if c == placeholder {
                stood_in
                    .next()
                    .expect("one placeholder out per placeholder in")
            } else {
                u32::from(c)
            }
        })
        .collect()
}

/// The first run of code points UTF-8 cannot encode (surrogates) as `start..end`, the
/// span Python's strict UTF-8 encoder reports in its `UnicodeEncodeError`.
pub fn first_unencodable_run(code_points: &[u32]) -> Option<(usize, usize)> {
    let unencodable = |cp: &u32| char::from_u32(*cp).is_none();
    let start = code_points.iter().position(unencodable)?;
    let run = code_points[start..]
        .iter()
        .take_while(|cp| unencodable(cp))
        .count();
    Some((start, start + run))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> String {
        String::from_utf8(normalize_and_hash_hex(text).to_vec()).unwrap()
    }

    #[test]
    fn collapses_and_lowercases_ascii() {
        assert_eq!(normalize("  Hello \t\n WORLD  "), "hello world");
        assert_eq!(normalize(""), "");
        assert_eq!(normalize(" \x1c\x1d\x1e\x1f\x0b\x0c\r "), "");
        assert_eq!(normalize("a\x1fb"), "a b");
    }

    #[test]
    fn md5_of_empty_and_simple_text() {
        assert_eq!(hex(""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(hex("   "), "d41d8cd98f00b204e9800998ecf8427e");
        // md5(b"hello world")
        assert_eq!(hex(" Hello  World "), "5eb63bbbe01eeed093cb22bb8f5acdc3");
    }

    #[test]
    fn python_case_mappings() {
        assert_eq!(normalize("İ"), "i\u{307}");
        assert_eq!(normalize("ẞ ß"), "ß ß");
        assert_eq!(normalize("ǅ ǄX"), "ǆ ǆx");
        assert_eq!(normalize("\u{212a}"), "k");
    }

    #[test]
    fn final_sigma_follows_python_context() {
        assert_eq!(normalize("ΟΔΟΣ"), "οδος");
        assert_eq!(normalize("Σ"), "σ");
        assert_eq!(normalize("ΣΑ"), "σα");
        assert_eq!(normalize("ΑΣ ΑΣ"), "ας ας");
        assert_eq!(normalize("ΑΣ.Α"), "ασ.α");
        assert_eq!(normalize("ΑΣ'"), "ας'");
        assert_eq!(normalize("ΑΣΣ"), "ασς");
    }

    #[test]
    fn whitespace_spans_block_boundaries() {
        // Every offset against the 16-byte steps and 64-byte blocks.
        for n in (0..=3 * BLOCK + STEP).chain([1000, 1001, 4099]) {
            let text = format!("{}   \u{3000} Ab  ", "x".repeat(n));
            let want = format!("{} ab", "x".repeat(n));
            assert_eq!(normalize(&text), want.trim_start(), "n = {n}");
            let text = format!("{}{}", " ".repeat(n), "Z ".repeat(n));
            assert_eq!(normalize(&text), "z ".repeat(n).trim_end(), "n = {n}");
        }
    }

    #[test]
    fn hash_matches_normalize_for_long_text() {
        let text = "Ünïcode ΣΑΣ İ  text\u{2029}".repeat(2000);
        let normalized = normalize(&text);
        let digest = Md5::digest(normalized.as_bytes());
        assert_eq!(normalize_and_hash(&text), digest);
    }

    #[test]
    fn code_points_keep_surrogates_and_placeholders() {
        let input: Vec<u32> = "  A\u{e000}".chars().map(u32::from).collect();
        let mut input = input;
        input.extend([0xd800, 0x20, 0x3a3, 0xdc00, 0xdc01, 0x41, 0x20]);
        // "  A<E000><D800> Σ<DC00><DC01>A " -> "a<E000><D800> σ<DC00><DC01>a"
        let want = vec![0x61, 0xe000, 0xd800, 0x20, 0x3c3, 0xdc00, 0xdc01, 0x61];
        let got = normalize_code_points(&input);
        assert_eq!(got, want);
        assert_eq!(first_unencodable_run(&got), Some((2, 3)));
        assert_eq!(first_unencodable_run(&got[3..]), Some((2, 4)));
        assert_eq!(first_unencodable_run(&[0x61]), None);
    }

    #[test]
    fn batch_keeps_order_on_both_paths() {
        let small = ["A", " b ", "C c"];
        let want: Vec<[u8; 32]> = small.iter().map(|t| normalize_and_hash_hex(t)).collect();
        assert_eq!(normalize_and_hash_hex_batch(&small), want);
        // Many short texts (serial: under the average size) and fewer long ones (parallel).
        let short: Vec<String> = (0..5000).map(|i| format!("Text  {i} ÄΣ")).collect();
        let long: Vec<String> = (0..40)
            .map(|i| format!("Text  {i} ÄΣ ").repeat(400))
            .collect();
        for texts in [&short, &long] {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let total = refs.iter().map(|t| t.len()).sum::<usize>();
            assert!(total >= PARALLEL_MIN_BYTES);
            let want: Vec<[u8; 32]> = refs.iter().map(|t| normalize_and_hash_hex(t)).collect();
            assert_eq!(normalize_and_hash_hex_batch(&refs), want);
        }
        let long_total: usize = long.iter().map(String::len).sum();
        assert!(long_total >= PARALLEL_MIN_AVG_BYTES * long.len());
    }

    #[test]
    fn ascii_fast_paths_agree_with_byte_loop() {
        // Every ASCII byte at every position of the 16- and 8-byte paths, after whitespace
        // or not, next to a space or not.
        for b in 0u8..0x80 {
            for pos in 0..16 {
                for lead in [" ", "\t", "x", ""] {
                    for neighbour in [b'q', b' '] {
                        let mut chunk = *b"aBcDeFgHiJkLmNoP";
                        chunk[pos] = b;
                        chunk[(pos + 1) % 16] = neighbour;
                        let text =
                            format!("{lead}{}Zz", String::from_utf8(chunk.to_vec()).unwrap());
                        let lowered: String = text
                            .chars()
                            .map(|c| char::from(tables::ASCII_LOWER[c as usize]))
                            .collect();
                        let want = lowered.split(' ').filter(|w| !w.is_empty());
                        assert_eq!(
                            normalize(&text),
                            want.collect::<Vec<_>>().join(" "),
                            "{text:?}"
                        );
                    }
                }
            }
        }
    }

    /// What [`classify`] must say of byte `b`: (lowered, whitespace, non-ASCII).
    fn classified_byte(b: u8) -> (u8, bool, bool) {
        if b < 0x80 {
            let lowered = tables::ASCII_LOWER[usize::from(b)];
            (lowered, lowered == b' ', false)
        } else {
            (b, false, true)
        }
    }

    fn check_classified(chunk: &[u8; STEP], c: &Classified) {
        for (k, &b) in chunk.iter().enumerate() {
            let (lowered, space, non_ascii) = classified_byte(b);
            assert_eq!(c.lowered.to_bytes()[k], lowered, "{chunk:?} byte {k}");
            assert_eq!(c.space >> k & 1 == 1, space, "{chunk:?} byte {k}");
            assert_eq!(c.non_ascii >> k & 1 == 1, non_ascii, "{chunk:?} byte {k}");
        }
        assert_eq!(c.space >> STEP, 0);
        assert_eq!(c.non_ascii >> STEP, 0);
    }

    #[test]
    fn classify_agrees_with_ascii_table() {
        // Every byte at every position, then pseudo-random chunks; the SIMD and the
        // 64-bit-word versions alike.
        let mut chunks = Vec::new();
        for b in 0..=255u8 {
            for pos in 0..STEP {
                let mut chunk = *b"aBcDeFgHiJkLmNoP";
                chunk[pos] = b;
                chunks.push(chunk);
            }
        }
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..20_000 {
            let mut chunk = [0u8; STEP];
            for b in &mut chunk {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                *b = (state >> 56) as u8;
            }
            chunks.push(chunk);
        }
        for chunk in &chunks {
            check_classified(chunk, &classify(chunk));
            check_classified(chunk, &swar::classify(chunk));
        }
    }

    #[test]
    fn decode_non_ascii_round_trips() {
        for c in '\u{80}'..=char::MAX {
            let mut four = [0u8; 4];
            let width = c.encode_utf8(&mut four).len();
            assert_eq!(decode_non_ascii(four), (u32::from(c), width), "{c:?}");
        }
    }

    #[test]
    fn table_marks_exactly_the_whitespace() {
        for c in '\u{80}'..=char::MAX {
            let cp = u32::from(c);
            if cp == CAPITAL_SIGMA {
                continue;
            }
            let mut four = [0u8; 4];
            let width = c.encode_utf8(&mut four).len();
            let (utf8, len) = tables::lower_non_ascii_or(cp, (four, width));
            let space = tables::is_non_ascii_whitespace(cp);
            assert_eq!(utf8[0] == b' ', space, "{c:?}");
            if space {
                assert_eq!(len, 1, "{c:?}");
            }
        }
    }

    #[test]
    fn lowercase_longer_than_text_spans_blocks() {
        // "İ" (2 bytes) lowers to "i̇" (3 bytes): output outgrows input, and the steps run
        // while a block is hashed must hold back.
        for n in (0..=2 * BLOCK).chain([1000, 3001]) {
            for sep in ["", " ", "  ", "a"] {
                let text = format!("İ{sep}").repeat(n);
                let want = format!("i\u{307}{sep}").repeat(n);
                let want = want.split_whitespace().collect::<Vec<_>>().join(" ");
                assert_eq!(normalize(&text), want, "n = {n}, sep = {sep:?}");
                assert_eq!(
                    normalize_and_hash(&text),
                    Md5::digest(want.as_bytes()),
                    "n = {n}, sep = {sep:?}"
                );
            }
        }
    }

    /// `" ".join(text.lower().split())` character by character, from the tables alone.
    fn reference(text: &str) -> String {
        let mut lowered = String::new();
        for (at, c) in text.char_indices() {
            let cp = u32::from(c);
            if cp < 0x80 {
                lowered.push(char::from(tables::ASCII_LOWER[c as usize]));
            } else if cp == CAPITAL_SIGMA {
                lowered.push(if is_final_sigma(text, at) { 'ς' } else { 'σ' });
            } else {
                let mut four = [0u8; 4];
                let width = c.encode_utf8(&mut four).len();
                let (utf8, len) = tables::lower_non_ascii_or(cp, (four, width));
                lowered.push_str(core::str::from_utf8(&utf8[..len]).unwrap());
            }
        }
        lowered
            .split(' ')
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Checks every entry point and every way of taking a step on `text`.
    fn check(text: &str) {
        let want = reference(text);
        assert_eq!(normalize(text), want, "{text:?}");
        let digest = Md5::digest(want.as_bytes());
        for variant in [
            0,
            WHOLE_STEPS,
            ONE_DROP,
            LINEAR_STAGE,
            BEFORE_LONG_CHARS,
            ALL,
        ] {
            assert_eq!(
                normalize_and_hash_with(text, variant),
                digest,
                "{variant} {text:?}"
            );
        }
        assert_eq!(normalize_and_hash(text), digest, "{text:?}");
    }

    #[test]
    fn two_byte_table_agrees_with_lowercase_table() {
        for cp in 0x80..0x800u32 {
            let c = char::from_u32(cp).unwrap();
            let mut four = [0u8; 4];
            c.encode_utf8(&mut four);
            let (utf8, len) = tables::lower_non_ascii_or(cp, (four, 2));
            let two = tables::lower_2_byte(u32::from(four[0]) | u32::from(four[1]) << 8);
            let simple = len == 2 && utf8[0] != b' ' && cp != CAPITAL_SIGMA;
            if simple {
                assert_eq!(two.to_le_bytes(), [utf8[0], utf8[1]], "{c:?}");
            } else {
                assert_eq!(two, 0, "{c:?}");
            }
        }
        // The exceptions, by name: whitespace, the sigma, lowercase of another length.
        for c in ['\u{85}', '\u{a0}', 'Σ', 'İ', '\u{23a}', '\u{23e}'] {
            let mut four = [0u8; 4];
            c.encode_utf8(&mut four);
            assert_eq!(
                tables::lower_2_byte(u32::from(four[0]) | u32::from(four[1]) << 8),
                0
            );
        }
    }

    #[test]
    fn every_two_byte_character_at_every_step_position() {
        // Each two-byte character at each offset against the 16-byte steps (so at byte 15
        // it straddles the step's end), next to ASCII, to itself, to whitespace runs, to a
        // three-byte character (which sends the step the character-by-character way), and
        // at the text's end.
        for cp in 0x80..0x800u32 {
            let c = char::from_u32(cp).unwrap();
            for offset in 0..=STEP + 2 {
                let pad = "aB".repeat(offset).chars().take(offset).collect::<String>();
                check(&format!("{pad}{c}"));
                check(&format!("{pad}{c}Xy{c}{c} {c}  {c}\t"));
                if offset % 4 == 0 {
                    check(&format!(
                        "{pad} {c}{c}{c}{c}{c}{c}{c}{c}{c}|\u{3000}{c}ÄΣ😀"
                    ));
                }
            }
        }
    }

    #[test]
    fn whole_steps_across_blocks_and_whitespace_runs() {
        let words = [
            "Größe",
            "ΟΔΟΣ",
            "Москва",
            "İstanbul",
            "café",
            "東京",
            "a",
            "ÆØÅ",
        ];
        let seps = [" ", "  ", "\t\n", "\u{a0}", "\u{85} ", ""];
        for n in 0..=3 * BLOCK {
            let mut text = "x".repeat(n % 17);
            for i in 0..n {
                text.push_str(words[(i * 7 + n) % words.len()]);
                text.push_str(seps[(i * 5 + n / 3) % seps.len()]);
            }
            check(&text);
        }
    }

    #[test]
    fn final_sigma_at_step_boundaries() {
        for offset in 0..=2 * STEP {
            let pad = "é".repeat(offset / 2) + &"a".repeat(offset % 2);
            for tail in ["", " ", "Σ", "ΑΣ", "Α", "'", "'Α", ".Σ"] {
                check(&format!("{pad}ΑΣ{tail}"));
                check(&format!("{pad}Σ{tail}"));
                check(&format!("{pad} ΣΑ{tail}ςΣ"));
            }
        }
    }

    #[test]
    fn random_mixed_text_agrees_every_way() {
        // Pseudo-random texts over ASCII, whitespace (ASCII and not), two-byte characters
        // of every kind (changing case or not, and the exceptions), three- and four-byte
        // ones: every way of taking a step gives the reference's digest.
        let alphabet: Vec<char> =
            "aZ09 .\t\n\x0b\x1cÀéßÿĀıİſƁǅȺɐΆΣσςΩωЀЖжѠԱաא\u{85}\u{a0}\u{3000}ẞK東😀"
                .chars()
                .collect();
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 33) as usize % n
        };
        for _ in 0..4000 {
            let len = next(300);
            let text: String = (0..len).map(|_| alphabet[next(alphabet.len())]).collect();
            check(&text);
        }
    }

    /// [`tables::is_plain_long`] of `c`'s UTF-8.
    fn plain_long(c: char) -> bool {
        let mut four = [0u8; 4];
        c.encode_utf8(&mut four);
        tables::is_plain_long(u32::from_le_bytes(four))
    }

    /// Whether normalisation leaves non-ASCII `c` as it is, by the lowercase table.
    fn left_alone(c: char) -> bool {
        let mut four = [0u8; 4];
        let width = c.encode_utf8(&mut four).len();
        let same = tables::lower_non_ascii_or(u32::from(c), (four, width)) == (four, width);
        same && !tables::is_non_ascii_whitespace(u32::from(c))
    }

    #[test]
    fn plain_long_table_agrees_with_lowercase_table() {
        // Every three-byte character: plain exactly when the lowercase table leaves it as
        // it is and it is not whitespace; every four-byte one: plain exactly when all 64
        // that share its first three bytes are left alone.
        let mut plain = 0;
        for c in '\u{800}'..='\u{ffff}' {
            assert_eq!(plain_long(c), left_alone(c), "{c:?}");
            plain += usize::from(plain_long(c));
        }
        for block in (0x10000..=u32::from(char::MAX)).step_by(64) {
            let chars: Vec<char> = (block..block + 64).filter_map(char::from_u32).collect();
            let all = chars.iter().all(|&c| left_alone(c));
            for &c in &chars {
                assert_eq!(plain_long(c), all, "{c:?}");
                plain += usize::from(all);
            }
        }
        // Not trivially all or nothing: the exceptions by name, and most are plain.
        for c in [
            '\u{2000}', '\u{200a}', '\u{2028}', '\u{2029}', '\u{202f}', '\u{205f}',
        ] {
            assert!(!plain_long(c), "{c:?}");
        }
        for c in [
            '\u{3000}',
            '\u{1680}',
            'Ａ',
            'ẞ',
            '\u{212a}',
            '\u{2126}',
            '𐐀',
            '\u{1e900}',
            'Ⰰ',
            'Ḁ',
        ] {
            assert!(!plain_long(c), "{c:?}");
        }
        for c in [
            '\u{2019}',
            '\u{201c}',
            '\u{200b}',
            '\u{2030}',
            '東',
            'ａ',
            '😀',
            '\u{10ffff}',
        ] {
            assert!(plain_long(c), "{c:?}");
        }
        assert!(plain > 1_000_000, "{plain}");
    }

    /// Three- and four-byte characters on both sides of every boundary of the plain ones
    /// (where `is_plain_long` changes), and the ends of both ranges.
    fn plain_boundary_chars() -> Vec<char> {
        let mut chars = vec!['\u{800}', '\u{ffff}', '\u{10000}', char::MAX];
        let long = ('\u{800}'..=char::MAX).collect::<Vec<_>>();
        for pair in long.windows(2) {
            if plain_long(pair[0]) != plain_long(pair[1]) {
                chars.extend(pair);
            }
        }
        chars.dedup();
        chars
    }

    #[test]
    fn every_plain_boundary_at_every_step_position() {
        // Each character next to a boundary, at each offset against the 16-byte steps (so
        // that it straddles the step's end by one, two or three bytes), next to ASCII,
        // two-byte characters that lower, a plain three-byte and a four-byte character,
        // and whitespace.
        let chars = plain_boundary_chars();
        assert!(chars.len() > 700, "{}", chars.len());
        for &c in &chars {
            for offset in 0..=STEP + 3 {
                let pad = "aB".repeat(offset).chars().take(offset).collect::<String>();
                check(&format!("{pad}{c}"));
                check(&format!("{pad}{c}Ж{c}東{c} 😀{c}  x"));
                if offset % 3 == 0 {
                    check(&format!("{pad}é{c}{c}{c}{c}{c}Σ{c}"));
                }
            }
        }
    }

    #[test]
    fn non_ascii_whitespace_at_every_position_of_long_steps() {
        // Every non-ASCII whitespace character at every offset of a step that holds
        // three- and four-byte characters (plain, so the step is otherwise taken whole),
        // after whitespace or not, and runs of it across the 16- and 64-byte boundaries.
        let spaces: Vec<char> = ('\u{80}'..=char::MAX)
            .filter(|&c| tables::is_non_ascii_whitespace(u32::from(c)))
            .collect();
        assert_eq!(spaces.len(), 19);
        for &ws in &spaces {
            for offset in 0..=STEP + 3 {
                let pad = "x".repeat(offset);
                check(&format!("{pad}{ws}東京"));
                check(&format!("東{pad}{ws}😀 {ws}数据{ws}"));
                check(&format!("{pad} {ws}\u{2019}a{ws}{ws}é"));
                check(&format!("😀{pad}{ws}"));
            }
            for n in [15, 16, 17, 63, 64, 65, 127, 128] {
                let pad = "京".repeat(n / 3) + &"a".repeat(n % 3);
                check(&format!("{pad}{ws}{ws} {ws}\u{201c}Q\u{201d}"));
            }
        }
    }

    #[test]
    fn steps_mixing_two_three_and_four_byte_characters() {
        // Pseudo-random texts over characters of every length, plain or not: lowering
        // two-byte ones, the exceptions (U+03A3, İ), three-byte ones that change case
        // (Ａ, Ḁ, Ⰰ), change length (ẞ, K, Ω) or are whitespace, four-byte ones that
        // change case (𐐀, Adlam) or not (emoji), and punctuation such as U+2019.
        let alphabet: Vec<char> = "ab Z.\téЖжΣİ東京ａＡḀḁⰀẞ\u{212a}\u{2126}\u{2019}\u{201c}\u{2026}\u{2028}\u{3000}\u{a0}😀🚀𐐀𐐨\u{1e900}\u{e0041}"
            .chars()
            .collect();
        let mut state = 0x0123_4567_89ab_cdef_u64;
        let mut next = |n: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize % n
        };
        for round in 0..6000 {
            // Mostly long characters, so that most steps hold several; every length up
            // to a few blocks.
            let len = next(if round % 10 == 0 { 400 } else { 60 });
            let text: String = (0..len).map(|_| alphabet[next(alphabet.len())]).collect();
            check(&text);
        }
        // The most two-byte characters a step holds beside a longer one (seven when it
        // straddles the step's end), at every offset, before and after it.
        for offset in 0..=STEP + 3 {
            let pad = "x".repeat(offset);
            for long in ['東', '😀', 'Ａ', '\u{3000}'] {
                check(&format!("{pad}{long}ЖЖЖЖЖЖЖЖ{long}"));
                check(&format!("{pad}ЖЖЖЖЖЖ{long}ЖЖЖЖЖЖ"));
                check(&format!("{pad}ЖЖЖ{long}ЖЖЖ ΣΣ{long}"));
            }
        }
        // Plain long characters only, of every mix of widths, across many blocks.
        for n in 0..=3 * BLOCK {
            let text: String = (0..n)
                .map(|i| ['東', '😀', 'ж', 'a', '\u{2019}'][(i * 7 + n) % 5])
                .collect();
            check(&text);
        }
    }

    #[test]
    fn hex_is_lowercase() {
        let digest = [0xab_u8; 16];
        assert_eq!(&to_hex(&digest), b"abababababababababababababababab");
    }
}
