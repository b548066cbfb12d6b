"""How many of the true top N the trend domain's figures name, on this machine's changelogs.

Usage::

    python scripts/evals/trend_rankings.py [--doc-dir /usr/share/doc] [--as-of 2026-12-01] [--n 30] [--seed 7]

The cases and their answers come from the independent ground truth
(``knowledge_os.evals.truth``, builder ``trend_rankings``: changelogs parsed with
python-debian, entities counted there). The figures are ``compute_trend`` over the same
changelogs read by the project's reader into a temporary document store (no model, no
embedding). Prints one line per case (parsed ranking, period, true top N named in the
table and in the data-written summary, counts equal) and the totals.
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import date
from pathlib import Path

import knowledge_os.domains
from knowledge_os.domains.ranking import parse_ranking
from knowledge_os.domains.registry import load_domain_file
from knowledge_os.domains.trend import compute_trend
from knowledge_os.evals.truth import build_cases
from knowledge_os.retrieval.docstore import DocumentStore
from knowledge_os.retrieval.query import analyze_query
from knowledge_os.retrieval.sources import default_corpus, discover, read_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--doc-dir", type=Path, default=Path("/usr/share/doc"))
    parser.add_argument("--as-of", type=date.fromisoformat, default=date.today())
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    cases = build_cases("trend_rankings", doc_dir=args.doc_dir, as_of=args.as_of, n=args.n, seed=args.seed)
    spec = load_domain_file(Path(knowledge_os.domains.__file__).parent / "builtin" / "trend.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        store = DocumentStore(Path(tmp) / "docs.db")
        files, _ = discover(default_corpus(args.doc_dir))
        for src in files:
            store.upsert(read_file(src)[0])
        channels = store.channels()
        totals = {"cases": 0, "true": 0, "table": 0, "summary": 0, "exact": 0, "period": 0}
        for case in cases:
            exp = case["expected"]
            analysis = analyze_query(case["query"], channels=channels, as_of=args.as_of)
            stats = compute_trend(store, spec, analysis, as_of=args.as_of)
            truth = exp["top_entities"]
            in_table = sum(1 for name in truth if name in stats["table"])
            in_summary = sum(1 for name in truth if name in stats["summary"])
            rows = (stats["ranking"] or {}).get("rows", [])
            got = [(r["name"].split(" <")[0] if "<" in r["name"] else r["name"], r["current"]) for r in rows]
            exact = got[: len(truth)] == list(zip(truth, exp["counts"], strict=True))
            period_ok = (stats["window"]["from"], stats["window"]["to"]) == (exp["period"]["from"],
                                                                             exp["period"]["to"])
            totals["cases"] += 1
            totals["true"] += len(truth)
            totals["table"] += in_table
            totals["summary"] += in_summary
            totals["exact"] += exact
            totals["period"] += period_ok
            parsed = parse_ranking(case["query"])
            what = f"{parsed.entity}/{parsed.measure}/{parsed.n}" if parsed else "no ranking"
            print(f"{case['id']} [{case['lang']}] {case['query']!r}\n    parsed {what}; window "
                  f"{stats['window']['from']}..{stats['window']['to']} (truth {exp['period']['from']}.."
                  f"{exp['period']['to']}); named in table {in_table}/{len(truth)}, in summary "
                  f"{in_summary}/{len(truth)}; rows equal truth: {exact}")
        store.close()
    t = totals
    print(f"\n{t['cases']} cases: true top-N entities named in the table {t['table']}/{t['true']}, "
          f"in the summary {t['summary']}/{t['true']}; rows equal to the truth (names, order, counts) "
          f"{t['exact']}/{t['cases']}; window equal to the truth's period {t['period']}/{t['cases']}")


if __name__ == "__main__":
    main()
