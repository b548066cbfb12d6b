"""The structured choice's prompt stays short: what the model needs to choose, no more."""

from __future__ import annotations

import pytest

from knowledge_os.domains import steps
from knowledge_os.domains.steps import choice_excerpt

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
    r = kos.run("Какие виды исправлений были в этом году?", as_of=AS_OF, use_cache=False)
    assert r.domain == "trend" and r.usage.llm_calls == 1
    [(messages, kwargs)] = sent
    user = messages[1].content
    assert "- security: 2 vs 1" in user  # the figures of the answer, one line per kind
    assert "Uploads with each kind of change in the asked period against the period before:\n" in user
    assert "2026-01-01" not in user  # the windows' dates: rendered in the answer from the figures
    assert "Итого" not in user and "безопасность" not in user  # not the localised table
    assert kwargs["json_schema"]["properties"]["kinds"]["items"]["enum"][0] == "security"
    assert r.answer.split("\n\n", 1)[0].startswith("Загрузок с видом изменений «исправление безопасности»: 2")


def test_the_entry_choice_asks_numbers_only_over_compact_entries(kos_factory, sent):
    kos = kos_factory(responses=['{"entries": [{"n": 2}]}'] * 3, llm={"answer_mode": "structured"})
    r = kos.run("What changed in openssl?", as_of=AS_OF, use_cache=False)
    [(messages, kwargs)] = sent
    user = messages[1].content
    assert "[1] openssl 3.0.19-1~deb12u2: CVE-2026-28387" in user
    assert "urgency=" not in user and "label each" not in user
    assert "2026-04-03" not in user  # the answer renders the chosen entry's date from the data
    item = kwargs["json_schema"]["properties"]["entries"]["items"]
    assert item["required"] == ["n"] and set(item["properties"]) == {"n"}
    assert r.answer_mode == "structured" and "[2]" in r.answer.split("\n\n", 1)[0]


def _prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


@pytest.mark.parametrize(("questions", "fixed"), [
    (("What changed in openssl?", "Что изменилось в curl?"),
     "Choose the entries that answer the question, most important first, by their number.\nEntries:\n[1] "),
    (("Which kinds of fixes were there this year?", "Какие виды исправлений были в этом году?"),
     "Choose up to three kinds of change from the figures that answer the question, from this list: "
     "security, bugfix, new_upstream, packaging, translation, documentation, other.\n"
     "Uploads with each kind of change in the asked period against the period before:\n- "),
])
def test_the_choice_prompt_puts_its_fixed_text_first_and_the_question_last(kos_factory, sent, questions, fixed):
    # llama.cpp evaluates only what follows the prefix shared with its previous prompt:
    # what is the same for every question of a domain must come before what is not.
    kos = kos_factory(responses=['{"entries": [{"n": 1}]}', '{"kinds": ["security"]}'] * 4,
                      llm={"answer_mode": "structured"})
    for q in questions:
        kos.run(q, as_of=AS_OF, use_cache=False)
    (first, _), (second, _) = sent[-2:]
    assert first[0].content == second[0].content  # the system prompt
    users = [first[1].content, second[1].content]
    assert _prefix(*users).startswith(fixed)
    for q, user in zip(questions, users, strict=True):
        assert user.endswith(f"\n\nQuestion: {q}")


def test_the_choice_excerpt_spends_its_characters_on_changes():
    entry = ("pyyaml (5.3.1-4) unstable; urgency=medium\n\n  * Team upload.\n\n  [ Debian Janitor ]\n"
             "  * Apply multi-arch hints.\n    + python3-yaml-dbg: Add Multi-Arch: same.\n"
             "  * See https://www.kernel.org/pub/linux/kernel/v6.x/ChangeLog-6.1.1 for details\n"
             "  [ Stefano Rivera ]\n  * Non-maintainer upload by the Security Team.\n  * Resolve CVE-2020-14343")
    assert choice_excerpt(entry, chars=300) == ("Apply multi-arch hints. + python3-yaml-dbg: Add Multi-Arch: same. "
                                                "* See for details * Resolve CVE-2020-14343")
    assert choice_excerpt(entry, chars=23) == "Apply multi-arch hints."
