"""Value objects and backend protocols of the retrieval layer.

A :class:`Document` is one post: a Debian changelog entry, a text/Markdown/PDF file, or
one JSONL record. Its text is embedded as one chunk (entries are short) and its entities
become graph nodes. Backends are :class:`typing.Protocol` s; factories in
``knowledge_os.retrieval.factory`` pick one from settings.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "Document",
    "DocumentStore",
    "Embedder",
    "GraphEdge",
    "GraphHit",
    "GraphNode",
    "GraphStore",
    "VectorFilter",
    "VectorHit",
    "VectorPoint",
    "VectorStore",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Document:
    """One ingested post.

    Attributes:
        id: Stable id, e.g. ``"deb:openssl:3.0.11-1~deb12u2"`` or ``"file:notes/a.md"``.
        channel: Source package for changelogs; folder or JSONL channel otherwise.
        title: One line shown in citations.
        text: Body used for embedding, lexical search and prompts.
        ts: Unix time of the post in seconds (UTC); 0 when unknown.
        source: ``"debian"``, ``"file"`` or ``"jsonl"``.
        metadata: Extra fields (version, distribution, urgency, author, date, path ...).
        entities: Graph entity ids mentioned, e.g. ``("package:openssl", "cve:CVE-2023-5678",
            "bug:1055473", "person:jdoe@debian.org")``.
        content_hash: ``normalize_and_hash`` of the text plus metadata; drives re-ingest skips.
        origin: Absolute path of the file the document was read from (set by ingest; ``""``
            for rows written before origins were kept). Re-ingest of that file, or of a
            folder holding it, removes the documents the file no longer yields.
    """

    id: str
    channel: str
    title: str
    text: str
    ts: int
    source: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    entities: tuple[str, ...] = ()
    content_hash: str = ""
    origin: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class VectorPoint:
    """A vector with its payload. ``id`` is the document id (any string)."""

    id: str
    vector: np.ndarray
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class VectorHit:
    """A search result: document id, cosine similarity in [-1, 1], payload."""

    id: str
    score: float
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class VectorFilter:
    """Payload filter. All given conditions must hold (AND).

    Attributes:
        channels: Keep points whose ``channel`` payload is one of these.
        ts_from: Keep points with ``ts >= ts_from`` (Unix seconds).
        ts_to: Keep points with ``ts < ts_to`` (Unix seconds).
        sources: Keep points whose ``source`` payload is one of these.
    """

    channels: tuple[str, ...] | None = None
    ts_from: int | None = None
    ts_to: int | None = None
    sources: tuple[str, ...] | None = None

    def is_empty(self) -> bool:
        return not (self.channels or self.sources) and self.ts_from is None and self.ts_to is None


@runtime_checkable
class VectorStore(Protocol):
    """A collection of vectors with payloads (payload keys: ``channel``, ``ts``, ``source``)."""

    dim: int

    def upsert(self, points: Sequence[VectorPoint]) -> None:
        """Insert or replace points by id."""

    def search(
        self, vector: np.ndarray, *, top_k: int, flt: VectorFilter | None = None
    ) -> list[VectorHit]:
        """Return up to ``top_k`` hits, best first, by cosine similarity."""

    def delete(self, ids: Sequence[str]) -> None:
        """Remove points by id; unknown ids are ignored."""

    def count(self) -> int:
        """Number of points in the collection."""

    def close(self) -> None:
        """Flush and release resources."""


@runtime_checkable
class Embedder(Protocol):
    """Text -> float32 vectors, rows L2-normalised.

    ``name`` and ``dim`` form the embedding-cache namespace.
    """

    name: str
    dim: int

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Embed N passages; returns float32 array of shape (N, dim)."""

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one query; returns float32 array of shape (dim,)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GraphNode:
    """A graph node. ``id`` is ``"<kind>:<key>"``; ``kind`` one of document, package, cve,
    bug, person, channel, tag; ``name`` a display name."""

    id: str
    kind: str
    name: str
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class GraphEdge:
    """A directed, typed edge (``MENTIONS``, ``ENTRY_OF``, ``FIXES``, ``CLOSES``,
    ``AUTHORED``, ``MAINTAINS``). Expansion walks edges in both directions."""

    src: str
    dst: str
    type: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GraphHit:
    """A node reached by expansion and its hop distance from the nearest seed (0 = seed)."""

    id: str
    kind: str
    distance: int


@runtime_checkable
class GraphStore(Protocol):
    """Entities and documents as a property graph with bounded-depth expansion."""

    def upsert(self, nodes: Sequence[GraphNode], edges: Sequence[GraphEdge]) -> None:
        """MERGE nodes by id and edges by (src, dst, type); idempotent."""

    def expand(
        self,
        seeds: Sequence[str],
        *,
        depth: int,
        limit: int,
        kinds: Sequence[str] | None = None,
    ) -> list[GraphHit]:
        """Nodes within ``depth`` hops (1..5) of any seed, edges undirected.

        Returns at most ``limit`` hits ordered by (distance, id); seeds themselves are
        included at distance 0 when they exist; ``kinds`` filters the returned nodes
        (not the walk). Raises ValueError for a depth outside 1..5.
        """

    def get_nodes(self, ids: Sequence[str]) -> list[GraphNode]:
        """The nodes that exist among ``ids``, in no particular order."""

    def delete(self, ids: Sequence[str]) -> None:
        """Remove the nodes ``ids`` and every edge touching them, then each former
        neighbour that is left with no edge at all (an entity only they mentioned).
        Unknown ids are ignored; one transaction."""

    def counts(self) -> dict[str, int]:
        """``{"nodes": N, "edges": M}``."""

    def close(self) -> None:
        """Release connections."""


@runtime_checkable
class DocumentStore(Protocol):
    """Documents with full-text and exact-entity lookup, and the corpus generation.

    Implementations: :class:`~knowledge_os.retrieval.docstore.SqliteDocumentStore` (FTS5,
    the embedded default) and :class:`~knowledge_os.retrieval.docstore_pg.PostgresDocumentStore`
    (PostgreSQL full-text search, shared by every host); both pass
    ``tests/integration/test_docstore_conformance.py``. Methods are thread-safe.
    """

    def upsert(self, docs: Sequence[Document]) -> None:
        """Insert or replace documents (by id) and their entity rows, in one transaction."""

    def set_origin(self, ids: Sequence[str], origin: str) -> None:
        """Record ``origin`` for stored documents (unchanged ones re-read from a file)."""

    def delete(self, ids: Sequence[str]) -> None:
        """Remove documents with their full-text and entity rows, and the aliases of
        channels left without documents; unknown ids are ignored; one transaction."""

    def add_aliases(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Record ``(alias, channel)`` pairs, e.g. binary package -> source package."""

    def hashes(self, ids: Sequence[str]) -> dict[str, str]:
        """``{id: content_hash}`` for the ids that are stored."""

    def ids_in_scope(self, patterns: Sequence[str]) -> set[str]:
        """Ids of documents whose origin matches any SQLite GLOB pattern (``*`` also
        matches ``/``; :func:`~knowledge_os.retrieval.sources.origin_scope`)."""

    def get(self, ids: Sequence[str]) -> list[Document]:
        """Documents for ``ids`` in the given order; unknown ids are left out."""

    def by_entities(
        self, entities: Sequence[str], *, flt: VectorFilter | None = None, limit: int = 50
    ) -> list[str]:
        """Ids of documents linked to any of ``entities`` (exact match), newest first
        (ties by id)."""

    def search_text(
        self, query: str, *, flt: VectorFilter | None = None, limit: int = 40
    ) -> list[tuple[str, float]]:
        """Full-text search: ``[(doc_id, score > 0)]``, best first. The query's words are
        OR-ed; a word with inner punctuation (``CVE-2024-6387``, ``3.0.11-1``) matches
        only as the whole sequence; query syntax in user text is inert."""

    def newest(self, flt: VectorFilter | None = None, *, limit: int = 10) -> list[str]:
        """Ids of the ``limit`` newest documents matching ``flt``, newest first (ties by id)."""

    def iter_documents(self, flt: VectorFilter | None = None) -> Iterator[Document]:
        """Every document matching ``flt``, oldest first (ties by id)."""

    def channels(self) -> dict[str, str]:
        """Known names -> channel: every channel maps to itself, plus the aliases."""

    def bump_generation(self) -> int:
        """Count one more change of the corpus; returns the new generation."""

    def generation(self) -> int:
        """How many ingests changed the corpus so far (0 for a new store)."""

    def count(self) -> int:
        """Number of documents."""

    def pending_count(self) -> int:
        """Documents ingest's text stage wrote (empty content hash) whose vectors are still
        to come; 0 when every document is searchable by every retriever."""

    def close(self) -> None:
        """Release the connection(s)."""
