"""The package's folders are the places code runs; import-linter keeps them apart (`make lint`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
TORCH_CONTRACT = "host, toolchain and board sides never import torch, transformers or gptqmodel"


def lint_copy(tmp_path: Path, plant: dict[str, str]) -> subprocess.CompletedProcess:
    """Run import-linter over a copy of the package with extra lines appended to some modules."""
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "axera_pipeline", copy / "axera_pipeline")
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    for module, line in plant.items():
        target = copy / "axera_pipeline" / module
        target.write_text(target.read_text() + f"\n{line}\n")
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=copy, capture_output=True, text=True, timeout=120
    )


def test_the_tree_keeps_every_contract(tmp_path):
    done = lint_copy(tmp_path, {})
    assert done.returncode == 0, done.stdout[-2000:]
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("host/doctor.py", "import torch", TORCH_CONTRACT),
        ("toolchain/profiles.py", "from transformers import AutoConfig", TORCH_CONTRACT),
        (
            "common/atomic.py",
            "from axera_pipeline.toolchain import profiles",
            "common imports nothing of ours",
        ),
        (
            "gptq/verify.py",
            "from axera_pipeline.toolchain import pulsar2_log",
            "the GPTQ side never imports the toolchain, host or board side",
        ),
        (
            "toolchain/build.py",
            "from axera_pipeline.gptq import embeddings",
            "the toolchain side never imports the GPTQ side",
        ),
        (
            "board/client.py",
            "from axera_pipeline.gptq import translation_scores",
            "the board side never imports the GPTQ side",
        ),
        ("board/deploy.py", "import torch", TORCH_CONTRACT),
        (
            "host/gptq_env.py",
            "import yaml",
            "common and host run in nox's own interpreter: standard library only",
        ),
    ],
)
def test_a_forbidden_import_breaks_lint_naming_the_contract(tmp_path, module, line, contract):
    done = lint_copy(tmp_path, {module: line})
    assert done.returncode != 0
    broken = done.stdout.split("Broken contracts", 1)[-1]
    assert contract in " ".join(broken.split()), done.stdout[-2000:]


def tracked(*pathspec: str) -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", *pathspec], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return [Path(line) for line in listed.stdout.splitlines()]


def test_nothing_outside_tests_edits_sys_path():
    """The project installs (pyproject.toml) and every step runs as `python -m`: no path surgery."""
    found = subprocess.run(
        ["git", "grep", "-n", "sys.path", "--", ".", ":!tests"], cwd=ROOT, capture_output=True, text=True
    )
    assert found.stdout == "", found.stdout


def test_no_two_folders_or_modules_share_a_name():
    """One name, one thing: a module or folder name is used once across the code, tests and benchmarks.
    (The stand-ins in tests/fakes/ are programs that must carry the name of the tool they replace.)"""
    seen: dict[str, set[str]] = {}
    for path in tracked("*.py"):
        if path.name != "__init__.py":
            seen.setdefault(path.stem, set()).add(str(path))
        for folder in path.parents[:-1]:
            if "fixtures" not in folder.parts:
                seen.setdefault(folder.name, set()).add(f"{folder}/")
    shared = {name: sorted(places) for name, places in seen.items() if len(places) > 1}
    assert not shared, shared


def architecture_tree() -> set[str]:
    """The folders docs/architecture.md's tree names, as paths (two spaces of indent per level)."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = text.split("## Places code runs", 1)[1].split("```\n", 2)[1]
    named, stack = set(), []
    for line in block.splitlines():
        depth = (len(line) - len(line.lstrip(" "))) // 2
        words = line.strip().split("  ", 1)[0].split()
        folders = [w for w in words if w.endswith("/")]
        if not folders:
            continue
        stack = stack[:depth]
        for folder in folders:
            named.add("/".join([*stack, folder.rstrip("/")]))
        stack.append(folders[0].rstrip("/"))
    return named


def test_the_architecture_page_shows_the_tree_on_disk():
    named = architecture_tree()
    missing = sorted(n for n in named if not (ROOT / n).is_dir())
    assert not missing, f"docs/architecture.md names folders that do not exist: {missing}"
    folders = {str(p.parent) for p in tracked() if len(p.parts) > 1}
    shown = {f for f in folders if f.count("/") < 2 and not f.startswith(("data/", ".ci"))}
    shown |= {str(p.parent) for p in tracked("axera_pipeline/**/__init__.py")}
    unshown = sorted(shown - named - {"tests/fixtures/models"})
    assert not unshown, f"folders on disk that docs/architecture.md's tree does not show: {unshown}"


def test_every_step_runs_as_a_module(gptq_python: str):
    """Each step is `python -m axera_pipeline.<side>.<step>`, answering --help in the GPTQ environment
    (which has every side's dependencies) without a traceback."""
    steps = [
        "gptq.quantize",
        "gptq.verify",
        "gptq.embeddings",
        "gptq.template_check",
        "gptq.translation_scores",
        "toolchain.build",
        "toolchain.check_package",
        "toolchain.preflight",
        "toolchain.prepare",
        "board.run",
        "host.gptq_env",
        "host.doctor",
    ]
    for step in steps:
        done = subprocess.run(
            [gptq_python, "-m", f"axera_pipeline.{step}", "--help"],
            cwd="/",
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0 and "usage:" in done.stdout, (step, done.stderr[-1000:])


@pytest.mark.e2e
def test_noxfile_runs_as_a_script():
    """PEP 723 header and a main block: `./noxfile.py -l` works through uv without a nox install."""
    done = subprocess.run(
        [str(ROOT / "noxfile.py"), "-l"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "* tests" in done.stdout and "- quantize" in done.stdout
