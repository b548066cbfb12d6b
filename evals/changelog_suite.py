"""Offline eval on the ingested changelogs: cases built from the data by plain SQL,
independently of retrieval, so the suite measures the pipeline and not itself.

Case kinds:

* ``cve`` — "Which upload fixed CVE-…?": expected = the entries whose text names it.
  Metric: hit@1 (first citation is one of them), recall@k of the expected entries.
* ``period`` — "What changed in P since <Month YYYY>?": expected = P's entries since the
  first of that month. Metrics: precision (cited entries inside the expected set) and
  whether the newest entry is cited.
* ``route`` — labelled questions in English and Russian; metric: routing accuracy.
"""

from __future__ import annotations

import random
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

__all__ = ["Case", "build_cases"]

ROUTE_CASES = [
    ("What changed in openssl since March?", "digest"),
    ("Which upload fixed CVE-2024-6387?", "digest"),
    ("Summarise the recent uploads of curl.", "digest"),
    ("Что изменилось в systemd в этом году?", "digest"),
    ("Какая версия исправила баг #1055473?", "digest"),
    ("Which kinds of fixes are rising this quarter?", "trend"),
    ("How many security fixes were uploaded per month this year?", "trend"),
    ("Are translation updates becoming less frequent?", "trend"),
    ("Какие виды исправлений растут в этом квартале?", "trend"),
    ("Сколько исправлений безопасности было за последние 6 месяцев?", "trend"),
]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]


@dataclass(frozen=True, slots=True)
class Case:
    kind: str
    question: str
    expected: frozenset[str] = field(default_factory=frozenset)
    newest: str | None = None
    domain: str | None = None


def build_cases(home: Path, *, n_cve: int = 10, n_period: int = 10, seed: int = 7) -> list[Case]:
    """Draw cases from ``home/kos.db`` (deterministic for a seed)."""
    db = sqlite3.connect(str(home / "kos.db"))
    rng = random.Random(seed)
    cases: list[Case] = []
    cves = [r[0] for r in db.execute("SELECT DISTINCT entity FROM doc_entities WHERE entity LIKE 'cve:%' ORDER BY entity")]
    for ent in rng.sample(cves, min(n_cve, len(cves))):
        cve = ent.split(":", 1)[1]
        expected = frozenset(r[0] for r in db.execute("SELECT id FROM documents WHERE text LIKE ?", (f"%{cve}%",)))
        cases.append(Case(kind="cve", question=f"Which upload fixed {cve}?", expected=expected))
    packages = [r[0] for r in db.execute(
        "SELECT channel FROM documents WHERE source = 'debian' GROUP BY channel HAVING count(*) >= 4 ORDER BY channel")]
    for pkg in rng.sample(packages, min(n_period, len(packages))):
        rows = db.execute("SELECT id, ts FROM documents WHERE channel = ? AND ts > 0 ORDER BY ts DESC", (pkg,)).fetchall()
        pivot = datetime.fromtimestamp(rows[min(2, len(rows) - 1)][1], UTC).date()
        start = date(pivot.year, pivot.month, 1)
        start_ts = datetime(start.year, start.month, 1, tzinfo=UTC).timestamp()
        expected = frozenset(i for i, ts in rows if ts >= start_ts)
        cases.append(Case(kind="period", question=f"What changed in {pkg} since {MONTHS[start.month - 1]} {start.year}?",
                          expected=expected, newest=rows[0][0]))
    cases += [Case(kind="route", question=q, domain=d) for q, d in ROUTE_CASES]
    return cases
