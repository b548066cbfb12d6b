from __future__ import annotations

from pathlib import Path

import pytest

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
