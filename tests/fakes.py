"""Fakes for unit tests only: a hashing embedder and an in-memory vector store."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from knowledge_os.retrieval.base import VectorFilter, VectorHit, VectorPoint


class HashEmbedder:
    """Bag of hashed words -> 64-d unit vectors. Texts sharing words are similar."""

    name = "fake/hash-64"
    dim = 64

    def _one(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for w in re.findall(r"\w+", text.lower()):
            v[int(hashlib.sha1(w.encode()).hexdigest(), 16) % self.dim] += 1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self._one(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self._one(text)


class MemoryVectorStore:
    """Exact cosine search over a dict of points."""

    dim = 64

    def __init__(self) -> None:
        self.points: dict[str, VectorPoint] = {}

    def upsert(self, points: Sequence[VectorPoint]) -> None:
        for p in points:
            self.points[p.id] = p

    def search(self, vector: np.ndarray, *, top_k: int, flt: VectorFilter | None = None) -> list[VectorHit]:
        hits = []
        for p in self.points.values():
            pl = p.payload
            if flt is not None:
                if flt.channels and pl["channel"] not in flt.channels:
                    continue
                if flt.ts_from is not None and pl["ts"] < flt.ts_from:
                    continue
                if flt.ts_to is not None and pl["ts"] >= flt.ts_to:
                    continue
            hits.append(VectorHit(id=p.id, score=float(p.vector @ vector), payload=pl))
        hits.sort(key=lambda h: (-h.score, h.id))
        return hits[:top_k]

    def delete(self, ids: Sequence[str]) -> None:
        for i in ids:
            self.points.pop(i, None)

    def count(self) -> int:
        return len(self.points)

    def close(self) -> None:
        pass
