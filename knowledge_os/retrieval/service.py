"""RetrievalService: one entry point over vectors, full text, exact ids and the graph.

Ranked lists are fused by Reciprocal Rank Fusion (Cormack et al., SIGIR 2009, k = 60),
each list with a weight; exact id matches (CVE, bug numbers) weigh most so the upload
that fixed a named CVE or bug always comes first. Results are de-duplicated by document
id, cut to the domain's ``max_documents``, and cached (TTL + LRU) under a ``retrieval``
key built by :func:`knowledge_os.cache.keys.cache_key`.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from knowledge_os.cache.keys import cache_key
from knowledge_os.retrieval.base import Document, VectorFilter
from knowledge_os.retrieval.query import QueryAnalysis

if TYPE_CHECKING:
    from knowledge_os.services import Services

__all__ = ["RRF_K", "RetrievalRequest", "RetrievalResult", "RetrievedDocument", "RetrievalService"]

logger = logging.getLogger(__name__)

RRF_K = 60
WEIGHTS = {"exact": 3.0, "vector": 1.0, "lexical": 1.0, "graph": 0.5}


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrievalRequest:
    """What to retrieve.

    Attributes:
        analysis: The analysed query (ids, packages, dates).
        domain: Domain name (part of the cache key).
        top_k: Candidates taken from each ranked list.
        max_documents: Documents returned after fusion.
        graph_depth: Hops of graph expansion (0 = none).
        use_dates / use_packages: Apply the query's date range / package filter.
    """

    analysis: QueryAnalysis
    domain: str
    top_k: int = 40
    max_documents: int = 30
    graph_depth: int = 2
    use_dates: bool = True
    use_packages: bool = True

    @property
    def filter(self) -> VectorFilter:
        return self.analysis.to_filter(with_dates=self.use_dates, with_packages=self.use_packages)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrievedDocument:
    """A fused result: the document, its RRF score and the lists that found it."""

    document: Document
    score: float
    sources: tuple[str, ...]


@dataclass(slots=True, kw_only=True)
class RetrievalResult:
    documents: list[RetrievedDocument]
    cached: bool = False
    timings_ms: dict[str, float] = field(default_factory=dict)


class RetrievalService:
    """Shared retrieval over the stores in :class:`~knowledge_os.services.Services`."""

    def __init__(self, services: Services) -> None:
        self._services = services

    def embed_query(self, text: str) -> np.ndarray:
        """Query embedding, cached under the ``embedding`` namespace."""
        emb = self._services.embedder
        key = cache_key("embedding", {"model": emb.name, "dim": emb.dim, "role": "query", "text": text})
        cached = self._services.embedding_cache.get(key)
        if cached is not None:
            return cached
        vec = emb.embed_query(text)
        self._services.embedding_cache.set(key, vec)
        return vec

    def retrieve(self, req: RetrievalRequest) -> RetrievalResult:
        """Run every retriever, fuse, de-duplicate and cut to ``max_documents``."""
        s = self._services
        flt = req.filter
        key = cache_key(
            "retrieval",
            {
                "embedder": s.embedder.name,
                "domain": req.domain,
                "query": req.analysis.text,
                "filter": [flt.channels, flt.ts_from, flt.ts_to, flt.sources],
                "limits": [req.top_k, req.max_documents, req.graph_depth],
            },
        )
        hit = s.retrieval_cache.get(key)
        if hit is not None:
            docs = {d.id: d for d in s.docstore.get([doc_id for doc_id, _, _ in hit])}
            return RetrievalResult(
                documents=[RetrievedDocument(document=docs[i], score=sc, sources=src)
                           for i, sc, src in hit if i in docs],
                cached=True,
            )
        timings: dict[str, float] = {}
        lists: dict[str, list[str]] = {}

        t = time.perf_counter()
        ids = [e for e in req.analysis.entity_ids if not e.startswith("package:")]
        # Named CVEs/bugs are matched exactly and ignore the date filter: the fix may be older.
        lists["exact"] = s.docstore.by_entities(ids, limit=req.top_k) if ids else []
        timings["exact"] = _ms(t)

        t = time.perf_counter()
        vec = self.embed_query(req.analysis.text)
        timings["embed"] = _ms(t)
        t = time.perf_counter()
        hits = s.vector_store.search(vec, top_k=req.top_k, flt=None if flt.is_empty() else flt)
        lists["vector"] = [h.id for h in hits]
        timings["vector"] = _ms(t)

        t = time.perf_counter()
        lists["lexical"] = [i for i, _ in s.docstore.search_text(req.analysis.text, flt=flt, limit=req.top_k)]
        timings["lexical"] = _ms(t)

        if req.graph_depth > 0:
            t = time.perf_counter()
            lists["graph"] = self._expand(req, flt, seeds_from=lists)
            timings["graph"] = _ms(t)

        t = time.perf_counter()
        scores: dict[str, float] = defaultdict(float)
        found_by: dict[str, list[str]] = defaultdict(list)
        for name, ranked in lists.items():
            for rank, doc_id in enumerate(dict.fromkeys(ranked)):
                scores[doc_id] += WEIGHTS[name] / (RRF_K + rank + 1)
                found_by[doc_id].append(name)
        order = sorted(scores, key=lambda i: (-scores[i], i))[: req.max_documents]
        docs = {d.id: d for d in s.docstore.get(order)}
        result = [
            RetrievedDocument(document=docs[i], score=round(scores[i], 6), sources=tuple(found_by[i]))
            for i in order
            if i in docs
        ]
        timings["fuse"] = _ms(t)
        s.retrieval_cache.set(key, [(r.document.id, r.score, r.sources) for r in result])
        return RetrievalResult(documents=result, timings_ms=timings)

    def _expand(self, req: RetrievalRequest, flt: VectorFilter, *, seeds_from: dict[str, list[str]]) -> list[str]:
        """Documents near the query's entities and the top hits, within the filter."""
        seeds = list(req.analysis.entity_ids)
        top = list(dict.fromkeys(seeds_from.get("exact", [])[:3] + seeds_from.get("vector", [])[:2]
                                 + seeds_from.get("lexical", [])[:1]))
        seeds += [f"doc:{d}" for d in top]
        if not seeds:
            return []
        hits = self._services.graph_store.expand(
            seeds, depth=req.graph_depth, limit=req.top_k * 4, kinds=["document"]
        )
        ids = [h.id.removeprefix("doc:") for h in hits if h.distance > 0]
        if flt.is_empty():
            return ids[: req.top_k]
        docs = self._services.docstore.get(ids)
        keep = [d.id for d in docs if _matches(d, flt)]
        return keep[: req.top_k]


def _matches(d: Document, flt: VectorFilter) -> bool:
    if flt.channels and d.channel not in flt.channels:
        return False
    if flt.sources and d.source not in flt.sources:
        return False
    if flt.ts_from is not None and d.ts < flt.ts_from:
        return False
    return not (flt.ts_to is not None and d.ts >= flt.ts_to)


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 3)
