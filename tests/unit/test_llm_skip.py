"""When the data-written answer is already complete, the structured mode makes no LLM call
(``complete.data_complete``): a quoted phrase held by the listed entries, an id lookup whose
listed entries all name the id, a package-period digest of a few uploads, a statistics question
naming its kinds."""

from __future__ import annotations

import re
from datetime import date

import pytest

from knowledge_os.domains.relevance import asks_newest
from knowledge_os.domains.complete import asked_kinds, data_complete, moving_kinds, quoted_entries, total_asked
from knowledge_os.domains.compose import fallback_summary
from knowledge_os.domains.steps import StepContext, select_listing
from knowledge_os.llm.budget import Budget
from knowledge_os.retrieval.query import analyze_query

AS_OF = date(2026, 11, 22)


def _doc(n: int, version: str, text: str) -> dict:
    return {"id": f"deb:demo:{version}", "channel": "demo", "ts": 1_700_000_000 + n, "date": f"2026-0{n}-01",
            "title": f"demo {version} (unstable; urgency=medium)", "text": f"demo {version}\n{text}",
            "metadata": {"version": version}, "sources": ("exact", "fts"), "score": 1.0 / n}


DOCS = [
    _doc(1, "2.0-2", "  * Team upload.\n  * Restore the default constructor (removed in 2.0)"),
    _doc(2, "2.0-1", "  * New upstream release\n  * Refreshed the patches\n  * Relocate the old\n"
                     "    org.example:demo coordinates (Closes: #1012314)\n  * Fix CVE-2024-1234"),
    _doc(3, "1.9-1", "  * Fix a crash on empty input (CVE-2024-1234)"),
]


@pytest.mark.parametrize(("question", "numbers"), [
    ('Which version of demo has the entry "Relocate the old org.example:demo coordinates"?', [2]),
    ("Найди запись журнала изменений «relocate the OLD org.example:demo coordinates».", [2]),  # case, RU quotes
    ("Which upload says “Fix a crash on empty input”?", [3]),
    ('Which version has "Fix"?', []),  # too short to look up verbatim
    ('Which version has "a phrase no entry holds"?', []),
    ("What changed in demo?", []),
])
def test_quoted_entries_finds_the_phrase_verbatim_across_wrapped_lines(question, numbers):
    assert quoted_entries(question, DOCS) == numbers


@pytest.fixture
def ctx_for(kos_factory):
    s = kos_factory(llm={"answer_mode": "structured"}).services

    def make(question: str, documents: list[dict], domain: str = "digest") -> StepContext:
        analysis = analyze_query(question, channels={**s.channels(), "demo": "demo"}, as_of=AS_OF)
        return StepContext(retrieval=s.retrieval, docstore=s.docstore, chat_model=s.chat_model,
                           llm=s.settings.llm, spec=s.domains.get(domain), as_of=AS_OF, analysis=analysis,
                           budget=Budget(max_llm_calls=1, max_tokens=1000, max_steps=1), usage={},
                           documents=documents)

    return make


def test_a_quoted_phrase_held_by_one_of_several_entries_is_the_answer(ctx_for):
    ctx = ctx_for('Which version of demo has the entry "Relocate the old org.example:demo coordinates"?', DOCS)
    why, summary = data_complete(ctx, DOCS)
    assert why == "quoted_entry"
    assert summary == "The entries that bear on the question: demo 2.0-1 (2026-02-01): security fix (CVE-2024-1234) [2]."


def test_an_entry_naming_more_ids_than_are_listed_says_how_many_it_names(ctx_for):
    many = [_doc(1, "3.0-1", "  * Fix CVE-2026-0001, CVE-2026-0002, CVE-2026-0003,\n"
                             "    CVE-2026-0004 and CVE-2026-0005")]
    _, summary = data_complete(ctx_for("What changed in demo?", many), many)
    assert summary == ("The entries that bear on the question: demo 3.0-1 (2026-01-01): security fix "
                       "(CVE-2026-0001, CVE-2026-0002, CVE-2026-0003; 5 CVE ids in all) [1].")
    _, summary = data_complete(ctx_for("Что изменилось в demo?", many), many)
    assert summary.endswith("(CVE-2026-0001, CVE-2026-0002, CVE-2026-0003; всего CVE: 5) [1].")
    # The asked id comes first whatever its place in the entry
    _, summary = data_complete(ctx_for("Which upload fixed CVE-2026-0005?", many), many)
    assert "(CVE-2026-0005, CVE-2026-0001, CVE-2026-0002; 5 CVE ids in all) [1]." in summary


def test_the_data_written_summary_of_one_entry_says_one_entry(ctx_for):
    one = DOCS[2:]
    assert fallback_summary(ctx_for("What changed in demo?", one), one).startswith(
        "The listing holds one entry of demo, dated 2026-03-01. The newest is demo 1.9-1 (2026-03-01) [1].")
    assert fallback_summary(ctx_for("Что изменилось в demo?", one), one).startswith(
        "Записей в списке: 1 (demo), от 2026-03-01.")
    assert fallback_summary(ctx_for("What changed in demo?", DOCS), DOCS).startswith(
        "The listing holds 3 entries of demo, dated 2026-01-01 to 2026-03-01.")


def test_a_question_asking_for_the_cves_of_a_period_lists_every_id(ctx_for):
    many = [_doc(2, "3.0-2", "  * Fix CVE-2026-0001, CVE-2026-0002, CVE-2026-0003,\n    CVE-2026-0004 and CVE-2026-0005"),
            _doc(1, "3.0-1", "  * Rebuild")]
    _, summary = data_complete(ctx_for("List all CVEs fixed in demo in 2023.", many), many)
    assert summary == ("The entries that bear on the question: demo 3.0-2 (2026-02-01): security fix "
                       "(CVE-2026-0001, CVE-2026-0002, CVE-2026-0003, CVE-2026-0004, CVE-2026-0005) [1].")
    why, summary = data_complete(ctx_for("Какие CVE исправлены в demo в 2023 году?", many), many)
    assert why == "cves_listed" and "CVE-2026-0005) [1]." in summary and "[2]" not in summary
    # A question not asking for the ids themselves: three of them and the count
    why, summary = data_complete(ctx_for("What changed in demo in 2023?", many), many)
    assert why == "period_listed" and "CVE-2026-0003; 5 CVE ids in all) [1]." in summary


def test_an_id_lookup_whose_entries_all_name_the_id_lists_them_all(ctx_for):
    listing = DOCS[1:]  # both name CVE-2024-1234
    ctx = ctx_for("Where was CVE-2024-1234 fixed?", listing)
    why, summary = data_complete(ctx, listing)
    assert why == "ids_listed"
    assert "demo 2.0-1 (2026-02-01): security fix (CVE-2024-1234) [1]." in summary
    assert "demo 1.9-1 (2026-03-01): security fix (CVE-2024-1234) [2]." in summary
    ctx = ctx_for("Which version closed bug #1012314?", DOCS[1:2] + DOCS[:1])  # entry [2] does not name it
    assert data_complete(ctx, DOCS[1:2] + DOCS[:1]) is None


def test_more_entries_than_a_reply_may_choose_still_ask_the_model(ctx_for):
    listing = [_doc(n, f"1.{n}-1", "  * Fix CVE-2024-1234") for n in range(1, 6)]
    ctx = ctx_for("Where was CVE-2024-1234 fixed?", listing)
    assert data_complete(ctx, listing) is None  # five entries: the model orders and picks four


def test_the_prose_mode_is_not_skipped_for_a_quote(kos_factory):
    s = kos_factory(llm={"answer_mode": "prose"}).services
    question = 'Which version of demo has the entry "Relocate the old org.example:demo coordinates"?'
    ctx = StepContext(retrieval=s.retrieval, docstore=s.docstore, chat_model=s.chat_model, llm=s.settings.llm,
                      spec=s.domains.get("digest"), as_of=AS_OF, documents=DOCS,
                      analysis=analyze_query(question, channels={**s.channels(), "demo": "demo"}, as_of=AS_OF),
                      budget=Budget(max_llm_calls=1, max_tokens=1000, max_steps=1), usage={})
    assert data_complete(ctx, DOCS) is None


def _dated(n: int, version: str, day: str, channel: str = "demo") -> dict:
    from datetime import UTC, datetime

    ts = int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp())
    return {**_doc(n, version, "  * Fix a crash on empty input"), "channel": channel, "ts": ts, "date": day,
            "id": f"deb:{channel}:{version}", "sources": ("fts",)}


def test_a_package_period_digest_of_a_few_uploads_lists_them_all(ctx_for):
    listing = [_dated(1, "2.0-2", "2026-05-01"), _dated(2, "2.0-1", "2026-02-01")]
    ctx = ctx_for("What changed in demo in 2026?", listing)
    why, summary = data_complete(ctx, listing)
    assert why == "period_listed"
    assert summary == ("The entries that bear on the question: demo 2.0-2 (2026-05-01): bug fix [1]. "
                       "demo 2.0-1 (2026-02-01): bug fix [2].")


@pytest.mark.parametrize(("question", "listing"), [
    # an entry outside the asked period (e.g. after a replan widened it), another package
    ("What changed in demo in 2026?", [_dated(1, "2.0-2", "2026-05-01"), _dated(2, "1.0-1", "2025-12-31")]),
    ("What changed in demo in 2026?", [_dated(1, "2.0-2", "2026-05-01"), _dated(2, "7.0-1", "2026-03-01", "curl")]),
    ("What changed in demo?", [_dated(1, "2.0-2", "2026-05-01"), _dated(2, "2.0-1", "2026-02-01")]),  # no period
    ("What changed in demo in 2026?", [_dated(n, f"2.{n}-1", f"2026-0{n}-01") for n in range(1, 6)]),  # 5 > 4
])
def test_a_digest_the_model_must_choose_in_still_asks_it(ctx_for, question, listing):
    assert data_complete(ctx_for(question, listing), listing) is None


def _with_text(doc: dict, text: str) -> dict:
    return {**doc, "text": f"demo {doc['metadata']['version']}\n  * {text}"}


@pytest.mark.parametrize("question", ["Какие исправления безопасности получил demo в 2026 году?",
                                      "Which security fixes did demo get in 2026?"])
def test_a_package_period_digest_asking_for_a_kind_lists_every_entry_of_it(ctx_for, question):
    # the model, shown six curl entries of 2025, chose two of their three security fixes
    texts = ["Fix CVE-2026-0001", "Rebuild", "Fix a crash on empty input", "Import patch for CVE-2026-0002",
             "New upstream release", "Fix test failures"]
    listing = [_with_text(_dated(n, f"2.{n}-1", f"2026-0{n}-01"), t) for n, t in enumerate(texts, start=1)]
    why, summary = data_complete(ctx_for(question, listing), listing)
    assert why == "kinds_listed"
    assert re.findall(r"\[(\d)\]", summary) == ["1", "4"] and "CVE-2026-0001" in summary and "CVE-2026-0002" in summary
    more = [_with_text(_dated(n, f"2.{n}-1", f"2026-0{n}-01"), f"Fix CVE-2026-000{n}") for n in range(1, 6)]
    assert data_complete(ctx_for(question, more), more) is None  # 5 > 4: the model chooses
    widened = ctx_for(question, listing)
    widened.use_dates = False
    assert data_complete(widened, listing) is None


def test_a_dropped_period_asks_the_model_again(ctx_for):
    listing = [_dated(1, "2.0-2", "2026-05-01"), _dated(2, "2.0-1", "2026-02-01")]
    ctx = ctx_for("What changed in demo in 2026?", listing)
    ctx.use_dates = False  # a replan broadened the question
    assert data_complete(ctx, listing) is None


@pytest.mark.parametrize(("question", "kinds"), [
    ("How did the mix of bug fixes, security fixes and packaging work shift in Q2 2020?",
     ["bugfix", "security", "packaging"]),
    ("Как менялась доля исправлений безопасности в 4-м квартале 2020 года?", ["security"]),
    ("Стало ли больше исправлений ошибок и новых версий апстрима?", ["bugfix", "new_upstream"]),
    ("Which kinds of fixes are rising this year?", []),  # "fixes": no kind in particular
    ("Каких исправлений стало больше в 2-м квартале 2020 года, а каких меньше?", []),
])
def test_asked_kinds_reads_the_kinds_a_question_names_in_its_order(question, kinds):
    names = ["security", "bugfix", "new_upstream", "packaging", "translation", "documentation"]
    assert asked_kinds(question, names) == kinds


def test_a_domain_kind_outside_the_vocabulary_is_named_by_its_name():
    names = ["abi_break", "api_change"]
    assert asked_kinds("How did api-changes and ABI breaks evolve?", names) == ["api_change", "abi_break"]
    assert asked_kinds("How did abi-break uploads evolve?", names) == ["abi_break"]
    assert asked_kinds("How did the API evolve?", names) == []


def test_a_statistics_question_naming_its_kinds_is_answered_from_the_figures(kos_factory):
    kos = kos_factory(responses=['{"kinds": ["translation"]}'] * 2, llm={"answer_mode": "structured"})
    r = kos.run("How did security fixes change this year?", as_of=AS_OF.isoformat(), use_cache=False)
    assert r.domain == "trend" and r.usage.llm_calls == 0
    # The count with its share of the window's uploads, the share also in the figures table
    # (a percentage is grounded only by a percentage written there).
    assert r.answer.split("\n\n", 1)[0].startswith(
        "Uploads with a security fix: 2 of 4 (50%) from 2026-01-01 to 2026-11-22, against 1 of 1 (100%) from")
    assert "Share of the uploads with each kind: " in r.answer and "security 50% vs 100%" in r.answer
    assert r.answer_mode == "data" and r.data_only is False and r.quality.grounded
    r = kos.run("Which kinds of fixes were there this year?", as_of=AS_OF.isoformat(), use_cache=False)
    assert r.usage.llm_calls == 1  # no kind named: the model chooses


FIGURES = {"kinds": [{"kind": "security", "current": 92, "previous": 140},
                     {"kind": "bugfix", "current": 271, "previous": 250},
                     {"kind": "packaging", "current": 100, "previous": 60},
                     {"kind": "translation", "current": 0, "previous": 0}]}


@pytest.mark.parametrize(("question", "kinds"), [
    ("What types of fixes are becoming more common in 2023?", ["packaging", "bugfix"]),  # security fell
    ("Какие типы изменений стали встречаться чаще в 2020 году?", ["packaging", "bugfix"]),
    ("Which kinds of changes are declining?", ["security"]),
    ("Каких исправлений стало больше в 2025 году, а каких меньше?", ["security", "packaging", "bugfix"]),
    ("Which kinds of fixes dominated libarchive uploads last quarter, and how does that compare with before?",
     ["bugfix", "packaging", "security"]),
    ("Which kinds of fixes were there this year?", []),  # neither rise, fall nor dominance asked
])
def test_moving_kinds_ranks_the_kinds_by_what_the_question_asks(question, kinds):
    assert moving_kinds(question, FIGURES) == kinds


def test_rise_or_fall_without_an_earlier_window_is_left_to_the_model():
    one_window = {"kinds": [{"kind": "security", "current": 3, "previous": None}]}
    assert moving_kinds("Which kinds of fixes are rising?", one_window) == []
    assert moving_kinds("Which kinds of fixes dominated?", one_window) == ["security"]


def test_a_rising_kinds_question_when_none_rose_gets_the_figures_summary(ctx_for):
    fell = {"lang": "en", "summary": "No kind of change rose in A compared with B: 1 upload against 4.",
            "uploads": {"current": 1, "previous": 4}, "empty": {"current": False, "previous": False},
            "ranking": None, "series": None,
            "kinds": [{"kind": "security", "current": 1, "previous": 4, "delta": -3},
                      {"kind": "translation", "current": 0, "previous": 2, "delta": -2}]}
    ctx = ctx_for("Which kinds of fixes are rising this quarter?", DOCS, domain="trend")
    ctx.stats = fell
    assert data_complete(ctx, DOCS) == ("none_rose", fell["summary"])
    # A question about falls is not answered by "none rose"
    ctx = ctx_for("Which kinds of fixes are declining this quarter?", DOCS, domain="trend")
    ctx.stats = fell
    out = data_complete(ctx, DOCS)
    assert out is None or out[0] != "none_rose"
    # Nothing to compare with: left to the model
    ctx = ctx_for("Which kinds of fixes are rising this quarter?", DOCS, domain="trend")
    ctx.stats = {**fell, "uploads": {"current": 1, "previous": 0}}
    assert data_complete(ctx, DOCS) is None


@pytest.mark.parametrize(("question", "kinds", "measure"), [
    ("How many CVEs were fixed in linux in 2026?", ["security"], "cve_ids"),
    ("Сколько CVE исправили в linux в 2026 году?", ["security"], "cve_ids"),
    ("Сколько ошибок закрыли в systemd в 2024 году?", [], "bugs_closed"),
    ("How many bugs were closed in 2024?", [], "bugs_closed"),
    ("How many uploads did openssl get in 2025?", [], "uploads"),
    ("Сколько загрузок было у openssl в 2025 году?", [], "uploads"),
    ("How many security fixes did openssl get in 2025?", ["security"], None),  # the kind's own line
    ("Which kinds of fixes are rising this year?", [], None),  # no count asked
])
def test_total_asked(question, kinds, measure):
    assert total_asked(question, kinds) == measure


def test_a_question_asking_how_many_uploads_gets_the_totals(kos_factory):
    kos = kos_factory(responses=['{"kinds": ["security"]}'], llm={"answer_mode": "structured"})
    r = kos.run("How many uploads did openssl get this year?", as_of=AS_OF.isoformat(), use_cache=False)
    assert r.domain == "trend" and r.usage.llm_calls == 0 and r.quality.grounded
    assert re.match(r"Uploads \(openssl\): \d+ in 2026-01-01\.\.2026-11-22, against \d+ in 2025-01-01\.\.2025-11-22 "
                    r"\(the same 326 days of the previous year\)\.", r.answer), r.answer[:200]


def test_a_rising_kinds_question_is_answered_from_the_figures(kos_factory):
    kos = kos_factory(responses=['{"kinds": ["translation"]}'] * 2, llm={"answer_mode": "structured"})
    r = kos.run("Which kinds of fixes are rising this year?", as_of=AS_OF.isoformat(), use_cache=False)
    assert r.domain == "trend" and r.usage.llm_calls == 0 and r.answer_mode == "data"
    lead = r.answer.split("\n\n", 1)[0]
    assert "translation" not in lead and r.quality.grounded
    for line in lead.split(". "):  # every kind reported rose
        current, previous = re.search(r": (\d+)(?: of \d+ \(\d+%\))? from .*against (\d+)(?: of \d+ \(\d+%\))? from", line).groups()
        assert int(current) > int(previous), line


@pytest.mark.parametrize(("question", "newest"), [
    ("What is the latest version of demo?", True),
    ("Какая последняя версия demo?", True),
    ("Which was the last release of demo?", True),
    ("Какая самая новая версия demo?", True),
    ("What changed in demo last month?", False),  # a period
    ("Что изменилось в demo за последний месяц?", False),
    ("What changed in demo?", False),
    ("What are the latest changes in demo?", False),  # its few newest entries (full-latest)
    ("Какие последние изменения в demo?", False),
])
def test_asks_newest(question, newest):
    assert asks_newest(question) is newest


def test_a_question_asking_for_the_newest_entry_is_answered_by_it(ctx_for):
    # "What is the latest version of openssl?" named 1.1.1g-1 of 2020, found by "version"
    old = {**_with_text(_dated(1, "1.1-1", "2020-04-21"), "New upstream version"), "sources": ("fts",)}
    newest = [{**_dated(n, f"3.{n}-1", f"2026-0{n}-01"), "sources": ("latest",)} for n in (3, 2)]
    listing = [*newest, old]
    why, summary = data_complete(ctx_for("What is the latest version of demo?", listing), listing)
    assert why == "newest_asked" and re.findall(r"demo (\S+) \(", summary) == ["3.3-1"]
    ctx = ctx_for("Какая последняя версия demo?", listing)
    assert [d["id"] for d in select_listing(ctx)] == ["deb:demo:3.3-1"]  # listed alone
    # only an entry retrieval kept as the newest is called that; a period is the date filter's
    for question, shown in (("What is the latest version of demo?", [old]),
                            ("What is the latest version of demo in 2026?", listing)):
        result = data_complete(ctx_for(question, shown), shown)
        assert result is None or result[0] != "newest_asked"


def test_a_period_digest_of_two_packages_leads_with_the_newest_of_each(ctx_for):
    # the model, shown five curl and five openssl entries of 2025, chose two curl entries only
    listing = ([_dated(n, f"2.{n}-1", f"2026-0{7 - n}-01") for n in (1, 2, 3)]
               + [_dated(n, f"7.{n}-1", f"2026-0{7 - n}-01", "curl") for n in (4, 5, 6)])
    why, summary = data_complete(ctx_for("What changed in demo and curl in 2026?", listing), listing)
    assert why == "packages_listed"
    assert re.findall(r"\[(\d)\]", summary) == ["1", "2", "4", "5"]
    assert data_complete(ctx_for("What changed in demo and curl?", listing), listing) is None  # no period


@pytest.mark.parametrize(("question", "lead"), [
    ("Who uploaded openssl in 2026?", "The listed uploads were signed by Sebastian Andrzej Siewior [1]"),
    ("Кто загружал openssl в 2026 году?", "Перечисленные загрузки подписали: Sebastian Andrzej Siewior [1]"),
])
def test_a_question_asking_who_made_the_uploads_is_answered_by_their_signers(kos_factory, question, lead):
    # the model, not shown the signers, summarised the changes instead
    kos = kos_factory(llm={"answer_mode": "structured"})
    r = kos.run(question, as_of=AS_OF, use_cache=False)
    assert r.answer.startswith(lead) and "breakpoint.cc" not in r.answer.split("\n")[0]
    assert r.usage.llm_calls == 0 and r.quality.passed, r.quality.issues  # Latin names: still Russian


def test_signers_are_listed_most_entries_first_then_how_many_more():
    from knowledge_os.domains.compose import authors_summary

    def signed(n: int, who: str) -> dict:
        return {**_doc(n, f"1.{n}", "  * Fix"), "metadata": {"version": f"1.{n}", "author": f"{who} <{who}@x.org>"}}

    class Ctx:  # what authors_summary reads
        analysis = analyze_query("Who uploaded demo?", channels={"demo": "demo"}, as_of=AS_OF)

    listing = [signed(1, "Ann"), signed(2, "Bob"), signed(3, "Ann")]
    assert authors_summary(Ctx, listing) == "The listed uploads were signed by Ann [1], [3]; Bob [2]."
    many = [signed(n, f"P{n}") for n in range(1, 9)]
    assert authors_summary(Ctx, many).endswith("P6 [6]; and 2 more people.")
    assert authors_summary(Ctx, DOCS) is None  # no entry names its signer


def test_the_signers_names_of_the_cited_entries_are_in_no_language():
    # "Кто загружал curl в 2025 году?": five Latin names outweighed the Russian lead
    from knowledge_os.domains.checks import CheckInput, language_matches

    names = ["Samuel Henrique", "Carlos Henrique Lima Melara", "Dr. Tobias Quathamer", "Matheus Polkorny",
             "Aquila Macedo Costa"]
    cited = [{**_doc(n, f"1.{n}", "  * Fix"), "metadata": {"author": f"{who} <x{n}@x.org>"}}
             for n, who in enumerate(names, start=1)]
    summary = "Перечисленные загрузки подписали: " + "; ".join(f"{w} [{n}]" for n, w in enumerate(names, 1)) + "."
    x = CheckInput(answer=summary, summary=summary, cited_docs=cited, documents=cited, stats=None, cves=(),
                   bugs=(), packages=("curl",), ts_from=None, ts_to=None, lang="ru")
    assert language_matches(x, None) == (True, None)
    unsigned = CheckInput(answer=summary, summary=summary, cited_docs=DOCS, documents=DOCS, stats=None, cves=(),
                          bugs=(), packages=("curl",), ts_from=None, ts_to=None, lang="ru")
    assert language_matches(unsigned, None)[0] is False  # the same names, not the cited entries' signers
