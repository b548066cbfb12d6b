"""Time to searchable, per retriever, of a fresh ingest of this machine's changelogs, and
the time to the first answer (knowledge_os/retrieval/ingest.py: text stage, then vectors).

    .venv/bin/python benchmarks/bench_ingest.py [--limit FILES] [--home DIR]
    /usr/bin/time -v .venv/bin/python benchmarks/bench_ingest.py      # peak RSS too

Ingests into a fresh KOS_HOME (a temporary folder unless ``--home``), through the Python
API with the configured embedder. When the text stage ends it checks that the exact-id,
full-text and graph retrievers find documents, and times one run (the first answer, with
its ``index_complete`` flag); when the vectors are in, that the vector retriever finds
them. Prints entries/s, embedding tokens/s (the embedder's own token count, when it has
one), per stage the process's CPU seconds and the cores used (CPU-s / wall-s, all
threads), the peak RSS and the load average: on a shared machine the wall times are the
load's, the CPU figures much less so.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from knowledge_os.api import KnowledgeOS
from knowledge_os.retrieval.ingest import EMBED_RECIPE, embed_text
from knowledge_os.retrieval.sources import DEFAULT_DEBIAN_DOC_DIR, default_corpus
from knowledge_os.settings import Settings


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def probe(kos: KnowledgeOS, stage: str, t0: float, marks: dict[str, Any]) -> None:
    """Record when each retriever finds documents (called at each stage's end)."""
    s = kos.services
    now = time.perf_counter() - t0
    marks[f"cpu_{stage}"] = cpu_s()
    marks[f"wall_{stage}"] = now
    if stage == "text":
        docs = s.docstore.count()
        some = next(iter(s.docstore.iter_documents()))
        word = some.title.split()[0]
        marks["exact"] = now if s.docstore.by_entities([f"package:{some.channel}"], limit=1) else None
        marks["full_text"] = now if s.docstore.search_text(word, flt=None, limit=1) else None
        marks["graph"] = now if s.graph_store.expand([f"package:{some.channel}"], depth=1, limit=1) else None
        marks["documents"] = docs
        t = time.perf_counter()
        r = kos.run("Which upload fixed CVE-2024-6387?", use_cache=False)
        marks["first_answer"] = time.perf_counter() - t0
        marks["first_answer_run_s"] = time.perf_counter() - t
        marks["first_answer_index_complete"] = r.index_complete
        marks["first_answer_grounded"] = r.quality.grounded
        marks["cpu_text_end"], marks["wall_text_end"] = cpu_s(), time.perf_counter() - t0
    else:
        vec = s.query_embedder.embed("openssl security fix")
        marks["vector"] = now if s.vector_store.search(vec, top_k=1) else None
        marks["vectors"] = s.vector_store.count()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, help="ingest only the first N changelog files")
    ap.add_argument("--home", type=Path, help="KOS_HOME to ingest into (default: a new temporary folder)")
    args = ap.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="kos-bench-ingest-"))
    files = default_corpus(DEFAULT_DEBIAN_DOC_DIR)
    if args.limit:
        files = files[: args.limit]
    load0 = os.getloadavg()
    kos = KnowledgeOS(Settings(home=home))
    marks: dict[str, Any] = {}
    c0 = cpu_s()
    t0 = time.perf_counter()
    report = kos.ingest(files, on_stage=lambda stage, _r: probe(kos, stage, t0, marks))
    wall = time.perf_counter() - t0
    cpu = cpu_s() - c0
    model = getattr(kos.services.embedder, "_model", None)
    tokens = None
    if model is not None and hasattr(model, "token_count"):
        tokens = sum(model.token_count(embed_text(d)) for d in kos.services.docstore.iter_documents())
    d = report.as_dict()
    print(f"home {home}: {d['files']} files, {d['documents']} documents, {d['embedded']} embedded "
          f"({kos.services.embedder.name}, {kos.settings.embedder.threads} threads, "
          f"batch {kos.settings.embedder.batch_size})")
    print(f"{'retriever':22} {'searchable after s':>18}")
    for name in ("exact", "full_text", "graph", "vector"):
        v = marks.get(name)
        print(f"{name:22} {v if v is None else round(v, 1):>18}")
    print(f"{'first answer':22} {marks['first_answer']:18.1f}  (the run itself {marks['first_answer_run_s']:.1f} s; "
          f"index_complete={marks['first_answer_index_complete']}, grounded={marks['first_answer_grounded']})")
    text_cpu = marks["cpu_text"] - c0
    vec_cpu = marks["cpu_vectors"] - marks["cpu_text_end"]  # from when the first answer's run ended
    vec_wall = marks["wall_vectors"] - marks["wall_text_end"]
    print(f"\ntext stage {d['seconds_to_text']} s ({d['documents'] / max(1e-9, d['seconds_to_text']):.0f} entries/s), "
          f"CPU {text_cpu:.1f} s ({text_cpu / max(1e-9, marks['wall_text']):.2f} cores)")
    print(f"vector stage {vec_wall:.1f} s ({d['embedded'] / max(1e-9, vec_wall):.1f} entries/s"
          + (f", {tokens / max(1e-9, vec_wall):.0f} tokens/s" if tokens else "")
          + f"), CPU {vec_cpu:.0f} s ({vec_cpu / max(1e-9, vec_wall):.2f} cores; "
          f"{1000 * vec_cpu / max(1, d['embedded']):.1f} CPU-s per 1,000 entries"
          + (f", {tokens / max(1e-9, vec_cpu):.0f} tokens per CPU-s, {tokens} tokens of recipe {EMBED_RECIPE}"
             if tokens else "") + ")")
    print(f"whole ingest {wall:.1f} s ({d['entries_per_s']} entries/s), CPU {cpu:.0f} s ({cpu / wall:.2f} cores); "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    print(f"load average {load0[0]:.2f} at start, {os.getloadavg()[0]:.2f} at end (2 cores)")
    kos.close()


if __name__ == "__main__":
    main()
