"""Generate ``src/tables.rs`` from the running Python's own ``str.lower()`` and ``str.split()``.

The Rust crate must agree with ``" ".join(text.lower().split())`` for every ``str``, so its
Unicode tables are not taken from Rust's std or from a Unicode data file: they are read off
the interpreter that is the reference, one code point at a time, by calling the very
methods the reference calls.

What is read, and how:

- whitespace: ``c`` splits ``"a" + c + "a"`` in two (``str.split()`` with no argument);
- lowercase: ``c.lower()`` for every code point, which CPython computes from the code point
  alone except for U+03A3 GREEK CAPITAL LETTER SIGMA (``lower_ucs4`` in
  Objects/unicodeobject.c);
- the two properties the final-sigma rule reads (``handle_capital_sigma``): for each code
  point, whether the rule skips it (case-ignorable) or stops at it and finds it cased.
  Both are observed through ``lower()`` itself: ``(c + "Σ").lower()`` ends in "ς" exactly
  when ``c`` is cased and not case-ignorable, and ``("A" + c + "Σ").lower()`` ends in "ς"
  exactly when ``c`` is case-ignorable or that.

The script checks the facts the Rust code relies on (no lowercase mapping yields whitespace
or the surrogate placeholder, UTF-8 growth stays within the buffer's bound, ...) and fails
loudly if a future Unicode version breaks one.

Usage::

    python rust/cache_normalizer/gen_tables.py          # rewrite src/tables.rs
    python rust/cache_normalizer/gen_tables.py --check  # exit 1 if it is stale

tests/unit/test_cache_normalizer.py runs ``render()`` and compares it with the committed file.
"""

from __future__ import annotations

import argparse
import sys
import unicodedata
from pathlib import Path

TABLES_RS = Path(__file__).resolve().parent / "src" / "tables.rs"

MAX_CODE_POINT = 0x10FFFF
CAPITAL_SIGMA = 0x03A3
# The Rust side stands a private-use code point in for each lone surrogate; see src/lib.rs.
SURROGATE_PLACEHOLDER = 0xE000
# Low bits of a code point that index inside one block of the lowercase table.
LOWER_SHIFT = 7
# The output buffer holds twice the input block, so no mapping may more than double UTF-8.
MAX_UTF8_GROWTH = 2.0


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def is_whitespace(cp: int) -> bool:
    """Whether ``str.split()`` splits on code point ``cp``."""
    return len(("a" + chr(cp) + "a").split()) == 2


def case_class(cp: int) -> str:
    """How the final-sigma rule sees ``cp``: ``"cased"``, ``"ignorable"`` or ``"other"``."""
    c = chr(cp)
    if (c + "\u03a3").lower()[-1] == "\u03c2":
        return "cased"
    if ("A" + c + "\u03a3").lower()[-1] == "\u03c2":
        return "ignorable"
    return "other"


def _check_case_class(cp: int, klass: str) -> None:
    """Cross-check ``case_class`` through the rule's forward scan."""
    c = chr(cp)
    stops_forward = ("A\u03a3" + c).lower()[1] == "\u03c3"
    assert stops_forward == (klass == "cased"), hex(cp)
    if klass != "cased":
        skipped = ("A\u03a3" + c + "A").lower()[1] == "\u03c3"
        assert skipped == (klass == "ignorable"), hex(cp)


def _ranges(code_points: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for cp in code_points:
        if out and out[-1][1] == cp - 1:
            out[-1] = (out[-1][0], cp)
        else:
            out.append((cp, cp))
    return out


def _rust_str(text: str) -> str:
    return '"' + "".join(f"\\u{{{ord(ch):x}}}" if ord(ch) > 0x7E else ch for ch in text) + '"'


def _utf8_entry(text: str) -> str:
    data = text.encode("utf-8")
    assert len(data) <= 4, text
    padded = data + bytes(4 - len(data))
    return "([" + ", ".join(f"0x{b:02x}" for b in padded) + f"], {len(data)})"


def _wrap(items: list[str], indent: str = "    ", width: int = 96) -> str:
    lines: list[str] = []
    line = indent
    for item in items:
        piece = item + ","
        if len(line) + len(piece) + 1 > width and line.strip():
            lines.append(line.rstrip())
            line = indent
        line += piece + " "
    if line.strip():
        lines.append(line.rstrip())
    return "\n".join(lines)


def collect() -> dict[str, object]:
    """Read every table off the running interpreter and check the invariants."""
    whitespace: list[int] = []
    lower: dict[int, str] = {}
    cased: list[int] = []
    ignorable: list[int] = []
    for cp in range(MAX_CODE_POINT + 1):
        c = chr(cp)
        if is_whitespace(cp):
            whitespace.append(cp)
            assert c.lower() == c, f"whitespace {cp:#x} changes under lower()"
        mapped = c.lower()
        if mapped != c and cp != CAPITAL_SIGMA:
            lower[cp] = mapped
            assert not any(is_whitespace(ord(m)) for m in mapped), hex(cp)
            assert chr(SURROGATE_PLACEHOLDER) not in mapped, hex(cp)
            assert _utf8_len(mapped) <= MAX_UTF8_GROWTH * _utf8_len(c), hex(cp)
        klass = case_class(cp)
        _check_case_class(cp, klass)
        if klass == "cased":
            cased.append(cp)
        elif klass == "ignorable":
            ignorable.append(cp)

    # Facts src/normalize.rs and src/lib.rs rely on.
    sigma = chr(CAPITAL_SIGMA)
    assert sigma.lower() == "\u03c3" and ("A" + sigma).lower() == "a\u03c2"
    for cp in range(0xD800, 0xE000):
        assert cp not in lower and cp not in whitespace
        assert case_class(cp) == "other"
    placeholder = SURROGATE_PLACEHOLDER
    assert placeholder not in lower and placeholder not in whitespace
    assert case_class(placeholder) == "other"
    for cp in range(0x80):
        mapped = chr(cp).lower()
        assert len(mapped) == 1 and ord(mapped) < 0x80, hex(cp)
    ascii_ws = [cp for cp in whitespace if cp < 0x80]
    assert all(chr(cp).lower() != " " for cp in range(0x80) if cp not in ascii_ws)

    return {
        "whitespace": whitespace,
        "lower": lower,
        "cased": _ranges(cased),
        "ignorable": _ranges(ignorable),
    }


def render() -> str:
    """The full text of ``src/tables.rs`` for the running interpreter."""
    data = collect()
    whitespace: list[int] = data["whitespace"]  # type: ignore[assignment]
    lower: dict[int, str] = data["lower"]  # type: ignore[assignment]
    cased: list[tuple[int, int]] = data["cased"]  # type: ignore[assignment]
    ignorable: list[tuple[int, int]] = data["ignorable"]  # type: ignore[assignment]

    ascii_lower = []
    for cp in range(0x80):
        ascii_lower.append(0x20 if cp in whitespace else ord(chr(cp).lower()))

    block_size = 1 << LOWER_SHIFT
    # What a non-ASCII character becomes: its lowercase, or a space if it is whitespace (no
    # lowercase starts with a space, `collect` checks, so the space marks whitespace).
    becomes = {cp: mapped for cp, mapped in lower.items() if cp >= 0x80}
    becomes.update((cp, " ") for cp in whitespace if cp >= 0x80)
    strings = [""] + [becomes[cp] for cp in sorted(becomes)]
    string_index = {cp: i for i, cp in enumerate(sorted(becomes), 1)}
    assert len(strings) < 1 << 16
    n_blocks = (max(becomes) >> LOWER_SHIFT) + 1
    blocks: list[tuple[int, ...]] = [(0,) * block_size]
    block_ids: dict[tuple[int, ...], int] = {blocks[0]: 0}
    block_index: list[int] = []
    for b in range(n_blocks):
        block = tuple(
            string_index.get(cp, 0) for cp in range(b * block_size, (b + 1) * block_size)
        )
        if block not in block_ids:
            block_ids[block] = len(blocks)
            blocks.append(block)
        block_index.append(block_ids[block])
    block_index.append(0)
    assert len(blocks) <= 256

    # Two-byte characters whose lowercase is two bytes too, as their UTF-8 (first byte in
    # the low half); 0 for whitespace, U+03A3, a length change and the code points below
    # U+0080 (overlong, never in a str).
    lower2 = [0] * 0x800
    for cp in range(0x80, 0x800):
        mapped = lower.get(cp, chr(cp)).encode("utf-8")
        if cp in whitespace or cp == CAPITAL_SIGMA or len(mapped) != 2:
            continue
        lower2[cp] = mapped[0] | mapped[1] << 8
        assert lower2[cp] != 0 and 0xC2 <= mapped[0] <= 0xDF, hex(cp)

    # Three- and four-byte characters that normalisation leaves as they are (their own
    # lowercase, not whitespace), keyed by their first two bytes of UTF-8 and looked up
    # by the third: for a three-byte character bit `third & 63` of its entry says whether
    # it is plain; for a four-byte one, whether all 64 characters that share its first
    # three bytes are (a block with an exception, such as Deseret's, counts as not plain).
    whitespace_set = set(whitespace)

    def plain(cp: int) -> bool:
        return cp not in lower and cp not in whitespace_set

    plain_blocks: list[int] = [(1 << 64) - 1]
    plain_ids = {plain_blocks[0]: 0}
    plain_index: list[int] = []
    for lead in range(0xE0, 0x100):
        for second in range(0x80, 0xC0):
            bits = 0
            for third in range(64):
                if lead < 0xF0:
                    cp = (lead & 0x0F) << 12 | (second & 0x3F) << 6 | third
                    ok = cp < 0x800 or plain(cp)  # overlong: never in a str
                else:
                    base = (lead & 0x07) << 18 | (second & 0x3F) << 12 | third << 6
                    ok = all(plain(cp) for cp in range(base, base + 64) if cp <= MAX_CODE_POINT)
                bits |= ok << third
            if bits not in plain_ids:
                plain_ids[bits] = len(plain_blocks)
                plain_blocks.append(bits)
            plain_index.append(plain_ids[bits])
    assert len(plain_blocks) <= 256

    non_ascii_ws = [cp for cp in whitespace if cp >= 0x80]
    ws_arms = " | ".join(f"0x{cp:x}" for cp in non_ascii_ws)

    out: list[str] = []
    w = out.append
    w("// @generated by gen_tables.py from the running Python's str.lower() and str.split().")
    w("// Do not edit by hand: run `python rust/cache_normalizer/gen_tables.py`.")
    w(f"// Python {sys.version.split()[0]}, Unicode {unicodedata.unidata_version}.")
    w("")
    w("use core::hint::select_unpredictable;")
    w("")
    w("/// Unicode version of the interpreter these tables were read from.")
    w(f'pub const UNICODE_VERSION: &str = "{unicodedata.unidata_version}";')
    w("")
    w("/// The code point that stands in for a lone surrogate (see `lib.rs`).")
    w(f"pub const SURROGATE_PLACEHOLDER: char = '\\u{{{SURROGATE_PLACEHOLDER:x}}}';")
    w("")
    w("/// `chr(b).lower()` for each ASCII byte `b`, with every whitespace byte mapped to b' '.")
    w("pub static ASCII_LOWER: [u8; 128] = [")
    w(_wrap([f"0x{b:02x}" for b in ascii_lower]))
    w("];")
    w("")
    w("/// Whether `str.split()` splits on non-ASCII code point `cp`.")
    w("#[inline]")
    w("pub fn is_non_ascii_whitespace(cp: u32) -> bool {")
    w(f"    matches!(cp, {ws_arms})")
    w("}")
    w("")
    w(f"const LOWER_SHIFT: u32 = {LOWER_SHIFT};")
    w(f"const LOWER_MASK: u32 = {block_size - 1};")
    w("")
    w("/// Block id for each run of 2^LOWER_SHIFT code points; the last entry, past the blocks")
    w("/// with mappings, is 0 and stands for every block after it.")
    w(f"static LOWER_BLOCK_INDEX: [u8; {len(block_index)}] = [")
    w(_wrap([str(i) for i in block_index]))
    w("];")
    w("")
    w("/// Per code point in a block: index into LOWER_UTF8, 0 for unchanged.")
    w(f"static LOWER_BLOCKS: [[u16; {block_size}]; {len(blocks)}] = [")
    for block in blocks:
        w("    [")
        w(_wrap([str(i) for i in block], indent="        "))
        w("    ],")
    w("];")
    w("")
    w("/// `chr(cp).lower()` in UTF-8, zero-padded to 4 bytes, and its length, for every")
    w("/// non-ASCII code point it changes except U+03A3, and b\" \" for non-ASCII whitespace;")
    w("/// entry 0 is unused.")
    w(f"static LOWER_UTF8: [([u8; 4], u8); {len(strings)}] = [")
    w(_wrap([_utf8_entry(s) for s in strings]))
    w("];")
    w("")
    w("/// What non-ASCII `cp` other than U+03A3 (which needs context) becomes: b\" \" (length 1)")
    w("/// if `str.split()` splits on it, else `chr(cp).lower()` as UTF-8 in the first `len` of")
    w("/// 4 bytes, or `same` when that is `chr(cp)`. No lowercase starts with a space.")
    w("///")
    w("/// Free of data-dependent branches, for text that mixes cases and scripts: a code point")
    w("/// past the table reads its last block id, which is 0, and the result is a selection.")
    w("#[inline(always)]")
    w("pub fn lower_non_ascii_or(cp: u32, same: ([u8; 4], usize)) -> ([u8; 4], usize) {")
    w("    let last = LOWER_BLOCK_INDEX.len() - 1;")
    w("    let block = LOWER_BLOCK_INDEX[((cp >> LOWER_SHIFT) as usize).min(last)];")
    w("    let index = LOWER_BLOCKS[usize::from(block)][(cp & LOWER_MASK) as usize];")
    w("    let (bytes, len) = LOWER_UTF8[usize::from(index)];")
    w("    // Entry 0 is all zeros; read either way, so that the choice compiles to a select.")
    w("    let (bytes, len) = (u32::from_le_bytes(bytes), usize::from(len));")
    w("    let unchanged = index == 0;")
    w("    let bytes = select_unpredictable(unchanged, bytes | u32::from_le_bytes(same.0), bytes);")
    w("    let len = select_unpredictable(unchanged, len | same.1, len);")
    w("    (bytes.to_le_bytes(), len)")
    w("}")
    w("")
    w("/// Per two-byte character (by its code point): its lowercase as two bytes of UTF-8,")
    w("/// the first in the low half, or 0 where the lowercase is not two bytes, the character")
    w("/// is whitespace or U+03A3, or the code point is below U+0080.")
    w(f"static LOWER_2_BYTE: [u16; {len(lower2)}] = [")
    w(_wrap([f"0x{v:04x}" for v in lower2]))
    w("];")
    w("")
    w("/// The lowercase of the two-byte UTF-8 character `utf8` (first byte in the low half,")
    w("/// any bits above the second byte ignored) as two bytes the same way, or 0 when it")
    w("/// is not two bytes, or the character is whitespace or U+03A3. One table load.")
    w("#[inline(always)]")
    w("pub fn lower_2_byte(utf8: u32) -> u16 {")
    w("    let cp = (utf8 & 0x1f) << 6 | (utf8 >> 8 & 0x3f);")
    w("    LOWER_2_BYTE[cp as usize]")
    w("}")
    w("")
    w("/// Per first two bytes of a three- or four-byte character, `(lead & 0x1f) << 6 |")
    w("/// (second & 0x3f)`: which of `LONG_PLAIN_BITS` to read.")
    w(f"static LONG_PLAIN_INDEX: [u8; {len(plain_index)}] = [")
    w(_wrap([str(i) for i in plain_index]))
    w("];")
    w("")
    w("/// Bit `third & 0x3f` set: the three-byte character with these first two bytes and")
    w("/// this third one is plain, or every four-byte character starting with these three")
    w("/// bytes is.")
    w(f"static LONG_PLAIN_BITS: [u64; {len(plain_blocks)}] = [")
    w(_wrap([f"0x{b:016x}" for b in plain_blocks]))
    w("];")
    w("")
    w("/// Whether the three- or four-byte character whose UTF-8 starts `utf8` (first byte in")
    w("/// the low bits) is left as it is by normalisation: `chr(cp).lower() == chr(cp)` and")
    w("/// `str.split()` does not split on it. Exact for three bytes; for four, true only when")
    w("/// all 64 characters sharing its first three bytes are plain. Two loads, no branch.")
    w("#[inline(always)]")
    w("pub fn is_plain_long(utf8: u32) -> bool {")
    w("    let index = ((utf8 & 0x1f) << 6 | (utf8 >> 8 & 0x3f)) as usize;")
    w("    let block = LONG_PLAIN_INDEX[index];")
    w("    LONG_PLAIN_BITS[usize::from(block)] >> (utf8 >> 16 & 0x3f) & 1 == 1")
    w("}")
    w("")
    w("/// Code points the final-sigma rule stops at and finds cased (inclusive ranges).")
    w(f"static CASED: [(u32, u32); {len(cased)}] = [")
    w(_wrap([f"(0x{a:x}, 0x{b:x})" for a, b in cased]))
    w("];")
    w("")
    w("/// Code points the final-sigma rule skips: case-ignorable (inclusive ranges).")
    w(f"static CASE_IGNORABLE: [(u32, u32); {len(ignorable)}] = [")
    w(_wrap([f"(0x{a:x}, 0x{b:x})" for a, b in ignorable]))
    w("];")
    w("")
    w("fn in_ranges(ranges: &[(u32, u32)], c: char) -> bool {")
    w("    let cp = c as u32;")
    w("    ranges")
    w("        .binary_search_by(|&(lo, hi)| {")
    w("            if hi < cp {")
    w("                core::cmp::Ordering::Less")
    w("            } else if lo > cp {")
    w("                core::cmp::Ordering::Greater")
    w("            } else {")
    w("                core::cmp::Ordering::Equal")
    w("            }")
    w("        })")
    w("        .is_ok()")
    w("}")
    w("")
    w("/// Whether the final-sigma rule skips `c` (Python's `_PyUnicode_IsCaseIgnorable`).")
    w("pub fn is_case_ignorable(c: char) -> bool {")
    w("    in_ranges(&CASE_IGNORABLE, c)")
    w("}")
    w("")
    w("/// Whether `c`, not case-ignorable, is cased (Python's `_PyUnicode_IsCased`).")
    w("pub fn is_cased(c: char) -> bool {")
    w("    in_ranges(&CASED, c)")
    w("}")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if src/tables.rs is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if TABLES_RS.read_text(encoding="utf-8") != text:
            print(f"{TABLES_RS} is stale; run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    TABLES_RS.write_text(text, encoding="utf-8")
    print(f"wrote {TABLES_RS} (Unicode {unicodedata.unidata_version})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
