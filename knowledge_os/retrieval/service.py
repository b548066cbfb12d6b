"""RetrievalService: one entry point over vectors, full text, exact ids and the graph.

Ranked lists (exact ids, vectors, BM25, graph neighbours) are fused by weighted
Reciprocal Rank Fusion (:func:`knowledge_os.retrieval.fusion.rrf_fuse`); exact id
matches (CVE, bug numbers) weigh most so the upload that fixed a named CVE or bug always
comes first. Results are de-duplicated by document id, cut to the domain's
``max_documents`` (a question naming packages but no period keeps each package's newest
entries among them, when the domain asks for it: ``retrieval.latest_per_package``), and
cached (TTL + LRU) under a ``retrieval`` key built by
:func:`knowledge_os.cache.keys.cache_key`. Graph expansion has one path,
:meth:`RetrievalService.expand`, used by retrieval's graph list and by the Smart Path's
``expand`` step; it obeys the request's package and date filters.

The service receives the stores it uses (built in ``knowledge_os/services.py``), not the
whole service bag.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import numpy as np

from knowledge_os.cache.keys import cache_key
from knowledge_os.cache.ttl import KeyedCache
from knowledge_os.retrieval.base import Document, Embedder, GraphStore, VectorFilter, VectorStore
from knowledge_os.retrieval.docstore import DocumentStore
from knowledge_os.retrieval.fusion import RRF_K, WEIGHTS, Fused, rrf_fuse
from knowledge_os.retrieval.query import QueryAnalysis

__all__ = [
    "RRF_K",
    "WEIGHTS",
    "QueryEmbedder",
    "RetrievalRequest",
    "RetrievalResult",
    "RetrievedDocument",
    "RetrievalService",
]

logger = logging.getLogger(__name__)

#: Top hits of each list that seed graph expansion in :meth:`RetrievalService.retrieve`.
GRAPH_SEEDS = {"exact": 3, "vector": 2, "lexical": 1}


class QueryEmbedder:
    """Query embeddings, cached under the ``embedding`` namespace (model, dim, text).

    Args:
        embedder: The embedding model.
        cache: Cache of query vectors.
    """

    def __init__(self, embedder: Embedder, cache: KeyedCache) -> None:
        self.embedder = embedder
        self._cache = cache

    @property
    def name(self) -> str:
        return self.embedder.name

    def embed(self, text: str) -> np.ndarray:
        """float32 array of shape (dim,), L2-normalised; computed once per text."""
        emb = self.embedder
        key = cache_key("embedding", {"model": emb.name, "dim": emb.dim, "role": "query", "text": text})
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        vec = emb.embed_query(text)
        self._cache.set(key, vec)
        return vec


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
        latest_per_package: With a package filter and no date range, each package's this
            many newest entries are in the result whatever their fused rank (the domain's
            ``retrieval.latest_per_package``; 0: off).
    """

    analysis: QueryAnalysis
    domain: str
    top_k: int = 40
    max_documents: int = 30
    graph_depth: int = 2
    use_dates: bool = True
    use_packages: bool = True
    latest_per_package: int = 0

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
    """Shared retrieval over the document store, the vector store and the graph store.

    Args:
        query_embedder: Embeds (and caches) query texts.
        docstore: Documents, full-text and exact entity index.
        vector_store: One point per document.
        graph_store: Documents and entities as a graph.
        cache: Results per request (``retrieval`` namespace); cleared after an ingest.
    """

    def __init__(
        self,
        *,
        query_embedder: QueryEmbedder,
        docstore: DocumentStore,
        vector_store: VectorStore,
        graph_store: GraphStore,
        cache: KeyedCache[list],
    ) -> None:
        self._query_embedder = query_embedder
        self._docstore = docstore
        self._vectors = vector_store
        self._graph = graph_store
        self._cache = cache

    def embed_query(self, text: str) -> np.ndarray:
        """The query embedding (see :meth:`QueryEmbedder.embed`)."""
        return self._query_embedder.embed(text)

    def retrieve(self, req: RetrievalRequest) -> RetrievalResult:
        """Run every retriever, fuse, de-duplicate and cut to ``max_documents``."""
        flt = req.filter
        key = cache_key(
            "retrieval",
            {
                "embedder": self._query_embedder.name,
                "domain": req.domain,
                "query": req.analysis.text,
                "filter": [flt.channels, flt.ts_from, flt.ts_to, flt.sources],
                "limits": [req.top_k, req.max_documents, req.graph_depth, req.latest_per_package],
                # an ingest's text and vector stages each bump it: a result from before
                # (or from an incomplete vector index) is not reused after them
                "corpus": self._docstore.generation(),
            },
        )
        hit = self._cache.get(key)
        if hit is not None:
            docs = {d.id: d for d in self._docstore.get([doc_id for doc_id, _, _ in hit])}
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
        lists["exact"] = self._docstore.by_entities(ids, limit=req.top_k) if ids else []
        timings["exact"] = _ms(t)

        t = time.perf_counter()
        vec = self.embed_query(req.analysis.text)
        timings["embed"] = _ms(t)
        t = time.perf_counter()
        hits = self._vectors.search(vec, top_k=req.top_k, flt=None if flt.is_empty() else flt)
        lists["vector"] = [h.id for h in hits]
        timings["vector"] = _ms(t)

        t = time.perf_counter()
        lists["lexical"] = [i for i, _ in self._docstore.search_text(req.analysis.text, flt=flt, limit=req.top_k)]
        timings["lexical"] = _ms(t)

        if req.graph_depth > 0:
            t = time.perf_counter()
            top = [d for name, n in GRAPH_SEEDS.items() for d in lists[name][:n]]
            seeds = list(req.analysis.entity_ids) + [f"doc:{d}" for d in dict.fromkeys(top)]
            lists["graph"] = self._neighbour_ids(seeds, flt, depth=req.graph_depth, limit=req.top_k)
            timings["graph"] = _ms(t)

        latest: list[str] = []
        if req.latest_per_package and flt.channels and flt.ts_from is None and flt.ts_to is None:
            t = time.perf_counter()
            for channel in flt.channels:
                one = VectorFilter(channels=(channel,), sources=flt.sources)
                latest += self._docstore.newest(one, limit=req.latest_per_package)
            timings["latest"] = _ms(t)

        t = time.perf_counter()
        fused = _cut(rrf_fuse(lists), req.max_documents, keep=latest)
        docs = {d.id: d for d in self._docstore.get([f.id for f in fused])}
        result = [
            RetrievedDocument(document=docs[f.id], score=round(f.score, 6), sources=f.found_by)
            for f in fused
            if f.id in docs
        ]
        timings["fuse"] = _ms(t)
        self._cache.set(key, [(r.document.id, r.score, r.sources) for r in result])
        return RetrievalResult(documents=result, timings_ms=timings)

    def expand(
        self,
        req: RetrievalRequest,
        *,
        seeds: Sequence[str],
        limit: int,
        exclude: Collection[str] = (),
    ) -> list[Document]:
        """Documents near ``seeds`` in the graph, within the request's filter.

        Args:
            req: Gives the filter (package and date, as :attr:`RetrievalRequest.filter`)
                and the depth (``graph_depth`` hops, 1..5).
            seeds: Graph node ids: ``doc:<id>`` or entity ids (``cve:...``).
            limit: Most documents returned.
            exclude: Document ids left out (e.g. those already retrieved).

        Returns:
            Up to ``limit`` documents, nearest first (then by id); seeds themselves are
            not returned.
        """
        if req.graph_depth < 1 or limit < 1:
            return []
        ids = self._neighbour_ids(seeds, req.filter, depth=req.graph_depth, limit=limit + len(exclude))
        return self._docstore.get([i for i in ids if i not in exclude][:limit])

    def _neighbour_ids(self, seeds: Sequence[str], flt: VectorFilter, *, depth: int, limit: int) -> list[str]:
        """Ids of documents 1..depth hops from the seeds that pass ``flt``, nearest first."""
        if not seeds:
            return []
        hits = self._graph.expand(seeds, depth=depth, limit=limit * 4, kinds=["document"])
        ids = [h.id.removeprefix("doc:") for h in hits if h.distance > 0]
        if flt.is_empty():
            return ids[:limit]
        return [d.id for d in self._docstore.get(ids) if _matches(d, flt)][:limit]


def _cut(fused: list[Fused], limit: int, *, keep: Sequence[str] = ()) -> list[Fused]:
    """The best ``limit`` of ``fused`` (best first), and every id of ``keep`` with them.

    The ids of ``keep`` (a package's newest entries) do not change the fused order: those
    already among the best ``limit`` stay where they are, the others take the places of
    the lowest-ranked, after them, with the score the fusion gave them (0.0 when no list
    found them). Each carries ``"latest"`` among the lists that found it.
    """
    if not keep:
        return fused[:limit]
    order = list(dict.fromkeys(keep))[:limit]
    wanted = set(order)
    # the best others that leave room for every kept id: all of them lie in fused[:limit]
    best_others = set([f.id for f in fused if f.id not in wanted][: limit - len(order)])
    head = [f for f in fused[:limit] if f.id in wanted or f.id in best_others]
    found = {f.id: f for f in fused}
    in_head = {f.id for f in head}
    added = [found.get(i) or Fused(id=i, score=0.0, found_by=()) for i in order if i not in in_head]
    return [f if f.id not in wanted else Fused(id=f.id, score=f.score, found_by=(*f.found_by, "latest"))
            for f in head + added]


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
