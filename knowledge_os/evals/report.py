"""Reports of a run: ``report.json`` (figures), ``report.md`` (tables people read) and PNG
plots; comparison against a baseline report and the gate.

``report.json`` schema ``kos.eval-report/1``::

    {"schema", "run_dir", "created_at", "versions": {...},
     "suites": {name: {"file", "description", "settings", "settings_hash", "cases", "errors",
                       "seconds", "ingest_seconds", "documents",
                       "metrics": {name: value}, "thresholds": {name: {"min", "max", "ok"}},
                       "tolerances": {name: t}, "ungated": [name], "failures": [...]}},
     "comparison": {suite: {metric: {"baseline", "current", "delta", "tolerance", "regressed"}}},
     "gate": {"ok": bool, "failures": [str], "regressions": [str], "notes": [str]}}
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

import knowledge_os
from knowledge_os.errors import InputError
from knowledge_os.evals.markdown import render_markdown
from knowledge_os.evals.metrics import compute, resolve
from knowledge_os.evals.metrics.answers import language_of, lead_paragraph, names_id
from knowledge_os.evals.plots import write_plots
from knowledge_os.evals.runner import SuiteRun

__all__ = ["REPORT_SCHEMA", "build_report", "compare", "load_report", "write_report"]

REPORT_SCHEMA = "kos.eval-report/1"


def _round(v: Any) -> Any:
    if isinstance(v, float):
        return None if math.isnan(v) else round(v, 4)
    if isinstance(v, dict):
        return {k: _round(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_round(x) for x in v]
    return v


def suite_figures(run: SuiteRun) -> dict[str, Any]:
    """Metrics, thresholds and failures of one suite."""
    spec = run.spec
    metrics = {name: _round(compute(name, run.records)) for name in spec.metrics}
    thresholds: dict[str, Any] = {}
    failures: list[str] = []
    for name, m in spec.metrics.items():
        if m.min is None and m.max is None:
            continue
        v = metrics[name]
        ok = v is not None and (m.min is None or v >= m.min) and (m.max is None or v <= m.max)
        thresholds[name] = {"min": m.min, "max": m.max, "ok": ok, "gate": m.gate}
        if not ok and m.gate:
            bound = " and ".join(s for s in (f">= {m.min}" if m.min is not None else "",
                                             f"<= {m.max}" if m.max is not None else "") if s)
            failures.append(f"{spec.name}: {name} = {v} (needs {bound})")
    errors = sum(bool(r.get("error")) for r in run.records)
    return {
        "file": run.file.name, "description": spec.description,
        "settings": spec.settings.model_dump(mode="json"), "corpus": spec.corpus.model_dump(mode="json"),
        "settings_hash": spec.settings_hash(), "cases": len(run.records), "errors": errors,
        "cases_hash": _cases_hash(run),
        "seconds": run.seconds, "ingest_seconds": round(run.ingest_seconds, 3), "documents": run.documents,
        "corpus_source": run.corpus_source,
        "metrics": metrics, "thresholds": thresholds,
        "tolerances": {n: m.tolerance for n, m in spec.metrics.items() if not resolve(n)[0].is_table},
        "ungated": sorted(n for n, m in spec.metrics.items() if not m.gate),
        "failures": failures,
        "examples": _examples(run),
    }


def _cases_hash(run: SuiteRun) -> str:
    """12 hex digits over the cases' ids, queries and expectations: a baseline made from
    other cases (a builder or case file changed) is not comparable figure by figure."""
    blob = orjson.dumps([[r["id"], r.get("query"), r.get("expected")] for r in run.records],
                        option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(blob).hexdigest()[:12]


def _examples(run: SuiteRun, limit: int = 10) -> list[dict[str, Any]]:
    """Up to ``limit`` failing cases for the report: an error, a misroute, a false cache hit
    or a missed paraphrase, no expected document cited, an ungrounded claim, a missing id,
    or an answer in the wrong language (the first reason that applies)."""
    out = []
    for r in run.records:
        exp = r.get("expected") or {}
        why = None
        if r.get("error"):
            why = r["error"]
        elif exp.get("domain") and r.get("domain") != exp["domain"]:
            why = f"routed to {r.get('domain')} ({r.get('route_method')}), expected {exp['domain']}"
        elif r.get("pair_kind") == "trap" and r.get("second_hit"):
            why = f"trap ({r.get('trap_type')}) served from the cache"
        elif r.get("pair_kind") == "paraphrase" and not r.get("second_hit"):
            why = "paraphrase not served from the cache"
        elif exp.get("doc_ids") and "cited" in r and not set(r["cited"]) & set(exp["doc_ids"]):
            why = "no expected document cited"
        elif (r.get("grounding") or {}).get("ungrounded"):
            why = "ungrounded: " + "; ".join(map(str, r["grounding"]["ungrounded"][:3]))
        elif exp.get("ids") and "answer" in r and not all(
                names_id(r["answer"], i) for i in exp["ids"]):
            why = f"answer does not name {', '.join(exp['ids'])}"
        elif r.get("lang") and r.get("answer") and language_of(lead_paragraph(r["answer"])) != r["lang"]:
            why = f"answer not in {r['lang']}"
        if why:
            out.append({"id": r["id"], "query": r.get("query", ""), "why": why})
        if len(out) >= limit:
            break
    return out


def build_report(runs: Sequence[SuiteRun], *, run_dir: Path, baseline: dict[str, Any] | None = None) -> dict[str, Any]:
    """The report of a run; with ``baseline`` (a loaded report.json) also the comparison."""
    report: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "run_dir": run_dir.name,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": {"knowledge_os": knowledge_os.__version__},
        "suites": {r.spec.name: suite_figures(r) for r in runs},
    }
    failures = [f for s in report["suites"].values() for f in s["failures"]]
    regressions: list[str] = []
    notes: list[str] = []
    if baseline is not None:
        report["comparison"] = compare(report, baseline)
        for suite, rows in report["comparison"].items():
            ungated = set(report["suites"][suite]["ungated"])
            base_hash = ((baseline.get("suites") or {}).get(suite) or {}).get("cases_hash")
            if base_hash and base_hash != report["suites"][suite]["cases_hash"]:
                notes.append(f"{suite}: the cases differ from the baseline's (refresh it with --save-baseline)")
            for metric, row in rows.items():
                if row["regressed"] and metric not in ungated:
                    regressions.append(f"{suite}: {metric} {row['baseline']} -> {row['current']} "
                                       f"(tolerance {row['tolerance']})")
    report["gate"] = {"ok": not failures and not regressions, "failures": failures, "regressions": regressions,
                      "notes": notes}
    return report


def compare(current: dict[str, Any], baseline: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per suite and scalar metric present in both: baseline, current, delta and whether it
    regressed (moved in the bad direction by more than the current suite's tolerance).
    A value that became undefined (None: no case applies, or AUROC with one class only) is
    listed with ``delta`` None and not counted as a regression. Suites or metrics missing
    from the baseline are left out."""
    out: dict[str, dict[str, Any]] = {}
    for name, suite in current["suites"].items():
        base = (baseline.get("suites") or {}).get(name)
        if not base:
            continue
        rows: dict[str, Any] = {}
        for metric, tol in suite["tolerances"].items():
            if metric not in (base.get("metrics") or {}):
                continue
            b, c = base["metrics"][metric], suite["metrics"][metric]
            if b is None:
                continue
            if c is None:
                rows[metric] = {"baseline": b, "current": None, "delta": None, "tolerance": tol, "regressed": False}
                continue
            delta = round(c - b, 4)
            worse = -delta if resolve(metric)[0].better == "higher" else delta
            rows[metric] = {"baseline": b, "current": c, "delta": delta, "tolerance": tol,
                            "regressed": worse > tol + 1e-9}
        out[name] = rows
    return out


def load_report(path: Path) -> dict[str, Any]:
    """A saved report.json.

    Raises:
        InputError: unreadable, not JSON, or not a ``kos.eval-report/1`` report.
    """
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise InputError(f"{path}: cannot read the baseline: {exc.strerror or exc}") from exc
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{path}: the baseline is not JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("schema") != REPORT_SCHEMA:
        raise InputError(f"{path}: not a {REPORT_SCHEMA} report")
    return data


def write_report(report: dict[str, Any], runs: Sequence[SuiteRun], run_dir: Path) -> list[Path]:
    """Write report.json, report.md and the plots into ``run_dir``; returns the files written."""
    run_dir.mkdir(parents=True, exist_ok=True)
    plots = write_plots(runs, report, run_dir)
    (run_dir / "report.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    (run_dir / "report.md").write_text(render_markdown(report, [p.name for p in plots]), encoding="utf-8")
    return [run_dir / "report.json", run_dir / "report.md", *plots]
