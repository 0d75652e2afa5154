#!/usr/bin/env -S uv run --script
# /// script
# dependencies = ["nox>=2024.3.2"]
# ///
"""Sessions of the HF -> GPTQ -> Axera NPU pipeline. `nox -l` lists them; `./noxfile.py -s NAME` works too."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent

nox.needs_version = ">=2024.3.2"
nox.options.default_venv_backend = "uv"
nox.options.reuse_venv = "yes"
nox.options.error_on_external_run = True

# Ctrl-C: nox gives a child 0.3 s by default before terminating it; removing a staging folder with
# GPTQModel's offload copy, or stopping a pulsar2 container, takes longer on a busy machine.
CLEANUP = {"interrupt_timeout": 120.0, "terminate_timeout": 30.0}
PROJECT_STAMP = ".pipeline-project"
LOCK_PLATFORM = ["--python-version", "3.13", "--python-platform", "x86_64-manylinux_2_28"]


def host_module(session: nox.Session, module: str, *args: str) -> str:
    """`python -m axera_pipeline.host.<module>` in nox's own interpreter (standard library only, so it
    runs before any environment exists): its last stdout line; its progress and errors go to stderr."""
    done = subprocess.run(
        [sys.executable, "-m", f"axera_pipeline.host.{module}", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    if done.returncode != 0:
        session.error(f"{module} failed (the line above says why)")
    lines = done.stdout.splitlines()
    return lines[-1] if lines else ""


def gptq_python(session: nox.Session) -> str:
    """The isolated GPTQ environment's interpreter, (re)built from its lock only when needed."""
    return host_module(session, "gptq_env", "ensure")


def run_in_gptq_env(session: nox.Session, module: str, *args: str) -> None:
    python = gptq_python(session)
    session.run(python, "-m", f"axera_pipeline.gptq.{module}", *args, external=True, **CLEANUP)


def install_host(session: nox.Session, lock: str = "host") -> None:
    """A session venv from its lock, plus this project editable (its dependencies only from the lock)."""
    session.install("-r", str(ROOT / "envs" / f"{lock}.lock"))
    # uv rebuilds an editable install on every call (2 s in every session): only when the venv's points
    # elsewhere, as the GPTQ environment does (axera_pipeline/host/gptq_env.py, PROJECT_STAMP).
    stamp = Path(session.virtualenv.location) / PROJECT_STAMP
    if not stamp.is_file() or stamp.read_text().strip() != str(ROOT):
        session.install("--no-deps", "-e", str(ROOT))
        stamp.write_text(f"{ROOT}\n")


def build_for(session: nox.Session, *profile: str) -> None:
    """The build in the host venv; packaging reaches the GPTQ env through GPTQ_ENV_PYTHON."""
    install_host(session)
    env = {"GPTQ_ENV_PYTHON": gptq_python(session)}
    module = "axera_pipeline.toolchain.build"
    session.run("python", "-m", module, *profile, *session.posargs, env=env, **CLEANUP)


@nox.session(python=False, default=False)
def quantize(session: nox.Session) -> None:
    """Quantize a Hugging Face model to GPTQ INT4/INT8 in the GPTQ environment."""
    run_in_gptq_env(session, "quantize", *session.posargs)


@nox.session(python=False, default=False)
def verify(session: nox.Session) -> None:
    """Measure the quantized model against its reference in the GPTQ environment; pass or fail."""
    run_in_gptq_env(session, "verify", *session.posargs)


@nox.session(name="build-ax650", default=False)
def build_ax650(session: nox.Session) -> None:
    """Build the GPTQ checkpoint for AX650 with pulsar2 and package it for the board."""
    build_for(session, "--profile", "ax650")


@nox.session(name="build-ax620e", default=False)
def build_ax620e(session: nox.Session) -> None:
    """Build the GPTQ checkpoint for AX620E (s4 weights) with pulsar2 and package it."""
    build_for(session, "--profile", "ax620e")


@nox.session(default=False)
def build(session: nox.Session) -> None:
    """Build for any chip profile: `nox -s build -- --profile ax630c --input ...`."""
    if "--profile" not in session.posargs:
        session.error("name a chip profile: nox -s build -- --profile ax650|ax620e|ax620e-1k|ax630c ...")
    build_for(session)


@nox.session(default=False)
def toolchain(session: nox.Session) -> None:
    """Prepare the pulsar2 toolchain (load the image, unpack the package) and report it, one line each."""
    install_host(session)
    session.run("python", "-m", "axera_pipeline.toolchain.prepare", *session.posargs, **CLEANUP)


def existing_gptq_env(session: nox.Session) -> dict[str, str]:
    """GPTQ_ENV_PYTHON for checks that use the GPTQ environment where it exists, never building it."""
    return {"GPTQ_ENV_PYTHON": host_module(session, "gptq_env", "existing")}


@nox.session(name="check-package", default=False)
def check_package(session: nox.Session) -> None:
    """Check a folder as axllm and Axera's Python demo would read it: `nox -s check-package -- DIR`."""
    if not session.posargs:
        session.error("name the folder: nox -s check-package -- build/<name>/ax650")
    install_host(session)
    module = "axera_pipeline.toolchain.check_package"
    session.run("python", "-m", module, *session.posargs, env=existing_gptq_env(session))


@nox.session(default=False)
def preflight(session: nox.Session) -> None:
    """Will this model build and fit on the board? `nox -s preflight -- --model ID_OR_DIR [--board NAME]`."""
    install_host(session)
    module = "axera_pipeline.toolchain.preflight"
    session.run("python", "-m", module, *session.posargs, env=existing_gptq_env(session))


@nox.session(default=False)
def board(session: nox.Session) -> None:
    """Deploy a package over SSH, serve it with axllm and measure it there (`--package DIR --host HOST`)."""
    install_host(session)
    env = {"GPTQ_ENV_PYTHON": gptq_python(session)}
    session.run("python", "-m", "axera_pipeline.board.run", *session.posargs, env=env, **CLEANUP)


@nox.session(default=False)
def doctor(session: nox.Session) -> None:
    """Report what is present and missing (Python, uv, GPTQ env, GPU, pulsar2, RAM, disk), then preflight."""
    install_host(session)
    venv_python = str(Path(session.virtualenv.bin) / "python")
    command = [sys.executable, "-m", "axera_pipeline.host.doctor", *session.posargs]
    session.run(*command, "--preflight-python", venv_python, external=True)


# The benchmarks `nox -s bench` runs and BENCHMARKS.md keeps current, by NAME: the module in bench/.
BENCHMARKS = {
    "overhead": "overhead",
    "warm_start": "warm_start",
    "scaling": "scaling",
    "profile": "quantize_profile",
    "gemma": "gemma",
    "accuracy": "accuracy",
    "environment": "environment",
    "faults": "faults_bench",
    "preflight": "preflight_bench",
    "board": "board_bench",
    "tokenizer_forms": "tokenizer_forms",
    "arithmetic": "arithmetic_bench",
    "verify_time": "verify_time_bench",
    "report": "benchmarks_md",
}
# Experiments kept to reproduce a BENCHMARKS.md section (bench/experiments/README.md); the scale-tuning
# and AutoRound experiments run as cells of the accuracy benchmark (`--cells`).
EXPERIMENTS = ("kl_by_part", "error_scale")


@nox.session(python=False, default=False)
def bench(session: nox.Session) -> None:
    """Run one benchmark (`nox -s bench -- NAME`, NAME in BENCHMARKS) or `report` (BENCHMARKS.md)."""
    if not session.posargs or session.posargs[0] not in BENCHMARKS:
        session.error(f"name a benchmark: nox -s bench -- {'|'.join(BENCHMARKS)} [options]")
    name, *options = session.posargs
    session.run(sys.executable, "-m", f"bench.{BENCHMARKS[name]}", *options, external=True)


@nox.session(python=False, default=False)
def experiment(session: nox.Session) -> None:
    """Rerun a one-off experiment behind a BENCHMARKS.md section (bench/experiments/README.md)."""
    if not session.posargs or session.posargs[0] not in EXPERIMENTS:
        session.error(f"name an experiment: nox -s experiment -- {'|'.join(EXPERIMENTS)} [options]")
    name, *options = session.posargs
    session.run(sys.executable, "-m", f"bench.experiments.{name}", *options, external=True)


@nox.session(name="gptq-env", python=False, default=False)
def gptq_env_session(session: nox.Session) -> None:
    """Create (or re-sync) the GPTQ environment and print its interpreter."""
    session.log(gptq_python(session))


@nox.session(python=False, default=False)
def lock(session: nox.Session) -> None:
    """Recompile the pinned locks in envs/ from their .in files with `uv pip compile`."""
    host_side = ("dev", "host", "board-demo")  # universal locks; the GPTQ stacks are for this platform
    stacks = host_module(session, "gptq_env", "stacks").split()
    names = session.posargs or [*stacks, *host_side]
    for name in names:
        stem = name if name in host_side else f"gptq-{name}"
        source = ROOT / "envs" / f"{stem}.in"
        if not source.is_file():
            session.error(f"no envs/{stem}.in; stacks: {', '.join(stacks)}")
        target = ["--universal"] if stem == name else [*LOCK_PLATFORM, "--no-binary", "gptqmodel"]
        session.run(
            "uv",
            "pip",
            "compile",
            str(source.relative_to(ROOT)),
            *target,
            "--generate-hashes",
            "--emit-build-options",
            "--quiet",
            "-o",
            str(source.with_suffix(".lock").relative_to(ROOT)),
            external=True,
        )


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (unit and end-to-end through nox and make). Posargs go to pytest."""
    install_host(session, "dev")
    env = {"GPTQ_ENV_PYTHON": gptq_python(session)}
    session.run("pytest", *session.posargs, env=env)


@nox.session
def lint(session: nox.Session) -> None:
    """Check style with ruff and the boundaries between environments with import-linter."""
    install_host(session, "dev")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("lint-imports")


if __name__ == "__main__":
    nox.main()
