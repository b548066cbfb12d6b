"""Suite YAML and case-file validation: every problem names the file and the key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge_os.errors import EvalConfigError, UnknownNameError
from knowledge_os.evals import shipped_suites
from knowledge_os.evals.cases import load_cases, load_jsonl_cases
from knowledge_os.evals.runner import find_suite
from knowledge_os.evals.spec import load_suite_file

GOOD = """\
name: mini
cases:
  - {id: a, query: "What changed in openssl?", expected: {domain: digest}}
metrics:
  routing.accuracy: {min: 0.5, tolerance: 0.1}
  routing.confusion:
  retrieval.recall@5: {}
"""


def _write(tmp_path: Path, text: str, name: str = "mini.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_a_good_suite_loads_with_defaults(tmp_path):
    spec = load_suite_file(_write(tmp_path, GOOD))
    assert spec.settings.mode == "run" and spec.settings.use_cache is False and spec.settings.loops is True
    assert spec.metrics["routing.accuracy"].min == 0.5
    assert spec.metrics["routing.confusion"].tolerance == 0.0
    assert len(spec.settings_hash()) == 12


@pytest.mark.parametrize(("text", "key_path", "message"), [
    (GOOD.replace("name: mini", "name: mini\nflavour: x"), "flavour", "unknown key"),
    (GOOD.replace("cases:", "settings: {mode: run, cache: true}\ncases:"), "settings.cache", "unknown key"),
    (GOOD.replace('query: "What', 'querry: "What'), "cases.0.querry", "unknown key"),
    (GOOD.replace("routing.accuracy:", "routing.acuracy:"), "metrics.routing.acuracy", "unknown metric"),
    (GOOD.replace("routing.confusion:", "routing.confusion: {min: 1}"), "metrics.routing.confusion", "table metric"),
    (GOOD.replace("{min: 0.5, tolerance: 0.1}", "{min: 0.5, tolerance: -1}"), "metrics.routing.accuracy.tolerance", ""),
    (GOOD.replace("settings", "x").replace("cases:", "settings: {mode: walk}\ncases:"), "settings.mode", ""),
    (GOOD.replace("name: mini", "name: other"), "name", "must match the file name"),
])
def test_bad_suites_name_file_and_key(tmp_path, text, key_path, message):
    path = _write(tmp_path, text)
    with pytest.raises(EvalConfigError) as info:
        load_suite_file(path)
    assert info.value.path == str(path)
    assert info.value.key_path == key_path
    assert message in str(info.value)


def test_malformed_yaml_and_duplicate_ids(tmp_path):
    with pytest.raises(EvalConfigError, match="malformed YAML at line"):
        load_suite_file(_write(tmp_path, "name: [mini\n"))
    dup = GOOD.replace("metrics:", '  - {id: a, query: "again"}\nmetrics:')
    with pytest.raises(EvalConfigError, match="duplicate case ids"):
        load_suite_file(_write(tmp_path, dup))


def test_a_case_needs_a_query_or_a_pair(tmp_path):
    text = GOOD.replace('query: "What changed in openssl?"', 'first: "x"')
    with pytest.raises(EvalConfigError, match="give 'query'"):
        load_suite_file(_write(tmp_path, text))


def test_jsonl_cases_report_the_line(tmp_path):
    p = tmp_path / "cases.jsonl"
    p.write_text('{"id": "a", "query": "q"}\n\n{"id": "b", "query": "q", "expectd": {}}\n', encoding="utf-8")
    with pytest.raises(EvalConfigError) as info:
        load_jsonl_cases(p)
    assert info.value.key_path == "line 3.expectd"
    p.write_text('{"id": "a", "query": "q"}\n{"id": "a", "query": "r"}\n', encoding="utf-8")
    with pytest.raises(EvalConfigError, match="line 2.id: duplicate"):
        load_jsonl_cases(p)
    p.write_text('{"id": "a", "query": \n', encoding="utf-8")
    with pytest.raises(EvalConfigError, match="line 1: bad JSON"):
        load_jsonl_cases(p)


def test_cases_from_a_file_next_to_the_suite_and_a_missing_one(tmp_path):
    (tmp_path / "c.jsonl").write_text('{"id": "a", "query": "q", "lang": "ru"}\n', encoding="utf-8")
    spec = load_suite_file(_write(tmp_path, "name: f\ncases: {file: c.jsonl}\nmetrics: [run.error_rate]\n", "f.yaml"))
    cases = load_cases(spec, suite_file=tmp_path / "f.yaml", doc_dir=tmp_path)
    assert [(c.id, c.lang) for c in cases] == [("a", "ru")]
    (tmp_path / "d.jsonl").write_text("".join(f'{{"id": "c{i}", "query": "q{i}"}}\n' for i in range(10)),
                                      encoding="utf-8")
    spec = load_suite_file(_write(tmp_path, "name: s\ncases: {file: d.jsonl, sample: 4, seed: 1}\n"
                                  "metrics: [run.error_rate]\n", "s.yaml"))
    picked = [c.id for c in load_cases(spec, suite_file=tmp_path / "s.yaml", doc_dir=tmp_path)]
    assert len(picked) == 4 and picked == sorted(picked, key=lambda i: int(i[1:]))  # file order kept
    assert picked == [c.id for c in load_cases(spec, suite_file=tmp_path / "s.yaml", doc_dir=tmp_path)]
    spec = load_suite_file(_write(tmp_path, "name: g\ncases: {file: nope.jsonl}\nmetrics: [run.error_rate]\n", "g.yaml"))
    with pytest.raises(EvalConfigError, match="cases.file: 'nope.jsonl' not found"):
        load_cases(spec, suite_file=tmp_path / "g.yaml", doc_dir=tmp_path)


def test_unknown_builder_lists_the_known_ones(tmp_path):
    spec = load_suite_file(_write(tmp_path, "name: b\ncases: {builder: nope}\nmetrics: [run.error_rate]\n", "b.yaml"))
    with pytest.raises(UnknownNameError, match="cve_fixed_by"):
        load_cases(spec, suite_file=tmp_path / "b.yaml", doc_dir=tmp_path)


def test_every_shipped_suite_is_valid_and_found_by_name():
    names = shipped_suites()
    assert {"quick-routing", "quick-answers", "quick-cache", "quick-trajectory"} <= set(names)
    for name in names:
        assert load_suite_file(find_suite(name)).name == name
    with pytest.raises(UnknownNameError, match="quick-routing"):
        find_suite("no-such-suite")
