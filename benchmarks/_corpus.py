"""Shared by the benchmarks: percentiles, and questions drawn from the ingested corpus."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by the nearest-rank rule."""
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def sample_ids(home: Path) -> tuple[list[str], list[str], list[str]]:
    """(CVE ids, bug numbers, packages) present in the ingested corpus."""
    db = sqlite3.connect(str(home / "kos.db"))
    cves = [r[0].split(":", 1)[1] for r in db.execute(
        "SELECT entity FROM doc_entities WHERE entity LIKE 'cve:%' ORDER BY entity DESC LIMIT 400")][::80]
    bugs = [r[0].split(":", 1)[1] for r in db.execute(
        "SELECT entity FROM doc_entities WHERE entity LIKE 'bug:%' ORDER BY entity DESC LIMIT 400")][::100]
    packages = [r[0] for r in db.execute(
        "SELECT channel FROM documents GROUP BY channel ORDER BY count(*) DESC LIMIT 12")]
    return cves, bugs, packages


def questions(home: Path) -> list[str]:
    """20 varied questions (digest and trend, English and Russian, ids, periods)."""
    cves, bugs, pk = sample_ids(home)
    p = (pk + ["openssl"] * 12)[:12]
    qs = [
        f"What changed in {p[0]} since March?",
        f"What changed in {p[1]} in 2024?",
        f"Summarise the recent uploads of {p[2]} and {p[3]}.",
        f"What is new in {p[4]} this year?",
        f"Что изменилось в {p[5]} с марта?",
        f"Что нового в {p[6]} за 2023 год?",
        "Which kinds of fixes are rising this quarter?",
        "How many security fixes were uploaded per month this year?",
        f"Are CVE fixes in {p[7]} increasing compared to last year?",
        "Какие виды исправлений растут в этом квартале?",
        "Сколько исправлений безопасности было за последние 6 месяцев?",
        f"Compare what changed in {p[8]} and {p[9]} last year and explain why",
        f"How often does {p[10]} get security uploads?",
        f"what changed in {p[11]} last quarter",
        "Which packages had translation updates in 2023?",
    ]
    qs += [f"Which upload fixed {c}?" for c in cves[:3]]
    qs += [f"Which version closed bug #{b}?" for b in bugs[:2]]
    return qs[:20]
