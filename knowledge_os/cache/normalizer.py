"""The one switch point between the Rust ``cache_normalizer`` and its Python reference.

Every cache key in Knowledge OS is built from :func:`normalize_and_hash`. The Rust
extension is used when it imports and was generated for the running Python's Unicode
version; set ``KOS_PURE_PYTHON_HASH=1`` to force the pure-Python reference. Both are
byte-identical for every ``str`` (tests/unit/test_cache_normalizer.py).
"""

from __future__ import annotations

import hashlib
import logging
import os
import unicodedata
from collections.abc import Iterable

__all__ = ["backend", "normalize_and_hash", "normalize_and_hash_batch", "normalize_text"]

logger = logging.getLogger(__name__)


def _py_normalize_text(text: str) -> str:
    """Lowercase ``text`` and collapse its whitespace: ``" ".join(text.lower().split())``.

    Args:
        text: Any ``str``.

    Returns:
        The text in Python's full lowercase mapping, runs of whitespace (as ``str.split()``
        sees it) replaced by one space, no leading or trailing space.
    """
    return " ".join(text.lower().split())


def _py_normalize_and_hash(text: str) -> str:
    """Cache key of ``text``: MD5 of ``normalize_text(text)`` in UTF-8, 32 hex digits.

    Raises:
        UnicodeEncodeError: ``text`` holds lone surrogates.
    """
    return hashlib.md5(_py_normalize_text(text).encode("utf-8")).hexdigest()


def _py_normalize_and_hash_batch(texts: Iterable[str]) -> list[str]:
    """``normalize_and_hash`` of each text, in input order."""
    return [_py_normalize_and_hash(t) for t in texts]


_BACKEND = "python"
normalize_text = _py_normalize_text
normalize_and_hash = _py_normalize_and_hash
normalize_and_hash_batch = _py_normalize_and_hash_batch

if os.environ.get("KOS_PURE_PYTHON_HASH", "").strip().lower() not in ("1", "true", "yes"):
    try:
        import cache_normalizer as _rust
    except ImportError:
        logger.debug("cache_normalizer is not installed; using the Python reference")
    else:
        if _rust.UNICODE_VERSION == unicodedata.unidata_version:
            normalize_text = _rust.normalize_text
            normalize_and_hash = _rust.normalize_and_hash
            normalize_and_hash_batch = _rust.normalize_and_hash_batch
            _BACKEND = "rust"
        else:
            # Case tables from another Unicode version would give other keys.
            logger.warning(
                "cache_normalizer %s has Unicode %s tables but Python has Unicode %s; "
                "using the Python reference (rebuild with scripts/build_rust.sh)",
                _rust.__version__,
                _rust.UNICODE_VERSION,
                unicodedata.unidata_version,
            )


def backend() -> str:
    """Which implementation is active: ``"rust"`` or ``"python"``."""
    return _BACKEND
