"""A normal install: the wheel built from the tracked files, installed into a fresh virtual
environment, runs ``kos ingest`` and ``kos run`` from another folder with the real
embedded models. The fresh environment has no site packages of its own; it reaches the
already installed dependencies through one ``.pth`` line (adding a folder to ``sys.path``
does not run that folder's ``.pth`` files, so the repository's editable install stays
out of it), and Knowledge OS itself only from the wheel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import orjson
import pytest

from tests.conftest import CHANGELOGS, write_changelog

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def _tracked(prefix: str) -> list[str]:
    out = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", prefix], capture_output=True, check=True)
    return sorted(p for p in out.stdout.decode().split("\0") if p)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.fail("the wheel test builds from the tracked files and needs git and the repository")
    src = tmp_path_factory.mktemp("src")
    for rel in _tracked("."):
        if (REPO / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, src / rel)
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(dist), str(src)], check=True, capture_output=True, timeout=600)
    (built,) = dist.glob("knowledge_os-*.whl")
    return built


def test_the_wheel_holds_every_file_of_the_package(wheel: Path) -> None:
    """Migrations, domain YAMLs, eval suites and data: whatever the package reads ships."""
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [p for p in _tracked("knowledge_os") if p not in names]
    assert missing == []
    assert "knowledge_os/domains/builtin/digest.yaml" in names
    assert "knowledge_os/db/migrations/0001_episodic_memory_and_dlq.sql" in names


def test_installed_wheel_runs_outside_the_repository(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    shared = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "_kos_test_deps.pth").write_text("\n".join(sorted(shared)) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--quiet", "--no-deps",
                    str(wheel)], check=True, capture_output=True, timeout=600)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    corpus = tmp_path / "doc"
    write_changelog(corpus, "openssl", CHANGELOGS["openssl"])
    env = {"PATH": f"{env_dir / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(tmp_path),
           "KOS_HOME": str(tmp_path / "home")}

    def run(*args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(list(args), cwd=elsewhere, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc

    where = run(str(py), "-c", "import knowledge_os; print(knowledge_os.__file__)").stdout.strip()
    assert Path(where).is_relative_to(site), where  # the wheel's copy, not the repository's
    kos = str(env_dir / "bin" / "kos")
    report = orjson.loads(run(kos, "ingest", "--json", str(corpus)).stdout)
    assert (report["documents"], report["problems"]) == (3, [])
    result = orjson.loads(run(kos, "run", "--json", "--domain", "digest", "--as-of", "2026-11-22",
                              "What changed in openssl in 2026?").stdout)
    assert result["domain"] == "digest" and result["route"]["method"] == "forced"
    assert {c["metadata"]["version"] for c in result["citations"]} <= {e[0] for e in CHANGELOGS["openssl"]}
    assert result["citations"], result["answer"]
