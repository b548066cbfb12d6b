//! Normalisation and MD5 keys in plain Rust, identical to the Python reference.
//!
//! The reference is `" ".join(text.lower().split())` and the MD5 of its UTF-8 bytes.
//! Case mapping and whitespace come from [`crate::tables`], which are read off the running
//! Python (see `gen_tables.py`), so the result matches Python rather than Rust's std.
//!
//! The work is one pass over the input bytes: ASCII bytes go through a 128-entry table with a
//! branch-free whitespace collapse; other characters are decoded and looked up. Output goes
//! to a stack buffer handed out block by block, so hashing never allocates.

use rayon::prelude::*;

use crate::md5::Md5;
use crate::tables;

/// Output handed out in multiples of this, so that the hasher compresses straight from the
/// buffer (an MD5 block).
const PIECE: usize = 64;
/// Output buffer for `block` input bytes: what was held back from the last block (under
/// PIECE bytes, plus a pending space), then the block (overshot by at most 7 bytes by a word
/// or a straddling character), each input byte yielding at most 2 output bytes
/// (`gen_tables.py` asserts the bound).
const fn buffer_len(block: usize) -> usize {
    PIECE + 2 * block + 32
}
/// Input bytes per output block for long texts.
const BLOCK: usize = 512;
/// Texts up to this many bytes use a smaller buffer: zeroing it is part of every call.
const SHORT_BLOCK: usize = 128;

const CAPITAL_SIGMA: u32 = 0x3a3;

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Lowercases the eight bytes of `word` (little-endian) as ASCII with every whitespace
/// byte turned into a space, and flags (high bit of the byte) those that need more:
/// non-ASCII, a control character, or whitespace right after whitespace (`after_space` for
/// the first byte). Bytes before the first flag are done.
///
/// Per byte `b < 0x80`, so that no addition carries into the next byte: `b + (0x80 - x)`
/// has its high bit set iff `b >= x`. Whitespace is 0x09..=0x0d and 0x1c..=0x20 (checked
/// against `ASCII_LOWER` by the tests). A non-ASCII byte can carry only into later bytes,
/// which are past the flagged one.
#[inline(always)]
fn lower_ascii_word(word: u64, after_space: usize) -> (u64, u64) {
    let at_least = |x: u64| word.wrapping_add((0x80 - x) * ONES) & HIGH;
    let control = !at_least(0x21) & HIGH;
    let space = control & ((at_least(0x09) & !at_least(0x0e)) | at_least(0x1c));
    // `space` moved up one byte flags the byte after each whitespace byte.
    let follows_space = (space << 8) | ((after_space as u64) << 7);
    let stop = (word & HIGH) | (control & !space) | (space & follows_space);
    let upper = at_least(0x41) & !at_least(0x5b);
    let space_bytes = (space >> 7) * 0xff;
    let lowered = ((word | (upper >> 2)) & !space_bytes) | (space_bytes & (0x20 * ONES));
    (lowered, stop)
}

/// Sixteen bytes lowercased as ASCII with whitespace turned into spaces, if all of them need
/// nothing else (see [`lower_ascii_word`]); written element-wise so that it compiles to
/// SIMD compares and blends.
#[inline(always)]
fn lower_ascii_16(chunk: &[u8; 16], after_space: usize) -> Option<[u8; 16]> {
    let is_space = |b: u8| b == b' ' || (0x09..=0x0d).contains(&b) || (0x1c..=0x1f).contains(&b);
    let mut previous = [0u8; 16];
    previous[0] = if after_space == 1 { b' ' } else { b'a' };
    previous[1..].copy_from_slice(&chunk[..15]);
    let mut out = [0u8; 16];
    let mut stop = 0u8;
    for k in 0..16 {
        let b = chunk[k];
        let space = is_space(b);
        let bad = (b >= 0x80) | ((b < 0x21) & !space) | (space & is_space(previous[k]));
        stop |= u8::from(bad);
        let upper = b.is_ascii_uppercase();
        out[k] = if space {
            b' '
        } else {
            b | (u8::from(upper) << 5)
        };
    }
    (stop == 0).then_some(out)
}

/// Hands the UTF-8 bytes of `" ".join(text.lower().split())` to `emit`, in order: pieces
/// of a multiple of 64 bytes, then the rest (possibly empty).
pub fn normalize_with<F: FnMut(&[u8])>(text: &str, emit: F) {
    if text.len() <= SHORT_BLOCK {
        normalize_blocks::<{ buffer_len(SHORT_BLOCK) }, F>(text, emit);
    } else {
        normalize_blocks::<{ buffer_len(BLOCK) }, F>(text, emit);
    }
}

/// [`normalize_with`] through a buffer of `N` bytes, `buffer_len(block)`.
#[inline(always)]
fn normalize_blocks<const N: usize, F: FnMut(&[u8])>(text: &str, mut emit: F) {
    let block = (N - buffer_len(0)) / 2;
    let bytes = text.as_bytes();
    let mut buf = [0u8; N];
    // Output bytes in `buf`.
    let mut len = 0usize;
    // 1 when the last character was whitespace or there was none yet; then a space already
    // sits at `buf[len - 1]` (if `len > 0`) and further whitespace adds nothing.
    let mut after_space = 1usize;
    let mut i = 0usize;
    while i < bytes.len() {
        let block_end = bytes.len().min(i + block);
        while i < block_end {
            // Sixteen plain ASCII bytes at once.
            if let Some(chunk) = bytes.get(i..i + 16) {
                if let Some(lowered) =
                    lower_ascii_16(chunk.try_into().expect("16 bytes"), after_space)
                {
                    buf[len..len + 16].copy_from_slice(&lowered);
                    len += 16;
                    i += 16;
                    after_space = usize::from(lowered[15] == b' ');
                    continue;
                }
            }
            // Up to eight plain ASCII bytes at once.
            if let Some(chunk) = bytes.get(i..i + 8) {
                let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
                let (lowered, stop) = lower_ascii_word(word, after_space);
                buf[len..len + 8].copy_from_slice(&lowered.to_le_bytes());
                if stop == 0 {
                    // The common case, kept free of data-dependent steps so that the next
                    // word's load need not wait for this one.
                    len += 8;
                    i += 8;
                    after_space = usize::from(lowered >> 56 == 0x20);
                    continue;
                }
                let plain = (stop.trailing_zeros() / 8) as usize;
                if plain > 0 {
                    len += plain;
                    i += plain;
                    after_space = usize::from(lowered >> (8 * plain - 8) & 0xff == 0x20);
                }
            }
            // Then one character the long way.
            let b = bytes[i];
            if b < 0x80 {
                // Whitespace bytes map to b' ', and only they do.
                let out = tables::ASCII_LOWER[usize::from(b)];
                buf[len] = out;
                let space = usize::from(out == b' ');
                len += 1 - (space & after_space);
                after_space = space;
                i += 1;
                continue;
            }
            let (cp, width) = decode_non_ascii(bytes, i);
            if tables::is_non_ascii_whitespace(cp) {
                buf[len] = b' ';
                len += 1 - after_space;
                after_space = 1;
                i += width;
                continue;
            }
            after_space = 0;
            let (utf8, utf8_len) = if cp == CAPITAL_SIGMA {
                if is_final_sigma(text, i) {
                    (*b"\xcf\x82\0\0", 2)
                } else {
                    (*b"\xcf\x83\0\0", 2)
                }
            } else if let Some(mapped) = tables::lower_non_ascii(cp) {
                mapped
            } else {
                // Unchanged: copy 4 bytes where there are 4, to keep the copy fixed-size.
                let mut same = [0u8; 4];
                match bytes.get(i..i + 4) {
                    Some(four) => same.copy_from_slice(four),
                    None => same[..width].copy_from_slice(&bytes[i..i + width]),
                }
                (same, width)
            };
            buf[len..len + 4].copy_from_slice(&utf8);
            len += utf8_len;
            i += width;
        }
        // Hand out whole pieces; keep the rest, and a pending space, which is dropped if
        // the text ends here.
        let done = if after_space == 1 && len > 0 {
            len - 1
        } else {
            len
        };
        let handed = done - done % PIECE;
        if handed > 0 {
            emit(&buf[..handed]);
            buf.copy_within(handed..len, 0);
            len -= handed;
        }
    }
    if after_space == 1 && len > 0 {
        len -= 1;
    }
    emit(&buf[..len]);
}

/// The code point of the non-ASCII UTF-8 sequence at `bytes[i]`, and its length in bytes.
/// `bytes` is valid UTF-8 (it comes from a `str`) and `i` is at a character boundary.
#[inline(always)]
fn decode_non_ascii(bytes: &[u8], i: usize) -> (u32, usize) {
    let lead = u32::from(bytes[i]);
    let next = |k: usize| u32::from(bytes[i + k] & 0x3f);
    if lead < 0xe0 {
        (((lead & 0x1f) << 6) | next(1), 2)
    } else if lead < 0xf0 {
        (((lead & 0x0f) << 12) | (next(1) << 6) | next(2), 3)
    } else {
        (
            ((lead & 0x07) << 18) | (next(1) << 12) | (next(2) << 6) | next(3),
            4,
        )
    }
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

/// `" ".join(text.lower().split())`.
pub fn normalize(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len());
    normalize_with(text, |piece| out.extend_from_slice(piece));
    // Every piece is whole UTF-8: ASCII, a space, or a complete character's bytes.
    String::from_utf8(out).expect("normalized text is UTF-8")
}

/// MD5 digest of the UTF-8 bytes of [`normalize`]`(text)`, computed without allocating.
pub fn normalize_and_hash(text: &str) -> [u8; 16] {
    let mut hasher = Md5::new();
    normalize_with(text, |piece| hasher.update(piece));
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

/// Total input bytes from which [`normalize_and_hash_hex_batch`] spreads work over threads.
pub const PARALLEL_MIN_BYTES: usize = 32 * 1024;
/// Input bytes each parallel task gets at least, so tiny texts are not scheduled one by one.
const PARALLEL_TASK_BYTES: usize = 8 * 1024;

/// [`normalize_and_hash_hex`] of each text, in order; on rayon's pool (one thread per core)
/// once the batch holds at least [`PARALLEL_MIN_BYTES`] bytes.
pub fn normalize_and_hash_hex_batch(texts: &[&str]) -> Vec<[u8; 32]> {
    let total: usize = texts.iter().map(|t| t.len()).sum();
    if total < PARALLEL_MIN_BYTES || texts.len() < 2 {
        return texts.iter().map(|t| normalize_and_hash_hex(t)).collect();
    }
    let min_len = (texts.len() * PARALLEL_TASK_BYTES / total).max(1);
    texts
        .par_iter()
        .with_min_len(min_len)
        .map(|t| normalize_and_hash_hex(t))
        .collect()
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
        for n in [
            SHORT_BLOCK - 2,
            SHORT_BLOCK,
            SHORT_BLOCK + 1,
            BLOCK - 2,
            BLOCK - 1,
            BLOCK,
            BLOCK + 1,
            3 * BLOCK,
        ] {
            let text = format!("{}   \u{3000} Ab  ", "x".repeat(n));
            let want = format!("{} ab", "x".repeat(n));
            assert_eq!(normalize(&text), want, "n = {n}");
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
        let texts: Vec<String> = (0..5000).map(|i| format!("Text  {i} ÄΣ")).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        assert!(refs.iter().map(|t| t.len()).sum::<usize>() >= PARALLEL_MIN_BYTES);
        let want: Vec<[u8; 32]> = refs.iter().map(|t| normalize_and_hash_hex(t)).collect();
        assert_eq!(normalize_and_hash_hex_batch(&refs), want);
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

    #[test]
    fn hex_is_lowercase() {
        let digest = [0xab_u8; 16];
        assert_eq!(&to_hex(&digest), b"abababababababababababababababab");
    }
}
