"""The public surface is small and listed; the version comes from the package metadata."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import knowledge_os


def test_public_names_are_pinned():
    assert knowledge_os.__all__ == [
        "BackendError", "BackendTimeoutError", "BackendUnavailableError", "BudgetExceededError", "Citation",
        "ConfigError", "DomainConfigError", "IngestError", "InputError", "KnowledgeOS", "KnowledgeOSError",
        "Quality", "RouteInfo", "RunResult", "RunUsage", "Settings", "UnknownNameError", "__version__",
    ]
    for name in knowledge_os.__all__:
        assert hasattr(knowledge_os, name), name


def test_version_is_the_distributions():
    assert knowledge_os.__version__ == importlib.metadata.version("knowledge-os")
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert re.search(r'^version = "([^"]+)"', pyproject, re.M)[1] == knowledge_os.__version__


def test_every_factory_lives_in_a_factory_module():
    root = Path(knowledge_os.__file__).parent
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if p.name != "factory.py" and "evals" not in p.parts
                 and re.search(r"^def make_(chat_model|embedder|vector_store|graph_store|episodic_memory|"
                               r"dead_letter_queue)\b", p.read_text(), re.M)]
    assert offenders == []


def test_docstrings_and_comments_point_only_at_files_that_exist():
    root = Path(__file__).resolve().parents[2]
    pattern = re.compile(r"\b((?:tests|benchmarks|knowledge_os|scripts|configs)/[\w./-]+\.(?:py|yaml|md|json|jsonl|toml|sql|sh))\b")
    missing = []
    for path in [*sorted((root / "knowledge_os").rglob("*.py")), root / "README.md"]:
        for ref in pattern.findall(path.read_text()):
            if not (root / ref).exists():
                missing.append(f"{path.relative_to(root)} -> {ref}")
    assert missing == []
