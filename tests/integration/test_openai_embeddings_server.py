"""embedder.provider=openai against llama.cpp's own OpenAI-compatible server
(``python -m llama_cpp.server --embedding true``) serving the shipped GGUF.

SmolLM2-135M-Instruct is a chat model, not an embedding model: the server has no pooling
for it and returns one vector per token, which the embedder mean-pools. The vectors say
little about meaning; this tests the protocol (request, shapes, normalisation, prompts,
errors, an ingest through it), not retrieval quality."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from knowledge_os.errors import BackendUnavailableError
from knowledge_os.retrieval.embedders import OpenAIEmbedder
from knowledge_os.retrieval.factory import make_embedder
from knowledge_os.settings import EmbedderSettings
from tests.integration.test_openai_llamacpp_server import start_llama_server
from tests.integration.test_serve_process import free_port

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(importlib.util.find_spec("starlette_context") is None,
                       reason="llama-cpp-python[server] (the llm-server extra) not installed"),
]

SMOLLM2_DIM = 576  # SmolLM2-135M's hidden size (its config.json)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, object]]:
    port = free_port()
    proc = start_llama_server(port, tmp_path_factory.mktemp("llama") / "llama.log", "--embedding", "true")
    yield f"http://127.0.0.1:{port}/v1", proc
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=30)


def embedder(url: str, **kw) -> OpenAIEmbedder:
    emb = make_embedder(EmbedderSettings(provider="openai", openai_base_url=url, openai_model="smollm2",
                                         **{"batch_size": 2, **kw}))
    assert isinstance(emb, OpenAIEmbedder)
    made.append(emb)
    return emb


made: list[OpenAIEmbedder] = []


@pytest.fixture(autouse=True)
def close_embedders() -> Iterator[None]:
    yield
    while made:
        made.pop().close()


def test_documents_and_queries_are_unit_rows_of_the_model_size(server):
    url, _ = server
    emb = embedder(url, openai_query_prompt="query: ", openai_document_prompt="passage: ")
    assert emb.dim == SMOLLM2_DIM
    texts = ["openssl: fix CVE-2026-28387", "curl: fix crash when following redirects", "Import 3.0.19"]
    docs = emb.embed_documents(texts)
    assert docs.shape == (3, SMOLLM2_DIM) and docs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1.0, rtol=1e-5)
    # the same call again gives the same rows (not compared across batch sizes: for a model
    # without pooling llama-cpp-python's token vectors of a text depend on its place in a
    # multi-text request; the unit tests check order and pooling across batches)
    np.testing.assert_allclose(docs, emb.embed_documents(texts), atol=1e-5)
    q = emb.embed_query(texts[0])
    assert q.shape == (SMOLLM2_DIM,)
    # the query prompt is not the document prompt: the same text embeds differently
    assert float(q @ docs[0]) < 0.9999
    assert float(emb.embed_query(texts[0]) @ q) > 0.9999  # deterministic


def test_truncation_keeps_the_leading_components(server):
    url, _ = server
    full = embedder(url).embed_query("openssl")
    short = embedder(url, dim=128).embed_query("openssl")
    assert short.shape == (128,)
    head = full[:128] / np.linalg.norm(full[:128])
    np.testing.assert_allclose(short, head, atol=1e-5)


def test_an_ingest_stores_its_vectors_and_a_query_searches_them(server, tmp_path: Path, corpus_dir: Path):
    url, _ = server
    from knowledge_os.api import KnowledgeOS
    from knowledge_os.settings import Settings

    settings = Settings(home=tmp_path / ".kos", embedder=EmbedderSettings(
        provider="openai", openai_base_url=url, openai_model="smollm2"))
    kos = KnowledgeOS(settings)
    try:
        report = kos.ingest([corpus_dir])
        assert report.problems == []
        services = kos.services
        assert services.embedder.name == "openai/smollm2" and services.embedder.dim == SMOLLM2_DIM
        stored = services.vector_store.count()
        assert stored >= 5  # the five changelog entries of corpus_dir, at least one chunk each
        hits = services.vector_store.search(services.embedder.embed_query("openssl CVE fix"), top_k=3)
        assert len(hits) == 3 and all(-1.0001 <= h.score <= 1.0001 for h in hits)
    finally:
        kos.close()


def test_a_dead_server_is_unavailable_naming_its_url(tmp_path: Path):
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(BackendUnavailableError, match=f"cannot reach {url}/embeddings"):
        embedder(url).embed_query("openssl")


async def test_readiness_probes_the_embedding_server(server, tmp_path: Path):
    from knowledge_os.server.readiness import check_backends
    from knowledge_os.settings import Settings

    url, _ = server

    def probe(base: str) -> Settings:
        return Settings(home=tmp_path / ".kos", embedder=EmbedderSettings(provider="openai", openai_base_url=base))

    assert (await check_backends(probe(url)))["embedder"] == "ok"
    dead = await check_backends(probe(f"http://127.0.0.1:{free_port()}/v1"), timeout_s=5)
    assert dead["embedder"].startswith("ConnectError")
