"""Follow-up questions in a thread ("And in 2025?", "What about curl?", "А в 2025?") read
in the context of the question before them; a question that stands alone does not."""

from __future__ import annotations

from datetime import date

from knowledge_os.retrieval.query import analyze_query, follow_up

AS_OF = date(2026, 11, 22)
CHANNELS = {"curl": "curl", "openssl": "openssl", "libssl3": "openssl"}


def _a(text: str):
    return analyze_query(text, channels=CHANNELS, as_of=AS_OF)


def test_a_follow_up_takes_what_it_leaves_out_from_the_previous_question() -> None:
    prev = _a("What changed in curl in 2026?")
    year = follow_up(_a("And in 2025?"), prev)
    assert year.packages == ("curl",) and year.dates == _a("in 2025").dates
    assert year.text == "What changed in curl in 2026? And in 2025?" and year.follows == prev.text
    other = follow_up(_a("What about openssl?"), prev)
    assert other.packages == ("openssl",) and other.dates == prev.dates  # its own package, the period kept
    assert other.text == "What about openssl?" and other.follows == prev.text  # curl's name left out
    ru = follow_up(_a("А в 2025?"), _a("Что изменилось в curl в 2026 году?"))
    assert ru.packages == ("curl",) and ru.lang == "ru"
    assert (ru.dates.ts_from, ru.dates.ts_to) == (year.dates.ts_from, year.dates.ts_to)
    assert follow_up(_a("И для openssl?"), prev).packages == ("openssl",)


def test_a_question_that_stands_alone_is_read_alone() -> None:
    prev = _a("What changed in curl in 2026?")
    for text in ("What changed in openssl in 2025?",    # names both: nothing to take
                 "Which upload fixed CVE-2025-9230?",   # an id lookup stands alone
                 "And which upload fixed CVE-2025-9230?",
                 "Android changes in 2025?",            # "and" only as a word of its own
                 "Announce the openssl uploads"):
        got = _a(text)
        assert follow_up(got, prev) is got, text
    first = _a("And in 2025?")
    assert follow_up(first, None) is first  # a thread's first question


def test_a_thread_answers_its_follow_up_about_the_package_it_was_asking_about(kos_factory) -> None:
    kos = kos_factory()
    first = kos.run("What changed in openssl in 2026?", as_of=AS_OF, thread_id="t-openssl")
    assert {c.id for c in first.citations} == {"deb:openssl:3.0.19-1~deb12u2", "deb:openssl:3.0.19-1~deb12u1"}
    then = kos.run("And in 2025?", as_of=AS_OF, thread_id="t-openssl")
    a = then.manifest["analysis"]
    assert list(a["packages"]) == ["openssl"] and a["follows"] == "What changed in openssl in 2026?"
    assert then.domain == "digest" and [c.id for c in then.citations] == ["deb:openssl:3.0.17-1~deb12u3"]
    assert then.route.method == "thread"  # "And in 2025?" alone would not say which domain
    # the same words in a thread about curl: another question, not the cached openssl answer
    kos.run("What changed in curl in 2026?", as_of=AS_OF, thread_id="t-curl")
    other = kos.run("And in 2025?", as_of=AS_OF, thread_id="t-curl")
    assert not other.manifest["cache"]["hit"] and list(other.manifest["analysis"]["packages"]) == ["curl"]
    assert all(c.id.startswith("deb:curl:") for c in other.citations)
    # a follow-up of the follow-up reads the chain: openssl, and now 2026 again
    again = kos.run("And in 2026?", as_of=AS_OF, thread_id="t-openssl")
    assert list(again.manifest["analysis"]["packages"]) == ["openssl"]
    assert {c.id for c in again.citations} == {c.id for c in first.citations}
    # alone, in a new thread, it names no package: not read as anyone's follow-up
    alone = kos.run("And in 2025?", as_of=AS_OF, use_cache=False)
    assert list(alone.manifest["analysis"]["packages"]) == [] and not alone.manifest["analysis"].get("follows")
