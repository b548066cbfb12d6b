"""What a persona changes in the answers: does the listing lead with the persona's interests?

Every question ("What changed in <package> in <year>?", half of them in Russian, for the
most-uploaded packages of the ingested corpus and the years 2023-2025, taken in turn) runs without a persona and with each
shipped persona, the answer cache off. For each persona it prints the share of answers
whose first listed entry is of one of the persona's interests (kinds of change, by the
domain's patterns), without and with the persona; for ``security-team`` also the share
whose first entry names a CVE id (a plain regular expression, independent of the kind
table). "Eligible" answers list at least two entries, at least one of them of an interest
(the only ones whose order a persona can change). It also checks that the persona only
reorders (the same entries listed) and prints the prompt tokens and latency it adds, with
the load average. Needs the corpus ingested (``kos ingest``; KOS_HOME).

    .venv/bin/python benchmarks/bench_personas.py [--n 20]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import pct, sample_ids  # noqa: E402

from knowledge_os.api import KnowledgeOS  # noqa: E402
from knowledge_os.domains.compose import DEFAULT_CHANGE_KINDS  # noqa: E402

AS_OF = date(2026, 12, 1)
YEARS = (2025, 2024, 2023)
CVE = re.compile(r"\bCVE-\d{4}-\d{4,7}\b")
KINDS = dict(DEFAULT_CHANGE_KINDS)


def of_interest(text: str, interests: tuple[str, ...]) -> bool:
    body = text.split("\n", 1)[-1]
    return any(re.search(p, body, re.IGNORECASE) for k in interests for p in KINDS.get(k, ()))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20)
    args = ap.parse_args()
    load0 = os.getloadavg()
    kos = KnowledgeOS()
    profiles = kos.services.personas.profiles
    _cves, _bugs, packages = sample_ids(kos.settings.home)
    cases = [{"query": (f"What changed in {p} in {y}?" if i % 2 == 0 else f"Что изменилось в {p} в {y} году?"),
              "lang": "en" if i % 2 == 0 else "ru"}
             for i, (p, y) in enumerate((p, y) for y in YEARS for p in packages)][: args.n]
    kos.run("warm up: what changed in openssl?", use_cache=False, as_of=AS_OF)
    arms: dict[str | None, list[dict[str, Any]]] = {None: [], **{name: [] for name in profiles}}
    for i, case in enumerate(cases):
        order = list(arms) if i % 2 == 0 else list(reversed(arms))
        for persona in order:
            t = time.perf_counter()
            r = kos.run(case["query"], persona=persona, use_cache=False, as_of=AS_OF)
            ids = [c.id for c in r.citations]
            texts = {d.id: d.text for d in kos.services.docstore.get(ids)}
            arms[persona].append({"ids": ids, "texts": [texts[i] for i in ids], "latency_s": time.perf_counter() - t,
                                  "prompt_tokens": r.usage.prompt_tokens, "llm_calls": r.usage.llm_calls})
    load1 = os.getloadavg()
    kos.close()
    plain = arms[None]
    print(f"{len(cases)} questions ({sum(c.get('lang') == 'ru' for c in cases)} Russian), digests, "
          f"as of {AS_OF}; load average {load0[0]:.2f} at start, {load1[0]:.2f} at end (2 cores)")
    print(f"{'persona':18} {'eligible':>8} {'first of interest: without':>27} {'with':>6} {'same entries':>13} "
          f"{'+prompt tokens/run':>19} {'latency p50 s (without/with)':>29}")
    for name, profile in profiles.items():
        rows = arms[name]
        pairs = list(zip(plain, rows, strict=True))
        eligible = [(a, b) for a, b in pairs
                    if len(a["ids"]) >= 2 and any(of_interest(t, profile.interests) for t in a["texts"])]
        first_without = sum(of_interest(a["texts"][0], profile.interests) for a, _ in eligible)
        first_with = sum(of_interest(b["texts"][0], profile.interests) for _, b in eligible)
        same = sum(sorted(a["ids"]) == sorted(b["ids"]) for a, b in pairs)
        extra = statistics.mean(b["prompt_tokens"] - a["prompt_tokens"] for a, b in pairs)
        lat = f"{pct([a['latency_s'] for a in plain], 0.5):.2f}/{pct([b['latency_s'] for b in rows], 0.5):.2f}"
        print(f"{name:18} {len(eligible):>8} {first_without:>19}/{len(eligible):<7} {first_with:>3}/{len(eligible):<3}"
              f"{same:>9}/{len(pairs):<4} {extra:>19.0f} {lat:>29}")
    sec = arms.get("security-team")
    if sec:
        eligible = [(a, b) for a, b in zip(plain, sec, strict=True)
                    if len(a["ids"]) >= 2 and any(CVE.search(t) for t in a["texts"])]
        print(f"security-team, first entry names a CVE id (regex), eligible {len(eligible)}: without "
              f"{sum(bool(CVE.search(a['texts'][0])) for a, _ in eligible)}, with "
              f"{sum(bool(CVE.search(b['texts'][0])) for _, b in eligible)}")


if __name__ == "__main__":
    main()
