"""The parts of the PostgreSQL document store that need no server: FTS5-like tokens, the
tsvector literal, query terms (phrases for ids), GLOB patterns as regular expressions."""

from __future__ import annotations

import re

import pytest

from knowledge_os.retrieval.docstore_pg import _query_terms, _tsvector, fts_tokens, glob_to_regex
from knowledge_os.retrieval.sources import _glob_literal


def test_tokens_are_fts5_unicode61_like() -> None:
    assert fts_tokens("Fix CVE-2024-6387 (Closes: #1055473) in 1:9.2p1-2+deb12u3") == [
        "fix", "cve", "2024", "6387", "closes", "1055473", "in", "1", "9", "2p1", "2", "deb12u3"]
    assert fts_tokens("Café naïve ÉTÉ, snake_case") == ["cafe", "naive", "ete", "snake", "case"]
    assert fts_tokens("Исправлена ошибка") == ["исправлена", "ошибка"]


def test_tsvector_literal_keeps_positions_and_counts_tokens() -> None:
    literal, n = _tsvector("openssh 9.2", "fix openssh")
    assert n == 5 and literal == "'openssh':1,5 '9':2 '2':3 'fix':4"


def test_query_words_with_punctuation_become_phrases_and_stopwords_go() -> None:
    assert _query_terms("What changed in openssh CVE-2024-6387 since 3.0.11-1?") == [
        ("openssh", "'openssh'"), ("cve-2024-6387", "'cve' <-> '2024' <-> '6387'"),
        ("3.0.11-1", "'3' <-> '0' <-> '11' <-> '1'")]
    assert _query_terms("openssh' | !curl") == [("openssh", "'openssh'"), ("curl", "'curl'")]  # syntax is inert
    assert _query_terms("what is the") == []


@pytest.mark.parametrize(("pattern", "matches", "misses"), [
    ("/doc/*/changelog.Debian.gz", ["/doc/a/changelog.Debian.gz", "/doc/a/b/changelog.Debian.gz"],
     ["/doc/changelogXDebian.gz", "/doc/a/changelog.Debian.gzip"]),
    ("/doc/?.md", ["/doc/a.md"], ["/doc/ab.md", "/doc/.md"]),
    ("/d/[ab]x", ["/d/ax", "/d/bx"], ["/d/cx"]),
    ("/d/[^ab]x", ["/d/cx"], ["/d/ax"]),
    (_glob_literal("/odd/we*rd[1] (x)+.md") + "/*", ["/odd/we*rd[1] (x)+.md/f"], ["/odd/weXrd1 (x)+.md/f"]),
])
def test_glob_patterns_become_anchored_regexes(pattern: str, matches: list[str], misses: list[str]) -> None:
    rx = re.compile(glob_to_regex(pattern))
    assert all(rx.search(m) for m in matches) and not any(rx.search(m) for m in misses)


@pytest.mark.parametrize("shared", [{"storage": {"documents": "postgres"}}, {"storage": {"answer_cache": "postgres"}},
                                    {"vectors": {"backend": "postgres_edge"}}])
def test_readiness_probes_postgres_when_a_shared_store_lives_there(shared: dict) -> None:
    pytest.importorskip("httpx")
    from knowledge_os.server.readiness import _checks
    from knowledge_os.settings import Settings

    assert "postgres" not in _checks(Settings())
    assert "postgres" in _checks(Settings(postgres={"dsn": "postgresql://u@h/db"}, **shared))
