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
import uuid
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from knowledge_os.errors import (
    BackendError,
    BackendTimeoutError,
    BackendUnavailableError,
    ConfigError,
    InputError,
    UnknownNameError,
)
from knowledge_os.retrieval.base import VectorFilter, VectorHit, VectorPoint, VectorStore
from knowledge_os.settings import Settings, VectorSettings

__all__ = [
    "POINT_ID_NAMESPACE",
    "QdrantEdgeVectorStore",
    "QdrantVectorStore",
    "full_scan_threshold_kb",
    "make_vector_store",
    "point_id",
]

logger = logging.getLogger(__name__)

#: Namespace of the uuid5 point ids (fixed forever: changing it orphans stored points).
POINT_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://knowledge-os/vector-point")

DOC_ID_KEY = "doc_id"
#: Indexed payload fields and their kinds.
INDEXED_FIELDS: dict[str, str] = {"channel": "keyword", "ts": "integer", "source": "keyword"}
VECTOR_BACKENDS: tuple[str, ...] = ("qdrant_edge", "qdrant")
_UPSERT_BATCH = 512


def full_scan_threshold_kb(points: int, dim: int) -> int:
    """Qdrant's ``full_scan_threshold`` (KB of float32 vectors) for ``points`` vectors.

    Filtered searches whose estimated matches stay below it are scored exactly through the
    payload index instead of walking HNSW. At 30k random 384-d vectors a filter matching
    25% had recall@10 0.21 through filtered HNSW (ef=64) and 1.0 at 0.8 ms exact
    (benchmarks/bench_vectors.py).
    """
    return max(1, -(-points * dim * 4 // 1024))


def point_id(doc_id: str) -> str:
    """The Qdrant point id (a UUID string) of a document id."""
    return str(uuid.uuid5(POINT_ID_NAMESPACE, doc_id))


def _check_vector(vector: np.ndarray, dim: int, what: str) -> np.ndarray:
    arr = np.asarray(vector, dtype=np.float32).reshape(-1)
    if arr.shape != (dim,):
        raise InputError(f"{what}: expected a vector of shape ({dim},), got {np.shape(vector)}")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{what}: vector has NaN or infinite components")
    return arr


def _payload(point: VectorPoint) -> dict[str, Any]:
    payload = dict(point.payload)
    if "ts" in payload and payload["ts"] is not None:
        payload["ts"] = int(payload["ts"])
    payload[DOC_ID_KEY] = point.id
    return payload


def _hit(payload: Mapping[str, Any] | None, score: float) -> VectorHit:
    rest = dict(payload or {})
    doc_id = rest.pop(DOC_ID_KEY, "")
    return VectorHit(id=str(doc_id), score=float(score), payload=rest)


def _check_top_k(top_k: int) -> None:
    if top_k < 1:
        raise InputError(f"top_k must be >= 1, got {top_k}")


def _build_filter(flt: VectorFilter | None, ns: Any, range_cls: Any) -> Any:
    """Translate a VectorFilter into a Qdrant filter.

    Args:
        flt: The filter; None or empty gives None (no filter).
        ns: ``qdrant_edge`` or ``qdrant_client.models`` (same class and argument names).
        range_cls: ``qdrant_edge.RangeFloat`` or ``qdrant_client.models.Range``.
    """
    if flt is None or flt.is_empty():
        return None
    must: list[Any] = []
    for key, values in (("channel", flt.channels), ("source", flt.sources)):
        if values:
            must.append(ns.FieldCondition(key=key, match=ns.MatchAny(any=list(values))))
    if flt.ts_from is not None or flt.ts_to is not None:
        must.append(ns.FieldCondition(key="ts", range=range_cls(gte=flt.ts_from, lt=flt.ts_to)))
    return ns.Filter(must=must)


# --------------------------------------------------------------------------- qdrant-edge


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


def _translate_client_error(exc: Exception, where: str, timeout_s: float) -> BackendError:
    """Map qdrant-client / httpx errors to the Knowledge OS hierarchy."""
    import httpx
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

    source = exc.source if isinstance(exc, ResponseHandlingException) else exc
    if isinstance(source, httpx.TimeoutException):
        return BackendTimeoutError(f"Qdrant at {where} did not answer within {timeout_s} s")
    if isinstance(source, (httpx.TransportError, ConnectionError)):
        return BackendUnavailableError(f"Qdrant at {where} is unreachable: {source}")
    if isinstance(exc, UnexpectedResponse) and exc.status_code in (502, 503, 504):
        return BackendUnavailableError(f"Qdrant at {where} answered {exc.status_code}")
    return BackendError(f"Qdrant at {where} failed: {exc}")


class QdrantVectorStore:
    """Qdrant through ``qdrant-client``: a server (``url``) or local mode (``path``).

    The collection is created on first use (cosine distance) with payload indexes on
    ``channel``, ``source`` (keyword) and ``ts`` (integer) -- on a server; local mode has
    no payload indexes and searches exactly, in Python. Local mode allows one client per
    folder per process and warns above 20k points: that warning is turned into one log
    line here (see the module docstring of ``qdrant_client.local``).

    Attributes:
        dim: Vector size.
        collection: Collection name.
    """

    def __init__(
        self,
        settings: VectorSettings,
        path: Path | str | None,
        dim: int,
        *,
        collection: str | None = None,
    ) -> None:
        """Connect (or open the local folder) and ensure the collection exists.

        Args:
            settings: The ``vectors`` settings section (``url``, ``api_key``, ``hnsw_ef``,
                ``timeout_s``, ``collection``).
            path: Local-mode folder, used when ``settings.url`` is unset (created if missing).
            dim: Vector size; must match an existing collection's.
            collection: Overrides ``settings.collection``.

        Raises:
            ConfigError: no ``url`` and no ``path``; ``dim`` differs from the collection's;
                the local folder is already open in this process.
            BackendUnavailableError / BackendTimeoutError: the server did not answer.
        """
        from qdrant_client import QdrantClient, models

        self._models = models
        self.dim = dim
        self.collection = collection or settings.collection
        self.hnsw_ef = settings.hnsw_ef
        self._timeout_s = settings.timeout_s
        self._local = settings.url is None
        self._large_warning_logged = False
        if self._local:
            if path is None:
                raise ConfigError("vectors: set vectors.url (server) or pass a local path")
            Path(path).mkdir(parents=True, exist_ok=True)
            self._where = f"local:{path}"
            try:
                self._client = QdrantClient(path=str(path))
            except RuntimeError as exc:
                raise ConfigError(f"vector folder {path}: {exc}") from exc
        else:
            self._where = str(settings.url)
            api_key = settings.api_key.get_secret_value() if settings.api_key else None
            self._client = QdrantClient(
                url=settings.url,
                api_key=api_key,
                timeout=max(1, round(settings.timeout_s)),
                check_compatibility=False,
            )
        self._call(self._ensure_collection, settings)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        import httpx
        from qdrant_client.http.exceptions import ApiException

        try:
            return fn(*args, **kwargs)
        except (ApiException, httpx.HTTPError, OSError) as exc:
            raise _translate_client_error(exc, self._where, self._timeout_s) from exc

    def _ensure_collection(self, settings: VectorSettings) -> None:
        models = self._models
        client = self._client
        if client.collection_exists(self.collection):
            params = client.get_collection(self.collection).config.params.vectors
            size = params.size if isinstance(params, models.VectorParams) else None
            if size is not None and size != self.dim:
                raise ConfigError(
                    f"Qdrant collection {self.collection!r} at {self._where} holds {size}-d "
                    f"vectors but the embedder gives {self.dim}-d; use another collection"
                )
            return
        client.create_collection(
            self.collection,
            vectors_config=models.VectorParams(size=self.dim, distance=models.Distance.COSINE),
            hnsw_config=models.HnswConfigDiff(
                m=settings.hnsw_m,
                ef_construct=settings.hnsw_ef_construct,
                full_scan_threshold=full_scan_threshold_kb(
                    settings.exact_filter_max_points, self.dim
                ),
            ),
        )
        if not self._local:  # local mode ignores payload indexes (and warns)
            kinds = {
                "keyword": models.PayloadSchemaType.KEYWORD,
                "integer": models.PayloadSchemaType.INTEGER,
            }
            for field, kind in INDEXED_FIELDS.items():
                client.create_payload_index(self.collection, field, field_schema=kinds[kind])
        logger.info(
            "created Qdrant collection %s at %s (dim %d)", self.collection, self._where, self.dim
        )

    def upsert(self, points: Sequence[VectorPoint]) -> None:
        """Insert or replace points by document id (waits for the write).

        Raises:
            InputError: a vector has the wrong shape or non-finite values.
            BackendUnavailableError / BackendTimeoutError / BackendError: the server failed.
        """
        models = self._models
        structs = [
            models.PointStruct(
                id=point_id(p.id),
                vector=_check_vector(p.vector, self.dim, f"point {p.id!r}").tolist(),
                payload=_payload(p),
            )
            for p in points
        ]
        for start in range(0, len(structs), _UPSERT_BATCH):
            chunk = structs[start : start + _UPSERT_BATCH]
            if self._local:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    self._call(self._client.upsert, self.collection, points=chunk, wait=True)
                self._log_local_warnings(caught)
            else:
                self._call(self._client.upsert, self.collection, points=chunk, wait=True)

    def _log_local_warnings(self, caught: list[warnings.WarningMessage]) -> None:
        for w in caught:
            if "Local mode is not recommended" in str(w.message):
                if not self._large_warning_logged:
                    self._large_warning_logged = True
                    logger.warning(
                        "Qdrant local mode at %s holds over 20k points; searches are exact "
                        "and slow. Use vectors.backend=qdrant_edge or a Qdrant server.",
                        self._where,
                    )
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)

    def search(
        self, vector: np.ndarray, *, top_k: int, flt: VectorFilter | None = None
    ) -> list[VectorHit]:
        """Nearest neighbours via ``query_points``; same contract as the edge store."""
        _check_top_k(top_k)
        response = self._call(
            self._client.query_points,
            self.collection,
            query=_check_vector(vector, self.dim, "query").tolist(),
            query_filter=_build_filter(flt, self._models, self._models.Range),
            limit=top_k,
            with_payload=True,
            # Local mode is exact and warns about search_params; a server uses HNSW.
            search_params=None if self._local else self._search_params(top_k, flt),
        )
        return [_hit(p.payload, p.score) for p in response.points]

    def _search_params(self, top_k: int, flt: VectorFilter | None) -> Any:
        models = self._models
        filtered = flt is not None and not flt.is_empty()
        return models.SearchParams(
            hnsw_ef=max(self.hnsw_ef, top_k),
            acorn=models.AcornSearchParams(enable=True) if filtered else None,
        )

    def delete(self, ids: Sequence[str]) -> None:
        """Remove points by document id; unknown ids are ignored."""
        if not ids:
            return
        selector = self._models.PointIdsList(points=[point_id(i) for i in ids])
        self._call(self._client.delete, self.collection, points_selector=selector, wait=True)

    def count(self) -> int:
        """Number of points (exact)."""
        return int(self._call(self._client.count, self.collection, exact=True).count)

    def optimize(self) -> bool:
        """No-op: a server optimises by itself; local mode has no index. Returns False."""
        return False

    def close(self) -> None:
        """Release the client (local mode: flush and unlock the folder)."""
        self._client.close()


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
