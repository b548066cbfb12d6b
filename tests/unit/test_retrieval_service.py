"""RetrievalService: one graph-expansion path that obeys the request's filters, used by
retrieval's graph list and by the Smart Path's ``expand`` step."""

from __future__ import annotations

from datetime import date

from knowledge_os.domains.steps import StepContext, doc_to_state
from knowledge_os.domains.steps import expand as expand_step
from knowledge_os.llm.budget import Budget
from knowledge_os.retrieval.query import analyze_query
from knowledge_os.retrieval.service import RetrievalRequest

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
