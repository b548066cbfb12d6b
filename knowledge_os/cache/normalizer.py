"""The one switch point between the Rust ``cache_normalizer`` and its Python reference.

Every cache key in Knowledge OS is built from :func:`normalize_and_hash`. The Rust
extension is used when it imports; set ``KOS_PURE_PYTHON_HASH=1`` to force the pure-Python
reference. Both are byte-identical (tests/unit/test_cache_normalizer.py).
"""

from __future__ import annotations

import hashlib
import os

__all__ = ["backend", "normalize_and_hash", "normalize_and_hash_batch", "normalize_text"]


def _py_normalize_text(text: str) -> str:
    return " ".join(text.lower().split())


def _py_normalize_and_hash(text: str) -> str:
    return hashlib.md5(_py_normalize_text(text).encode("utf-8")).hexdigest()


def _py_normalize_and_hash_batch(texts: list[str]) -> list[str]:
    return [_py_normalize_and_hash(t) for t in texts]


_BACKEND = "python"
normalize_text = _py_normalize_text
normalize_and_hash = _py_normalize_and_hash
normalize_and_hash_batch = _py_normalize_and_hash_batch

if os.environ.get("KOS_PURE_PYTHON_HASH", "") not in ("1", "true", "yes"):
    try:
        import cache_normalizer as _rust
    except ImportError:
        pass
    else:
        normalize_text = _rust.normalize_text
        normalize_and_hash = _rust.normalize_and_hash
        normalize_and_hash_batch = _rust.normalize_and_hash_batch
        _BACKEND = "rust"


def backend() -> str:
    """Which implementation is active: ``"rust"`` or ``"python"``."""
    return _BACKEND
