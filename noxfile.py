"""Sessions of the HF -> GPTQ -> Axera NPU pipeline. `nox -l` lists them."""

from __future__ import annotations

import sys
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from pipeline import gptq_env  # noqa: E402
from pipeline.interpreter import InterpreterNotFound  # noqa: E402

nox.needs_version = ">=2024.3.2"
nox.options.default_venv_backend = "uv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "tests"]
nox.options.error_on_external_run = True

LOCK_PLATFORM = ["--python-version", "3.13", "--python-platform", "x86_64-manylinux_2_28"]


def gptq_python(session: nox.Session) -> str:
    """The isolated GPTQ environment's interpreter, (re)built from its lock only when needed."""
    try:
        return str(gptq_env.ensure(log=session.log))
    except (gptq_env.EnvError, InterpreterNotFound) as exc:
        session.error(str(exc))


def run_in_gptq_env(session: nox.Session, script: str, *args: str) -> None:
    python = gptq_python(session)
    session.run(python, str(ROOT / "scripts" / script), *args, external=True)


def install_dev(session: nox.Session) -> None:
    session.install("-r", str(ROOT / "envs" / "dev.lock"))


@nox.session(python=False)
def quantize(session: nox.Session) -> None:
    """Quantize a Hugging Face model to GPTQ INT4/INT8 in the GPTQ environment."""
    run_in_gptq_env(session, "quantize.py", *session.posargs)


@nox.session(name="gptq-env", python=False)
def gptq_env_session(session: nox.Session) -> None:
    """Create (or re-sync) the GPTQ environment and print its interpreter."""
    session.log(gptq_python(session))


@nox.session(python=False)
def lock(session: nox.Session) -> None:
    """Recompile the pinned locks in envs/ from their .in files with `uv pip compile`."""
    names = session.posargs or [*gptq_env.available_stacks(), "dev"]
    for name in names:
        stem = name if name == "dev" else f"gptq-{name}"
        source = ROOT / "envs" / f"{stem}.in"
        if not source.is_file():
            session.error(f"no envs/{stem}.in; stacks: {', '.join(gptq_env.available_stacks())}")
        target = ["--universal"] if name == "dev" else [*LOCK_PLATFORM, "--no-binary", "gptqmodel"]
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
    install_dev(session)
    env = {"GPTQ_ENV_PYTHON": gptq_python(session)}
    session.run("pytest", *session.posargs, env=env)


@nox.session
def lint(session: nox.Session) -> None:
    """Check style with ruff (lint and format)."""
    install_dev(session)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
