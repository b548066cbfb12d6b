"""LangGraph's node cache (``BaseCache``) in memory, bounded: least recently used entries
go first once ``max_entries`` is reached, and expired entries are dropped when met.

LangGraph's own ``InMemoryCache`` keeps every entry until its TTL ends, so a long-lived
process (``kos serve``, a worker) grows with every distinct question. This one holds at
most ``cache.node_max_entries`` (settings) results of the ``execute`` node.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence

from langgraph.cache.base import BaseCache, FullKey, Namespace, ValueT
from langgraph.checkpoint.serde.base import SerializerProtocol

__all__ = ["BoundedMemoryCache"]


class BoundedMemoryCache(BaseCache[ValueT]):
    """An LRU node cache.

    Args:
        max_entries: Most entries kept, >= 1 (all namespaces together).
        serde: LangGraph serializer for the values; default LangGraph's.

    Raises:
        ValueError: ``max_entries`` < 1.
    """

    def __init__(self, *, max_entries: int, serde: SerializerProtocol | None = None) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries}")
        super().__init__(serde=serde)
        self.max_entries = max_entries
        # (namespace, key) -> (serializer tag, bytes, expiry as Unix time or None)
        self._entries: OrderedDict[tuple[Namespace, str], tuple[str, bytes, float | None]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0  # keys found (metrics: kos_cache_hits_total{cache="node"})
        self.misses = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def get(self, keys: Sequence[FullKey]) -> dict[FullKey, ValueT]:
        """Values of the keys present and not expired; a hit becomes the most recent."""
        now = time.time()
        out: dict[FullKey, ValueT] = {}
        with self._lock:
            for ns, key in keys:
                full = (Namespace(ns), key)
                entry = self._entries.get(full)
                if entry is None:
                    self.misses += 1
                    continue
                tag, data, expiry = entry
                if expiry is not None and now >= expiry:
                    del self._entries[full]
                    self.misses += 1
                    continue
                self.hits += 1
                self._entries.move_to_end(full)
                out[full] = self.serde.loads_typed((tag, data))
        return out

    async def aget(self, keys: Sequence[FullKey]) -> dict[FullKey, ValueT]:
        return self.get(keys)

    def set(self, pairs: Mapping[FullKey, tuple[ValueT, int | None]]) -> None:
        """Store values with their TTL in seconds (None: no expiry), evicting the least
        recently used entries beyond ``max_entries``."""
        now = time.time()
        with self._lock:
            for (ns, key), (value, ttl) in pairs.items():
                full = (Namespace(ns), key)
                self._entries[full] = (*self.serde.dumps_typed(value), now + ttl if ttl is not None else None)
                self._entries.move_to_end(full)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    async def aset(self, pairs: Mapping[FullKey, tuple[ValueT, int | None]]) -> None:
        self.set(pairs)

    def clear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        """Drop every entry, or those of the given namespaces."""
        with self._lock:
            if namespaces is None:
                self._entries.clear()
                return
            drop = {Namespace(ns) for ns in namespaces}
            for full in [k for k in self._entries if k[0] in drop]:
                del self._entries[full]

    async def aclear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        self.clear(namespaces)
