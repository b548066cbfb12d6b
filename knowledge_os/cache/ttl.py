"""In-process TTL + LRU caches (cachetools) with hit/miss counters.

Used for router decisions (TTL 1 h), retrieval results (TTL 1 h, 10,000 entries) and
query embeddings. Keys come from :func:`knowledge_os.cache.keys.cache_key`.
"""

from __future__ import annotations

import threading
from typing import Any, Generic, TypeVar

from cachetools import TTLCache

__all__ = ["KeyedCache"]

V = TypeVar("V")
_MISSING = object()


class KeyedCache(Generic[V]):
    """A thread-safe TTL cache that evicts least-recently-used entries when full.

    Args:
        name: Label for metrics (``router``, ``retrieval``, ``embedding``).
        maxsize: Entries kept, >= 1.
        ttl_s: Seconds an entry lives; 0 disables the cache.
    """

    def __init__(self, name: str, *, maxsize: int, ttl_s: float) -> None:
        self.name = name
        self.enabled = ttl_s > 0
        self._cache: TTLCache[str, Any] = TTLCache(maxsize=maxsize, ttl=max(ttl_s, 1e-9))
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> V | None:
        if not self.enabled:
            return None
        with self._lock:
            value = self._cache.get(key, _MISSING)
            if value is _MISSING:
                self.misses += 1
                return None
            self.hits += 1
            return value  # type: ignore[return-value]

    def set(self, key: str, value: V) -> None:
        if self.enabled:
            with self._lock:
                self._cache[key] = value

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def __len__(self) -> int:
        return len(self._cache)
