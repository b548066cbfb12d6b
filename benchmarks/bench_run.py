"""Where a Fast Path run spends its time: p50/p95 per run split into route / retrieve / LLM /
rest, and per LLM call prompt vs generated tokens, prompt-eval and generation tokens/s,
time to first token and CPU time (llama.cpp's own counters, ``CallTimings`` in
knowledge_os/llm/chat.py). Needs an ingested corpus: run `kos ingest` first (KOS_HOME).

    .venv/bin/python benchmarks/bench_run.py [--n 40] [--repeat 1] [--seed 11] [--show-calls]
    .venv/bin/python benchmarks/bench_run.py --ab threads        # lever A/B, interleaved

The questions are the ``full-kpi`` eval suite's (the ``answers`` case mix: CVE and bug
lookups, package periods, trend kinds and rankings, free text, English and Russian; seed
11, as of 2026-11-22). Runs go through the Python API (the same graph, checkpointer and
models as `kos run`), on the Fast Path with the answer cache off, so every run does the
work; the process start (model load) is reported separately.

``--ab LEVER`` runs every question under setting A and setting B of one lever, the order
alternating (A B, B A, ...) so that load on the shared cores falls on both alike; it
prints both arms side by side, with CPU time and the load average. Each arm has its own
llama.cpp instance, so its prompt-prefix (KV cache) reuse is the one it would have alone.
Levers: see :data:`LEVERS`.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import pct  # noqa: E402

from knowledge_os.api import KnowledgeOS  # noqa: E402
from knowledge_os.evals.truth.builders import build_cases  # noqa: E402

AS_OF = date(2026, 11, 22)  # the full-kpi suite's
SEED = 11


class CallCollector(BaseCallbackHandler):
    """Keeps the ``timings`` of every chat-model call (response_metadata)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, float]] = []

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        for gens in response.generations:
            for g in gens:
                meta = getattr(getattr(g, "message", None), "response_metadata", None) or {}
                if "timings" in meta:
                    self.calls.append(dict(meta["timings"]))


@dataclass
class Arm:
    """Figures of one setting: runs and LLM calls."""

    name: str
    runs: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, float]] = field(default_factory=list)
    cpu_s: float = 0.0


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def lead_figures(answer: str, citations: list[str], expected: list[str]) -> tuple[bool, float] | None:
    """``(hit, precision)`` of the entries an answer's summary (its first paragraph) cites
    against the case's expected entries: hit when it cites one of them, precision the
    share of its citations that are expected. None for a case with no expected entries
    (trend questions) or a summary citing nothing. The listing below the summary cites
    every listed entry whatever the model chose, so this is what the choice changes."""
    if not expected:
        return None
    cited = {citations[n - 1] for n in map(int, re.findall(r"\[(\d+)\]", answer.split("\n\n", 1)[0]))
             if 1 <= n <= len(citations)}
    if not cited:
        return None
    good = cited & set(expected)
    return bool(good), len(good) / len(cited)


def run_one(kos: KnowledgeOS, collector: CallCollector, query: str, arm: Arm,
            expected: list[str] | None = None) -> dict[str, Any]:
    before = len(collector.calls)
    c0 = cpu_s()
    t = time.perf_counter()
    r = kos.run(query, use_cache=False, path="fast", as_of=AS_OF)
    total = (time.perf_counter() - t) * 1000
    run_cpu = cpu_s() - c0
    arm.cpu_s += run_cpu
    tm = r.manifest["timings_ms"]
    llm = sum(v for k, v in tm.items() if k.startswith("llm."))
    retrieve = sum(v for k, v in tm.items() if k.startswith("retrieve."))
    route = tm.get("route", 0.0)
    calls = collector.calls[before:]
    arm.calls.extend(calls)
    row = {
        "total": total, "route": route, "retrieve": retrieve, "llm": llm,
        "rest": max(0.0, total - route - retrieve - llm),
        "domain": r.domain, "method": r.route.method, "score": r.quality.score,
        "grounded": r.quality.grounded, "data_only": r.data_only, "mode": r.answer_mode,
        "llm_calls": r.usage.llm_calls, "query": query, "calls": calls, "cpu_s": run_cpu,
        "lead": lead_figures(r.answer, [c.id for c in r.citations], expected or []),
        "summary": r.answer.split("\n\n", 1)[0],
    }
    arm.runs.append(row)
    return row


def print_run(row: dict[str, Any], arm: str = "") -> None:
    calls = " ".join(f"{c['prompt_tokens']}p/{c['prompt_eval_tokens']}e/{c['gen_tokens']}g:{c['total_ms']:.0f}ms"
                     for c in row["calls"])
    print(f"{arm}{row['total']:7.0f} ms {row['domain']:6} {row['method']:9} {row['mode']:10} "
          f"q={row['score']:.2f} grounded={int(row['grounded'])} data_only={int(row['data_only'])} "
          f"[{calls}]  {row['query'][:70]}\n{'':>12}-> {row['summary'][:160]}")


def summarise_arm(arm: Arm) -> dict[str, float]:
    runs, calls = arm.runs, arm.calls
    totals = [r["total"] for r in runs]
    pe_tok = sum(c["prompt_eval_tokens"] for c in calls)
    pe_ms = sum(c["prompt_eval_ms"] for c in calls)
    g_tok = sum(c["gen_tokens"] for c in calls)
    g_ms = sum(c["gen_ms"] for c in calls)
    leads = [r["lead"] for r in runs if r.get("lead") is not None]
    return {
        "runs": len(runs),
        "p50_ms": pct(totals, 0.5),
        "p95_ms": pct(totals, 0.95),
        "max_ms": max(totals),
        "llm_p50_ms": pct([r["llm"] for r in runs], 0.5),
        "cpu_s_per_run": arm.cpu_s / max(1, len(runs)),
        "cpu_p50_s": pct([r["cpu_s"] for r in runs], 0.5),
        "cpu_p95_s": pct([r["cpu_s"] for r in runs], 0.95),
        "llm_calls_per_run": len(calls) / max(1, len(runs)),
        "prompt_tokens_per_call": statistics.mean(c["prompt_tokens"] for c in calls) if calls else 0.0,
        "eval_tokens_per_call": pe_tok / max(1, len(calls)),
        "eval_tokens_per_run": pe_tok / max(1, len(runs)),
        "evaluated_share": pe_tok / max(1, sum(c["prompt_tokens"] for c in calls)),
        "gen_tokens_per_call": statistics.mean(c["gen_tokens"] for c in calls) if calls else 0.0,
        "prompt_tok_s": pe_tok / (pe_ms / 1000) if pe_ms else 0.0,
        "gen_tok_s": g_tok / (g_ms / 1000) if g_ms else 0.0,
        "first_token_p50_ms": pct([c["first_token_ms"] for c in calls], 0.5) if calls else 0.0,
        "prompt_ms_share": pe_ms / max(1e-9, sum(c["total_ms"] for c in calls)),
        "gen_ms_share": g_ms / max(1e-9, sum(c["total_ms"] for c in calls)),
        "other_ms_share": sum(c["other_ms"] for c in calls) / max(1e-9, sum(c["total_ms"] for c in calls)),
        "grounded": sum(r["grounded"] for r in runs) / max(1, len(runs)),
        "data_only": sum(r["data_only"] for r in runs) / max(1, len(runs)),
        "score_mean": statistics.mean(r["score"] for r in runs),
        "lead_hit": sum(h for h, _ in leads) / max(1, len(leads)),
        "lead_precision": sum(p for _, p in leads) / max(1, len(leads)),
    }


def print_arms(arms: list[Arm]) -> None:
    sums = [summarise_arm(a) for a in arms]
    print(f"\n{'figure':24}" + "".join(f"{a.name:>16}" for a in arms))
    for key in sums[0]:
        print(f"{key:24}" + "".join(f"{s[key]:16.2f}" for s in sums))


# --------------------------------------------------------------------------- levers


def _llama(kos: KnowledgeOS) -> Any:
    from knowledge_os.llm.chat import ChatLlamaCpp

    model = kos.services.chat_model
    if not isinstance(model, ChatLlamaCpp):
        raise SystemExit("--ab needs the embedded llama.cpp model (llm.provider=llamacpp)")
    return model._loaded().llama


def _own_models(kos: KnowledgeOS, n: int) -> Callable[[int], None]:
    """One llama.cpp instance per arm, and a function that makes arm ``k``'s the one runs
    use. llama.cpp reuses the KV cache of the prompt prefix shared with the previous call
    of the same instance: with one instance for both arms, arm B's run of a question
    would reuse arm A's identical (or nearly identical) prompt, so each arm keeps its own
    history, as if it ran alone."""
    from knowledge_os.llm import chat

    model = kos.services.chat_model
    if not isinstance(model, chat.ChatLlamaCpp):
        return lambda k: None
    key = str(Path(model.model_path).resolve())
    loaded = [model._loaded()]
    for _ in range(n - 1):
        chat._LOADED.pop(key)
        loaded.append(model._loaded())

    def use(k: int) -> None:
        chat._LOADED[key] = loaded[k]

    return use


def _threads(n: int, n_batch: int) -> Callable[[KnowledgeOS], None]:
    """Generation threads ``n``, prompt-evaluation threads ``n_batch``."""

    def apply(kos: KnowledgeOS) -> None:
        import llama_cpp

        llama = _llama(kos)
        llama_cpp.llama_set_n_threads(llama._ctx.ctx, n, n_batch)

    return apply


def _setattr(module: Any, name: str, value: Any) -> Callable[[KnowledgeOS], None]:
    def apply(kos: KnowledgeOS) -> None:
        setattr(module, name, value)

    return apply


def _full_choice(on: bool) -> Callable[[KnowledgeOS], None]:
    """The structured choice as it was before the compact prompt (``on``): full titles,
    the localised figures table, a kind asked for every entry; or the current one."""
    from knowledge_os.domains import steps

    current = (steps.choose_context, steps.choose_figures, steps._CHOOSE, steps.choice_schema)

    def old_schema(ctx: Any, n_entries: int) -> dict[str, Any]:
        schema = current[3](ctx, n_entries)
        if ctx.spec.answer_style == "stats":
            return schema
        item = schema["properties"]["entries"]["items"]
        item = {**item, "required": ["n", "kind"],
                "properties": {**item["properties"], "kind": {"type": "string", "enum": steps.kind_names(ctx)}}}
        return {**schema, "properties": {"entries": {**schema["properties"]["entries"], "items": item}}}

    def apply(kos: KnowledgeOS) -> None:
        if on:
            steps.choose_context = lambda listing, chars: steps.render_context(listing, chars=chars)
            steps.choose_figures = lambda ctx: ("", "")
            steps._CHOOSE = current[2].replace(
                "by their number.", "by their number, and label each with one kind of change from this list: {kinds}.")
            steps.choice_schema = old_schema
        else:
            steps.choose_context, steps.choose_figures, steps._CHOOSE, steps.choice_schema = current

    return apply


def _skip_more(on: bool) -> Callable[[KnowledgeOS], None]:
    """The ``quoted_entry`` and ``ids_listed`` skips (``on``), or only the earlier ones
    (``period_listed`` off in both arms)."""
    from knowledge_os.domains import complete

    current = (complete.quoted_entries, complete._naming_all)

    def none(*_: Any) -> list[int]:
        return []

    def apply(kos: KnowledgeOS) -> None:
        complete._all_in_period = none  # the later period_listed skip: off in both arms
        complete.quoted_entries, complete._naming_all = current if on else (none, none)

    return apply


_QUESTION_FIRST = (
    "Question: {query}\nEntries:\n{context}\n\n"
    "Choose the entries that answer the question, most important first, by their number.",
    "Question: {query}\nUploads with each kind of change {compared}:\n{stats}\n\n"
    "Choose up to three kinds of change from the figures that answer the question, from this list: {kinds}.",
)


def _prompt_order(question_first: bool) -> Callable[[KnowledgeOS], None]:
    """The choice prompts as they were (the question first, the instruction last), or the
    current ones (the fixed instruction first, so it joins the reused prompt prefix)."""
    from knowledge_os.domains import steps

    current = (steps._CHOOSE, steps._CHOOSE_STATS)

    def apply(kos: KnowledgeOS) -> None:
        steps._CHOOSE, steps._CHOOSE_STATS = _QUESTION_FIRST if question_first else current

    return apply


def _dated_context(listing: list[dict[str, Any]], *, chars: int = 160) -> str:
    """The choice's entries as they were: ``[n] package version (date): excerpt``, the
    excerpt with uploader lines and URLs."""
    lines = []
    for n, d in enumerate(listing[:8], start=1):
        md = d.get("metadata") or {}
        head = f"{d['channel']} {md['version']}" if md.get("version") else d["title"]
        body = re.sub(r"^\*\s*", "", " ".join(d["text"].split("\n", 1)[-1].split()))[:chars]
        lines.append(f"[{n}] {head} ({d['date']}): {body}")
    return "\n".join(lines)


def _stats_dates(on: bool) -> Callable[[KnowledgeOS], None]:
    """The statistics choice's windows as their dates (``on``: "2020-04-01..2020-06-30
    against 2020-01-01..2020-03-31", as it was) or as the current fixed phrase."""
    from knowledge_os.domains import steps

    current = steps.choose_figures

    def dated(ctx: Any) -> tuple[str, str]:
        rows, compared = current(ctx)
        s = ctx.stats or {}
        w, p = s.get("window") or {}, s.get("previous") or {}
        span = f"{w.get('from')}..{w.get('to')}"
        return rows, span + (f" against {p.get('from')}..{p.get('to')}" if p else " against no earlier window")

    def apply(kos: KnowledgeOS) -> None:
        steps.choose_figures = dated if on else current

    return apply


def _levers() -> dict[str, tuple[tuple[str, Callable[[KnowledgeOS], None]], tuple[str, Callable[[KnowledgeOS], None]]]]:
    from knowledge_os.domains import complete, steps

    return {
        "threads": (("1 thread", _threads(1, 1)), ("2 threads", _threads(2, 2))),
        "batch_threads": (("1/1", _threads(1, 1)), ("1 gen/2 prompt", _threads(1, 2))),
        "skip": (("skip on", _setattr(steps, "data_complete", steps.data_complete)),
                 ("skip off", _setattr(steps, "data_complete", lambda ctx, listing: None))),
        "compact_choice": (("compact", _full_choice(False)), ("full", _full_choice(True))),
        "choose_chars": (("160 chars", _setattr(steps, "CHOOSE_DOC_CHARS", 160)),
                         ("110 chars", _setattr(steps, "CHOOSE_DOC_CHARS", 110))),
        "prompt_docs": (("8 entries", _setattr(steps, "PROMPT_DOCS", 8)),
                        ("5 entries", _setattr(steps, "PROMPT_DOCS", 5))),
        "skip_more": (("quoted+ids", _skip_more(True)), ("one entry", _skip_more(False))),
        "prompt_order": (("fixed first", _prompt_order(False)), ("question first", _prompt_order(True))),
        "lean_entries": (("lean", _setattr(steps, "choose_context", steps.choose_context)),
                         ("dated", _setattr(steps, "choose_context", _dated_context))),
        "stats_dates": (("no dates", _stats_dates(False)), ("dates", _stats_dates(True))),
        "skip_period": (("period skip", _setattr(complete, "_all_in_period", complete._all_in_period)),
                        ("no period skip", _setattr(complete, "_all_in_period", lambda *a: []))),
        "skip_kinds": (("kinds skip", _setattr(complete, "asked_kinds", complete.asked_kinds)),
                       ("no kinds skip", _setattr(complete, "asked_kinds", lambda *a: []))),
        "rank_kinds": (("ranked", _setattr(complete, "moving_kinds", complete.moving_kinds)),
                       ("model picks", _setattr(complete, "moving_kinds", lambda *a: []))),
    }


LEVERS = ("threads", "batch_threads", "skip", "compact_choice", "choose_chars", "prompt_docs", "skip_more",
          "prompt_order", "lean_entries",
          "stats_dates", "skip_period", "skip_kinds",
          "rank_kinds")
"""Levers ``--ab`` can compare in one process (each arm is applied before its run)."""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=40, help="questions (the full-kpi suite's mix)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--seed", type=int, default=SEED,
                    help=f"the case builder's seed (default {SEED}, the full-kpi suite's; another: held-out questions)")
    ap.add_argument("--ab", choices=LEVERS, help="compare the two settings of one lever, interleaved")
    ap.add_argument("--show-calls", action="store_true", help="print every run with its LLM calls")
    args = ap.parse_args()
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    kos = KnowledgeOS()
    collector = CallCollector()
    kos.services.chat_model.callbacks = [collector]
    cases = build_cases("answers", as_of=AS_OF, n=args.n, seed=args.seed)
    qs = [(c["query"], (c.get("expected") or {}).get("doc_ids") or []) for c in cases]
    kos.run("warm up: what changed in openssl?", use_cache=False, as_of=AS_OF)
    warm = time.perf_counter() - t0
    print(f"questions: {len(qs)} ({sum(c.get('lang') == 'ru' for c in cases)} Russian); "
          f"first run incl. model load: {warm:.1f} s; load average {load0[0]:.2f}")
    if args.ab:
        (name_a, apply_a), (name_b, apply_b) = _levers()[args.ab]
        arms = [Arm(name_a), Arm(name_b)]
        applies = [apply_a, apply_b]
        use_model = _own_models(kos, 2)
        i = 0
        for _ in range(args.repeat):
            for q, expected in qs:
                order = (0, 1) if i % 2 == 0 else (1, 0)
                i += 1
                for k in order:
                    use_model(k)
                    applies[k](kos)
                    row = run_one(kos, collector, q, arms[k], expected)
                    if args.show_calls:
                        print_run(row, f"{arms[k].name:>10} ")
        use_model(0)
        apply_a(kos)
        print_arms(arms)
    else:
        arm = Arm("this run")
        for _ in range(args.repeat):
            for q, expected in qs:
                row = run_one(kos, collector, q, arm, expected)
                if args.show_calls:
                    print_run(row)
        totals = {k: [r[k] for r in arm.runs] for k in ("total", "route", "retrieve", "llm", "rest")}
        p50_total = pct(totals["total"], 0.5)
        print(f"\n{'part':10} {'p50 ms':>10} {'p95 ms':>10} {'share of p50':>13}")
        for k, v in totals.items():
            print(f"{k:10} {pct(v, 0.5):10.1f} {pct(v, 0.95):10.1f} {pct(v, 0.5) / p50_total:12.0%}")
        print_arms([arm])
        print(f"mean LLM share of run time: {statistics.mean(totals['llm']) / statistics.mean(totals['total']):.0%}")
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load1 = os.getloadavg()
    print(f"\npeak RSS: {rss_mb:.0f} MB (goal < 1024 MB) -> {'ok' if rss_mb < 1024 else 'OVER'}")
    print(f"load average: {load0[0]:.2f} at start, {load1[0]:.2f} at end (2 cores)")
    kos.close()


if __name__ == "__main__":
    main()
