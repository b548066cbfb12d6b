"""Fakes for unit tests only: a hashing embedder, an in-memory vector store, and a way to
make a function fail once."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from knowledge_os.errors import ConfigError, InputError
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
    """Exact cosine search over a dict of points; the VectorStore contract of the Qdrant
    stores (it runs in tests/integration/test_vector_conformance.py).

    Args:
        dim: Vector size.
        points: The backing dict; pass the same dict again to "reopen" the store.

    Raises:
        ConfigError: ``points`` holds vectors of another size.
    """

    def __init__(self, dim: int = 64, *, points: dict[str, VectorPoint] | None = None) -> None:
        self.dim = dim
        self.points: dict[str, VectorPoint] = {} if points is None else points
        for p in self.points.values():
            if p.vector.shape != (dim,):
                raise ConfigError(f"memory vector store holds {p.vector.shape[0]}-d vectors, not {dim}")
            break

    def _vector(self, vector: np.ndarray, what: str) -> np.ndarray:
        arr = np.asarray(vector, dtype=np.float32).reshape(-1)
        if arr.shape != (self.dim,) or not np.all(np.isfinite(arr)):
            raise InputError(f"{what}: expected a finite vector of shape ({self.dim},), got {np.shape(vector)}")
        norm = float(np.linalg.norm(arr))
        return arr / norm if norm else arr

    def upsert(self, points: Sequence[VectorPoint]) -> None:
        checked = [
            VectorPoint(id=p.id, vector=self._vector(p.vector, f"point {p.id!r}"), payload=dict(p.payload))
            for p in points
        ]
        for p in checked:
            self.points[p.id] = p

    def search(self, vector: np.ndarray, *, top_k: int, flt: VectorFilter | None = None) -> list[VectorHit]:
        if top_k < 1:
            raise InputError(f"top_k must be >= 1, got {top_k}")
        query = self._vector(vector, "query")
        hits = [
            VectorHit(id=p.id, score=float(p.vector @ query), payload=p.payload)
            for p in self.points.values()
            if flt is None or _matches(p.payload, flt)
        ]
        hits.sort(key=lambda h: (-h.score, h.id))
        return hits[:top_k]

    def delete(self, ids: Sequence[str]) -> None:
        for i in ids:
            self.points.pop(i, None)

    def count(self) -> int:
        return len(self.points)

    def close(self) -> None:
        pass


def _matches(payload: Mapping[str, Any], flt: VectorFilter) -> bool:
    if flt.channels and payload.get("channel") not in flt.channels:
        return False
    if flt.sources and payload.get("source") not in flt.sources:
        return False
    ts = payload.get("ts")
    if flt.ts_from is not None and (ts is None or ts < flt.ts_from):
        return False
    return flt.ts_to is None or (ts is not None and ts < flt.ts_to)


def fail_first_call(monkeypatch, module: object, name: str, message: str = "worker died") -> None:
    """Make ``module.name`` raise ``RuntimeError(message)`` on its first call only (a run
    that dies once, then resumes)."""
    original = getattr(module, name)
    calls = {"n": 0}

    def once(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError(message)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, once)
