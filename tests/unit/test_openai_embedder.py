"""OpenAIEmbedder against httpx.MockTransport: the request it sends, prompts per role,
batches, pooling of token vectors, truncation, normalisation, and errors naming the URL."""

from __future__ import annotations

import zlib

import httpx
import numpy as np
import orjson
import pytest

from knowledge_os.errors import BackendError, BackendTimeoutError, BackendUnavailableError, ConfigError
from knowledge_os.retrieval.embedders import OpenAIEmbedder
from knowledge_os.retrieval.factory import make_embedder
from knowledge_os.settings import EmbedderSettings

URL = "http://127.0.0.1:9/v1"


def vector(text: str, dim: int = 8) -> list[float]:
    rng = np.random.default_rng(zlib.crc32(text.encode()))
    return (rng.standard_normal(dim) * 3).tolist()


class Server:
    """A fake /v1/embeddings: records requests; answers in reverse index order."""

    def __init__(self, *, tokens: bool = False, status: int = 200) -> None:
        self.requests: list[dict] = []
        self.tokens = tokens
        self.status = status

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = orjson.loads(request.content)
        self.requests.append({"path": request.url.path, "auth": request.headers.get("authorization"), **body})
        if self.status != 200:
            return httpx.Response(self.status, json={"error": {"message": "model 'm' not found"}})
        data = [{"object": "embedding", "index": i,
                 "embedding": [vector(t), vector(t + "!")] if self.tokens else vector(t)}
                for i, t in enumerate(body["input"])]
        return httpx.Response(200, json={"object": "list", "data": data[::-1], "model": body["model"]})


def make(server, **kw) -> OpenAIEmbedder:
    return OpenAIEmbedder(base_url=URL + "/", model="m", transport=httpx.MockTransport(server), **kw)


def test_close_releases_the_client_and_a_later_call_reopens_it():
    emb = make(Server())
    emb.embed_query("a")
    first = emb._client
    emb.close()
    assert emb._client is None and first.is_closed
    assert emb.embed_query("a").shape == (8,) and emb._client is not first
    emb.close()


def test_requests_carry_the_model_the_prompts_and_float_encoding_in_batches():
    server = Server()
    emb = make(server, api_key="k", batch_size=2, query_prompt="query: ", document_prompt="passage: ")
    docs = emb.embed_documents(["a", "b", "c"])
    q = emb.embed_query("x")
    assert [r["input"] for r in server.requests] == [["passage: a", "passage: b"], ["passage: c"], ["query: x"]]
    assert {r["path"] for r in server.requests} == {"/v1/embeddings"}
    assert {(r["model"], r["encoding_format"], r["auth"]) for r in server.requests} == {("m", "float", "Bearer k")}
    # rows in input order although the server answered in reverse, L2-normalised
    expected = np.array([vector(f"passage: {t}") for t in "abc"], dtype=np.float32)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert docs.dtype == np.float32 and docs.shape == (3, 8)
    np.testing.assert_allclose(docs, expected, rtol=1e-6)
    assert q.shape == (8,) and abs(float(np.linalg.norm(q)) - 1) < 1e-6


def test_no_key_sends_no_authorization_and_dim_is_learnt_from_one_probe():
    server = Server()
    emb = make(server)
    assert emb.dim == 8 and emb.name == "openai/m"
    assert server.requests[0]["auth"] is None and len(server.requests) == 1
    assert emb.embed_documents([]).shape == (0, 8)


def test_token_vectors_are_mean_pooled():
    emb = make(Server(tokens=True))
    pooled = (np.array(vector("t"), dtype=np.float32) + np.array(vector("t!"), dtype=np.float32)) / 2
    np.testing.assert_allclose(emb.embed_query("t"), pooled / np.linalg.norm(pooled), rtol=1e-6)


def test_dim_truncates_then_renormalises_and_cannot_exceed_the_native_size():
    emb = make(Server(), dim=4)
    v = emb.embed_query("t")
    head = np.array(vector("t")[:4], dtype=np.float32)
    np.testing.assert_allclose(v, head / np.linalg.norm(head), rtol=1e-6)
    assert emb.name == "openai/m@4"
    with pytest.raises(ConfigError, match="exceeds the native size 8"):
        make(Server(), dim=16).embed_query("t")
    with pytest.raises(ConfigError, match="embedder.dim=0"):
        make(Server(), dim=0)


def test_errors_name_the_url():
    with pytest.raises(BackendError, match=r"v1/embeddings answered 404 .*not found"):
        make(Server(status=404)).embed_query("t")

    def refuse(request):
        raise httpx.ConnectError("connection refused")

    with pytest.raises(BackendUnavailableError, match=f"cannot reach {URL}/embeddings"):
        make(refuse).embed_query("t")

    def slow(request):
        raise httpx.ReadTimeout("timed out")

    with pytest.raises(BackendTimeoutError, match="did not answer within 2.0 s"):
        make(slow, timeout_s=2.0).embed_query("t")

    def short(request):
        return httpx.Response(200, json={"data": [{"index": 0, "embedding": [1.0, 0.0]}]})

    with pytest.raises(BackendError, match="returned 1 embeddings .* for 2 inputs"):
        make(short).embed_documents(["a", "b"])


def test_the_factory_builds_it_from_settings():
    s = EmbedderSettings(provider="openai", openai_base_url=URL, openai_model="e5", openai_api_key="k",
                         openai_query_prompt="query: ", openai_document_prompt="passage: ", dim=4)
    emb = make_embedder(s)
    assert isinstance(emb, OpenAIEmbedder)
    assert (emb.base_url, emb.model, emb.name, emb.query_prompt, emb.document_prompt) == (
        URL, "e5", "openai/e5@4", "query: ", "passage: ")
