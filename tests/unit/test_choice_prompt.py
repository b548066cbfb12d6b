"""The structured choice's prompt stays short: what the model needs to choose, no more."""

from __future__ import annotations

import pytest

from knowledge_os.domains import steps

AS_OF = "2026-11-22"


@pytest.fixture
def sent(monkeypatch) -> list[tuple[list, dict]]:
    calls: list[tuple[list, dict]] = []
    real = steps.call_llm

    def spy(model, messages, **kwargs):
        calls.append((list(messages), kwargs))
        return real(model, messages, **kwargs)

    monkeypatch.setattr(steps, "call_llm", spy)
    return calls


def test_a_russian_statistics_question_shows_the_model_english_kind_counts(kos_factory, sent):
    kos = kos_factory(responses=['{"kinds": ["security"]}'] * 3, llm={"answer_mode": "structured"})
    r = kos.run("Какие виды исправлений растут в этом году?", as_of=AS_OF, use_cache=False)
    assert r.domain == "trend" and r.usage.llm_calls == 1
    [(messages, kwargs)] = sent
    user = messages[1].content
    assert "- security: 2 vs 1" in user  # the figures of the answer, one line per kind
    assert "2026-01-01..2026-11-22 against" in user
    assert "Итого" not in user and "безопасность" not in user  # not the localised table
    assert kwargs["json_schema"]["properties"]["kinds"]["items"]["enum"][0] == "security"
    assert r.answer.split("\n\n", 1)[0].startswith("Загрузок с видом изменений «исправление безопасности»: 2")


def test_the_entry_choice_asks_numbers_only_over_compact_entries(kos_factory, sent):
    kos = kos_factory(responses=['{"entries": [{"n": 2}]}'] * 3, llm={"answer_mode": "structured"})
    r = kos.run("What changed in openssl?", as_of=AS_OF, use_cache=False)
    [(messages, kwargs)] = sent
    user = messages[1].content
    assert "[1] openssl 3.0.19-1~deb12u2 (2026-04-03): CVE-2026-28387" in user
    assert "urgency=" not in user and "label each" not in user
    item = kwargs["json_schema"]["properties"]["entries"]["items"]
    assert item["required"] == ["n"] and set(item["properties"]) == {"n"}
    assert r.answer_mode == "structured" and "[2]" in r.answer.split("\n\n", 1)[0]
