"""Shared fixtures: the GPTQ environment, tiny models built offline, and a runner for user commands."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HELPERS = ROOT / "tests" / "helpers"


@pytest.fixture(scope="session")
def gptq_python() -> str:
    """The GPTQ environment's python (nox -s tests passes it; otherwise build or reuse it)."""
    given = os.environ.get("GPTQ_ENV_PYTHON")
    if given:
        return given
    from axera_pipeline.host import gptq_env

    return str(gptq_env.ensure())


def terminal_signals() -> None:
    """Ctrl-C and Ctrl-\\ as a terminal delivers them. A suite started in the background by a shell
    without job control inherits SIGINT ignored, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


class Run:
    """A user command in its own process group, as a terminal runs it, read line by line."""

    def __init__(self, args: list[str], env: dict | None = None):
        self.proc = subprocess.Popen(
            args,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            preexec_fn=terminal_signals,
            env={**os.environ, **(env or {})},
        )
        self.lines: list[str] = []

    def wait_for(self, text: str, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        for line in self.proc.stdout:
            self.lines.append(line)
            if text in line:
                return
            assert time.monotonic() < deadline, f"no {text!r} within {timeout} s"
        raise AssertionError(f"ended before {text!r}:\n{''.join(self.lines)[-3000:]}")

    def signal(self, sig: int) -> None:
        os.killpg(self.proc.pid, sig)

    def finish(self, timeout: float = 600) -> str:
        rest, _ = self.proc.communicate(timeout=timeout)
        self.lines.append(rest)
        return "".join(self.lines)


def run_cmd(args: list[str], *, env: dict | None = None, timeout: int = 900, **kw):
    """Run a user-facing command from the repo root; return the CompletedProcess (text)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(args, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout, **kw)


def make_model(gptq_python: str, out: Path, *extra: str) -> Path:
    done = run_cmd([gptq_python, str(HELPERS / "make_tiny_model.py"), str(out), *extra])
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.fixture(scope="session")
def tiny_hunyuan(gptq_python: str, tmp_path_factory) -> Path:
    """hunyuan_v1_dense, 2 layers, hidden 256, random weights, BPE tokenizer with a chat template."""
    return make_model(gptq_python, tmp_path_factory.mktemp("models") / "tiny-hunyuan")


@pytest.fixture(scope="session")
def tiny_llama(gptq_python: str, tmp_path_factory) -> Path:
    return make_model(gptq_python, tmp_path_factory.mktemp("models") / "tiny-llama", "--model-type", "llama")


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory) -> Path:
    """BUILD_DIR for the end-to-end runs, so tests never write into the repo's build/."""
    return tmp_path_factory.mktemp("build")


@pytest.fixture(scope="session")
def quantized_hunyuan(tiny_hunyuan: Path, build_dir: Path) -> Path:
    """The tiny HunYuan model quantized through the real user path, `make quantize`."""
    done = run_cmd(["make", "quantize", f"MODEL={tiny_hunyuan}"], env={"BUILD_DIR": str(build_dir)})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = build_dir / tiny_hunyuan.name / "gptq-int4"
    assert (out / "manifest.json").is_file()
    return out


def tree_digest(folder: Path) -> str:
    """Content and names of every file below `folder`, to prove it was left untouched."""
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(folder)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture
def good_output(quantized_hunyuan: Path, tmp_path: Path) -> Path:
    """A private copy of a good quantized output, for tests that must leave it untouched."""
    copy = tmp_path / "earlier" / "gptq-int4"
    shutil.copytree(quantized_hunyuan, copy)
    return copy


FAKES = ROOT / "tests" / "fakes"


@pytest.fixture
def local_pulsar2() -> dict:
    """Environment for builds with the stand-in pulsar2 as a local install."""
    return {"PULSAR2_BIN": str(FAKES / "pulsar2")}


def image_archive(folder: Path, tag: str = "5.1", version: str = "") -> Path:
    """An image archive as `docker save` writes it (repositories), plus the stand-in's pulsar2 version."""
    import io
    import tarfile

    archive = folder / f"ax_pulsar2_{tag}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        members = {"repositories": json.dumps({"pulsar2": {tag: "0" * 64}})}
        if version:
            members["pulsar2-version"] = version
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive


def docker_env(folder: Path, tag: str = "5.1", version: str = "") -> dict:
    """Environment for builds through the stand-in Docker CLI, with Axera's image archive to load."""
    return {
        "DOCKER": str(FAKES / "docker"),
        "FAKE_DOCKER_STATE": str(folder / "docker-state"),
        "FAKE_DOCKER_LOG": str(folder / "docker.log"),
        "PULSAR2_IMAGE": f"pulsar2:{tag}",
        "PULSAR2_IMAGE_TAR": str(image_archive(folder, tag, version)),
    }


@pytest.fixture
def docker_pulsar2(tmp_path) -> dict:
    return docker_env(tmp_path)


def docker_calls(env: dict) -> list[list[str]]:
    log = Path(env["FAKE_DOCKER_LOG"])
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.fixture(scope="session")
def built_ax650(quantized_hunyuan: Path, tiny_hunyuan: Path, build_dir: Path) -> Path:
    """`make build-ax650` on the tiny quantized model with the local stand-in pulsar2."""
    env = {"BUILD_DIR": str(build_dir), "PULSAR2_BIN": str(FAKES / "pulsar2")}
    done = run_cmd(["make", "build-ax650", f"MODEL={tiny_hunyuan}"], env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return build_dir / tiny_hunyuan.name / "ax650"


# Random-weight models generate noise, so translation agreement is low even for a good quantization;
# these limits still fail a broken checkpoint by orders of magnitude.
# Quoted: Make hands ARGS/VERIFY_ARGS to a shell, where a bare >= would redirect.
TINY_MODEL_THRESHOLDS = "--threshold 'chrf_vs_reference_model>=5' --threshold 'top1_agreement>=0.5'"


@pytest.fixture(scope="session")
def verified_hunyuan(quantized_hunyuan: Path, tiny_hunyuan: Path, build_dir: Path) -> Path:
    """`make verify` on the tiny quantized model; returns the report folder."""
    done = run_cmd(
        ["make", "verify", f"MODEL={tiny_hunyuan}", f"ARGS={TINY_MODEL_THRESHOLDS}"],
        env={"BUILD_DIR": str(build_dir)},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return quantized_hunyuan.with_name("gptq-int4-verify")


@pytest.fixture(scope="session")
def make_all_run(tiny_hunyuan: Path, quantized_hunyuan: Path, build_dir: Path) -> subprocess.CompletedProcess:
    """`make all` on the tiny model after `make quantize` (so make reuses that checkpoint): verify on
    the chips' numerics, both builds. Shared: it is most of a minute even on a tiny model."""
    env = {"BUILD_DIR": str(build_dir), "PULSAR2_BIN": str(FAKES / "pulsar2")}
    done = run_cmd(["make", "all", f"MODEL={tiny_hunyuan}", f"VERIFY_ARGS={TINY_MODEL_THRESHOLDS}"], env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="session")
def made_all(make_all_run, quantized_hunyuan: Path) -> Path:
    """The AX650 package `make all` built."""
    return quantized_hunyuan.with_name("ax650")


@pytest.fixture(scope="session")
def built_llama_ax650(tiny_llama: Path, build_dir: Path) -> Path:
    """`make build-ax650` on the tiny llama model from a fresh BUILD_DIR (so it quantizes first), with
    the local stand-in pulsar2."""
    env = {"BUILD_DIR": str(build_dir), "PULSAR2_BIN": str(FAKES / "pulsar2")}
    done = run_cmd(["make", "build-ax650", f"MODEL={tiny_llama}"], env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "[quantize]" in done.stdout, "nothing else quantizes the tiny llama model into BUILD_DIR"
    return build_dir / tiny_llama.name / "ax650"


@pytest.fixture(scope="session")
def ssh_boards(gptq_python: str, tmp_path_factory):
    """A real sshd on 127.0.0.1 with one port per kind of board (tests/helpers/sshd.py), whose PATH
    holds the stand-in axllm run by the GPTQ environment's python; `ssh -F <config> board-full` etc."""
    from helpers import sshd

    folder = tmp_path_factory.mktemp("boards")
    wrapper = folder / "axllm"
    # The board's own environment: a test sets the stand-in's FAKE_AXLLM_* there (ssh does not pass ours).
    # The CMM the stand-in holds is the board's: one record per loaded process, kept when it is killed.
    wrapper.write_text(
        f'#!/bin/sh\nexport FAKE_AXLLM_CMM_DIR="{folder}/cmm"\n'
        f'[ -f "{folder}/fake-env" ] && . "{folder}/fake-env"\n'
        f'exec "{gptq_python}" "{FAKES / "axllm"}" "$@"\n'
    )
    wrapper.chmod(0o755)
    boards = sshd.start(folder / "sshd", wrapper)
    boards.fake_env = folder / "fake-env"
    boards.cmm = folder / "cmm"
    yield boards
    boards.stop()
    leaked = sorted(p.name for p in boards.cmm.glob("held-*.json")) if boards.cmm.is_dir() else []
    assert leaked == [], f"a test run left the stand-in's CMM leaked (axllm killed without SIGINT): {leaked}"


@pytest.fixture
def board_env(ssh_boards):
    """Set the stand-in axllm's environment on the board for one test."""

    def set_env(**values: str) -> None:
        ssh_boards.fake_env.write_text("".join(f"export {k}={v}\n" for k, v in values.items()))

    yield set_env
    ssh_boards.fake_env.unlink(missing_ok=True)
