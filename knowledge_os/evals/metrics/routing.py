"""Routing metrics: accuracy, macro-F1, per-domain precision/recall, confusion matrix,
expected calibration error (ECE) with its reliability bins, and the share of queries the
router had to ask the LLM about.

All functions are pure: lists in, numbers or plain dicts out. Definitions follow the
usual ones (scikit-learn's ``f1_score(average="macro")``; ECE as in Guo et al. 2017,
"On Calibration of Modern Neural Networks", equal-width bins, weighted by bin size).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "LLM_METHODS",
    "accuracy",
    "confusion_matrix",
    "expected_calibration_error",
    "llm_share",
    "macro_f1",
    "per_class_precision_recall",
    "reliability_bins",
]

LLM_METHODS = frozenset({"llm", "fallback"})
"""Route methods that mean the heuristics were not confident enough and the LLM was asked
(``fallback``: asked, but it failed or timed out; see knowledge_os/nodes/route.py)."""


def accuracy(y_true: Sequence[str], y_pred: Sequence[str]) -> float | None:
    """Share of predictions equal to the label; None for no cases.

    Args:
        y_true: N labels.
        y_pred: N predictions, same order.
    """
    _same_length(y_true, y_pred)
    if not y_true:
        return None
    return sum(t == p for t, p in zip(y_true, y_pred, strict=True)) / len(y_true)


def per_class_precision_recall(y_true: Sequence[str], y_pred: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per label seen in either list: precision, recall, F1 and support (true count).

    A label never predicted has precision 0.0 (scikit-learn's ``zero_division=0``).

    Returns:
        ``{label: {"precision": p, "recall": r, "f1": f, "support": n}}``, labels sorted.
    """
    _same_length(y_true, y_pred)
    out: dict[str, dict[str, float]] = {}
    for label in sorted(set(y_true) | set(y_pred)):
        tp = sum(t == label and p == label for t, p in zip(y_true, y_pred, strict=True))
        predicted = sum(p == label for p in y_pred)
        support = sum(t == label for t in y_true)
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[label] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    return out


def macro_f1(y_true: Sequence[str], y_pred: Sequence[str]) -> float | None:
    """Unweighted mean of per-label F1 over the labels that occur in ``y_true``."""
    table = per_class_precision_recall(y_true, y_pred)
    labels = sorted(set(y_true))
    if not labels:
        return None
    return sum(table[label]["f1"] for label in labels) / len(labels)


def confusion_matrix(y_true: Sequence[str], y_pred: Sequence[str]) -> dict[str, dict[str, int]]:
    """``{true_label: {predicted_label: count}}`` over every label seen, zeros included."""
    _same_length(y_true, y_pred)
    labels = sorted(set(y_true) | set(y_pred))
    matrix = {t: dict.fromkeys(labels, 0) for t in labels}
    for t, p in zip(y_true, y_pred, strict=True):
        matrix[t][p] += 1
    return matrix


def reliability_bins(confidences: Sequence[float], correct: Sequence[bool], *, n_bins: int = 10) -> list[dict[str, float]]:
    """Equal-width confidence bins on [0, 1] with their mean confidence and accuracy.

    A confidence of exactly 1.0 falls in the last bin; values outside [0, 1] are clipped.

    Returns:
        ``n_bins`` dicts ``{"lo", "hi", "count", "confidence", "accuracy"}`` (confidence
        and accuracy are 0.0 for an empty bin).
    """
    _same_length(confidences, correct)
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    sums = [[0, 0.0, 0] for _ in range(n_bins)]  # count, confidence sum, correct count
    for c, ok in zip(confidences, correct, strict=True):
        c = min(max(float(c), 0.0), 1.0)
        b = min(int(c * n_bins), n_bins - 1)
        sums[b][0] += 1
        sums[b][1] += c
        sums[b][2] += bool(ok)
    return [
        {"lo": i / n_bins, "hi": (i + 1) / n_bins, "count": n,
         "confidence": (s / n) if n else 0.0, "accuracy": (k / n) if n else 0.0}
        for i, (n, s, k) in enumerate(sums)
    ]


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool], *, n_bins: int = 10) -> float | None:
    """ECE = sum over bins of (bin size / N) * |accuracy - mean confidence|; None for no cases.

    0.0 is perfectly calibrated; 1.0 is the worst possible.
    """
    bins = reliability_bins(confidences, correct, n_bins=n_bins)
    total = sum(b["count"] for b in bins)
    if not total:
        return None
    return sum(b["count"] / total * abs(b["accuracy"] - b["confidence"]) for b in bins)


def llm_share(methods: Sequence[str]) -> float | None:
    """Share of route decisions whose method is in :data:`LLM_METHODS`; None for no cases."""
    if not methods:
        return None
    return sum(m in LLM_METHODS for m in methods) / len(methods)


def _same_length(a: Sequence[object], b: Sequence[object]) -> None:
    if len(a) != len(b):
        raise ValueError(f"lengths differ: {len(a)} vs {len(b)}")
