"""Checklist rules for self-verification. A domain YAML names rules and weights.

The score of a draft is the weighted share of the rules that apply to it, in [0, 1].
Three rules are always on whatever the YAML says:

- ``citations_valid`` (weight 2): every ``[n]`` marker refers to a listed document.
- ``claims_grounded`` (weight 3, blocking): every version, package, CVE id, bug number,
  date, count, name and e-mail of the summary is traced to the cited documents, the
  computed figures or the question (:mod:`knowledge_os.domains.claims`); each
  untraceable claim is one issue naming its token. It applies when the summary makes
  at least one claim of the kinds the domain checks (``grounding.claims``).
- ``language_matches`` (weight 1, blocking): the summary's prose is in the question's
  language (:func:`knowledge_os.i18n.detect_language`). It applies when the question's
  language is known and the summary has at least 12 letters outside ids and names.

A *blocking* rule that fails fails the draft whatever it scores (``verify`` sets
``passed`` false): an answer with an invented claim or in the wrong language cannot pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from knowledge_os.domains.claims import CLAIM_KINDS, Evidence, cve_ids, extract_claims, trace_claims, ungrounded
from knowledge_os.domains.entries import signer
from knowledge_os.i18n import detect_language

__all__ = ["ALWAYS_ON", "BLOCKING", "CHECKS", "CheckInput", "cited_numbers", "run_checklist"]

_CITE_RE = re.compile(r"\[(\d{1,3})\]")
_NUMBER_RE = re.compile(r"(?<![\w.-])(\d+(?:\.\d+)?)(?![\w-])")


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckInput:
    """What a rule sees: the draft, the documents it may cite (in [n] order), the
    retrieved documents, the statistics (trend) and the analysed query.

    Attributes:
        question: The question as asked (claims may restate it).
        lang: The question's language (``"en"``/``"ru"``); None skips the language rule.
        claim_kinds: Kinds of claim the domain checks (``grounding.claims``).
        vocabulary: Package/channel names known to this run (retrieved documents, the
            question's packages); each one written in the summary is a package claim.
        periods: ``(from, to)`` ISO days of the asked and computed windows.
        today: The run's "today" (ISO day).
    """

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
    question: str = ""
    lang: str | None = None
    claim_kinds: tuple[str, ...] = CLAIM_KINDS
    vocabulary: tuple[str, ...] = ()
    periods: tuple[tuple[str, str], ...] = ()
    today: str | None = None


def cited_numbers(text: str) -> list[int]:
    """The ``[n]`` markers in ``text``, in order, with repeats."""
    return [int(m) for m in _CITE_RE.findall(text)]


Result = tuple[bool, str | None]
NOT_APPLICABLE: Result = (True, "n/a")  # a rule with nothing to check: not counted in the score


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
    """A CVE or bug named in the question must be answered with the upload that fixed it.
    An id that no retrieved document holds cannot be cited: the answer says so instead
    (``compose.ID_NOT_FOUND``), and the rule does not count it."""
    held = " ".join(d["text"].upper() for d in x.documents)
    wanted = [w for w in [c.upper() for c in x.cves] + [f"#{b}" for b in x.bugs] if w.lstrip("#") in held]
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


def _stats_names(stats: dict[str, Any] | None) -> list[str]:
    """Entity names the statistics name (string leaves, ``[name, count]`` pairs)."""
    out: list[str] = []

    def walk(v: Any, key: str = "") -> None:
        if key in ("table", "as_of"):
            return
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, dict):
            for k, x in v.items():
                out.append(str(k))
                walk(x, str(k))
        elif isinstance(v, (list, tuple)):
            for x in v:
                walk(x, key)

    walk(stats or {})
    return out


def claim_issues(x: CheckInput) -> tuple[int, list[str]]:
    """The number of claims the summary makes and one issue per ungrounded claim."""
    text = x.summary
    claims = extract_claims(text, x.claim_kinds, vocabulary=x.vocabulary)
    if not claims:
        return 0, []
    stats = x.stats or {}
    numbers = [float(n) for n in stats.get("numbers", [])] + [float(len(x.cited_docs)), float(len(x.documents))]
    numbers += [float(len(cve_ids(d.get("text") or ""))) for d in x.cited_docs]
    evidence = Evidence(
        documents=x.cited_docs, numbers=numbers, texts=[stats.get("table", "")] if stats else [],
        names=_stats_names(stats), question=x.question, periods=x.periods, today=x.today,
    )
    bad = ungrounded(trace_claims(claims, evidence))
    return len(claims), [f"{c.kind} {c.token!r} is not in the cited entries or the computed figures"
                         for c in bad]


def claims_grounded(x: CheckInput, value: Any) -> Result:
    n, issues = claim_issues(x)
    if n == 0:
        return NOT_APPLICABLE
    if issues:
        return False, "\n".join(issues)
    return True, None


_LANG_NAMES = {"en": "English", "ru": "Russian"}
_NEUTRAL_WORDS = re.compile(r"\[\d{1,3}\]|CVE-\d{4}-\d+|#\d+|\S*\d\S*|https?://\S+|\S+@\S+")


def language_matches(x: CheckInput, value: Any) -> Result:
    if x.lang is None:
        return NOT_APPLICABLE
    prose = _NEUTRAL_WORDS.sub(" ", x.summary)
    # names copied from the data are in no language: packages, and the people who signed
    # the cited entries ("Перечисленные загрузки подписали: Samuel Henrique [1]")
    signers = {signer(d) for d in x.cited_docs} - {""}
    for name in sorted(set(x.vocabulary) | signers, key=len, reverse=True):
        prose = re.sub(rf"(?<![\w.+-]){re.escape(name)}(?![\w+-])", " ", prose, flags=re.IGNORECASE)
    if len(re.findall(r"[^\W\d_]", prose)) < 12:
        return NOT_APPLICABLE
    got = detect_language(prose)
    if got != x.lang:
        return False, (f"the summary is in {_LANG_NAMES.get(got, got)}; the question is in "
                       f"{_LANG_NAMES.get(x.lang, x.lang)}")
    return True, None


CHECKS: dict[str, Callable[[CheckInput, Any], Result]] = {
    "citations_valid": citations_valid,
    "claims_grounded": claims_grounded,
    "language_matches": language_matches,
    "min_citations": min_citations,
    "summary_present": summary_present,
    "max_words": max_words,
    "names_packages": names_packages,
    "cites_named_ids": cites_named_ids,
    "within_period": within_period,
    "numbers_from_data": numbers_from_data,
}


ALWAYS_ON: tuple[tuple[str, str, float, Any], ...] = (
    ("citations_valid", "citations_valid", 2.0, None),
    ("claims_grounded", "claims_grounded", 3.0, None),
    ("language_matches", "language_matches", 1.0, None),
)
"""Rules every domain runs, with their weights (a YAML item of the same rule replaces
the weight, never removes the rule)."""

BLOCKING = frozenset({"claims_grounded", "language_matches"})
"""Rules whose failure fails a draft whatever its score."""


def run_checklist(x: CheckInput, checklist: list[tuple[str, str, float, Any]]) -> dict[str, Any]:
    """Score a draft.

    Args:
        x: The draft and its evidence.
        checklist: ``(id, rule, weight, value)`` items from the domain YAML.

    Returns:
        ``{"score": float in [0, 1], "issues": [str], "checks": {id: bool},
        "blocking": [str]}``: ``blocking`` holds the issues of failed
        :data:`BLOCKING` rules (non-empty = the draft cannot pass). Rules with nothing
        to check (no claim, unknown language) are left out of the score and of ``checks``.
    """
    own = {c[1]: c for c in checklist}
    always = {rule for _, rule, _, _ in ALWAYS_ON}
    items = [own.get(rule, (cid, rule, w, v)) for cid, rule, w, v in ALWAYS_ON]
    items += [c for c in checklist if c[1] not in always]
    total = passed_weight = 0.0
    issues: list[str] = []
    blocking: list[str] = []
    results: dict[str, bool] = {}
    for check_id, rule, weight, value in items:
        result = CHECKS[rule](x, value)
        if result is NOT_APPLICABLE:
            continue
        ok, issue = result
        total += weight
        results[check_id] = ok
        if ok:
            passed_weight += weight
        elif issue:
            for part in issue.split("\n"):  # a rule may name several problems, one a line
                issues.append(f"{check_id}: {part}")
                if rule in BLOCKING:
                    blocking.append(f"{check_id}: {part}")
    return {"score": round(passed_weight / total, 3) if total else 1.0, "issues": issues,
            "checks": results, "blocking": blocking}
