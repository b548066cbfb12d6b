"""Ingest: files -> documents -> document store, vectors and graph.

Per batch of documents, in this order: embed, upsert vectors, upsert graph, upsert the
document rows (with their content hash). The content hash is written last, so a crash
mid-batch leaves those documents "not yet ingested" and the next run redoes them;
every upsert is idempotent. Unchanged documents (same id and content hash) cost a hash
comparison and nothing else.

After a re-ingest the stores equal the sources: each document keeps the file it came
from (``Document.origin``), and the documents of files in the ingest's scope (the
folders and files given) that the files no longer yield (a deleted file, a shrunk
changelog) are removed from the vectors, the graph and then the document store (its
full-text and entity rows with it). A file that could not be read keeps its documents.
An updated document's graph node is replaced, so edges to entities it no longer names go.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from knowledge_os.cache.keys import content_hash
from knowledge_os.retrieval.base import Document, Embedder, GraphEdge, GraphNode, GraphStore, VectorPoint, VectorStore
from knowledge_os.retrieval.docstore import DocumentStore
from knowledge_os.retrieval.sources import SourceProblem, discover, origin_scope, read_file

__all__ = ["IngestReport", "graph_records", "ingest"]

logger = logging.getLogger(__name__)

BATCH_SIZE = 256
# Characters of a document's text that are embedded. multilingual-e5-small costs about
# 1.4 ms per token per core on a 2-core dev machine (no benchmark ships for it), and a few changelog entries
# run to thousands of lines; the head of an entry names what changed. The whole text
# stays in the full-text index, so exact and lexical matches see all of it.
EMBED_MAX_CHARS = 512
_EDGE_TYPES = {"package": "ENTRY_OF", "channel": "ENTRY_OF", "cve": "FIXES", "bug": "CLOSES"}


@dataclass(slots=True)
class IngestReport:
    """What one ingest did. ``entries_per_s`` counts every document read.

    ``new``, ``updated`` and ``unchanged`` split the documents read by their stored
    content hash; ``removed`` counts stored documents of the ingest's scope that no file
    yields any more (deleted from the vectors, the graph and the document store).
    """

    files: int = 0
    files_failed: int = 0
    documents: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    graph_nodes: int = 0
    graph_edges: int = 0
    seconds: float = 0.0
    seconds_read: float = 0.0
    seconds_embed: float = 0.0
    seconds_write: float = 0.0
    problems: list[SourceProblem] = field(default_factory=list)

    @property
    def entries_per_s(self) -> float:
        return self.documents / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "files": self.files,
            "files_failed": self.files_failed,
            "documents": self.documents,
            "new": self.new,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "graph_nodes": self.graph_nodes,
            "graph_edges": self.graph_edges,
            "seconds": round(self.seconds, 2),
            "seconds_read": round(self.seconds_read, 2),
            "seconds_embed": round(self.seconds_embed, 2),
            "seconds_write": round(self.seconds_write, 2),
            "entries_per_s": round(self.entries_per_s, 1),
            "problems": [str(p) for p in self.problems],
        }


def graph_records(docs: Sequence[Document]) -> tuple[list[GraphNode], list[GraphEdge]]:
    """Graph nodes and edges for documents: the document node ``doc:<id>`` and one node
    per entity; ENTRY_OF (doc -> package/channel), FIXES (doc -> cve), CLOSES
    (doc -> bug), AUTHORED (person -> doc)."""
    nodes: dict[str, GraphNode] = {}
    edges: list[GraphEdge] = []
    for d in docs:
        node_id = f"doc:{d.id}"
        nodes[node_id] = GraphNode(
            id=node_id, kind="document", name=d.title,
            properties={"channel": d.channel, "ts": d.ts},
        )
        for ent in d.entities:
            kind, _, key = ent.partition(":")
            nodes.setdefault(ent, GraphNode(id=ent, kind=kind, name=key))
            if kind == "person":
                edges.append(GraphEdge(src=ent, dst=node_id, type="AUTHORED"))
            else:
                edges.append(GraphEdge(src=node_id, dst=ent, type=_EDGE_TYPES.get(kind, "MENTIONS")))
    return list(nodes.values()), edges


@dataclass(frozen=True, slots=True, kw_only=True)
class _Stores:
    docstore: DocumentStore
    embedder: Embedder
    vector_store: VectorStore
    graph_store: GraphStore


def ingest(
    paths: Sequence[Path],
    *,
    docstore: DocumentStore,
    embedder: Embedder,
    vector_store: VectorStore,
    graph_store: GraphStore,
    scope: Sequence[str] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> IngestReport:
    """Ingest files and folders, and remove what they no longer hold.

    Args:
        paths: Files or folders (see :func:`knowledge_os.retrieval.sources.discover`).
        docstore: Document rows, full-text and entity index.
        embedder: Embeds each document's first :data:`EMBED_MAX_CHARS` characters.
        vector_store: Receives one point per document (payload channel, ts, source).
        graph_store: Receives the nodes and edges of :func:`graph_records`.
        scope: SQLite GLOB patterns over document origins this ingest owns: stored
            documents whose origin matches and that no file yielded this time are
            removed. Default: :func:`~knowledge_os.retrieval.sources.origin_scope` of
            ``paths`` (everything below a folder given, a file given itself).
        on_progress: Called as ``on_progress(files_done, files_total)``.

    Returns:
        The report; problems name every file or line that was skipped.
    """
    started = time.perf_counter()
    stores = _Stores(docstore=docstore, embedder=embedder, vector_store=vector_store, graph_store=graph_store)
    report = IngestReport()
    files, problems = discover(list(paths))
    report.problems.extend(problems)
    report.files = len(files)
    seen_ids: set[str] = set()
    kept_origins: set[str] = set()  # files that failed: their documents stay
    pending: list[Document] = []
    replaced: list[str] = []  # updated documents whose graph node is rebuilt

    def flush() -> None:
        if pending:
            nodes, edges = _write(stores, pending, replaced, report)
            report.graph_nodes += nodes
            report.graph_edges += edges
            pending.clear()
            replaced.clear()

    for i, src in enumerate(files, start=1):
        origin = str(src.path.absolute())
        t_read = time.perf_counter()
        docs, aliases, file_problems = read_file(src)
        report.seconds_read += time.perf_counter() - t_read
        if file_problems:
            report.problems.extend(file_problems)
            kept_origins.add(origin)
            if not docs:
                report.files_failed += 1
        if aliases:
            docstore.add_aliases(aliases)
        fresh = []
        for d in docs:  # a changelog may repeat a version: the first (newest) entry wins
            if d.id not in seen_ids:
                seen_ids.add(d.id)
                fresh.append(d)
        report.documents += len(fresh)
        hashed = [
            replace(d, origin=origin,
                    content_hash=content_hash(d.text, {**d.metadata, "title": d.title,
                                                       "channel": d.channel, "ts": d.ts}))
            for d in fresh
        ]
        stored = docstore.hashes([d.id for d in hashed])
        unchanged = []
        for d in hashed:
            old = stored.get(d.id)
            if old == d.content_hash:
                report.unchanged += 1
                unchanged.append(d.id)
                continue
            if old is None:
                report.new += 1
            else:
                report.updated += 1
                replaced.append(f"doc:{d.id}")
            pending.append(d)
        if unchanged:
            docstore.set_origin(unchanged, origin)
        if len(pending) >= BATCH_SIZE:
            flush()
        if on_progress is not None:
            on_progress(i, len(files))
    flush()
    patterns = origin_scope(paths) if scope is None else list(scope)
    gone = sorted(docstore.ids_in_scope(patterns) - seen_ids)
    stale = [d.id for d in docstore.get(gone) if d.origin not in kept_origins] if gone else []
    if stale:
        t = time.perf_counter()
        vector_store.delete(stale)
        graph_store.delete([f"doc:{i}" for i in stale])
        docstore.delete(stale)  # last: a crash before it leaves them stale, found again next time
        report.removed = len(stale)
        report.seconds_write += time.perf_counter() - t
        logger.info("ingest: removed %d documents the sources no longer hold", len(stale))
    if report.new or report.updated or report.removed:
        docstore.bump_generation()
        optimize = getattr(vector_store, "optimize", None)  # HNSW build, if the store has one
        if optimize is not None:
            optimize()
    report.seconds = time.perf_counter() - started
    logger.info("ingest: %s", report.as_dict())
    return report


def _write(stores: _Stores, docs: Sequence[Document], replaced: Sequence[str],
           report: IngestReport) -> tuple[int, int]:
    t0 = time.perf_counter()
    embeddings = stores.embedder.embed_documents([d.text[:EMBED_MAX_CHARS] for d in docs])
    t1 = time.perf_counter()
    report.seconds_embed += t1 - t0
    stores.vector_store.upsert(
        [
            VectorPoint(
                id=d.id,
                vector=embeddings[j],
                payload={"channel": d.channel, "ts": d.ts, "source": d.source},
            )
            for j, d in enumerate(docs)
        ]
    )
    nodes, edges = graph_records(docs)
    if replaced:  # an updated entry may no longer name an entity: rebuild its edges
        stores.graph_store.delete(replaced)
    stores.graph_store.upsert(nodes, edges)
    stores.docstore.upsert(docs)
    report.seconds_write += time.perf_counter() - t1
    return len(nodes), len(edges)
