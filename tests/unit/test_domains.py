from __future__ import annotations

from pathlib import Path

import pytest

from knowledge_os.domains.names import CHECK_RULES, PROMPT_FIELDS, STEP_NAMES
from knowledge_os.domains.registry import DomainRegistry, load_domain_file
from knowledge_os.errors import DomainConfigError, UnknownNameError
from knowledge_os.settings import Settings

BUILTIN = Settings().builtin_domains_dir
MINIMAL = """name: {name}
description: test
plans: {{fast: [retrieve, summarise], smart: [retrieve, expand, summarise]}}
prompts: {{system: s, summarise: "{{query}}", correct: c}}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / f"{name}.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_builtins_load() -> None:
    reg = DomainRegistry.from_dirs([BUILTIN])
    assert reg.names() == ["digest", "trend"]
    assert reg.get("digest").retrieval.max_documents == 30
    assert reg.get("digest").retrieval.graph_depth == 2
    assert reg.get("trend").retrieval.max_documents == 50
    assert reg.get("trend").retrieval.graph_depth == 3


def test_a_new_domain_is_only_a_yaml_file(tmp_path: Path) -> None:
    write(tmp_path, "security", MINIMAL.format(name="security"))
    reg = DomainRegistry.from_dirs([BUILTIN, tmp_path])
    assert "security" in reg and reg.get("security").plans.fast == ("retrieve", "summarise")


def test_user_file_overrides_builtin(tmp_path: Path) -> None:
    write(tmp_path, "digest", MINIMAL.format(name="digest").replace("description: test", "description: mine"))
    assert DomainRegistry.from_dirs([BUILTIN, tmp_path]).get("digest").description == "mine"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (MINIMAL.format(name="x") + "colour: blue\n", "x.yaml: colour: unknown key"),
        (MINIMAL.format(name="x").replace("[retrieve, summarise]", "[retrieve, fly]"),
         "x.yaml: plans.fast[1]: unknown step 'fly'; allowed: expand, group, retrieve, stats, summarise"),
        (MINIMAL.format(name="x").replace("[retrieve, summarise]", "[retrieve, group, stats, summarise]"),
         "x.yaml: plans.fast: a Fast Path micro-plan has 1 to 3 steps, got 4"),
        (MINIMAL.format(name="x") + "retrieval: {max_documents: 0}\n", "x.yaml: retrieval.max_documents:"),
        (MINIMAL.format(name="x") + "routing: {patterns: ['(']}\n", "x.yaml: routing.patterns:"),
        (MINIMAL.format(name="y"), "x.yaml: name: 'y' must match the file name 'x'"),
        ("name: x\n  bad: [indent\n", "x.yaml: malformed YAML at line"),
        ("- a list\n", "x.yaml: expected a mapping at the top level"),
    ],
)
def test_bad_yaml_names_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(DomainConfigError) as info:
        load_domain_file(write(tmp_path, "x", text))
    assert message in str(info.value)


def test_unknown_check_rule(tmp_path: Path) -> None:
    text = MINIMAL.format(name="x") + "checklist: [{id: a, rule: vibes}]\n"
    with pytest.raises(DomainConfigError, match="unknown rule 'vibes'"):
        load_domain_file(write(tmp_path, "x", text))


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DomainConfigError, match="domains folder does not exist"):
        DomainRegistry.from_dirs([tmp_path / "nope"])


def test_unknown_domain_lists_known() -> None:
    with pytest.raises(UnknownNameError, match="allowed: digest, trend"):
        DomainRegistry.from_dirs([BUILTIN]).get("weather")


def _digest_with(tmp_path: Path, old: str, new: str) -> Path:
    text = (BUILTIN / "digest.yaml").read_text(encoding="utf-8")
    assert old in text
    return write(tmp_path, "digest", text.replace(old, new, 1))


def test_prompt_placeholder_typo_is_a_load_error(tmp_path: Path) -> None:
    path = _digest_with(tmp_path, "Question: {query}", "Question: {qeury}")
    with pytest.raises(DomainConfigError) as info:
        load_domain_file(path)
    assert info.value.problems == (
        ("prompts.summarise", "unknown placeholder {qeury}; allowed: " + ", ".join(
            f"{{{f}}}" for f in sorted(PROMPT_FIELDS))),
    )
    assert f"{path}: prompts.summarise: unknown placeholder {{qeury}}" in str(info.value)


@pytest.mark.parametrize(
    ("template", "field", "message"),
    [
        ("system", "for {persona} in {draft}", "unknown placeholder {draft}"),  # only `correct` sees the draft
        ("correct", "{draft} {n} {issues}", None),
        ("summarise", "{query.upper} {context[0]} {today!r:>10}", None),
        ("summarise", "{}", "positional placeholder {} (name a field)"),
        ("summarise", "a { b", "malformed template:"),
    ],
)
def test_prompt_placeholders_per_template(tmp_path: Path, template: str, field: str, message: str | None) -> None:
    text = MINIMAL.format(name="x").replace("{system: s, summarise: \"{query}\", correct: c}",
                                            "{system: s, summarise: s, correct: c}")
    text = text.replace(f"{template}: {template[0]}", f"{template}: {field!r}")
    path = write(tmp_path, "x", text)
    if message is None:
        assert getattr(load_domain_file(path).prompts, template) == field
        return
    with pytest.raises(DomainConfigError) as info:
        load_domain_file(path)
    ((key, got),) = info.value.problems
    assert key == f"prompts.{template}" and message in got


@pytest.mark.parametrize(
    ("rule_yaml", "key", "message"),
    [
        ("{id: a, rule: max_words, value: many}", "checklist[0].value", "max_words takes an integer >= 1, got 'many'"),
        ("{id: a, rule: max_words}", "checklist[0].value", "max_words needs a value"),
        ("{id: a, rule: min_citations, value: 0}", "checklist[0].value", "min_citations takes an integer >= 1, got 0"),
        ("{id: a, rule: summary_present, value: true}", "checklist[0].value", "summary_present takes an integer >= 0, got True"),
        ("{id: a, rule: names_packages, value: 3}", "checklist[0].value", "names_packages takes no value, got 3"),
        ("{id: a, rule: vibes}", "checklist[0].rule", "unknown rule 'vibes'"),
    ],
)
def test_rule_value_types_are_checked_at_load(tmp_path: Path, rule_yaml: str, key: str, message: str) -> None:
    path = write(tmp_path, "x", MINIMAL.format(name="x") + f"checklist: [{rule_yaml}]\n")
    with pytest.raises(DomainConfigError) as info:
        load_domain_file(path)
    ((got_key, got),) = info.value.problems
    assert got_key == key and got.startswith(message)


def test_every_error_of_a_file_is_reported(tmp_path: Path) -> None:
    text = (MINIMAL.format(name="x").replace("[retrieve, summarise]", "[retrieve, fly]")
            .replace('"{query}"', '"{qeury} {ctx}"')
            + "colour: blue\nchecklist: [{id: a, rule: max_words, value: x}, {id: b, rule: vibes}]\n")
    with pytest.raises(DomainConfigError) as info:
        load_domain_file(write(tmp_path, "x", text))
    keys = [k for k, _ in info.value.problems]
    assert keys == ["plans.fast[1]", "prompts.summarise", "checklist[0].value", "checklist[1].rule", "colour"]
    assert "unknown placeholders {ctx}, {qeury}" in dict(info.value.problems)["prompts.summarise"]
    assert len(str(info.value).splitlines()) == 5


def test_name_registry_matches_the_libraries() -> None:
    """spec.py validates against names.py; the step and check libraries must agree."""
    from knowledge_os.domains.checks import CHECKS
    from knowledge_os.domains.steps import STEPS

    assert set(STEPS) == set(STEP_NAMES)
    assert set(CHECKS) == set(CHECK_RULES)


def test_kos_run_with_a_prompt_typo_exits_2_naming_file_key_and_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from knowledge_os.cli import app

    folder = tmp_path / "domains"
    folder.mkdir()
    path = _digest_with(folder, "Question: {query}", "Question: {qeury}")
    monkeypatch.setenv("KOS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KOS_DOMAINS_DIRS", f'["{folder}"]')
    result = CliRunner().invoke(app, ["run", "what changed in openssl?"])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"error: {path}: prompts.summarise: unknown placeholder {{qeury}}" in result.output


def test_kos_prints_one_line_per_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from knowledge_os.cli import app

    folder = tmp_path / "domains"
    folder.mkdir()
    text = MINIMAL.format(name="x").replace('"{query}"', '"{qeury}"') + "colour: blue\n"
    path = write(folder, "x", text)
    monkeypatch.setenv("KOS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KOS_DOMAINS_DIRS", f'["{folder}"]')
    result = CliRunner().invoke(app, ["run", "what changed in openssl?"])
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert lines[0].startswith(f"error: {path}: prompts.summarise: unknown placeholder {{qeury}}")
    assert lines[1] == f"error: {path}: colour: unknown key"


def test_every_allowed_placeholder_is_given_to_the_templates(kos_factory) -> None:
    """What load allows (names.py) is what steps.prompt_fields gives: no KeyError later."""
    from datetime import date

    from knowledge_os.domains.names import PROMPT_EXTRA_FIELDS, prompt_fields
    from knowledge_os.domains.steps import StepContext
    from knowledge_os.domains.steps import prompt_fields as fields_given
    from knowledge_os.llm.budget import Budget
    from knowledge_os.retrieval.query import analyze_query

    s = kos_factory().services
    ctx = StepContext(retrieval=s.retrieval, docstore=s.docstore, chat_model=s.chat_model,
                      llm=s.settings.llm, spec=s.domains.get("digest"), as_of=date(2026, 11, 22),
                      analysis=analyze_query("What changed in openssl?", channels=s.channels(),
                                             as_of=date(2026, 11, 22)),
                      budget=Budget(max_llm_calls=1, max_tokens=1000, max_steps=1), usage={})
    given = set(fields_given(ctx, []))
    for template in ("system", "summarise", "correct", *PROMPT_EXTRA_FIELDS):
        assert prompt_fields(template) <= given, template
