"""``report.md``: one section per suite with its figures, thresholds, baseline deltas,
tables (confusion matrix, per-domain precision/recall, latency per path) and failing cases."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from knowledge_os.evals.metrics import resolve

__all__ = ["render_markdown"]


def _fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        text = f"{v:.3f}" if abs(v) < 1000 else f"{v:,.0f}"
    else:
        text = str(v)
    return f"{text} {unit}".strip()


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out + [""]


def _bound(t: dict[str, Any] | None) -> str:
    if not t:
        return ""
    parts = [f">= {t['min']}" if t.get("min") is not None else "", f"<= {t['max']}" if t.get("max") is not None else ""]
    mark = " ✓" if t["ok"] else (" ✗ FAIL" if t.get("gate", True) else " ✗ (not gated)")
    return " and ".join(p for p in parts if p) + mark


def _tables(name: str, value: Any) -> list[str]:
    if name == "routing.confusion" and value:
        labels = list(value)
        cols = sorted({c for row in value.values() for c in row})
        return [f"Confusion matrix (rows: expected, columns: routed):", ""] + _table(
            ["expected \\ routed", *cols], [[t, *(str(value[t].get(c, 0)) for c in cols)] for t in labels])
    if name == "routing.per_domain" and value:
        return ["Per domain:", ""] + _table(["domain", "precision", "recall", "F1", "support"], [
            [d, _fmt(v["precision"]), _fmt(v["recall"]), _fmt(v["f1"]), str(v["support"])] for d, v in value.items()])
    if name == "kpi.latency_by_path" and value:
        return ["Latency per path:", ""] + _table(["path", "n", "p50", "p95", "max"], [
            [p, str(v["n"]), _fmt(v["p50_s"], "s"), _fmt(v["p95_s"], "s"), _fmt(v["max_s"], "s")] for p, v in value.items()])
    if name == "retrieval.by_kind" and value:
        return ["Retrieval per case kind:", ""] + _table(["kind", "n", "recall@10", "nDCG@10", "MRR"], [
            [k, str(v["n"]), _fmt(v["recall@10"]), _fmt(v["ndcg@10"]), _fmt(v["mrr"])] for k, v in value.items()])
    if name == "answers.modes" and value:
        return ["Answer modes:", ""] + _table(["mode", "answers", "corrected", "data-only"], [
            [m, str(v["n"]), str(v["corrected"]), str(v["data_only"])] for m, v in value.items()])
    if name.endswith("reliability") and value:
        rows = [[f"{b['lo']:.1f}–{b['hi']:.1f}", str(b["count"]), _fmt(b["confidence"]), _fmt(b["accuracy"])]
                for b in value if b["count"]]
        return [f"Reliability ({name}):", ""] + _table(["bin", "n", "mean confidence", "accuracy"], rows)
    return []


def render_markdown(report: dict[str, Any], plots: Sequence[str] = ()) -> str:
    """The Markdown report of a ``kos.eval-report/1`` dict; ``plots``: PNG names in the same folder."""
    gate = report["gate"]
    lines = [f"# Eval run {report['run_dir']}", "",
             f"knowledge_os {report['versions']['knowledge_os']}, {report['created_at']}. "
             f"Gate: {'**passed**' if gate['ok'] else '**FAILED**'}.", ""]
    for f in gate["failures"]:
        lines.append(f"- threshold failed: {f}")
    for r in gate["regressions"]:
        lines.append(f"- regression: {r}")
    for n in gate.get("notes", ()):
        lines.append(f"- note: {n}")
    if gate["failures"] or gate["regressions"] or gate.get("notes"):
        lines.append("")
    lines += _table(["suite", "cases", "errors", "time", "corpus"], [
        [name, str(s["cases"]), str(s["errors"]), _fmt(s["seconds"], "s"),
         s.get("corpus_source", "KOS_HOME") + (
             f": {s['documents']} documents (ingest {_fmt(s['ingest_seconds'], 's')})"
             if s["documents"] is not None else "")] for name, s in report["suites"].items()])
    comparison = report.get("comparison") or {}
    for name, s in report["suites"].items():
        lines += [f"## {name}", ""]
        if s["description"]:
            lines += [s["description"].strip(), ""]
        st = s["settings"]
        lines += ["Settings: " + ", ".join(f"{k}={v}" for k, v in st.items() if v not in (None, {}, False) or k == "loops")
                  + f" (hash {s['settings_hash']}).", ""]
        rows, extra = [], []
        cmp = comparison.get(name) or {}
        for metric, value in s["metrics"].items():
            mdef, _ = resolve(metric)
            if mdef.is_table:
                extra += _tables(metric, value)
                continue
            c = cmp.get(metric)
            gated = metric not in s.get("ungated", ())
            delta = "" if not c else (f"{_fmt(c['baseline'])} → {c['delta']:+.3f}" if c["delta"] is not None
                                      else f"{_fmt(c['baseline'])} → –")
            if c and c["regressed"]:
                delta += " **REGRESSED**" if gated else " worse (not gated)"
            rows.append([metric, _fmt(value, mdef.unit), _bound(s["thresholds"].get(metric)), delta, mdef.description])
        lines += _table(["metric", "value", "threshold", "baseline → delta", "what"], rows) + extra
        for p in plots:
            if p.startswith(f"{name}-"):
                lines += [f"![{p}]({p})", ""]
        if s["examples"]:
            lines += ["Failing cases (first 10):", ""] + _table(
                ["case", "query", "why"], [[e["id"], e["query"], e["why"]] for e in s["examples"]])
    return "\n".join(lines).rstrip() + "\n"
