"""RetrievalService: one graph-expansion path that obeys the request's filters, used by
retrieval's graph list and by the Smart Path's ``expand`` step."""

from __future__ import annotations

import dataclasses
from datetime import date

from knowledge_os.domains.relevance import names_only
from knowledge_os.domains.steps import StepContext, _request, closest_are_newest, doc_to_state, select_listing
from knowledge_os.domains.steps import expand as expand_step
from knowledge_os.llm.budget import Budget
from knowledge_os.nodes.cache_lookup import answer_cache_scope
from knowledge_os.retrieval.query import analyze_query
from knowledge_os.retrieval.fusion import Fused
from knowledge_os.retrieval.service import RetrievalRequest, _cut

AS_OF = date(2026, 11, 22)
FEB = "deb:openssl:3.0.19-1~deb12u1"  # 2026-02-22; its openssl neighbours are from April 2026 and 2025


def _ctx(kos, question: str, docs: list[str], *, use_dates: bool = True) -> StepContext:
    s = kos.services
    analysis = analyze_query(question, channels=s.channels(), as_of=AS_OF)
    ctx = StepContext(retrieval=s.retrieval, docstore=s.docstore, chat_model=s.chat_model,
                      llm=s.settings.llm, spec=s.domains.get("digest"), analysis=analysis, as_of=AS_OF,
                      budget=Budget(max_llm_calls=5, max_tokens=10_000, max_steps=10), usage={},
                      use_dates=use_dates)
    ctx.documents = [doc_to_state(d, 1.0, ("vector",)) for d in s.docstore.get(docs)]
    return ctx


def test_smart_path_expand_obeys_the_date_filter(kos_factory) -> None:
    kos = kos_factory()
    ctx = _ctx(kos, "What changed in openssl in February 2026?", [FEB])
    assert ctx.analysis.dates is not None
    expand_step(ctx)
    assert [d["id"] for d in ctx.documents] == [FEB]  # April and 2025 neighbours are outside


def test_smart_path_expand_without_dates_after_broadening(kos_factory) -> None:
    kos = kos_factory()
    ctx = _ctx(kos, "What changed in openssl in February 2026?", [FEB], use_dates=False)
    expand_step(ctx)
    added = [d for d in ctx.documents[1:]]
    assert {d["id"] for d in added} == {"deb:openssl:3.0.19-1~deb12u2", "deb:openssl:3.0.17-1~deb12u3"}
    assert all(d["sources"] == ["graph_expand"] for d in added)


def test_expand_obeys_the_package_filter(kos_factory) -> None:
    kos = kos_factory()
    s = kos.services
    analysis = analyze_query("What changed in curl?", channels=s.channels(), as_of=AS_OF)
    seeds = ["doc:deb:openssl:3.0.19-1~deb12u2", "doc:deb:curl:7.88.1-10+deb12u14"]
    req = RetrievalRequest(analysis=analysis, domain="digest", graph_depth=2)
    assert [d.id for d in s.retrieval.expand(req, seeds=seeds, limit=10)] == ["deb:curl:7.88.1-10+deb12u13"]
    unfiltered = RetrievalRequest(analysis=analysis, domain="digest", graph_depth=2, use_packages=False)
    got = {d.id for d in s.retrieval.expand(unfiltered, seeds=seeds, limit=10)}
    assert got == {"deb:curl:7.88.1-10+deb12u13", "deb:openssl:3.0.19-1~deb12u1", "deb:openssl:3.0.17-1~deb12u3"}
    assert s.retrieval.expand(unfiltered, seeds=seeds, limit=10, exclude={"deb:curl:7.88.1-10+deb12u13"}) \
        and "deb:curl:7.88.1-10+deb12u13" not in {
            d.id for d in s.retrieval.expand(unfiltered, seeds=seeds, limit=10, exclude={"deb:curl:7.88.1-10+deb12u13"})}


def test_retrieve_graph_list_uses_the_same_path(kos_factory) -> None:
    kos = kos_factory()
    s = kos.services
    analysis = analyze_query("What changed in openssl in February 2026?", channels=s.channels(), as_of=AS_OF)
    result = s.retrieval.retrieve(RetrievalRequest(analysis=analysis, domain="digest"))
    assert {d.document.id for d in result.documents} == {FEB}


NEWEST = "deb:openssl:3.0.19-1~deb12u2"  # 2026-04-03, the newest openssl entry


def _retrieve(kos, question: str, **request) -> list:
    s = kos.services
    analysis = analyze_query(question, channels=s.channels(), as_of=AS_OF)
    return s.retrieval.retrieve(RetrievalRequest(analysis=analysis, domain="digest", **request)).documents


def test_a_package_question_without_a_period_keeps_the_newest_entries(kos_factory) -> None:
    kos = kos_factory()
    one = _retrieve(kos, "What changed in openssl?", max_documents=1, latest_per_package=1)
    assert [d.document.id for d in one] == [NEWEST] and "latest" in one[0].sources
    three = _retrieve(kos, "What changed in openssl?", max_documents=3, latest_per_package=2)
    assert len(three) == 3
    assert {d.document.id for d in three if "latest" in d.sources} == {NEWEST, "deb:openssl:3.0.19-1~deb12u1"}
    assert {d.document.channel for d in three} == {"openssl"}


def test_newest_entries_are_not_added_with_a_period_or_when_off(kos_factory) -> None:
    kos = kos_factory()
    dated = _retrieve(kos, "What changed in openssl in 2025?", latest_per_package=3)
    assert [d.document.id for d in dated] == ["deb:openssl:3.0.17-1~deb12u3"]
    assert all("latest" not in d.sources for d in dated)
    off = _retrieve(kos, "What changed in openssl?", max_documents=1)
    assert all("latest" not in d.sources for d in off)
    everything = _retrieve(kos, "What changed lately?", latest_per_package=3)  # no package named
    assert all("latest" not in d.sources for d in everything)


def _fused(*ids: str) -> list[Fused]:
    return [Fused(id=i, score=1.0 / (n + 1), found_by=("vector",)) for n, i in enumerate(ids)]


def test_cut_keeps_the_fused_order_and_adds_the_kept_ids_last() -> None:
    fused = _fused("a", "b", "c", "d", "e")
    assert [f.id for f in _cut(fused, 3)] == ["a", "b", "c"]
    got = _cut(fused, 3, keep=["e"])
    assert [(f.id, f.found_by) for f in got] == [("a", ("vector",)), ("b", ("vector",)), ("e", ("vector", "latest"))]
    assert got[2].score == fused[4].score  # the fused score, not a made-up one
    assert [(f.id, f.found_by) for f in _cut(fused, 3, keep=["b"])] == [
        ("a", ("vector",)), ("b", ("vector", "latest")), ("c", ("vector",))]
    assert [f.id for f in _cut(fused, 3, keep=["d", "b"])] == ["a", "b", "d"]
    unseen = _cut(fused, 2, keep=["x"])
    assert [(f.id, f.score, f.found_by) for f in unseen] == [("a", 1.0, ("vector",)), ("x", 0.0, ("latest",))]
    assert [f.id for f in _cut(fused, 2, keep=["x", "y", "z"])] == ["x", "y"]  # never more than the limit


def test_the_digest_step_asks_for_the_newest_entries_only_of_a_general_question(kos_factory) -> None:
    kos = kos_factory()
    general = _ctx(kos, "What changed in openssl?", [])
    assert _request(general).latest_per_package == kos.services.domains.get("digest").retrieval.latest_per_package == 10
    particular = _ctx(kos, "Which openssl upload fixed the DANE use-after-free?", [])
    assert _request(particular).latest_per_package == 0


def test_a_dropped_period_reaching_today_keeps_each_packages_newest_entries(kos_factory) -> None:
    # nothing this year: "the closest entries from any date" were 2023 curl uploads while
    # curl had security uploads in 2024 and 2025 (the newest are the closest to this year)
    kos = kos_factory()
    latest = kos.services.domains.get("digest").retrieval.latest_per_package
    for question in ("Which security fixes did openssl get this year?",
                     "Какие исправления безопасности получил openssl в этом году?",
                     "Which openssl uploads fixed a CVE since March?"):
        dropped = _ctx(kos, question, [], use_dates=False)
        assert dropped.analysis.dates is not None and closest_are_newest(dropped), question
        assert _request(dropped).latest_per_package == latest
        assert not closest_are_newest(_ctx(kos, question, []))  # the period still filters
    past = _ctx(kos, "Which security fixes did openssl get in 2019?", [], use_dates=False)
    assert not closest_are_newest(past) and _request(past).latest_per_package == 0  # closest: either side of it
    assert not closest_are_newest(_ctx(kos, "Which security fixes landed this year?", [], use_dates=False))
    no_packages = _ctx(kos, "Which security fixes did openssl get this year?", [], use_dates=False)
    no_packages.use_packages = False
    assert not closest_are_newest(no_packages)


def test_the_kinds_a_question_asks_for_are_listed_first(kos_factory) -> None:
    kos = kos_factory()
    ctx = _ctx(kos, "Which security fixes did openssl get?", [])
    texts = ["Rebuild against the new toolchain", "Fix CVE-2025-0001: buffer overflow", "New upstream release",
             "Fix a crash on empty input", "Fix CVE-2025-0002"]
    ctx.documents = [{"id": f"deb:openssl:{i}", "channel": "openssl", "score": 0.03 - i / 1000, "sources": ["vector"],
                      "title": f"openssl {i}", "text": f"openssl {i}\n  * {t}", "date": "2025-01-01",
                      "metadata": {}} for i, t in enumerate(texts)]
    listed = [d["id"] for d in select_listing(ctx)]
    assert listed[:2] == ["deb:openssl:1", "deb:openssl:4"]  # the security fixes, in their own order
    assert sorted(listed) == sorted(d["id"] for d in ctx.documents)  # the same entries, reordered
    ctx.analysis = dataclasses.replace(ctx.analysis, text="What changed in openssl?")  # names no kind
    assert [d["id"] for d in select_listing(ctx)] == [d["id"] for d in ctx.documents]


def test_an_entry_of_an_asked_kind_bears_though_it_shares_no_word_with_the_question(kos_factory) -> None:
    # openssl 3.0.16-1~deb12u1 ("Import 3.0.16 - CVE-2024-13176 ...") was left out of
    # "Which security fixes did openssl get in 2025?": it shares only "openssl" with it
    kos = kos_factory()
    ctx = _ctx(kos, "Which security fixes did openssl get in 2025?", [])
    rows = [("openssl", "3.0.15-1", "Security fixes for openssl"),
            ("openssl", "3.0.16-1", "Import 3.0.16 - CVE-2024-13176 (Timing side-channel in ECDSA)"),
            ("openssl", "3.0.16-2", "Rebuild against the new toolchain"),
            ("curl", "8.1-1", "Fix CVE-2025-0001: buffer overflow")]
    ctx.documents = [{"id": f"deb:{p}:{v}", "channel": p, "score": 0.03 - i / 1000, "sources": ["vector"],
                      "title": f"{p} {v}", "text": f"{p} {v}\n  * {t}", "date": "2025-04-15", "metadata": {}}
                     for i, (p, v, t) in enumerate(rows)]
    assert [d["id"] for d in select_listing(ctx)] == ["deb:openssl:3.0.15-1", "deb:openssl:3.0.16-1"]
    ctx.analysis = dataclasses.replace(ctx.analysis, text="Which openssl upload fixed the security issues?")
    assert [d["id"] for d in select_listing(ctx)] == ["deb:openssl:3.0.15-1", "deb:openssl:3.0.16-1"]
    ctx.analysis = dataclasses.replace(ctx.analysis, text="What did the security fixes change?", packages=())
    assert [d["id"] for d in select_listing(ctx)] == [  # no package named: every security entry bears
        "deb:openssl:3.0.15-1", "deb:openssl:3.0.16-1", "deb:curl:8.1-1"]


def test_a_question_naming_only_a_short_package_name_lists_all_its_entries(kos_factory) -> None:
    # "bc" is too short to be a term: bearing alone kept only the top score's ties
    kos = kos_factory()
    ctx = _ctx(kos, "What changed in openssl in 2026?", [])
    ctx.analysis = dataclasses.replace(ctx.analysis, text="Что изменилось в bc в 1997 году?", packages=("bc",))
    ctx.documents = [{"id": f"deb:bc:1.0{i}", "channel": "bc", "score": 0.03 - i / 1000, "sources": ["vector"],
                      "title": f"bc 1.0{i}", "text": "Rebuild", "date": "1997-01-01", "metadata": {}} for i in range(4)]
    ctx.documents.append({"id": "deb:dc:1.0", "channel": "dc", "score": 0.02, "sources": ["graph"],
                          "title": "dc 1.0", "text": "Rebuild", "date": "1997-01-01", "metadata": {}})
    assert [d["id"] for d in select_listing(ctx)] == [f"deb:bc:1.0{i}" for i in range(4)]
    ctx.analysis = dataclasses.replace(ctx.analysis, text="Which bc upload fixed the rebuild?")
    assert [d["id"] for d in select_listing(ctx)] == [f"deb:bc:1.0{i}" for i in range(4)] + ["deb:dc:1.0"]  # by terms


def test_a_common_name_of_a_package_names_it(kos_factory) -> None:
    # "What changed in the kernel in 2025?" answered "No ingested entry is about kernel"
    kos = kos_factory(corpus={"names": {"ssl": "openssl", "kernel": "linux", "curl": "openssl"}})
    channels = kos.services.channels()
    assert channels["ssl"] == "openssl"
    assert "kernel" not in channels  # linux is not in this corpus: the name names nothing
    assert channels["curl"] == "curl"  # a package's own name is never taken over
    a = analyze_query("What changed in ssl in 2025?", channels=channels, as_of=date(2026, 11, 22))
    assert a.packages == ("openssl",) and a.package_names == ("ssl",) and a.unknown_packages == ()
    # a question naming nothing but the package by that name asks for all of its entries
    assert names_only(a.text, a.packages, a.package_names) and not names_only(a.text, a.packages)
    scope = kos.services.settings.corpus.names
    assert answer_cache_scope(kos.services, None, "2026-11-22")["names"] == scope  # a new table: new keys


def test_two_named_packages_share_the_listing(kos_factory) -> None:
    # "What changed in curl and openssl?" listed ten curl entries and no openssl one
    kos = kos_factory()
    ctx = _ctx(kos, "What changed in curl and openssl?", [])
    assert set(ctx.analysis.packages) == {"curl", "openssl"}
    ctx.documents = [{"id": f"deb:{p}:{i}", "channel": p, "score": 0.03, "sources": ["latest"], "title": f"{p} {i}",
                      "text": f"{p} {i}\n  * Fix bug {i}", "date": "2025-04-15", "metadata": {}}
                     for p, n in (("curl", 12), ("openssl", 3)) for i in range(n)]
    listed = [d["id"] for d in select_listing(ctx)]
    assert listed == [f"deb:curl:{i}" for i in range(5)] + [f"deb:openssl:{i}" for i in range(3)]
