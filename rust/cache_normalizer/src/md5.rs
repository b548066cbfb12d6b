//! MD5 (RFC 1321), streaming, tuned for one message on one core.
//!
//! Why not the `md-5` crate: cache keys hash every request's text, and on the reference
//! machine `md-5` 0.11 ran at ~650 MB/s where OpenSSL (`hashlib.md5`) ran at ~780 MB/s, which
//! left no room for normalisation within the 70%-of-`hashlib` target. The difference is one
//! instruction per step: LLVM moves the round constant to the end of the sum
//! `a + m + k + f(b, c, d)`, putting two additions instead of one on the dependency chain
//! through `b`. Here `a + m + k` (which does not depend on the previous step) is computed
//! first and hidden from reassociation with [`opaque`], so each step's chain is the round
//! function, one addition, the rotation and the final addition, as in OpenSSL's assembly;
//! that runs at ~830 MB/s there, and at 820 MB/s on a 2-core AMD EPYC VM where
//! `hashlib.md5` hashed 10 KB texts at 750 MB/s (`examples/phases.rs`, best of 300 passes). The round functions use the shortest-chain forms:
//! F = d ^ (b & (c ^ d)), G = (c & !d) + (b & d) with the first term off the chain,
//! H = b ^ (c ^ d), I = c ^ (b | !d).
//!
//! The `md-5` crate stays as a dev-dependency: the tests compare every length 0..=300 and
//! random split points against it, plus RFC 1321's test suite.

/// `x`, unchanged, through a barrier the optimiser cannot see into: an empty inline-asm
/// statement (a comment naming the register) that takes and returns `x` in a register.
/// `core::hint::black_box` would do too, but it stores the value to the stack and loads it
/// back in every step: 14.0 us instead of 12.2 us for 10 KB (`examples/phases.rs`, "md5 of
/// normalised bytes", on a 2-core AMD EPYC VM).
#[inline(always)]
fn opaque(mut x: u32) -> u32 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the asm is a comment; it only pins `x` to a register.
    unsafe {
        core::arch::asm!("/* {0:e} */", inout(reg) x, options(pure, nomem, nostack, preserves_flags));
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: the asm is a comment; it only pins `x` to a register.
    unsafe {
        core::arch::asm!("/* {0:w} */", inout(reg) x, options(pure, nomem, nostack, preserves_flags));
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        x = core::hint::black_box(x);
    }
    x
}

/// Per-step constants, `floor(abs(sin(i + 1)) * 2^32)` (RFC 1321, 3.4).
pub(crate) const K: [u32; 64] = [
    0xd76a_a478,
    0xe8c7_b756,
    0x2420_70db,
    0xc1bd_ceee,
    0xf57c_0faf,
    0x4787_c62a,
    0xa830_4613,
    0xfd46_9501,
    0x6980_98d8,
    0x8b44_f7af,
    0xffff_5bb1,
    0x895c_d7be,
    0x6b90_1122,
    0xfd98_7193,
    0xa679_438e,
    0x49b4_0821,
    0xf61e_2562,
    0xc040_b340,
    0x265e_5a51,
    0xe9b6_c7aa,
    0xd62f_105d,
    0x0244_1453,
    0xd8a1_e681,
    0xe7d3_fbc8,
    0x21e1_cde6,
    0xc337_07d6,
    0xf4d5_0d87,
    0x455a_14ed,
    0xa9e3_e905,
    0xfcef_a3f8,
    0x676f_02d9,
    0x8d2a_4c8a,
    0xfffa_3942,
    0x8771_f681,
    0x6d9d_6122,
    0xfde5_380c,
    0xa4be_ea44,
    0x4bde_cfa9,
    0xf6bb_4b60,
    0xbebf_bc70,
    0x289b_7ec6,
    0xeaa1_27fa,
    0xd4ef_3085,
    0x0488_1d05,
    0xd9d4_d039,
    0xe6db_99e5,
    0x1fa2_7cf8,
    0xc4ac_5665,
    0xf429_2244,
    0x432a_ff97,
    0xab94_23a7,
    0xfc93_a039,
    0x655b_59c3,
    0x8f0c_cc92,
    0xffef_f47d,
    0x8584_5dd1,
    0x6fa8_7e4f,
    0xfe2c_e6e0,
    0xa301_4314,
    0x4e08_11a1,
    0xf753_7e82,
    0xbd3a_f235,
    0x2ad7_d2bb,
    0xeb86_d391,
];

pub(crate) const INITIAL_STATE: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

/// The 64 steps of RFC 1321, 3.4, in four rounds of 16: `$step!(F, a, b, c, d, m[j], K[i], s)`
/// does one step (the scalar [`compress`] here, one step of every lane in
/// `md5_lanes::compress_lanes`), `$between`, if given, runs before each round. `f`, `g`, `h`, `i` and
/// `K` are the caller's.
macro_rules! md5_rounds {
    ($step:ident, $a:ident, $b:ident, $c:ident, $d:ident, $m:ident $(, $between:expr)?) => {
        $($between;)?
        $step!(f, $a, $b, $c, $d, $m[0], K[0], 7);
        $step!(f, $d, $a, $b, $c, $m[1], K[1], 12);
        $step!(f, $c, $d, $a, $b, $m[2], K[2], 17);
        $step!(f, $b, $c, $d, $a, $m[3], K[3], 22);
        $step!(f, $a, $b, $c, $d, $m[4], K[4], 7);
        $step!(f, $d, $a, $b, $c, $m[5], K[5], 12);
        $step!(f, $c, $d, $a, $b, $m[6], K[6], 17);
        $step!(f, $b, $c, $d, $a, $m[7], K[7], 22);
        $step!(f, $a, $b, $c, $d, $m[8], K[8], 7);
        $step!(f, $d, $a, $b, $c, $m[9], K[9], 12);
        $step!(f, $c, $d, $a, $b, $m[10], K[10], 17);
        $step!(f, $b, $c, $d, $a, $m[11], K[11], 22);
        $step!(f, $a, $b, $c, $d, $m[12], K[12], 7);
        $step!(f, $d, $a, $b, $c, $m[13], K[13], 12);
        $step!(f, $c, $d, $a, $b, $m[14], K[14], 17);
        $step!(f, $b, $c, $d, $a, $m[15], K[15], 22);
        $($between;)?
        $step!(g, $a, $b, $c, $d, $m[1], K[16], 5);
        $step!(g, $d, $a, $b, $c, $m[6], K[17], 9);
        $step!(g, $c, $d, $a, $b, $m[11], K[18], 14);
        $step!(g, $b, $c, $d, $a, $m[0], K[19], 20);
        $step!(g, $a, $b, $c, $d, $m[5], K[20], 5);
        $step!(g, $d, $a, $b, $c, $m[10], K[21], 9);
        $step!(g, $c, $d, $a, $b, $m[15], K[22], 14);
        $step!(g, $b, $c, $d, $a, $m[4], K[23], 20);
        $step!(g, $a, $b, $c, $d, $m[9], K[24], 5);
        $step!(g, $d, $a, $b, $c, $m[14], K[25], 9);
        $step!(g, $c, $d, $a, $b, $m[3], K[26], 14);
        $step!(g, $b, $c, $d, $a, $m[8], K[27], 20);
        $step!(g, $a, $b, $c, $d, $m[13], K[28], 5);
        $step!(g, $d, $a, $b, $c, $m[2], K[29], 9);
        $step!(g, $c, $d, $a, $b, $m[7], K[30], 14);
        $step!(g, $b, $c, $d, $a, $m[12], K[31], 20);
        $($between;)?
        $step!(h, $a, $b, $c, $d, $m[5], K[32], 4);
        $step!(h, $d, $a, $b, $c, $m[8], K[33], 11);
        $step!(h, $c, $d, $a, $b, $m[11], K[34], 16);
        $step!(h, $b, $c, $d, $a, $m[14], K[35], 23);
        $step!(h, $a, $b, $c, $d, $m[1], K[36], 4);
        $step!(h, $d, $a, $b, $c, $m[4], K[37], 11);
        $step!(h, $c, $d, $a, $b, $m[7], K[38], 16);
        $step!(h, $b, $c, $d, $a, $m[10], K[39], 23);
        $step!(h, $a, $b, $c, $d, $m[13], K[40], 4);
        $step!(h, $d, $a, $b, $c, $m[0], K[41], 11);
        $step!(h, $c, $d, $a, $b, $m[3], K[42], 16);
        $step!(h, $b, $c, $d, $a, $m[6], K[43], 23);
        $step!(h, $a, $b, $c, $d, $m[9], K[44], 4);
        $step!(h, $d, $a, $b, $c, $m[12], K[45], 11);
        $step!(h, $c, $d, $a, $b, $m[15], K[46], 16);
        $step!(h, $b, $c, $d, $a, $m[2], K[47], 23);
        $($between;)?
        $step!(i, $a, $b, $c, $d, $m[0], K[48], 6);
        $step!(i, $d, $a, $b, $c, $m[7], K[49], 10);
        $step!(i, $c, $d, $a, $b, $m[14], K[50], 15);
        $step!(i, $b, $c, $d, $a, $m[5], K[51], 21);
        $step!(i, $a, $b, $c, $d, $m[12], K[52], 6);
        $step!(i, $d, $a, $b, $c, $m[3], K[53], 10);
        $step!(i, $c, $d, $a, $b, $m[10], K[54], 15);
        $step!(i, $b, $c, $d, $a, $m[1], K[55], 21);
        $step!(i, $a, $b, $c, $d, $m[8], K[56], 6);
        $step!(i, $d, $a, $b, $c, $m[15], K[57], 10);
        $step!(i, $c, $d, $a, $b, $m[6], K[58], 15);
        $step!(i, $b, $c, $d, $a, $m[13], K[59], 21);
        $step!(i, $a, $b, $c, $d, $m[4], K[60], 6);
        $step!(i, $d, $a, $b, $c, $m[11], K[61], 10);
        $step!(i, $c, $d, $a, $b, $m[2], K[62], 15);
        $step!(i, $b, $c, $d, $a, $m[9], K[63], 21);
    };
}
pub(crate) use md5_rounds;

/// One step: `a = b + ((a + m + k + f(b, c, d)) <<< s)`. Each round function takes
/// `a + m + k`, which does not depend on the previous step, and hides it (with whatever
/// else is off the chain) from reassociation before adding the part that does.
macro_rules! step {
    ($f:ident, $a:ident, $b:ident, $c:ident, $d:ident, $m:expr, $k:expr, $s:expr) => {
        $a = $f($a.wrapping_add($m).wrapping_add($k), $b, $c, $d)
            .rotate_left($s)
            .wrapping_add($b);
    };
}

#[inline(always)]
fn f(head: u32, b: u32, c: u32, d: u32) -> u32 {
    opaque(head).wrapping_add(d ^ (b & (c ^ d)))
}

#[inline(always)]
fn g(head: u32, b: u32, c: u32, d: u32) -> u32 {
    // (b & d) | (c & !d) with disjoint bits, so an addition; c & !d joins the head.
    opaque(head.wrapping_add(c & !d)).wrapping_add(b & d)
}

#[inline(always)]
fn h(head: u32, b: u32, c: u32, d: u32) -> u32 {
    opaque(head).wrapping_add(b ^ (c ^ d))
}

#[inline(always)]
fn i(head: u32, b: u32, c: u32, d: u32) -> u32 {
    opaque(head).wrapping_add(c ^ (b | !d))
}

/// Folds one 64-byte block into `state` (RFC 1321, 3.4).
#[inline(always)]
pub(crate) fn compress(state: &mut [u32; 4], block: &[u8; 64]) {
    compress_with(state, block, &mut || {});
}

/// [`compress`], calling `between` before each round.
#[inline(always)]
fn compress_with(state: &mut [u32; 4], block: &[u8; 64], between: &mut impl FnMut()) {
    let mut m = [0u32; 16];
    for (word, bytes) in m.iter_mut().zip(block.chunks_exact(4)) {
        *word = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    }
    let [mut a, mut b, mut c, mut d] = *state;

    md5_rounds!(step, a, b, c, d, m, between());

    state[0] = state[0].wrapping_add(a);
    state[1] = state[1].wrapping_add(b);
    state[2] = state[2].wrapping_add(c);
    state[3] = state[3].wrapping_add(d);
}

/// Streaming MD5: [`Md5::update`] any number of times, then [`Md5::finalize`].
#[derive(Clone)]
pub struct Md5 {
    state: [u32; 4],
    /// Bytes of a partial block, `buffered` of them.
    buffer: [u8; 64],
    buffered: usize,
    /// Message length so far, in bytes.
    length: u64,
}

impl Default for Md5 {
    fn default() -> Self {
        Self::new()
    }
}

impl Md5 {
    /// A hasher over the empty message.
    pub fn new() -> Self {
        Self {
            state: INITIAL_STATE,
            buffer: [0; 64],
            buffered: 0,
            length: 0,
        }
    }

    /// Appends `data` to the message.
    pub fn update(&mut self, mut data: &[u8]) {
        self.length = self.length.wrapping_add(data.len() as u64);
        if self.buffered > 0 {
            let take = data.len().min(64 - self.buffered);
            self.buffer[self.buffered..self.buffered + take].copy_from_slice(&data[..take]);
            self.buffered += take;
            data = &data[take..];
            if self.buffered < 64 {
                return;
            }
            compress(&mut self.state, &self.buffer);
            self.buffered = 0;
        }
        let mut blocks = data.chunks_exact(64);
        for block in &mut blocks {
            compress(&mut self.state, block.try_into().expect("64 bytes"));
        }
        let rest = blocks.remainder();
        self.buffer[..rest.len()].copy_from_slice(rest);
        self.buffered = rest.len();
    }

    /// Appends one whole block to a message whose length so far is a multiple of 64 bytes
    /// ([`Md5::update`] without the buffering), calling `between` at the start of each of
    /// the four rounds: independent work placed there runs in the slack of the rounds'
    /// dependency chain.
    #[inline(always)]
    pub fn update_block_with(&mut self, block: &[u8; 64], mut between: impl FnMut()) {
        debug_assert_eq!(self.buffered, 0, "update_block_with after a partial block");
        self.length = self.length.wrapping_add(64);
        compress_with(&mut self.state, block, &mut between);
    }

    /// The 16-byte digest of everything passed to [`Md5::update`] (RFC 1321, 3.1-3.5).
    pub fn finalize(mut self) -> [u8; 16] {
        let bit_length = self.length.wrapping_mul(8);
        let mut tail = [0u8; 128];
        tail[..self.buffered].copy_from_slice(&self.buffer[..self.buffered]);
        tail[self.buffered] = 0x80;
        let end = if self.buffered < 56 { 64 } else { 128 };
        tail[end - 8..end].copy_from_slice(&bit_length.to_le_bytes());
        for block in tail[..end].chunks_exact(64) {
            compress(&mut self.state, block.try_into().expect("64 bytes"));
        }
        let mut digest = [0u8; 16];
        for (out, word) in digest.chunks_exact_mut(4).zip(self.state) {
            out.copy_from_slice(&word.to_le_bytes());
        }
        digest
    }

    /// MD5 of `data` in one call.
    pub fn digest(data: &[u8]) -> [u8; 16] {
        let mut hasher = Self::new();
        hasher.update(data);
        hasher.finalize()
    }
}

#[cfg(test)]
mod tests {
    use super::Md5;
    use md5_oracle::Digest;

    fn hex(digest: [u8; 16]) -> String {
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn rfc1321_test_suite() {
        let cases = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "d174ab98d277d9f5a5611c2c9f419d9f",
            ),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(hex(Md5::digest(input.as_bytes())), want, "{input:?}");
        }
    }

    #[test]
    fn matches_md5_crate_for_every_length_and_split() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 131 % 251) as u8).collect();
        for len in 0..=data.len() {
            let message = &data[..len];
            let want: [u8; 16] = md5_oracle::Md5::digest(message).into();
            assert_eq!(Md5::digest(message), want, "len {len}");
            for split in [0, 1, len / 3, len / 2, len.saturating_sub(1)] {
                let split = split.min(len);
                let mut hasher = Md5::new();
                hasher.update(&message[..split]);
                hasher.update(&[]);
                hasher.update(&message[split..]);
                assert_eq!(hasher.finalize(), want, "len {len} split {split}");
            }
        }
    }

    #[test]
    fn update_block_with_calls_between_once_per_round() {
        let data: Vec<u8> = (0..640u32).map(|i| (i * 13 + 5) as u8).collect();
        let mut hasher = Md5::new();
        let mut calls = 0;
        for block in data.chunks_exact(64) {
            hasher.update_block_with(block.try_into().unwrap(), || calls += 1);
        }
        hasher.update(b"tail");
        let mut message = data.clone();
        message.extend_from_slice(b"tail");
        let want: [u8; 16] = md5_oracle::Md5::digest(&message).into();
        assert_eq!(hasher.finalize(), want);
        assert_eq!(calls, 4 * 10);
    }

    #[test]
    fn matches_md5_crate_for_byte_by_byte_updates() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut hasher = Md5::new();
        for b in &data {
            hasher.update(std::slice::from_ref(b));
        }
        let want: [u8; 16] = md5_oracle::Md5::digest(&data).into();
        assert_eq!(hasher.finalize(), want);
    }
}
