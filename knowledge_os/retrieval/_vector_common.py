"""Helpers shared by the Qdrant vector stores: point ids, payloads, filters."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

import numpy as np

from knowledge_os.errors import (
    InputError,
)
from knowledge_os.retrieval.base import VectorFilter, VectorHit, VectorPoint

logger = logging.getLogger(__name__)

#: Namespace of the uuid5 point ids (fixed forever: changing it orphans stored points).
POINT_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://knowledge-os/vector-point")

DOC_ID_KEY = "doc_id"
#: Indexed payload fields and their kinds.
INDEXED_FIELDS: dict[str, str] = {"channel": "keyword", "ts": "integer", "source": "keyword"}
VECTOR_BACKENDS: tuple[str, ...] = ("qdrant_edge", "qdrant", "postgres_edge")
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


