"""Answer metrics: id accuracy, citation precision/recall, language match, and how well
``quality.score`` predicts correctness (AUROC and ECE).

Pure functions. The grounded-claim rate itself is computed by the independent checker
(``knowledge_os.evals.truth.check_answer``); :func:`grounded_claim_rate` only pools its
per-answer counts.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

__all__ = [
    "auroc",
    "citation_precision",
    "citation_recall",
    "grounded_claim_rate",
    "id_accuracy",
    "language_of",
    "lead_paragraph",
    "names_id",
    "token_f1",
]

_CYRILLIC = re.compile(r"[\u0400-\u04FF]")
_LATIN = re.compile(r"[A-Za-z]")
# Ids, versions, package-like and e-mail tokens are Latin whatever the language.
_NEUTRAL = re.compile(r"\S+@\S+|CVE-\d{4}-\d+|#\d+|\S*\d\S*|\[[^\]]*\]")


def names_id(answer: str, ident: str) -> bool:
    """Whether the answer names ``ident`` as a whole token, case-insensitively.

    ``#1055473`` also matches ``bug 1055473``; ``CVE-2024-6387`` does not match inside
    ``CVE-2024-63870``.
    """
    text = answer.lower()
    ident = ident.strip().lower()
    forms = [ident, ident.lstrip("#")] if ident.startswith("#") else [ident]
    return any(re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])", text) for f in forms if f)


def id_accuracy(answer: str, expected_ids: Collection[str]) -> float | None:
    """Share of ``expected_ids`` the answer names (see :func:`names_id`); None if none expected."""
    if not expected_ids:
        return None
    return sum(names_id(answer, i) for i in expected_ids) / len(expected_ids)


def citation_precision(cited: Sequence[str], relevant: Collection[str]) -> float | None:
    """Share of cited ids that are relevant; None when nothing is cited or nothing is relevant."""
    cited_set = set(cited)
    if not cited_set or not relevant:
        return None
    return len(cited_set & set(relevant)) / len(cited_set)


def citation_recall(cited: Sequence[str], relevant: Collection[str]) -> float | None:
    """Share of relevant ids that are cited; None when nothing is relevant."""
    rel = set(relevant)
    if not rel:
        return None
    return len(set(cited) & rel) / len(rel)


def language_of(text: str) -> str:
    """``"ru"`` when Cyrillic letters are at least a third of the letters outside ids,
    versions, e-mails and ``[n]`` markers; ``"en"`` otherwise (also for empty text).

    Deliberately separate from ``knowledge_os.i18n.detect_language`` so the eval does not
    grade the pipeline with its own detector.
    """
    rest = _NEUTRAL.sub(" ", text)
    cyr = len(_CYRILLIC.findall(rest))
    lat = len(_LATIN.findall(rest))
    return "ru" if cyr and cyr * 3 >= cyr + lat else "en"


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = re.compile(r"[^\w\s]")


def _answer_tokens(text: str) -> list[str]:
    return _ARTICLES.sub(" ", _PUNCT.sub(" ", text.lower())).split()


def token_f1(answer: str, references: Sequence[str]) -> float | None:
    """Best token-overlap F1 of ``answer`` against any reference answer (the SQuAD /
    NarrativeQA evaluation: lower-cased, punctuation and articles removed); None without
    references."""
    if not references:
        return None
    pred = _answer_tokens(answer)
    best = 0.0
    for ref in references:
        gold = _answer_tokens(ref)
        common = sum(min(pred.count(t), gold.count(t)) for t in set(gold))
        if common:
            p, r = common / len(pred), common / len(gold)
            best = max(best, 2 * p * r / (p + r))
    return best


def lead_paragraph(answer: str) -> str:
    """The answer up to its first blank line: the prose written for the question. What
    follows is often quoted changelog text, which is in the changelog's language."""
    return answer.strip().split("\n\n", 1)[0]


def grounded_claim_rate(claims: Sequence[int], ungrounded: Sequence[int]) -> float | None:
    """Pooled share of grounded claims: 1 - sum(ungrounded) / sum(claims); None if no claims.

    Args:
        claims: Per answer, the number of checkable claims.
        ungrounded: Per answer, how many of them the checker could not ground.
    """
    if len(claims) != len(ungrounded):
        raise ValueError(f"lengths differ: {len(claims)} vs {len(ungrounded)}")
    total = sum(claims)
    if not total:
        return None
    return 1.0 - sum(ungrounded) / total


def auroc(scores: Sequence[float], positive: Sequence[bool]) -> float | None:
    """Area under the ROC curve: the probability that a random correct answer scores higher
    than a random incorrect one (ties count half; Mann-Whitney U / (n_pos * n_neg)).

    Returns:
        In [0, 1] (0.5: the score says nothing); None unless both classes occur.
    """
    if len(scores) != len(positive):
        raise ValueError(f"lengths differ: {len(scores)} vs {len(positive)}")
    pos = [s for s, p in zip(scores, positive, strict=True) if p]
    neg = [s for s, p in zip(scores, positive, strict=True) if not p]
    if not pos or not neg:
        return None
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in pos for b in neg)
    return wins / (len(pos) * len(neg))
