"""Which retrieved documents bear on the question: the citation cut-off.

Retrieval returns up to ``max_documents`` documents ranked by reciprocal-rank fusion; a
fused score only says how high a document ranked in each list, not whether it answers
the question (with 10 notes, every note is "found" by the vector list). The cut-off is
lexical: the share of the question's content terms (words of 3+ characters that are not
question words, compared by their first 5 characters, EN and RU) that a document
contains, relative to the best document's share. A document is cited when its share is
at least :data:`TERM_RATIO` of the best one. When no document shares a term with the
question (a Russian question over English notes), only the documents tied with the top
fused score (within :data:`TIE_RATIO`) are cited. Documents matched by a named id (CVE,
bug) are always cited.

Both numbers were measured with ``benchmarks/bench_citation_cutoff.py`` on the labelled
user-document set (tests/data/userdocs) and on package-period digests over the Debian
changelogs (figures in that script's docstring): with ``TERM_RATIO`` 0.6 citation
precision / recall went from 0.105 / 1.000 to 0.913 / 1.000 on the notes and from
0.366 / 0.675 to 0.829 / 0.810 on the digests; 0.5 cut too little, 0.67 lost a note.
A cut on the fused score relative to the top one is a rank cut (RRF): at 0.99 it kept
digest recall at 0.190.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

__all__ = ["TERM_RATIO", "TIE_RATIO", "asks_newest", "bearing", "names_only", "query_terms", "term_share"]

TERM_RATIO = 0.6
TIE_RATIO = 0.99

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_STEM = 5
_STOP = frozenset(
    """the and for are was were has have had does did what which who whom whose when where why how
    that this these those there with from into onto about since until than then them they their our
    your you can could should would will shall may might must not any all some each per its his her
    get got new recent recently change changed changes changing upload uploads uploaded summarise
    summarize summary tell show list give many much long often kind kinds last this year month
    week quarter today ago between during package packages latest newest beginning
    что как где когда кто какой какая какие каким какую каких почему зачем сколько это эти этот
    для при над под про без или его её их наш ваш был была были было есть быть все всё весь
    изменилось изменения изменился новое нового новые последние последний году года год месяц
    квартал неделю сегодня пакет пакете пакета пакету пакеты пакетов
    этом этой этого этому эту этим этих прошлом прошлый прошлого прошлая прошлой прошлую
    неделе недели месяце месяца квартале квартала начала начало""".split()
)


# Month names: a period is the date filter's business, not a term to match in the text.
_MONTHS = frozenset(
    "january february march april june july august september october november december"
    " jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
_RU_MONTH_STEMS = ("январ", "феврал", "март", "апрел", "мая", "мае", "май", "июн", "июл", "август",
                   "сентябр", "октябр", "ноябр", "декабр")


def query_terms(text: str) -> frozenset[str]:
    """The question's content terms: lower-case word prefixes of up to 5 characters, from
    words of 3+ characters that are not question, framing or month words (EN and RU) nor
    all digits: a year belongs to the date filter ("since September 2025" must keep the
    2026 uploads) and an id to exact matching."""
    words = (w.lower() for w in _WORD.findall(text))
    return frozenset(w[:_STEM] for w in words
                     if len(w) >= 3 and not w.isdigit() and w not in _STOP and w not in _MONTHS
                     and not w.startswith(_RU_MONTH_STEMS))


def names_only(question: str, packages: Sequence[str], names: Sequence[str] = ()) -> bool:
    """True when the question's content terms (:func:`query_terms`) are all words of the
    named packages or of the names it gave them (``names``,
    ``QueryAnalysis.package_names``: "What changed in the kernel?" names linux): "What
    changed in the coreutils package?", "Что изменилось в d3?" ask for the package's
    changes in general, "Which openssl upload fixed the DANE use-after-free?" for
    particular ones."""
    return query_terms(question) <= _blob_terms(" ".join([*packages, *names]))


_NEWEST = re.compile(
    r"\b(?:latest|newest|most recent|current|last)\s+(?:(?:stable|debian|upstream)\s+)?"
    r"(?:versions?|releases?|upload|entry|update)\b"
    r"|(?:последн|новейш|текущ)\w*\s+(?:верси|выпуск|релиз)\w*"
    r"|сам\w+\s+(?:нов|свеж|последн)\w*\s+(?:верси|выпуск|релиз)\w*",
    re.IGNORECASE)


def asks_newest(question: str) -> bool:
    """True when the question asks for a package's newest entry ("What is the latest
    version of openssl?", "Какая последняя версия curl?", "the current release"); its
    latest changes ("What are the latest changes in curl?", "Какие последние изменения в
    curl?": its few newest entries) and a period ("last month", "за последний месяц")
    are not this. Such a
    question is answered by each named package's newest entries, which relevance alone
    did not find: "latest version of openssl" listed 1.1.1g-1 of 2020, whose text says
    "New upstream version", over 3.0.19-1~deb12u2 of 2026."""
    return bool(_NEWEST.search(question))


def _doc_terms(doc: dict[str, Any]) -> frozenset[str]:
    md = doc.get("metadata") or {}
    return _blob_terms(" ".join([str(doc.get("title", "")), str(doc.get("channel", "")), str(doc.get("date", "")),
                                 str(md.get("path", "")), str(doc.get("text", ""))]))


@functools.lru_cache(maxsize=1024)
def _blob_terms(blob: str) -> frozenset[str]:
    """The word prefixes of a document's searchable text, memoised by the text itself.

    A run asks :func:`bearing` about the same documents twice (the listing, then the
    count of entries left out) and finding the words is most of its cost: over 40
    ``openssl`` entries of the Debian changelog corpus a call took 0.60 ms uncached and
    0.03 ms cached (process CPU). At most 1,024 texts are kept (a few hundred KB for
    changelog entries)."""
    return frozenset(w.lower()[:_STEM] for w in _WORD.findall(blob) if len(w) >= 3)


def term_share(terms: frozenset[str], doc: dict[str, Any]) -> float:
    """Share of ``terms`` the document contains, 0..1 (0 when there are no terms)."""
    if not terms:
        return 0.0
    return len(terms & _doc_terms(doc)) / len(terms)


def _kept(doc: dict[str, Any]) -> bool:
    """Retrieval found it as the asked id or kept it as a package's newest entry."""
    sources = doc.get("sources", ())
    return "exact" in sources or "latest" in sources


def bearing(docs: Sequence[dict[str, Any]], question: str, *, term_ratio: float = TERM_RATIO,
            tie_ratio: float = TIE_RATIO) -> list[dict[str, Any]]:
    """The documents that bear on ``question``, in their given order.

    Args:
        docs: Retrieved documents (state dicts with ``score``, ``sources``, ``text``,
            ``title``, ``channel``), best first.
        question: The question as asked.
        term_ratio: Share of the best document's term share a document needs, 0..1.
        tie_ratio: Without shared terms, share of the top fused score a document needs.

    Returns:
        A non-empty sub-list when ``docs`` is non-empty (the best document always stays).
        Documents found as the asked id (``exact``) or kept as the package's newest
        entries of a period-less question (``latest``,
        :class:`~knowledge_os.retrieval.service.RetrievalRequest`) always bear.
    """
    if not docs:
        return []
    terms = query_terms(question)
    shares = [term_share(terms, d) for d in docs]
    best = max(shares)
    if best > 0:
        keep = [d for d, s in zip(docs, shares, strict=True)
                if s >= term_ratio * best or _kept(d)]
    else:
        top = max(d["score"] for d in docs)
        keep = [d for d in docs if d["score"] >= tie_ratio * top or _kept(d)]
    return keep or [docs[0]]
