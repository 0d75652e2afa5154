"""End-to-end: `nox -s doctor`, and the GPTQ environment built from a GPTQModel checkout."""

from __future__ import annotations

import subprocess
import sys
import tarfile

import pytest
from conftest import FAKES, ROOT, run_cmd

pytestmark = pytest.mark.e2e


def test_doctor_reports_every_prerequisite(tiny_hunyuan, local_pulsar2):
    done = run_cmd(["nox", "-s", "doctor", "--", "--model", str(tiny_hunyuan)], env=local_pulsar2)
    assert done.returncode == 0, done.stdout[-3000:]
    lines = {
        " ".join(ln.split()[1:3]): ln
        for ln in done.stdout.splitlines()
        if ln.split()[:1] in (["ok"], ["warn"])
    }
    for what in ("Python 3.13", "uv", "GPTQ environment", "GPU", "pulsar2 local", "pulsar2 version", "RAM"):
        assert any(key.startswith(what) for key in lines), (what, done.stdout)
    assert "5.1-patch1 (commit 9f2c41ab)" in lines["pulsar2 version"]
    assert "llm_build listed; builds use llm_build" in done.stdout


def test_doctor_says_what_is_missing(tiny_hunyuan, tmp_path):
    done = run_cmd(
        ["nox", "-s", "doctor", "--", "--model", str(tiny_hunyuan)],
        env={
            "PULSAR2_BIN": "",
            "DOCKER": str(FAKES / "docker"),
            "FAKE_DOCKER_STATE": str(tmp_path),
            "PULSAR2_IMAGE_TAR": "",
        },
    )
    assert done.returncode != 0
    assert "missing pulsar2 Docker image pulsar2:5.1 is not loaded" in " ".join(done.stdout.split())
    assert "set PULSAR2_IMAGE_TAR to it" in done.stdout
    assert "doctor: error: missing: pulsar2" in done.stdout + done.stderr


def test_environment_from_a_gptqmodel_checkout(tmp_path):
    """GPTQMODEL_SOURCE=<checkout>: built with --no-build-isolation against the locked torch."""
    got = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-binary",
            ":all:",
            "gptqmodel==7.5.0",
            "-d",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert got.returncode == 0, f"cannot fetch GPTQModel's source from the package index: {got.stderr[-300:]}"
    with tarfile.open(next(tmp_path.glob("gptqmodel-*.tar.gz"))) as tar:
        tar.extractall(tmp_path, filter="data")
    checkout = next(p for p in tmp_path.iterdir() if p.is_dir())
    env = {"GPTQMODEL_SOURCE": str(checkout), "GPTQ_ENV_DIR": str(tmp_path / "env")}
    done = run_cmd(["nox", "-s", "gptq-env"], env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "--no-build-isolation" in done.stdout + done.stderr
    probe = subprocess.run(
        [
            str(tmp_path / "env" / "bin" / "python"),
            "-c",
            "import importlib.metadata as m; print(m.version('gptqmodel'), m.version('torch'))",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert probe.stdout.split() == ["7.5.0", "2.9.1"]
    again = run_cmd(["nox", "-s", "gptq-env"], env=env)
    assert "building the GPTQ environment" not in again.stdout + again.stderr
