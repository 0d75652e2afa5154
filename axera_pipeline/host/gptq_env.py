"""Create, reuse and re-sync the isolated GPTQ environment from a pinned lock.

The environment is reused while its stamp (lock contents, GPTQMODEL_SOURCE, interpreter) matches;
any change rebuilds it from scratch, so it never drifts from the lock. The project itself is
installed into it editable, without its dependencies, and re-installed when this checkout moves.

The noxfile runs `python -m axera_pipeline.host.gptq_env ensure|existing|stacks` with nox's own
interpreter: the interpreter's path (or the stacks) on stdout, progress and errors on stderr.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from axera_pipeline.common.cli import Parser, UserError, run
from axera_pipeline.common.paths import ENVS, REPO
from axera_pipeline.host.interpreter import InterpreterNotFound, find_python

DEFAULT_STACK = "torch2.9"
STAMP = ".pipeline-stamp"
# Where the editable install of this project points: a moved checkout installs it again.
PROJECT_STAMP = ".pipeline-project"

Runner = Callable[..., object]


class EnvError(Exception):
    """The environment cannot be built; the message says why and what to do."""


@dataclass(frozen=True)
class Stack:
    name: str
    lock: Path
    source: str  # GPTQMODEL_SOURCE, or "" for the locked sdist

    @property
    def venv(self) -> Path:
        return Path(os.environ.get("GPTQ_ENV_DIR", REPO / ".nox" / f"gptq-{self.name}"))

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"


def available_stacks() -> list[str]:
    return sorted(p.name[len("gptq-") : -len(".lock")] for p in ENVS.glob("gptq-*.lock"))


def selected_stack(environ: os._Environ | dict = os.environ) -> Stack:
    """The stack named by GPTQ_STACK (default torch2.9), with GPTQMODEL_SOURCE if set."""
    name = environ.get("GPTQ_STACK", "").strip() or DEFAULT_STACK
    lock = ENVS / f"gptq-{name}.lock"
    if not lock.is_file():
        raise EnvError(
            f"GPTQ_STACK={name} has no lock file {lock.relative_to(REPO)}; "
            f"choose one of: {', '.join(available_stacks())}"
        )
    return Stack(name, lock, environ.get("GPTQMODEL_SOURCE", "").strip())


def pinned(lock_text: str, package: str) -> str | None:
    """The version a lock pins for `package`, e.g. pinned(text, 'torch') -> '2.9.1'."""
    m = re.search(rf"^{re.escape(package)}==([^\s\\;]+)", lock_text, re.MULTILINE)
    return m.group(1) if m else None


def without_package(lock_text: str, package: str) -> str:
    """The lock minus one requirement and its hash lines (for building that package from source)."""
    out: list[str] = []
    skipping = False
    for line in lock_text.splitlines():
        if re.match(rf"^{re.escape(package)}==", line):
            skipping = True
            continue
        if skipping and (line.startswith(" ") or not line.strip()):
            continue
        skipping = False
        out.append(line)
    return "\n".join(out) + "\n"


def stamp_of(stack: Stack, interpreter: str, version: str) -> str:
    h = hashlib.sha256()
    h.update(stack.lock.read_bytes())
    h.update(f"\0{stack.source}\0{interpreter}\0{version}".encode())
    return h.hexdigest()


def is_current(stack: Stack, stamp: str) -> bool:
    marker = stack.venv / STAMP
    return stack.python.exists() and marker.is_file() and marker.read_text().strip() == stamp


def has_project(stack: Stack) -> bool:
    marker = stack.venv / PROJECT_STAMP
    return marker.is_file() and marker.read_text().strip() == str(REPO)


def install_project(stack: Stack, log: Callable[[str], None]) -> None:
    """This checkout, editable and without dependencies: the lock alone decides what else is there."""
    python = str(stack.python)
    _run([_uv(), "pip", "install", "--quiet", "--python", python, "--no-deps", "-e", str(REPO)], log)
    (stack.venv / PROJECT_STAMP).write_text(f"{REPO}\n")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise environment builds between concurrent nox runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _uv() -> str:
    uv = shutil.which("uv")
    if uv:
        return uv
    raise EnvError("uv is not installed; install it with `python3 -m pip install uv` and re-run")


CRASHES = {-signal.SIGSEGV, -signal.SIGBUS, -signal.SIGILL, -signal.SIGABRT}


def _run(cmd: list[str], log: Callable[[str], None], *, retry_crash: bool = False) -> None:
    """Run one build step; with retry_crash, an idempotent step that crashed is run once more (uv has
    been seen to die of a segmentation fault after a complete install)."""
    log("$ " + " ".join(cmd))
    done = subprocess.run(cmd)
    if retry_crash and done.returncode in CRASHES:
        log(f"{Path(cmd[0]).name} crashed ({signal.Signals(-done.returncode).name}); running it once more")
        done = subprocess.run(cmd)
    if done.returncode != 0:
        raise EnvError(f"`{' '.join(cmd[:4])} ...` failed with exit status {done.returncode}")


def _source_requirement(source: str) -> str:
    """GPTQMODEL_SOURCE is a local checkout or `git URL@ref`; uv wants a path or `name @ git+URL@ref`."""
    if os.path.isdir(os.path.expanduser(source)):
        path = Path(source).expanduser().resolve()
        if not (path / "setup.py").exists() and not (path / "pyproject.toml").exists():
            raise EnvError(f"GPTQMODEL_SOURCE={source} is not a GPTQModel checkout (no setup.py)")
        return str(path)
    if source.startswith(("git+", "https://", "http://", "ssh://", "git@")):
        url = source if source.startswith("git+") else "git+" + source
        return f"gptqmodel @ {url}"
    raise EnvError(f"GPTQMODEL_SOURCE={source} is neither a local folder nor a git URL (git+https://...@ref)")


def build(stack: Stack, interpreter: str, stamp: str, log: Callable[[str], None]) -> None:
    uv = _uv()
    if stack.venv.exists():
        shutil.rmtree(stack.venv)
    lock_text = stack.lock.read_text()
    _run([uv, "venv", "--quiet", "--python", interpreter, str(stack.venv)], log)
    py = str(stack.python)
    if not stack.source:
        # The lock carries `--no-binary gptqmodel`: uv builds GPTQModel from its hashed sdist.
        _run([uv, "pip", "sync", "--python", py, "--require-hashes", str(stack.lock)], log, retry_crash=True)
    else:
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as rest:
            rest.write(without_package(lock_text, "gptqmodel"))
        try:
            _run([uv, "pip", "sync", "--python", py, "--require-hashes", rest.name], log, retry_crash=True)
        finally:
            os.unlink(rest.name)
        # As the original notes do: build the checkout against the torch already in place, and
        # never let it touch the locked dependencies.
        _run(
            [
                uv,
                "pip",
                "install",
                "--python",
                py,
                "--no-deps",
                "--no-build-isolation",
                _source_requirement(stack.source),
            ],
            log,
            retry_crash=True,
        )
    want = pinned(lock_text, "torch")
    got = subprocess.run(
        [py, "-c", "import importlib.metadata as m; print(m.version('torch'))"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    if want and got.split("+")[0] != want:
        raise EnvError(f"torch {got} ended up in the GPTQ environment, but the lock pins {want}")
    install_project(stack, log)
    (stack.venv / STAMP).write_text(stamp + "\n")


def ensure(log: Callable[[str], None] = print, environ: os._Environ | dict = os.environ) -> Path:
    """Return the GPTQ environment's python, building or re-syncing it only when needed."""
    stack = selected_stack(environ)
    interpreter, version = find_python(environ.get("GPTQ_PYTHON"))
    stamp = stamp_of(stack, interpreter, version)
    if is_current(stack, stamp) and has_project(stack):
        return stack.python
    with _locked(stack.venv.with_name(stack.venv.name + ".lock")):
        if not is_current(stack, stamp):
            log(f"building the GPTQ environment {stack.venv} (stack {stack.name}, Python {version})")
            build(stack, interpreter, stamp, log)
        elif not has_project(stack):
            install_project(stack, log)
    return stack.python


def existing(environ: os._Environ | dict = os.environ) -> Path | None:
    """The GPTQ environment's python when it is built and current; None otherwise (never builds it)."""
    try:
        stack = selected_stack(environ)
        interpreter, version = find_python(environ.get("GPTQ_PYTHON"), allow_install=False)
    except (EnvError, InterpreterNotFound):
        return None
    current = is_current(stack, stamp_of(stack, interpreter, version)) and has_project(stack)
    return stack.python if current else None


def main(argv: list[str] | None = None) -> int:
    """ensure: build or reuse, print the interpreter; existing: print it only when current; stacks."""
    p = Parser(prog="gptq-env", description=main.__doc__)
    p.add_argument("what", choices=("ensure", "existing", "stacks"))
    args = p.parse_args(argv)
    if args.what == "stacks":
        print(" ".join(available_stacks()))
        return 0
    try:
        if args.what == "ensure":
            python = ensure(log=lambda line: print(line, file=sys.stderr, flush=True))
        else:
            python = existing()
    except (EnvError, InterpreterNotFound) as exc:
        raise UserError(str(exc)) from None
    print(python or "", flush=True)
    return 0


if __name__ == "__main__":
    run(main, "gptq-env")
