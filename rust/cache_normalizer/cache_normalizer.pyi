"""Python-identical text normalisation and MD5 cache keys, implemented in Rust.

Every function is byte-identical to its pure-Python reference in
``knowledge_os.cache.normalizer`` for every ``str``, following the running Python's
Unicode rules (``UNICODE_VERSION``), not Rust's.
"""

from collections.abc import Iterable

__version__: str
"""Version of the crate, e.g. ``"0.1.0"``."""

UNICODE_VERSION: str
"""Unicode version of the Python the case and whitespace tables were generated from;
equal to ``unicodedata.unidata_version`` where results are guaranteed identical."""

PARALLEL_MIN_BYTES: int
"""Total UTF-8 bytes from which ``normalize_and_hash_batch`` uses every core..."""

PARALLEL_MIN_AVG_BYTES: int
"""... when its texts average at least this many UTF-8 bytes (below, one thread is faster)."""

def normalize_text(text: str) -> str:
    """Lowercase ``text`` and collapse its whitespace.

    Args:
        text: Any ``str``, lone surrogates included.

    Returns:
        ``" ".join(text.lower().split())``: Python's full lowercase mapping (e.g. "İ" ->
        "i̇", final sigma "Σ" -> "ς" in context), runs of ``str.split()`` whitespace
        (including U+001C..U+001F, U+0085, U+00A0, U+3000) replaced by one space, no
        leading or trailing space.

    Raises:
        TypeError: ``text`` is not a ``str``.
    """

def normalize_and_hash(text: str, /) -> str:
    """Cache key of ``text``: the MD5 of its normalised form.

    A ``METH_O`` builtin (one positional argument, no argument parser: the call is most of
    the cost at 100 bytes), so ``text`` cannot be passed by keyword.

    Args:
        text: Any ``str``.

    Returns:
        32 lowercase hex digits,
        ``hashlib.md5(normalize_text(text).encode("utf-8")).hexdigest()``.

    Raises:
        UnicodeEncodeError: ``text`` holds lone surrogates; same arguments as the error
            ``str.encode("utf-8")`` raises on the normalised text.
        TypeError: ``text`` is not a ``str``.
    """

def normalize_and_hash_batch(texts: Iterable[str]) -> list[str]:
    """``normalize_and_hash`` of each text, in input order.

    Hashes several texts at once, one per SIMD lane (8 with AVX2, 16 with AVX-512, 4
    otherwise), so a batch beats one call per text on one thread too. Releases the GIL for
    large batches and spreads the work over one thread per core once the batch holds at
    least ``PARALLEL_MIN_BYTES`` bytes in texts of ``PARALLEL_MIN_AVG_BYTES`` on average
    (``RAYON_NUM_THREADS`` caps the threads).

    Args:
        texts: Any iterable of ``str`` (a list, a tuple, a generator).

    Returns:
        One 32-digit hex key per text, in order.

    Raises:
        UnicodeEncodeError: a text holds lone surrogates (the first such text, as the
            Python loop would).
        TypeError: an item is not a ``str``.
    """
