"""The text of trend answers, in English and Russian: the figures table and the summary
written from the data (no LLM). Input is the statistics dict of
:func:`knowledge_os.domains.trend.compute_trend`; every line is chosen with
:func:`knowledge_os.i18n.pick` by the question's language (``stats["lang"]``).
"""

from __future__ import annotations

from typing import Any

from knowledge_os.i18n import pick

__all__ = ["T", "render_summary", "render_table", "render_total"]

T: dict[str, dict[str, str]] = {
    "header": {"en": "Figures (computed from the changelogs):",
               "ru": "Цифры (подсчитаны по журналам изменений):"},
    "compared": {"en": "Compared: {cur} ({cur_days} days{what}) against {prev} ({prev_days} days, {basis}).",
                 "ru": "Сравниваются {cur} ({cur_days} дн.{what}) и {prev} ({prev_days} дн., {basis})."},
    "period_all": {"en": "Period: all dates ({cur}).", "ru": "Период: все даты ({cur})."},
    "period_all_empty": {"en": "Period: all dates.", "ru": "Период: все даты."},
    "scope": {"en": "Packages: {pkgs}.", "ru": "Пакеты: {pkgs}."},
    "totals_head": {"en": "Totals (current vs previous window):",
                    "ru": "Итого (текущий и предыдущий период):"},
    "totals_head_one": {"en": "Totals:", "ru": "Итого:"},
    "uploads": {"en": "uploads (changelog entries)", "ru": "загрузок (записей журнала)"},
    "cve_ids": {"en": "distinct CVE ids named", "ru": "разных CVE"},
    "cve_mentions": {"en": "CVE mentions (an id counted once per upload)",
                     "ru": "упоминаний CVE (каждый id один раз на загрузку)"},
    "bugs_closed": {"en": "distinct bugs closed", "ru": "разных закрытых ошибок"},
    "vs": {"en": "{a} vs {b}", "ru": "{a} и {b}"},
    "no_data": {"en": "No data in {span}: no changelog entry in scope is dated in this window{newest}.",
                "ru": "Нет данных за {span}: ни одна запись журнала в этом периоде не датирована{newest}."},
    "newest": {"en": " (the newest is from {d})", "ru": " (самая новая от {d})"},
    "no_prev": {"en": "No data in the previous window {span}: nothing to compare with.",
                "ru": "Нет данных за предыдущий период {span}: сравнивать не с чем."},
    "kinds_head": {"en": "Uploads with each kind of change (current vs previous window):",
                   "ru": "Загрузок с изменениями каждого вида (текущий и предыдущий период):"},
    "shares": {"en": "Share of the uploads with each kind: {shares}.",
               "ru": "Доля загрузок с каждым видом изменений: {shares}."},
    "kinds_head_one": {"en": "Uploads with each kind of change in {span}:",
                       "ru": "Загрузок с изменениями каждого вида за {span}:"},
    "rank_head": {"en": "Top {n} {entity} by {measure}, {span}{prev}:",
                  "ru": "Топ-{n} {entity} по числу {measure}, {span}{prev}:"},
    "rank_prev": {"en": " (beside each: the count in {span})", "ru": " (рядом: значение за {span})"},
    "rank_tied": {"en": "(and {k} more tied at {v})", "ru": "(и ещё {k} с тем же значением {v})"},
    "series_head": {"en": "{measure} per {unit}, {span}:", "ru": "{measure} по {unit}, {span}:"},
    "rank_none": {"en": "Nothing to rank: no {entity} with {measure} in {span}.",
                  "ru": "Ранжировать нечего: нет {entity} с {measure} за {span}."},
}

_BASIS = {  # what the previous window is, and (``_CURRENT``) what the current one is
    "year": {"en": "the previous year", "ru": "предыдущий год"},
    "ytd": {"en": "the same {days} days of the previous year", "ru": "те же {days} дн. предыдущего года"},
    "quarter": {"en": "the previous quarter", "ru": "предыдущий квартал"},
    "qtd": {"en": "the same {days} days of the previous quarter", "ru": "те же {days} дн. предыдущего квартала"},
    "month": {"en": "the previous month", "ru": "предыдущий месяц"},
    "mtd": {"en": "the same {days} days of the previous month", "ru": "те же {days} дн. предыдущего месяца"},
    "preceding": {"en": "the {days} days just before", "ru": "{days} дн. непосредственно перед ним"},
}
_CURRENT = {
    "year": {"en": "whole year", "ru": "весь год"},
    "ytd": {"en": "year to date", "ru": "год на сегодня"},
    "quarter": {"en": "whole quarter", "ru": "весь квартал"},
    "qtd": {"en": "quarter to date", "ru": "квартал на сегодня"},
    "month": {"en": "whole month", "ru": "весь месяц"},
    "mtd": {"en": "month to date", "ru": "месяц на сегодня"},
}

_ENTITY = {  # plural (EN) / genitive plural (RU), as the headers use them
    "package": {"en": "packages", "ru": "пакетов"},
    "maintainer": {"en": "maintainers", "ru": "сопровождающих"},
    "cve": {"en": "CVEs", "ru": "CVE"},
    "bug": {"en": "bugs", "ru": "ошибок"},
}
_MEASURE = {  # EN: "by <...>"; RU: "по числу <...>" (genitive)
    "uploads": {"en": "uploads", "ru": "загрузок"},
    "cves": {"en": "distinct CVE ids fixed", "ru": "исправленных CVE"},
    "bugs": {"en": "bugs closed", "ru": "закрытых ошибок"},
    "packages": {"en": "packages naming it", "ru": "пакетов, где он упомянут"},
}
_UNIT = {"month": {"en": "month", "ru": "месяцам"}, "quarter": {"en": "quarter", "ru": "кварталам"},
         "year": {"en": "year", "ru": "годам"}}
_SERIES_MEASURE = {  # what a series counts (trend.series_measure), as a header's subject
    "uploads": {"en": "Uploads", "ru": "Загрузки"},
    "cve_ids": {"en": "Distinct CVE ids named", "ru": "Разные CVE"},
    "bugs_closed": {"en": "Distinct bugs closed", "ru": "Разные закрытые ошибки"},
    "kind": {"en": "Uploads with {kind} changes", "ru": "Загрузки с изменениями вида «{kind}»"},
}
_KIND_RU = {  # the built-in kinds (builtin/trend.yaml); a user's kinds keep their names
    "security": "безопасность", "bugfix": "исправления ошибок", "new_upstream": "новые версии upstream",
    "packaging": "упаковка", "translation": "переводы", "documentation": "документация",
}

_S: dict[str, dict[str, str]] = {
    "rising": {"en": "In {cur}, compared with {prev} ({basis}), the kinds of change that rose were {top}, "
                     "over {u_cur} uploads against {u_prev}.",
               "ru": "За {cur} по сравнению с {prev} ({basis}) выросли изменения видов: {top}; всего "
                     "загрузок {u_cur} против {u_prev}."},
    "flat": {"en": "No kind of change rose in {cur} compared with {prev} ({basis}): {uploads} "
                   "against {u_prev}.",
             "ru": "Ни один вид изменений не вырос за {cur} по сравнению с {prev} ({basis}): загрузок "
                   "{u_cur} против {u_prev}."},
    "empty_cur": {"en": "There are no changelog entries dated {cur}{newest}, so no trend can be "
                        "computed for this window.",
                  "ru": "За {cur} нет ни одной записи журнала{newest}, поэтому тренд за этот период "
                        "посчитать нельзя."},
    "prev_only": {"en": " For comparison, {prev} had {uploads}{top}.",
                  "ru": " Для сравнения: за {prev} — {uploads}{top}."},
    "empty_prev": {"en": "There are no entries in {prev} to compare with; {cur} had {uploads}{top}.",
                   "ru": "За {prev} записей нет, сравнивать не с чем; за {cur} — {uploads}{top}."},
    "both_empty": {"en": "There are no changelog entries dated {cur} nor {prev}{newest}.",
                   "ru": "Нет ни одной записи журнала ни за {cur}, ни за {prev}{newest}."},
    "most_often": {"en": ", most often with {top} changes", "ru": ", чаще всего с изменениями: {top}"},
    "rank": {"en": "Top {n} {entity} by {measure}, {cur}: {top}.",
             "ru": "Топ-{n} {entity} по числу {measure}, {cur}: {top}."},
    "series": {"en": "{head} {rows}.", "ru": "{head} {rows}."},
    "series_busiest": {"en": "{head} most in {top} ({top_n}), fewest in {low} ({low_n}); every {unit} is in the table.",
                       "ru": "{head} больше всего — {top} ({top_n}), меньше всего — {low} ({low_n}); все периоды — в таблице."},
    "total": {"en": "{what}: {n} in {cur}, against {m} in {prev} ({basis}).",
              "ru": "{what}: {n} за {cur}, против {m} за {prev} ({basis})."},
    "total_one": {"en": "{what}: {n} in {cur}.", "ru": "{what}: {n} за {cur}."},
    "rank_tie": {"en": "and, tied at {v}, {names}", "ru": "и с равным значением {v}: {names}"},
    "rank_empty": {"en": "There are no changelog entries dated {cur}{newest}, so nothing can be ranked.",
                   "ru": "За {cur} нет ни одной записи журнала{newest}, поэтому ранжировать нечего."},
    "rank_nothing": {"en": "No {entity} had any {measure} in {cur}.",
                     "ru": "Ни у одного из {entity} нет {measure} за {cur}."},
}


def _uploads(n: int, lang: str) -> str:
    """``"1 upload"``, ``"4 uploads"``; Russian plural forms (1 загрузка, 3 загрузки, 5 загрузок)."""
    if lang == "ru":
        if n % 10 == 1 and n % 100 != 11:
            return f"{n} загрузка"
        if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
            return f"{n} загрузки"
        return f"{n} загрузок"
    return f"{n} upload" if n == 1 else f"{n} uploads"


def _kind_label(kind: str, lang: str) -> str:
    return _KIND_RU[kind] if lang == "ru" and kind in _KIND_RU else kind


def _basis_text(s: dict[str, Any]) -> str:
    days = (s["previous"] or s["window"])["days"]
    return pick(_BASIS[s["basis"]], s["lang"], days=days) if s["basis"] in _BASIS else ""


def _span(w: dict[str, Any] | None) -> str:
    if not w:
        return ""
    return f"{w['from'] or '…'}..{w['to'] or '…'}"


def render_table(s: dict[str, Any]) -> str:
    """The figures table (lines joined by newlines), without its header."""
    lang = s["lang"]
    cur, prev = _span(s["window"]), _span(s["previous"])
    lines: list[str] = []
    if s["previous"] is not None:
        what = ", " + pick(_CURRENT[s["basis"]], lang) if s["basis"] in _CURRENT else ""
        lines.append(pick(T["compared"], lang, cur=cur, cur_days=s["window"]["days"], what=what, prev=prev,
                          prev_days=s["previous"]["days"], basis=_basis_text(s)))
    elif s["window"]["from"]:
        lines.append(pick(T["period_all"], lang, cur=cur))
    else:
        lines.append(pick(T["period_all_empty"], lang))
    if s["packages"]:
        lines.append(pick(T["scope"], lang, pkgs=", ".join(s["packages"])))
    newest = pick(T["newest"], lang, d=s["newest"]) if s["newest"] else ""
    if s["empty"]["current"]:
        lines.append(pick(T["no_data"], lang, span=cur, newest=newest))
    if s["empty"]["previous"]:
        lines.append(pick(T["no_prev"], lang, span=prev))
    tc, tp = s["totals"]["current"], s["totals"]["previous"]
    lines.append(pick(T["totals_head"] if tp is not None else T["totals_head_one"], lang))
    for key in ("uploads", "cve_ids", "cve_mentions", "bugs_closed"):
        value = pick(T["vs"], lang, a=tc[key], b=tp[key]) if tp is not None else str(tc[key])
        lines.append(f"- {pick(T[key], lang)}: {value}")
    if s.get("series"):
        lines.append(_series_head(s))
        lines.extend(f"- {row['period']} ({row['from']}..{row['to']}): {row['value']}" for row in s["series"]["rows"])
    r = s["ranking"]
    if r is not None:
        entity, measure = pick(_ENTITY[r["entity"]], lang), pick(_MEASURE[r["measure"]], lang)
        if r["rows"]:
            prev_note = pick(T["rank_prev"], lang, span=prev) if s["previous"] is not None else ""
            lines.append(pick(T["rank_head"], lang, n=r["n"], entity=entity, measure=measure, span=cur,
                              prev=prev_note))
            for row in r["rows"]:
                after = f" ({row['previous']})" if row["previous"] is not None else ""
                who = row["name"]
                if r["entity"] == "maintainer":
                    who += f" ({', '.join(row['members'])})"
                lines.append(f"{row['rank']}. {who}: {row['current']}{after}")
            if r["tied_left_out"]:
                lines.append(pick(T["rank_tied"], lang, k=r["tied_left_out"], v=r["rows"][-1]["current"]))
        elif not s["empty"]["current"]:
            lines.append(pick(T["rank_none"], lang, entity=entity, measure=measure, span=cur))
        return "\n".join(lines)
    if s["empty"]["current"] and s["empty"]["previous"] is False and s["previous"] is not None:
        lines.append(pick(T["kinds_head_one"], lang, span=prev))
        for k in sorted(s["kinds"], key=lambda k: (-(k["previous"] or 0), k["kind"])):
            lines.append(f"- {_kind_label(k['kind'], lang)}: {k['previous']}")
    elif not s["empty"]["current"] and (s["previous"] is None or s["empty"]["previous"]):
        lines.append(pick(T["kinds_head_one"], lang, span=cur))
        for k in sorted(s["kinds"], key=lambda k: (-k["current"], k["kind"])):
            lines.append(f"- {_kind_label(k['kind'], lang)}: {k['current']}")
        lines.extend(_shares_line(s, lang, both=False))
    elif not s["empty"]["current"]:
        lines.append(pick(T["kinds_head"], lang))
        for k in s["kinds"]:
            pct = f", {k['change_pct']:+d}%" if k["change_pct"] is not None else ""
            lines.append(f"- {_kind_label(k['kind'], lang)}: {pick(T['vs'], lang, a=k['current'], b=k['previous'])}"
                         f" ({k['delta']:+d}{pct})")
        lines.extend(_shares_line(s, lang, both=True))
    return "\n".join(lines)


def _shares_line(s: dict[str, Any], lang: str, *, both: bool) -> list[str]:
    """The kinds' shares of the window's uploads (``share_pct``), current (vs previous when
    ``both``), for the kinds with an upload; [] when the statistics carry no shares."""
    parts = []
    for k in s["kinds"]:
        share, prev = k.get("share_pct"), k.get("previous_share_pct")
        if share is None or not (k["current"] or (both and k["previous"])):
            continue
        value = pick(T["vs"], lang, a=f"{share}%", b=f"{prev}%") if both and prev is not None else f"{share}%"
        parts.append(f"{_kind_label(k['kind'], lang)} {value}")
    return [pick(T["shares"], lang, shares=", ".join(parts))] if parts else []


def _top_kinds(kinds: list[dict[str, Any]], key: str, lang: str) -> str:
    top = [k for k in sorted(kinds, key=lambda k: (-(k[key] or 0), k["kind"])) if k[key]][:3]
    return ", ".join(f"{_kind_label(k['kind'], lang)} ({k[key]})" for k in top)


_SERIES_LISTED = 12
"""Most periods a summary names one by one; a longer series is summed up by its extremes."""


def _series_head(s: dict[str, Any]) -> str:
    """``"Uploads per quarter, 2025-01-01..2025-12-31:"``, in the question's language."""
    lang, series = s["lang"], s["series"]
    kind = _kind_label(series["kind"] or "", lang).replace("_", " ")  # "new upstream"
    measure = pick(_SERIES_MEASURE[series["measure"]], lang, kind=kind)
    return pick(T["series_head"], lang, measure=measure, unit=pick(_UNIT[series["unit"]], lang), span=_span(s["window"]))


def _series_summary(s: dict[str, Any]) -> str:
    """The series in one sentence: every period's count, or with more than
    :data:`_SERIES_LISTED` periods the busiest and the quietest (the earliest of ties)."""
    lang, rows = s["lang"], s["series"]["rows"]
    head = _series_head(s)
    if len(rows) <= _SERIES_LISTED:
        return pick(_S["series"], lang, head=head, rows=", ".join(f"{r['period']}: {r['value']}" for r in rows))
    top = max(rows, key=lambda r: r["value"])
    low = min(rows, key=lambda r: r["value"])
    return pick(_S["series_busiest"], lang, head=head, top=top["period"], top_n=top["value"], low=low["period"],
                low_n=low["value"], unit=s["series"]["unit"])


def render_summary(s: dict[str, Any]) -> str:
    """The summary written from the figures: one to three sentences."""
    lang = s["lang"]
    cur, prev = _span(s["window"]), _span(s["previous"])
    newest = pick(T["newest"], lang, d=s["newest"]) if s["newest"] else ""
    u = s["uploads"]
    if s.get("series") and not s["empty"]["current"]:
        return _series_summary(s)
    r = s["ranking"]
    if r is not None:
        entity, measure = pick(_ENTITY[r["entity"]], lang), pick(_MEASURE[r["measure"]], lang)
        if s["empty"]["current"]:
            return pick(_S["rank_empty"], lang, cur=cur, newest=newest)
        if not r["rows"]:
            return pick(_S["rank_nothing"], lang, entity=entity, measure=measure, cur=cur)
        head = [row for row in r["rows"] if row["rank"] <= r["n"] and row["current"] > r["rows"][-1]["current"]]
        tied = r["rows"][len(head):]
        parts = [f"{row['name']} ({row['current']})" for row in head]
        if len(tied) == 1 or (tied and len(head) + len(tied) <= r["n"]):
            parts += [f"{row['name']} ({row['current']})" for row in tied]
        elif tied:
            names = ", ".join(row["name"] for row in tied)
            if r["tied_left_out"]:
                names += " " + pick(T["rank_tied"], lang, k=r["tied_left_out"], v=tied[-1]["current"])
            parts.append(pick(_S["rank_tie"], lang, v=tied[-1]["current"], names=names))
        return pick(_S["rank"], lang, n=r["n"], entity=entity, measure=measure, cur=cur, top="; ".join(parts))
    if s["empty"]["current"] and (s["previous"] is None or s["empty"]["previous"]):
        if s["previous"] is None:
            return pick(_S["empty_cur"], lang, cur=cur, newest=newest)
        return pick(_S["both_empty"], lang, cur=cur, prev=prev, newest=newest)
    if s["empty"]["current"]:
        top = _top_kinds(s["kinds"], "previous", lang)
        top_part = pick(_S["most_often"], lang, top=top) if top else ""
        return (pick(_S["empty_cur"], lang, cur=cur, newest=newest)
                + pick(_S["prev_only"], lang, prev=prev, uploads=_uploads(u["previous"], lang), top=top_part))
    if s["previous"] is None or s["empty"]["previous"]:
        top = _top_kinds(s["kinds"], "current", lang)
        top_part = pick(_S["most_often"], lang, top=top) if top else ""
        return pick(_S["empty_prev"], lang, prev=prev or "…", cur=cur, uploads=_uploads(u["current"], lang),
                    top=top_part)
    rising = [k for k in s["kinds"] if (k["delta"] or 0) > 0]
    if rising:
        top = ", ".join(f"{_kind_label(k['kind'], lang)} ({k['previous']} -> {k['current']})" for k in rising[:3])
        return pick(_S["rising"], lang, prev=prev, cur=cur, basis=_basis_text(s), top=top,
                    u_cur=u["current"], u_prev=u["previous"])
    return pick(_S["flat"], lang, prev=prev, cur=cur, basis=_basis_text(s), u_cur=u["current"], u_prev=u["previous"],
                uploads=_uploads(u["current"], lang))


def render_total(s: dict[str, Any], measure: str) -> str:
    """``"Distinct CVE ids named (linux): 1065 in A, against 248 in B (the previous year)."``:
    the totals of one measure (``uploads``, ``cve_ids`` or ``bugs_closed``) in the compared
    windows."""
    lang = s["lang"]
    what = pick(_SERIES_MEASURE[measure], lang)
    if s["packages"]:
        what += f" ({', '.join(s['packages'])})"
    tc, tp = s["totals"]["current"], s["totals"]["previous"]
    if tp is None or s["previous"] is None:
        return pick(_S["total_one"], lang, what=what, n=tc[measure], cur=_span(s["window"]))
    return pick(_S["total"], lang, what=what, n=tc[measure], cur=_span(s["window"]), m=tp[measure],
                prev=_span(s["previous"]), basis=_basis_text(s))
