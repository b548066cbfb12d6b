"""Ingest: files -> documents -> document store, graph, then vectors.

Two stages, so that a corpus is answerable long before it is embedded (embedding is
~95 % of a full ingest: 9,609 changelog entries, 393 s on a quiet 2-core machine):

1. **text**: per batch of documents, upsert the graph and the document rows (full text and
   entities) with an empty content hash. Afterwards the corpus generation is bumped and
   ``on_stage("text", report)`` is called: exact ids, full text and the graph answer now.
2. **vectors**: per batch, embed, upsert the vectors, then the document rows again with
   their content hash. The next batch is embedded in a background thread while one
   batch is written, so the embedder's cores do not wait for the writes. Afterwards the
   generation is bumped again (answers cached while the vector index was incomplete are
   not served after it), the vector index is optimised and ``on_stage("vectors",
   report)`` is called.

The content hash is written last, so a document whose hash is empty has no vector yet:
:meth:`DocumentStore.pending_count` counts them (answers made meanwhile are marked,
``RunResult.index_complete``), and a crash in either stage leaves them "not yet
ingested" for the next run, which redoes them; every upsert is idempotent. Unchanged
documents (same id and content hash) cost a hash comparison and nothing else.

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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from knowledge_os.cache.keys import content_hash
from knowledge_os.retrieval.base import Document, Embedder, GraphEdge, GraphNode, GraphStore, VectorPoint, VectorStore
from knowledge_os.retrieval.docstore import DocumentStore
from knowledge_os.retrieval.sources import SourceProblem, discover, origin_scope, read_file

__all__ = ["EMBED_MAX_CHARS", "EMBED_RECIPE", "IngestReport", "embed_text", "graph_records", "ingest"]

logger = logging.getLogger(__name__)

BATCH_SIZE = 256
# Characters of a document's text that are embedded. multilingual-e5-small costs about
# 1.3 ms per token per core on this 2-core machine (benchmarks/bench_embed.py), and a few
# changelog entries run to thousands of lines; the head of an entry names what changed.
# The whole text stays in the full-text index, so exact and lexical matches see all of it.
EMBED_MAX_CHARS = 512
#: Names what :func:`embed_text` embeds (printed by the benchmarks).
EMBED_RECIPE = f"head:{EMBED_MAX_CHARS}"
_EDGE_TYPES = {"package": "ENTRY_OF", "channel": "ENTRY_OF", "cve": "FIXES", "bug": "CLOSES"}


@dataclass(slots=True)
class IngestReport:
    """What one ingest did. ``entries_per_s`` counts every document read.

    ``new``, ``updated`` and ``unchanged`` split the documents read by their stored
    content hash; ``removed`` counts stored documents of the ingest's scope that no file
    yields any more (deleted from the vectors, the graph and the document store).
    ``seconds_to_text`` is when the text stage ended (full text, exact ids and graph
    searchable: the first answer is possible), ``seconds`` when the vectors were done;
    ``embedded`` counts the documents embedded.
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
    seconds_to_text: float = 0.0
    embedded: int = 0
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
            "seconds_to_text": round(self.seconds_to_text, 2),
            "embedded": self.embedded,
            "seconds_read": round(self.seconds_read, 2),
            "seconds_embed": round(self.seconds_embed, 2),
            "seconds_write": round(self.seconds_write, 2),
            "entries_per_s": round(self.entries_per_s, 1),
            "problems": [str(p) for p in self.problems],
        }


def embed_text(doc: Document) -> str:
    """The text of ``doc`` that is embedded: its first :data:`EMBED_MAX_CHARS` characters
    (the entry's package and version line, then its first change lines)."""
    return doc.text[:EMBED_MAX_CHARS]


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
    on_stage: Callable[[str, IngestReport], None] | None = None,
) -> IngestReport:
    """Ingest files and folders, and remove what they no longer hold.

    Args:
        paths: Files or folders (see :func:`knowledge_os.retrieval.sources.discover`).
        docstore: Document rows, full-text and entity index.
        embedder: Embeds each document's :func:`embed_text`.
        vector_store: Receives one point per document (payload channel, ts, source).
        graph_store: Receives the nodes and edges of :func:`graph_records`.
        scope: SQLite GLOB patterns over document origins this ingest owns: stored
            documents whose origin matches and that no file yielded this time are
            removed. Default: :func:`~knowledge_os.retrieval.sources.origin_scope` of
            ``paths`` (everything below a folder given, a file given itself).
        on_progress: Called as ``on_progress(files_done, files_total)`` while reading,
            then ``on_progress(embedded, to_embed)`` while embedding.
        on_stage: Called as ``on_stage("text", report)`` when documents, full text and
            graph are written (answers are possible from then on), and
            ``on_stage("vectors", report)`` when every document has its vector.

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
    to_embed: list[Document] = []  # written in the text stage, with their content hash

    def flush() -> None:
        if pending:
            nodes, edges = _write_text(stores, pending, replaced, report)
            report.graph_nodes += nodes
            report.graph_edges += edges
            to_embed.extend(pending)
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
    changed = bool(report.new or report.updated or report.removed)
    if changed:
        docstore.bump_generation()  # answers cached before the new text are not served
    report.seconds_to_text = time.perf_counter() - started
    logger.info("ingest: text stage done in %.1f s (%d documents to embed)", report.seconds_to_text, len(to_embed))
    if on_stage is not None:
        on_stage("text", report)
    _vector_stage(stores, to_embed, report, on_progress)
    if changed:
        if to_embed:
            docstore.bump_generation()  # nor answers made while the vector index was incomplete
        optimize = getattr(vector_store, "optimize", None)  # HNSW build, if the store has one
        if optimize is not None:
            optimize()
    report.seconds = time.perf_counter() - started
    if on_stage is not None:
        on_stage("vectors", report)
    logger.info("ingest: %s", report.as_dict())
    return report


def _write_text(stores: _Stores, docs: Sequence[Document], replaced: Sequence[str],
                report: IngestReport) -> tuple[int, int]:
    """The text stage of a batch: graph, then document rows with an empty content hash
    (no vector yet); returns (graph nodes, graph edges) written."""
    t0 = time.perf_counter()
    nodes, edges = graph_records(docs)
    if replaced:  # an updated entry may no longer name an entity: rebuild its edges
        stores.graph_store.delete(replaced)
    stores.graph_store.upsert(nodes, edges)
    stores.docstore.upsert([replace(d, content_hash="") for d in docs])
    report.seconds_write += time.perf_counter() - t0
    return len(nodes), len(edges)


def _vector_stage(stores: _Stores, docs: Sequence[Document], report: IngestReport,
                  on_progress: Callable[[int, int], None] | None) -> None:
    """Embed and write ``docs`` in batches of :data:`BATCH_SIZE`, each batch's embedding
    started before the previous batch is written: one embedding call at a time (in one
    background thread), the writes in this thread, in order.

    Without the overlap the embedder's cores waited for every batch's writes (the vector
    store's upsert and the document rows): the vector stage of the whole changelog corpus
    used 1.82 of 2 cores (``benchmarks/bench_ingest.py``). ``report.seconds_embed`` is the
    time this thread waited for embeddings, ``report.seconds_write`` the time it wrote.

    Raises:
        Whatever the embedder or a store raises; the batches before it stay written.
    """
    batches = [docs[i : i + BATCH_SIZE] for i in range(0, len(docs), BATCH_SIZE)]
    if not batches:
        return

    def embed(batch: Sequence[Document]) -> Any:
        return stores.embedder.embed_documents([embed_text(d) for d in batch])

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kos-ingest-embed") as ahead:
        coming = ahead.submit(embed, batches[0])
        for i, batch in enumerate(batches):
            t0 = time.perf_counter()
            try:
                embeddings = coming.result()
            finally:
                report.seconds_embed += time.perf_counter() - t0
            if i + 1 < len(batches):
                coming = ahead.submit(embed, batches[i + 1])
            _write_vectors(stores, batch, embeddings, report)
            if on_progress is not None:
                on_progress(report.embedded, len(docs))


def _write_vectors(stores: _Stores, docs: Sequence[Document], embeddings: Any, report: IngestReport) -> None:
    """The writes of a batch of the vector stage: upsert the vectors (``embeddings``,
    (N, dim), in the order of ``docs``), then the document rows with their content hash
    (last: the mark that the document is fully ingested)."""
    t1 = time.perf_counter()
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
    stores.docstore.upsert(docs)
    report.embedded += len(docs)
    report.seconds_write += time.perf_counter() - t1
