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
            "from axera_pipeline.gptq import board_scores",
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


def test_scripts_are_thin_entry_points():
    """scripts/ holds only entry points: each a few lines calling into the package."""
    for script in sorted((ROOT / "scripts").glob("*.py")):
        text = script.read_text()
        assert "from axera_pipeline." in text, script.name
        assert len([ln for ln in text.splitlines() if ln.strip()]) <= 12, script.name


@pytest.mark.e2e
def test_noxfile_runs_as_a_script():
    """PEP 723 header and a main block: `./noxfile.py -l` works through uv without a nox install."""
    done = subprocess.run(
        [str(ROOT / "noxfile.py"), "-l"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "* tests" in done.stdout and "- quantize" in done.stdout
