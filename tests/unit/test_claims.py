"""Claim extraction and tracing (knowledge_os.domains.claims) with adversarial drafts."""

from __future__ import annotations

import pytest

from knowledge_os.domains.claims import CLAIM_KINDS, Evidence, extract_claims, trace_claims, ungrounded
from knowledge_os.domains.spec import GroundingSpec

OPENSSL_APR = {
    "id": "deb:openssl:3.0.19-1~deb12u2", "channel": "openssl", "date": "2026-04-03",
    "title": "openssl 3.0.19-1~deb12u2 (bookworm-security; urgency=medium)",
    "text": "openssl 3.0.19-1~deb12u2\n  * CVE-2026-28387 (\"Potential use-after-free in DANE client code\")\n"
            "  * CVE-2026-28389 (\"Possible NULL dereference when processing CMS\")",
    "metadata": {"package": "openssl", "version": "3.0.19-1~deb12u2", "date": "2026-04-03",
                 "author": "Sebastian Andrzej Siewior <sebastian@breakpoint.cc>"},
}
OPENSSL_SEP = {
    "id": "deb:openssl:3.0.17-1~deb12u3", "channel": "openssl", "date": "2025-09-29",
    "title": "openssl 3.0.17-1~deb12u3 (bookworm-security; urgency=high)",
    "text": "openssl 3.0.17-1~deb12u3\n  * CVE-2025-9230 (\"Out-of-bounds read in CMS decryption\")",
    "metadata": {"package": "openssl", "version": "3.0.17-1~deb12u3", "date": "2025-09-29",
                 "author": "Sebastian Andrzej Siewior <sebastian@breakpoint.cc>"},
}
CURL = {
    "id": "deb:curl:7.88.1-10+deb12u14", "channel": "curl", "date": "2026-10-10",
    "title": "curl 7.88.1-10+deb12u14 (bookworm; urgency=medium)",
    "text": "curl 7.88.1-10+deb12u14\n  * Fix crash when following redirects with netrc. Closes: #1109876",
    "metadata": {"package": "curl", "version": "7.88.1-10+deb12u14", "date": "2026-10-10",
                 "author": "Samuel Henrique <samueloph@debian.org>"},
}
DOCS = [OPENSSL_APR, OPENSSL_SEP, CURL]
VOCAB = ("openssl", "curl")


def bad_tokens(text: str, docs=DOCS, vocab=VOCAB, **ev) -> list[str]:
    claims = extract_claims(text, vocabulary=vocab)
    return [c.token for c in ungrounded(trace_claims(claims, Evidence(documents=docs, **ev)))]


def kinds_of(text: str) -> list[tuple[str, str]]:
    return [(c.kind, c.token) for c in extract_claims(text, vocabulary=VOCAB)]


def test_each_kind_is_extracted_once_with_its_sentence_citations() -> None:
    text = ("openssl 3.0.19-1~deb12u2 fixed CVE-2026-28387 on 2026-04-03 [1]. "
            "Samuel Henrique (samueloph@debian.org) closed bug #1109876 in October 2026, 12% of 25 uploads.")
    got = kinds_of(text)
    assert got == [("package", "openssl"), ("version", "3.0.19-1~deb12u2"), ("cve", "CVE-2026-28387"),
                   ("date", "2026-04-03"), ("person", "Samuel Henrique"), ("email", "samueloph@debian.org"),
                   ("bug", "bug #1109876"), ("date", "October 2026"), ("number", "12%"), ("number", "25")]
    claims = extract_claims(text, vocabulary=VOCAB)
    assert claims[2].cites == (1,) and claims[4].cites == ()


def test_kinds_filter_what_is_returned_not_how_tokens_are_read() -> None:
    # The date is still a date (not three numbers) when only numbers are checked.
    assert kinds_of("x") == []
    assert [c.token for c in extract_claims("on 2026-04-03 there were 3 uploads", ("number",))] == ["3"]
    with pytest.raises(ValueError, match="unknown claim kind.*allowed: version"):
        extract_claims("x", ("colour",))


def test_the_spec_offers_exactly_the_claim_kinds() -> None:
    assert GroundingSpec().claims == CLAIM_KINDS


def test_a_grounded_draft_has_no_ungrounded_claim() -> None:
    text = ("openssl 3.0.19-1~deb12u2 fixed CVE-2026-28387 and CVE-2026-28389 on 2026-04-03 [1]; "
            "Sebastian Andrzej Siewior uploaded it in April 2026 [1]. curl closed bug #1109876 [3].")
    assert bad_tokens(text) == []


def test_an_invented_version_beside_a_real_one() -> None:
    assert bad_tokens("openssl 3.0.19-1~deb12u2 [1] and openssl 3.0.20 [1] fixed it.") == ["openssl", "3.0.20"]


@pytest.mark.parametrize("version", ["3.0.18", "3.0.1", "13.0.17", "3.0"])
def test_version_matching_is_exact(version: str) -> None:
    assert version in bad_tokens(f"The fix is in {version} [2].")


def test_the_upstream_part_of_a_debian_version_is_grounded() -> None:
    assert bad_tokens("The fix is in 3.0.17 [2].") == []


def test_words_before_a_version_that_are_not_packages() -> None:
    assert [c.kind for c in extract_claims("after importing 3.0.19, upgraded to 3.0.20 and version 3.1")] == [
        "version", "version", "version"]
    assert kinds_of("nettle 3.4-2") == [("package", "nettle"), ("version", "3.4-2")]


def test_a_swapped_package_is_caught() -> None:
    # curl never had version 3.0.19; openssl did.
    assert bad_tokens("curl 3.0.19-1~deb12u2 fixed CVE-2026-28387 [1].") == ["curl"]
    # Without a version, a package the cited entry does not mention is ungrounded too.
    assert bad_tokens("curl fixed CVE-2026-28387 [1].") == ["curl"]


def test_a_made_up_maintainer_is_caught() -> None:
    assert bad_tokens("John Smith uploaded openssl in April 2026 [1].") == ["John Smith"]
    assert bad_tokens("Sebastian Siewior uploaded it [1].") == []
    assert bad_tokens("Mail sebastian@example.org about it [1].") == ["sebastian@example.org"]


def test_a_wrong_year_or_month_is_caught() -> None:
    assert bad_tokens("openssl fixed CVE-2026-28387 in 2019 [1].") == ["2019"]
    assert bad_tokens("openssl fixed CVE-2026-28387 in May 2026 [1].") == ["May 2026"]
    assert bad_tokens("openssl fixed CVE-2026-28387 in April [1].") == []
    assert bad_tokens("openssl fixed CVE-2026-28387 on 2026-04-04 [1].") == ["2026-04-04"]


def test_a_count_off_by_one_is_caught() -> None:
    ev = {"numbers": [3, 551]}
    assert bad_tokens("There were 3 uploads.", **ev) == []
    assert bad_tokens("There were 4 uploads.", **ev) == ["4"]
    assert bad_tokens("Security uploads rose 47%.", **ev) == ["47%"]
    # A percentage needs a percentage: the count 3 does not ground "3%".
    assert bad_tokens("Security uploads rose 3%.", **ev) == ["3%"]
    assert bad_tokens("Security uploads rose 100%.", docs=[], texts=["- security: 2 (previous 1, +100%)"]) == []


def test_a_cve_the_cited_entry_does_not_name_is_caught() -> None:
    # CVE-2025-9230 is in entry [2], not in the cited [1].
    assert bad_tokens("openssl 3.0.19-1~deb12u2 fixed CVE-2025-9230 [1].") == ["CVE-2025-9230"]
    assert bad_tokens("openssl fixed CVE-2025-9230 [2].") == []
    assert bad_tokens("openssl fixed CVE-2099-12345.") == ["CVE-2099-12345"]


def test_the_question_grounds_what_it_asks_about_but_not_a_citation() -> None:
    q = "Which upload fixed CVE-2099-12345 since March 2026?"
    assert bad_tokens("No entry names CVE-2099-12345 since March 2026.", question=q) == []
    assert bad_tokens("CVE-2099-12345 was fixed in [1].", question=q) == ["CVE-2099-12345"]


def test_figures_periods_and_names_computed_by_the_domain_ground_claims() -> None:
    ev = {"numbers": [2, 1, 100], "periods": [("2026-01-01", "2026-11-22")], "names": ["libxml2"],
          "texts": ["- security: 2 (previous 1, +1, +100%)"]}
    text = "Between 2026-01-01 and 2026-11-22 security rose from 1 to 2 (+100%), led by libxml2."
    assert bad_tokens(text, docs=[], vocab=("libxml2",), **ev) == []
    # A version the figures do not hold is not grounded by the package's name.
    assert bad_tokens("libxml2 2.9.14 led it.", docs=[], vocab=("libxml2",), **ev) == ["libxml2", "2.9.14"]
    assert bad_tokens("Security rose in Q2 2026 and in 2025.", docs=[], **ev) == ["2025"]


def test_the_shipped_example_of_an_invented_draft_is_caught() -> None:
    assert bad_tokens("openssl 9.9.9 removed TLS entirely and fixed 47 CVEs [1].") == ["openssl", "9.9.9", "47"]


def test_russian_dates_and_names() -> None:
    assert bad_tokens("В апреле 2026 openssl исправил CVE-2026-28387 [1].") == []
    assert bad_tokens("В мае 2026 Иван Петров исправил CVE-2026-28387 [1].") == ["мае 2026", "Иван Петров"]


def test_sentence_initial_words_and_plain_capitals_are_not_names() -> None:
    assert [c for c in extract_claims("The Debian Security Team fixed it. New Upstream Release.")
            if c.kind == "person"] == []


def test_a_domain_yaml_chooses_its_claim_kinds_and_a_bad_kind_names_the_key(tmp_path) -> None:
    from pathlib import Path

    from knowledge_os.domains.registry import load_domain_file
    from knowledge_os.errors import DomainConfigError

    notes = (Path(__file__).resolve().parent.parent / "data" / "domains" / "notes.yaml").read_text(encoding="utf-8")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    good = tmp_path / "a" / "notes.yaml"
    good.write_text(notes + "grounding: {claims: [number, date]}\n", encoding="utf-8")
    assert load_domain_file(good).grounding.claims == ("number", "date")
    assert load_domain_file(Path(__file__).resolve().parent.parent / "data" / "domains" / "notes.yaml"
                            ).grounding.claims == CLAIM_KINDS
    bad = tmp_path / "b" / "notes.yaml"
    bad.write_text(notes + "grounding: {claims: [number, colour]}\n", encoding="utf-8")
    with pytest.raises(DomainConfigError) as info:
        load_domain_file(bad)
    assert "grounding.claims" in str(info.value) and "colour" in str(info.value)
