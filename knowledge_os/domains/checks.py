"""Checklist rules for self-verification. A domain YAML names rules and weights.

The score of a draft is the weighted share of rules it passes, in [0, 1]. One rule is
always on whatever the YAML says: every ``[n]`` marker must refer to a retrieved
document (``citations_valid``, weight 2); an invalid citation is an issue.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["CHECKS", "CheckInput", "cited_numbers", "run_checklist"]

_CITE_RE = re.compile(r"\[(\d{1,3})\]")
_NUMBER_RE = re.compile(r"(?<![\w.-])(\d+(?:\.\d+)?)(?![\w-])")


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckInput:
    """What a rule sees: the draft, the documents it may cite (in [n] order), the
    retrieved documents, the statistics (trend) and the analysed query."""

    answer: str
    summary: str
    cited_docs: list[dict[str, Any]]
    documents: list[dict[str, Any]]
    stats: dict[str, Any] | None
    cves: tuple[str, ...]
    bugs: tuple[str, ...]
    packages: tuple[str, ...]
    ts_from: int | None
    ts_to: int | None


def cited_numbers(text: str) -> list[int]:
    """The ``[n]`` markers in ``text``, in order, with repeats."""
    return [int(m) for m in _CITE_RE.findall(text)]


Result = tuple[bool, str | None]


def citations_valid(x: CheckInput, value: Any) -> Result:
    bad = sorted({n for n in cited_numbers(x.answer) if not 1 <= n <= len(x.cited_docs)})
    if bad:
        return False, f"citation(s) {', '.join(f'[{n}]' for n in bad)} refer to no retrieved document"
    return True, None


def min_citations(x: CheckInput, value: Any) -> Result:
    need = int(value or 1)
    have = len({n for n in cited_numbers(x.answer) if 1 <= n <= len(x.cited_docs)})
    if have < need and x.documents:
        return False, f"cites {have} document(s), needs at least {need}"
    return True, None


def summary_present(x: CheckInput, value: Any) -> Result:
    words = len(x.summary.split())
    need = int(value or 8)
    if words < need:
        return False, f"summary has {words} words, needs at least {need}"
    return True, None


def max_words(x: CheckInput, value: Any) -> Result:
    words = len(x.summary.split())
    if words > int(value):
        return False, f"summary has {words} words, at most {value} allowed"
    return True, None


def names_packages(x: CheckInput, value: Any) -> Result:
    lowered = x.answer.lower()
    missing = [p for p in x.packages if p.lower() not in lowered]
    if missing:
        return False, f"does not mention {', '.join(missing)}"
    return True, None


def cites_named_ids(x: CheckInput, value: Any) -> Result:
    """A CVE or bug named in the question must be answered with the upload that fixed it."""
    wanted = [c.upper() for c in x.cves] + [f"#{b}" for b in x.bugs]
    if not wanted:
        return True, None
    cited = {n for n in cited_numbers(x.answer) if 1 <= n <= len(x.cited_docs)}
    texts = [x.cited_docs[n - 1]["text"].upper() for n in cited]
    missing = [w for w in wanted if not any(w.lstrip("#") in t for t in texts)]
    if missing:
        return False, f"no cited entry contains {', '.join(missing)}"
    return True, None


def within_period(x: CheckInput, value: Any) -> Result:
    cited = {n for n in cited_numbers(x.answer) if 1 <= n <= len(x.cited_docs)}
    out = [x.cited_docs[n - 1]["id"] for n in sorted(cited)
           if (x.ts_from is not None and x.cited_docs[n - 1]["ts"] < x.ts_from)
           or (x.ts_to is not None and x.cited_docs[n - 1]["ts"] >= x.ts_to)]
    if out:
        return False, f"cites entries outside the asked period: {', '.join(out[:3])}"
    return True, None


def numbers_from_data(x: CheckInput, value: Any) -> Result:
    """Every number in the summary must appear in the statistics or the cited entries."""
    allowed = {float(n) for n in (x.stats or {}).get("numbers", [])}
    source_text = " ".join(d["text"] + " " + d.get("date", "") for d in x.cited_docs)
    allowed.update(float(n) for n in _NUMBER_RE.findall(source_text))
    summary = _CITE_RE.sub(" ", x.summary)
    invented = [n for n in _NUMBER_RE.findall(summary) if float(n) not in allowed]
    if invented:
        return False, f"numbers not found in the data: {', '.join(invented[:5])}"
    return True, None


CHECKS: dict[str, Callable[[CheckInput, Any], Result]] = {
    "citations_valid": citations_valid,
    "min_citations": min_citations,
    "summary_present": summary_present,
    "max_words": max_words,
    "names_packages": names_packages,
    "cites_named_ids": cites_named_ids,
    "within_period": within_period,
    "numbers_from_data": numbers_from_data,
}


def run_checklist(x: CheckInput, checklist: list[tuple[str, str, float, Any]]) -> dict[str, Any]:
    """Score a draft.

    Args:
        x: The draft and its evidence.
        checklist: ``(id, rule, weight, value)`` items from the domain YAML.

    Returns:
        ``{"score": float in [0, 1], "issues": [str], "checks": {id: bool}}``.
    """
    items = [("citations_valid", "citations_valid", 2.0, None)]
    items += [c for c in checklist if c[1] != "citations_valid"]
    total = passed_weight = 0.0
    issues: list[str] = []
    results: dict[str, bool] = {}
    for check_id, rule, weight, value in items:
        ok, issue = CHECKS[rule](x, value)
        total += weight
        results[check_id] = ok
        if ok:
            passed_weight += weight
        elif issue:
            issues.append(f"{check_id}: {issue}")
    return {"score": round(passed_weight / total, 3) if total else 1.0, "issues": issues, "checks": results}
