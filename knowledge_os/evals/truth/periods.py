"""Periods named in questions, in English and Russian, and the dates they cover.

A :class:`Period` pairs an inclusive date range with the words that name it in each
language. Relative periods ("this year", "this quarter", "the last 6 months") are
resolved against an ``as_of`` date that the suite sets; quarters are calendar quarters
(Q1 = January–March). Russian month names are given in the nominative, genitive and
prepositional cases because the question templates need each ("с марта", "в марте",
"март 2025").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

__all__ = [
    "MONTHS_EN",
    "MONTHS_RU_GEN",
    "MONTHS_RU_NOM",
    "MONTHS_RU_PREP",
    "Period",
    "last_months",
    "last_quarter",
    "last_year",
    "month_of",
    "quarter_of",
    "since_month",
    "this_quarter",
    "this_year",
    "year",
]

MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August",
             "September", "October", "November", "December")
MONTHS_RU_NOM = ("январь", "февраль", "март", "апрель", "май", "июнь", "июль", "август",
                 "сентябрь", "октябрь", "ноябрь", "декабрь")
MONTHS_RU_GEN = ("января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа",
                 "сентября", "октября", "ноября", "декабря")
MONTHS_RU_PREP = ("январе", "феврале", "марте", "апреле", "мае", "июне", "июле", "августе",
                  "сентябре", "октябре", "ноябре", "декабре")


@dataclass(frozen=True, slots=True, kw_only=True)
class Period:
    """An inclusive date range and how a question names it.

    Attributes:
        start: First day, inclusive.
        end: Last day, inclusive.
        en: English phrase, e.g. ``"since March 2025"``, ``"in 2024"``, ``"this quarter"``.
        ru: Russian phrase, e.g. ``"с марта 2025 года"``, ``"в 2024 году"``.
        relative: True when the phrase only makes sense with an as-of date.
    """

    start: date
    end: date
    en: str
    ru: str
    relative: bool = False

    def as_dict(self) -> dict[str, str]:
        """``{"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"}``, the case schema's period."""
        return {"from": self.start.isoformat(), "to": self.end.isoformat()}

    def phrase(self, lang: str) -> str:
        """The phrase in ``lang`` (``"en"`` or ``"ru"``)."""
        return self.ru if lang == "ru" else self.en


def _month_end(y: int, m: int) -> date:
    nxt = date(y + (m == 12), m % 12 + 1, 1)
    return nxt - timedelta(days=1)


def year(y: int, *, as_of: date) -> Period:
    """Calendar year ``y``, cut at ``as_of`` when it is the current year."""
    end = min(date(y, 12, 31), as_of)
    return Period(start=date(y, 1, 1), end=end, en=f"in {y}", ru=f"в {y} году")


def this_year(as_of: date) -> Period:
    """January 1st of as_of's year to as_of."""
    return Period(start=date(as_of.year, 1, 1), end=as_of, en="this year", ru="в этом году",
                  relative=True)


def last_year(as_of: date) -> Period:
    """The whole calendar year before as_of's."""
    y = as_of.year - 1
    return Period(start=date(y, 1, 1), end=date(y, 12, 31), en="last year",
                  ru="в прошлом году", relative=True)


def since_month(y: int, m: int, *, as_of: date) -> Period:
    """The first of month ``m`` of year ``y`` to as_of."""
    return Period(start=date(y, m, 1), end=as_of, en=f"since {MONTHS_EN[m - 1]} {y}",
                  ru=f"с {MONTHS_RU_GEN[m - 1]} {y} года")


def month_of(y: int, m: int) -> Period:
    """One calendar month."""
    return Period(start=date(y, m, 1), end=_month_end(y, m), en=f"in {MONTHS_EN[m - 1]} {y}",
                  ru=f"в {MONTHS_RU_PREP[m - 1]} {y} года")


def quarter_of(y: int, q: int) -> Period:
    """Calendar quarter ``q`` (1..4) of year ``y``."""
    start = date(y, 3 * q - 2, 1)
    return Period(start=start, end=_month_end(y, 3 * q), en=f"in Q{q} {y}",
                  ru=f"в {q}-м квартале {y} года")


def this_quarter(as_of: date) -> Period:
    """The first day of as_of's calendar quarter to as_of."""
    q = (as_of.month - 1) // 3 + 1
    return Period(start=date(as_of.year, 3 * q - 2, 1), end=as_of, en="this quarter",
                  ru="в этом квартале", relative=True)


def last_quarter(as_of: date) -> Period:
    """The whole calendar quarter before as_of's."""
    q = (as_of.month - 1) // 3 + 1
    y, q = (as_of.year, q - 1) if q > 1 else (as_of.year - 1, 4)
    p = quarter_of(y, q)
    return Period(start=p.start, end=p.end, en="last quarter", ru="в прошлом квартале",
                  relative=True)


def last_months(n: int, as_of: date) -> Period:
    """The ``n`` months before as_of: from the same day ``n`` months earlier to as_of
    (a day that does not exist in that month becomes its last day)."""
    y, m = as_of.year, as_of.month - n
    while m < 1:
        y, m = y - 1, m + 12
    start = date(y, m, min(as_of.day, _month_end(y, m).day))
    ru_unit = "месяца" if n % 10 in (2, 3, 4) and n % 100 not in (12, 13, 14) else "месяцев"
    return Period(start=start, end=as_of, en=f"in the last {n} months",
                  ru=f"за последние {n} {ru_unit}", relative=True)
