"""One conformance suite for every VectorStore implementation.

Parametrized over qdrant-edge (in-process), qdrant-client local mode (the stand-in for a
server), the unit tests' in-memory fake (``tests.fakes.MemoryVectorStore``: unit tests
only mean something if it behaves like the real stores) and, when
``KOS_TEST_QDRANT_URL`` is set, a real Qdrant server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from knowledge_os.errors import ConfigError, InputError
from knowledge_os.retrieval.base import VectorFilter, VectorPoint, VectorStore
from knowledge_os.retrieval.vectors import (
    QdrantEdgeVectorStore,
    QdrantVectorStore,
    point_id,
)
from knowledge_os.retrieval.factory import make_vector_store
from knowledge_os.settings import Settings, VectorSettings
from tests.fakes import MemoryVectorStore

pytestmark = pytest.mark.integration

DIM = 16
CHANNELS = ("openssl", "curl", "bash", "zlib")
SOURCES = ("debian", "file")

Opener = Callable[[], VectorStore]

# "shared": vectors.backend=postgres_edge (embeddings in PostgreSQL, a qdrant-edge copy per host)
_BACKENDS = ["edge", "local", "fake", "shared"] + (["server"] if os.environ.get("KOS_TEST_QDRANT_URL") else [])


@pytest.fixture(params=_BACKENDS)
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """A function opening (or reopening) the same store; every store is closed at the end."""
    opened: list[VectorStore] = []
    collection = f"t_{uuid.uuid4().hex[:12]}"
    fake_points: dict = {}  # what "the same folder" is for the in-memory fake

    def open_store() -> VectorStore:
        if request.param == "fake":
            store: VectorStore = MemoryVectorStore(DIM, points=fake_points)
        elif request.param == "edge":
            store = QdrantEdgeVectorStore(tmp_path, collection, DIM, 64)
        elif request.param == "shared":
            store = _shared_store(tmp_path, collection)
        elif request.param == "local":
            store = QdrantVectorStore(VectorSettings(backend="qdrant"), tmp_path / "local", DIM,
                                      collection=collection)
        else:
            settings = VectorSettings(backend="qdrant", url=os.environ["KOS_TEST_QDRANT_URL"])
            store = QdrantVectorStore(settings, None, DIM, collection=collection)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()
    if request.param == "server":
        from qdrant_client import QdrantClient

        client = QdrantClient(url=os.environ["KOS_TEST_QDRANT_URL"], check_compatibility=False)
        client.delete_collection(collection)
        client.close()


_emptied: set[Path] = set()


def _shared_store(tmp_path: Path, collection: str) -> VectorStore:
    """A SharedVectorStore over a database of the tests' own (tables emptied once per test)."""
    from knowledge_os.retrieval.vectors_shared import SharedVectorStore
    from tests.integration.pgdb import empty_tables, own_database

    dsn = own_database("docs")
    if tmp_path not in _emptied:
        empty_tables(dsn, ("kos_embeddings", "kos_embedding_deletes", "kos_corpus_meta"))
        _emptied.add(tmp_path)
    settings = Settings(postgres={"dsn": dsn}, vectors={"shared_check_s": 0})
    return SharedVectorStore(settings, tmp_path / "shared",
                             lambda folder: QdrantEdgeVectorStore(folder, collection, DIM, 64))


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.normal(size=(n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _corpus(n: int = 60, seed: int = 7) -> list[VectorPoint]:
    rng = np.random.default_rng(seed)
    vectors = _unit(rng, n)
    return [
        VectorPoint(
            id=f"deb:{CHANNELS[i % 4]}:1.{i}",
            vector=vectors[i],
            payload={
                "channel": CHANNELS[i % 4],
                "ts": 1_700_000_000 + i * 100,
                "source": SOURCES[i % 2],
                "title": f"entry {i}",
            },
        )
        for i in range(n)
    ]


def _exact(
    points: list[VectorPoint], query: np.ndarray, keep: Callable[[VectorPoint], bool]
) -> list[str]:
    """Ids of the points kept by ``keep``, by exact cosine to ``query``, best first."""
    scored = [(float(np.dot(p.vector, query)), p.id) for p in points if keep(p)]
    return [pid for _, pid in sorted(scored, key=lambda t: -t[0])]


@pytest.fixture
def filled(opener: Opener) -> tuple[VectorStore, list[VectorPoint]]:
    store = opener()
    points = _corpus()
    store.upsert(points)
    return store, points


def test_protocol_and_count(filled: tuple[VectorStore, list[VectorPoint]]) -> None:
    store, points = filled
    assert isinstance(store, VectorStore)
    assert store.dim == DIM
    assert store.count() == len(points)


def test_search_order_scores_and_payload(filled: tuple[VectorStore, list[VectorPoint]]) -> None:
    store, points = filled
    query = points[5].vector
    hits = store.search(query, top_k=10)
    expected = _exact(points, query, lambda p: True)[:10]
    assert [h.id for h in hits] == expected
    assert hits[0].id == points[5].id and hits[0].score == pytest.approx(1.0, abs=1e-4)
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert dict(hits[0].payload) == dict(points[5].payload)  # doc_id stripped, rest intact
    # Scores are cosine: an unnormalised query gives the same scores.
    scaled = store.search(query * 7.5, top_k=10)
    assert [h.id for h in scaled] == expected
    assert [h.score for h in scaled] == pytest.approx(scores, abs=1e-4)


@pytest.mark.parametrize("top_k", [1, 3, 60, 500])
def test_top_k(filled: tuple[VectorStore, list[VectorPoint]], top_k: int) -> None:
    store, points = filled
    hits = store.search(points[0].vector, top_k=top_k)
    assert len(hits) == min(top_k, len(points))
    assert len({h.id for h in hits}) == len(hits)


def test_top_k_must_be_positive(filled: tuple[VectorStore, list[VectorPoint]]) -> None:
    store, points = filled
    with pytest.raises(InputError):
        store.search(points[0].vector, top_k=0)


def test_wrong_dim_rejected(filled: tuple[VectorStore, list[VectorPoint]]) -> None:
    store, _ = filled
    with pytest.raises(InputError, match="shape"):
        store.search(np.ones(DIM + 1, dtype=np.float32), top_k=3)
    with pytest.raises(InputError, match="x"):
        store.upsert([VectorPoint(id="x", vector=np.ones(DIM - 1), payload={})])


FILTERS: dict[str, tuple[VectorFilter, Callable[[VectorPoint], bool]]] = {
    "channel": (VectorFilter(channels=("curl",)), lambda p: p.payload["channel"] == "curl"),
    "channels_any": (
        VectorFilter(channels=("curl", "zlib")),
        lambda p: p.payload["channel"] in ("curl", "zlib"),
    ),
    "ts_from": (VectorFilter(ts_from=1_700_003_000), lambda p: p.payload["ts"] >= 1_700_003_000),
    "ts_to": (VectorFilter(ts_to=1_700_001_000), lambda p: p.payload["ts"] < 1_700_001_000),
    "ts_range": (
        VectorFilter(ts_from=1_700_001_000, ts_to=1_700_002_000),
        lambda p: 1_700_001_000 <= p.payload["ts"] < 1_700_002_000,
    ),
    "source": (VectorFilter(sources=("file",)), lambda p: p.payload["source"] == "file"),
    "combined": (
        VectorFilter(channels=("openssl", "curl"), ts_from=1_700_001_000, ts_to=1_700_005_000,
                     sources=("debian",)),
        lambda p: p.payload["channel"] in ("openssl", "curl")
        and 1_700_001_000 <= p.payload["ts"] < 1_700_005_000
        and p.payload["source"] == "debian",
    ),
    "no_match": (VectorFilter(channels=("nonexistent",)), lambda p: False),
    "empty": (VectorFilter(), lambda p: True),
}


@pytest.mark.parametrize("name", list(FILTERS))
def test_filters(filled: tuple[VectorStore, list[VectorPoint]], name: str) -> None:
    store, points = filled
    flt, keep = FILTERS[name]
    query = _unit(np.random.default_rng(99), 1)[0]
    hits = store.search(query, top_k=8, flt=flt)
    expected = _exact(points, query, keep)[:8]
    assert [h.id for h in hits] == expected
    assert all(keep(p) for p in points if p.id in {h.id for h in hits})


def test_ts_range_is_half_open(filled: tuple[VectorStore, list[VectorPoint]]) -> None:
    store, points = filled
    ts = points[10].payload["ts"]
    hits = store.search(points[10].vector, top_k=100, flt=VectorFilter(ts_from=ts, ts_to=ts + 100))
    assert [h.id for h in hits] == [points[10].id]
    assert store.search(points[10].vector, top_k=5, flt=VectorFilter(ts_from=ts, ts_to=ts)) == []


def test_upsert_replaces_by_id(filled: tuple[VectorStore, list[VectorPoint]]) -> None:
    store, points = filled
    target = points[3]
    new_vector = -points[3].vector
    store.upsert([VectorPoint(id=target.id, vector=new_vector,
                              payload={"channel": "bash", "ts": 5, "source": "file", "v": 2})])
    assert store.count() == len(points)
    top = store.search(new_vector, top_k=1)[0]
    assert top.id == target.id and top.score == pytest.approx(1.0, abs=1e-4)
    assert dict(top.payload) == {"channel": "bash", "ts": 5, "source": "file", "v": 2}
    old_channel = VectorFilter(channels=(target.payload["channel"],))
    assert store.search(new_vector, top_k=1, flt=old_channel)[0].id != target.id


def test_duplicate_ids_in_one_batch_last_wins(opener: Opener) -> None:
    store = opener()
    a, b = _unit(np.random.default_rng(1), 2)
    store.upsert(
        [
            VectorPoint(id="same", vector=a, payload={"channel": "x", "ts": 1, "source": "file"}),
            VectorPoint(id="same", vector=b, payload={"channel": "y", "ts": 2, "source": "file"}),
        ]
    )
    assert store.count() == 1
    hit = store.search(b, top_k=1)[0]
    assert hit.id == "same" and hit.payload["channel"] == "y"


def test_delete(filled: tuple[VectorStore, list[VectorPoint]]) -> None:
    store, points = filled
    gone = [points[0].id, points[1].id, "never-existed"]
    store.delete(gone)
    store.delete([])
    assert store.count() == len(points) - 2
    ids = {h.id for h in store.search(points[0].vector, top_k=len(points))}
    assert not ids & set(gone)
    assert len(ids) == len(points) - 2


def test_empty_store(opener: Opener) -> None:
    store = opener()
    assert store.count() == 0
    assert store.search(np.ones(DIM, dtype=np.float32), top_k=5) == []


def test_reopen_persists(opener: Opener) -> None:
    store = opener()
    points = _corpus(40, seed=3)
    store.upsert(points)
    store.delete([points[0].id])
    optimize = getattr(store, "optimize", None)
    if optimize is not None:
        optimize()
    store.close()
    again = opener()
    assert again.count() == 39
    same_channel = VectorFilter(channels=(points[7].payload["channel"],))
    hit = again.search(points[7].vector, top_k=1, flt=same_channel)[0]
    assert hit.id == points[7].id
    assert dict(hit.payload) == dict(points[7].payload)


def test_reopen_with_other_dim_is_config_error(opener: Opener, tmp_path: Path) -> None:
    store = opener()
    store.upsert(_corpus(5))
    from knowledge_os.retrieval.vectors_shared import SharedVectorStore

    assert isinstance(store, (QdrantEdgeVectorStore, QdrantVectorStore, MemoryVectorStore, SharedVectorStore))
    store.close()
    with pytest.raises(ConfigError, match="16"):
        if isinstance(store, SharedVectorStore):
            collection = store._local.path.name  # noqa: SLF001 - the local copy's collection
            SharedVectorStore(store._settings, tmp_path / "shared",  # noqa: SLF001
                              lambda folder: QdrantEdgeVectorStore(folder, collection, DIM * 2, 64))
        elif isinstance(store, MemoryVectorStore):
            MemoryVectorStore(DIM * 2, points=store.points)
        elif isinstance(store, QdrantEdgeVectorStore):
            QdrantEdgeVectorStore(tmp_path, store.path.name, DIM * 2, 64)
        else:
            settings = VectorSettings(backend="qdrant", url=os.environ.get("KOS_TEST_QDRANT_URL"))
            local = None if settings.url else tmp_path / "local"
            QdrantVectorStore(settings, local, DIM * 2, collection=store.collection)


def test_point_id_is_stable_uuid() -> None:
    assert point_id("deb:openssl:3.0") == point_id("deb:openssl:3.0")
    assert point_id("a") != point_id("b")
    assert uuid.UUID(point_id("x")).version == 5


@pytest.mark.parametrize("backend", ["qdrant_edge", "qdrant"])
def test_make_vector_store(tmp_path: Path, backend: str) -> None:
    settings = Settings(home=tmp_path / "home", vectors=VectorSettings(backend=backend))
    store = make_vector_store(settings, DIM)
    try:
        assert store.dim == DIM and store.count() == 0
        assert settings.vectors_path.is_dir()
        expected = QdrantEdgeVectorStore if backend == "qdrant_edge" else QdrantVectorStore
        assert isinstance(store, expected)
    finally:
        store.close()


def test_unreachable_server_names_url() -> None:
    from knowledge_os.errors import BackendUnavailableError

    settings = VectorSettings(backend="qdrant", url="http://127.0.0.1:9", timeout_s=2)
    with pytest.raises(BackendUnavailableError, match=r"http://127\.0\.0\.1:9"):
        QdrantVectorStore(settings, None, DIM)
