"""Vector stores over Qdrant: in-process (qdrant-edge) and qdrant-client (server or local).

Both implement :class:`knowledge_os.retrieval.base.VectorStore` with the same semantics:

- Cosine similarity; scores in [-1, 1], best first.
- Document ids are arbitrary strings; Qdrant point ids must be integers or UUIDs, so each
  id maps to ``uuid5(POINT_ID_NAMESPACE, id)`` and the original id is kept in the payload
  key ``doc_id`` (stripped again from :attr:`VectorHit.payload`).
- Payload keys ``channel`` (keyword), ``ts`` (integer, Unix seconds) and ``source``
  (keyword) are indexed and filterable through :class:`VectorFilter`; any other payload
  keys are stored as given (JSON-compatible values).

:class:`QdrantEdgeVectorStore` (default) runs the Qdrant engine in-process via
``qdrant-edge-py`` (a beta API): one shard per collection, HNSW built by :meth:`optimize`.
:class:`QdrantVectorStore` uses ``qdrant-client``: a Qdrant server when ``url`` is set,
otherwise local mode (``path=``: exact search in Python; fine below ~20k points).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from knowledge_os.errors import (
    BackendError,
    BackendUnavailableError,
    ConfigError,
    UnknownNameError,
)
from knowledge_os.retrieval._qdrant_client import QdrantVectorStore
from knowledge_os.retrieval._vector_common import (
    _UPSERT_BATCH,
    INDEXED_FIELDS,
    POINT_ID_NAMESPACE,
    VECTOR_BACKENDS,
    _build_filter,
    _check_top_k,
    _check_vector,
    _hit,
    _payload,
    full_scan_threshold_kb,
    point_id,
)
from knowledge_os.retrieval.base import (
    VectorFilter,
    VectorHit,
    VectorPoint,
    VectorStore,
)
from knowledge_os.settings import Settings

__all__ = [
    "POINT_ID_NAMESPACE",
    "QdrantEdgeVectorStore",
    "QdrantVectorStore",
    "full_scan_threshold_kb",
    "make_vector_store",
    "point_id",
]

logger = logging.getLogger(__name__)

class QdrantEdgeVectorStore:
    """The Qdrant engine in-process (``qdrant-edge-py``), one shard per collection.

    Files live under ``path / collection`` (segments, WAL, ``edge_config.json``); reopening
    the same folder restores every point. A folder can be open in one store at a time.
    New points land in appendable (plain, exact) segments; :meth:`optimize` merges them and
    builds the HNSW graph (Qdrant builds it for segments above its indexing threshold,
    ~10 MB of vectors: ~6.5k points at 384-d), so bulk loaders call it once at the end.
    Unfiltered searches walk HNSW; filtered ones matching fewer than
    ``exact_filter_max_points`` are exact via the payload indexes, larger ones use filtered
    HNSW with ACORN. All calls are serialised by a lock.

    Attributes:
        dim: Vector size.
        path: The shard folder.
    """

    def __init__(
        self,
        path: Path | str,
        collection: str,
        dim: int,
        hnsw_ef: int = 64,
        *,
        hnsw_m: int = 16,
        hnsw_ef_construct: int = 100,
        exact_filter_max_points: int = 20_000,
        acorn: bool = True,
    ) -> None:
        """Open the shard at ``path / collection``, creating it if absent.

        Args:
            path: Parent folder (created if missing).
            collection: Collection name; the shard's folder name.
            dim: Vector size, >= 1; must match an existing shard's.
            hnsw_ef: Search-time beam width (higher: better recall, slower).
            hnsw_m: HNSW edges per node.
            hnsw_ef_construct: Build-time beam width.
            exact_filter_max_points: Filtered searches matching fewer points are exact.
            acorn: Use ACORN for filtered HNSW searches (better recall under filters).

        Raises:
            ConfigError: ``dim`` differs from the existing shard's, or qdrant-edge-py is
                not installed.
            BackendUnavailableError: the shard is open elsewhere or cannot be opened.
        """
        try:
            import qdrant_edge as qe
        except ImportError as exc:
            raise ConfigError(
                "vectors.backend=qdrant_edge needs qdrant-edge-py: pip install qdrant-edge-py"
            ) from exc
        if dim < 1:
            raise ConfigError(f"vector dim must be >= 1, got {dim}")
        self._qe = qe
        self.dim = dim
        self.hnsw_ef = hnsw_ef
        self.acorn = acorn
        self.path = Path(path) / collection
        self._lock = threading.Lock()
        config = qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine),
            hnsw_config=qe.HnswIndexConfig(
                m=hnsw_m,
                ef_construct=hnsw_ef_construct,
                full_scan_threshold=full_scan_threshold_kb(exact_filter_max_points, dim),
            ),
        )
        exists = (self.path / "edge_config.json").exists()
        try:
            if exists:
                self._shard = qe.EdgeShard.load(str(self.path), config)
            else:
                self.path.mkdir(parents=True, exist_ok=True)
                self._shard = qe.EdgeShard.create(str(self.path), config)
        except Exception as exc:  # qdrant-edge raises plain Exception
            message = str(exc)
            if "incompatible" in message.lower():
                raise ConfigError(
                    f"vector store {self.path}: {message}; the embedder's dim is {dim}. "
                    "Use another collection or re-ingest into an empty folder."
                ) from exc
            raise BackendUnavailableError(
                f"cannot open qdrant-edge shard {self.path} (open in another process?): {message}"
            ) from exc
        self._closed = False
        self._ensure_payload_indexes()
        logger.debug("qdrant-edge shard %s open (%d points)", self.path, self.count())

    def _ensure_payload_indexes(self) -> None:
        qe = self._qe
        kinds = {"keyword": qe.PayloadSchemaType.Keyword, "integer": qe.PayloadSchemaType.Integer}
        existing = set(self._shard.info().payload_schema)
        for field, kind in INDEXED_FIELDS.items():
            if field not in existing:
                self._shard.update(qe.UpdateOperation.create_field_index(field, kinds[kind]))

    def upsert(self, points: Sequence[VectorPoint]) -> None:
        """Insert or replace points by document id.

        Args:
            points: Points with vectors of shape (dim,); payload values JSON-compatible.

        Raises:
            InputError: a vector has the wrong shape or non-finite values.
            BackendError: the engine rejected the update.
        """
        qe = self._qe
        built = [
            qe.Point(
                id=point_id(p.id),
                vector=_check_vector(p.vector, self.dim, f"point {p.id!r}"),
                payload=_payload(p),
            )
            for p in points
        ]
        with self._lock:
            for start in range(0, len(built), _UPSERT_BATCH):
                chunk = built[start : start + _UPSERT_BATCH]
                self._update(qe.UpdateOperation.upsert_points(chunk))

    def _update(self, operation: Any) -> None:
        try:
            self._shard.update(operation)
        except Exception as exc:
            raise BackendError(f"qdrant-edge update failed on {self.path}: {exc}") from exc

    def search(
        self, vector: np.ndarray, *, top_k: int, flt: VectorFilter | None = None
    ) -> list[VectorHit]:
        """Approximate nearest neighbours (HNSW with ``ef = max(hnsw_ef, top_k)``).

        Args:
            vector: Query of shape (dim,); need not be normalised.
            top_k: Maximum hits, >= 1.
            flt: Payload filter; None or empty = all points.

        Returns:
            Up to ``top_k`` hits, best first; ``score`` is cosine similarity.

        Raises:
            InputError: bad vector shape or ``top_k`` < 1.
        """
        _check_top_k(top_k)
        qe = self._qe
        condition = _build_filter(flt, qe, qe.RangeFloat)
        acorn = qe.AcornSearchParams(enable=True) if condition and self.acorn else None
        request = qe.QueryRequest(
            limit=top_k,
            query=qe.Query.Nearest(_check_vector(vector, self.dim, "query")),
            filter=condition,
            with_payload=True,
            params=qe.SearchParams(hnsw_ef=max(self.hnsw_ef, top_k), acorn=acorn),
        )
        with self._lock:
            try:
                scored = self._shard.query(request)
            except Exception as exc:
                raise BackendError(f"qdrant-edge query failed on {self.path}: {exc}") from exc
        return [_hit(s.payload, s.score) for s in scored]

    def delete(self, ids: Sequence[str]) -> None:
        """Remove points by document id; unknown ids are ignored."""
        if not ids:
            return
        with self._lock:
            self._update(self._qe.UpdateOperation.delete_points([point_id(i) for i in ids]))

    def count(self) -> int:
        """Number of points (exact)."""
        with self._lock:
            return int(self._shard.count(self._qe.CountRequest(exact=True)))

    def flush(self) -> None:
        """Write pending changes to disk (the WAL already makes them durable)."""
        with self._lock:
            self._shard.flush()

    def optimize(self) -> bool:
        """Merge segments and build the HNSW index; blocks until done.

        Call once after a bulk upsert (ingest does). Takes seconds per 10k points.

        Returns:
            True if any segment was rebuilt.
        """
        with self._lock:
            changed = bool(self._shard.optimize())
            self._shard.flush()
            info = self._shard.info()
        logger.info(
            "qdrant-edge %s optimized: %d points, %d indexed (HNSW), %d segments",
            self.path,
            info.points_count,
            info.indexed_vectors_count,
            info.segments_count,
        )
        return changed

    def close(self) -> None:
        """Flush and release the shard (and its WAL lock); idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._shard.flush()
            self._shard.close()


# --------------------------------------------------------------------------- qdrant-client


# --------------------------------------------------------------------------- factory


def make_vector_store(settings: Settings, dim: int) -> VectorStore:
    """The vector store named by ``settings.vectors.backend``.

    ``qdrant_edge`` keeps its shard in ``settings.vectors_path / "edge" / <collection>``;
    ``qdrant`` uses ``settings.vectors.url`` or, unset, local mode in
    ``settings.vectors_path / "qdrant_local"``. Folders are created as needed.

    Args:
        settings: All settings (``vectors`` section and ``home``).
        dim: The embedder's vector size.

    Raises:
        UnknownNameError: unknown backend.
        ConfigError / BackendUnavailableError: see the store constructors.
    """
    vs = settings.vectors
    if vs.backend == "qdrant_edge":
        root = settings.vectors_path / "edge"
        root.mkdir(parents=True, exist_ok=True)
        return QdrantEdgeVectorStore(
            root,
            vs.collection,
            dim,
            vs.hnsw_ef,
            hnsw_m=vs.hnsw_m,
            hnsw_ef_construct=vs.hnsw_ef_construct,
            exact_filter_max_points=vs.exact_filter_max_points,
        )
    if vs.backend == "qdrant":
        local = None if vs.url else settings.vectors_path / "qdrant_local"
        return QdrantVectorStore(vs, local, dim)
    raise UnknownNameError("vector backend", vs.backend, VECTOR_BACKENDS)
