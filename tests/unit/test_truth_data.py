"""The committed case files under knowledge_os/evals/data (routing set)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

import knowledge_os.evals
from knowledge_os.evals.truth._common import BUILTIN_DOMAINS_DIR, is_yaml_example

DATA = Path(knowledge_os.evals.__file__).parent / "data"


def _load(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def routing() -> list[dict]:
    return _load("routing.jsonl")


def test_routing_set_size_labels_and_languages(routing: list[dict]) -> None:
    assert len(routing) >= 200
    counts = Counter((c["expected"]["domain"], c["lang"]) for c in routing)
    assert set(counts) == {("digest", "en"), ("digest", "ru"), ("trend", "en"), ("trend", "ru")}
    assert min(counts.values()) >= 50
    assert len({c["id"] for c in routing}) == len(routing)
    assert len({c["query"].casefold() for c in routing}) == len(routing)


def test_routing_cases_follow_the_case_schema(routing: list[dict]) -> None:
    for c in routing:
        assert set(c) == {"id", "query", "lang", "tags", "expected"}, c
        assert c["tags"] == ["routing", c["expected"]["domain"]]
        cyrillic = bool(re.search(r"[а-яё]", c["query"], re.IGNORECASE))
        assert cyrillic == (c["lang"] == "ru"), c["query"]


def test_routing_set_is_held_out_from_the_domain_yamls(routing: list[dict]) -> None:
    specs = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(BUILTIN_DOMAINS_DIR.glob("*.yaml"))]
    assert specs, "the built-in domain YAMLs were not found"
    patterns = [p for s in specs for p in s["routing"].get("patterns", ())]
    for c in routing:
        assert not is_yaml_example(c["query"]), c["query"]
        for p in patterns:  # no question is just a YAML pattern's text
            m = re.search(p, c["query"], re.IGNORECASE)
            assert not (m and len(m.group(0)) >= len(c["query"].rstrip("?.!")) - 2), (p, c["query"])


def test_yaml_example_guard_matches_up_to_case_and_punctuation() -> None:
    assert is_yaml_example("which upload fixed cve-2023-4911")
    assert not is_yaml_example("Which upload fixed CVE-2023-4912?")
