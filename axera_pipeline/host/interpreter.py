"""Find a Python interpreter of a given version without relying on shims or the user's PATH order."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

DEFAULT_VERSION = "3.13"
_VERSION_RE = re.compile(r"^\d+\.\d+(\.\d+)?$")


class InterpreterNotFound(Exception):
    """No usable interpreter: the message says what was tried and how to get one."""


def probe(path: str, timeout: float = 20.0) -> str | None:
    """Return 'X.Y.Z' if `path` runs as a Python interpreter, else None (broken shims return None)."""
    try:
        out = subprocess.run(
            [path, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    version = out.stdout.strip()
    return version if out.returncode == 0 and _VERSION_RE.match(version) else None


def matches(found: str, wanted: str) -> bool:
    """'3.13.0' matches '3.13' and '3.13.0', not '3.1' or '3.12'."""
    return found == wanted or found.startswith(wanted + ".")


def _uv_find(version: str) -> list[str]:
    uv = shutil.which("uv")
    if not uv:
        return []
    try:
        out = subprocess.run(
            [uv, "python", "find", "--no-project", version],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return [out.stdout.strip()] if out.returncode == 0 and out.stdout.strip() else []


def _pyenv_candidates(version: str) -> list[str]:
    roots = [os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv")]
    found: list[str] = []
    for root in filter(None, roots):
        pattern = os.path.join(root, "versions", f"{version}*", "bin", f"python{version}")
        # Newest patch release first.
        found.extend(sorted(glob.glob(pattern), reverse=True))
    return found


def _pyenv_shim(path: str) -> bool:
    """A pyenv shim runs only where that version is active; the versions behind it are tried directly."""
    roots = [os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv")]
    return any(root and Path(path).parent == Path(root) / "shims" for root in roots)


def candidates(version: str) -> Iterator[str]:
    """Places to look, most specific first: PATH, pyenv's versions, uv's interpreters, system dirs.

    Lazy: asking uv (about a second, in every nox session) only happens when nothing before it runs."""
    seen: list[str] = []
    sources: list[Callable[[], list[str]]] = [
        lambda: [name for name in [shutil.which(f"python{version}") or ""] if not _pyenv_shim(name)],
        lambda: _pyenv_candidates(version),
        lambda: _uv_find(version),
        lambda: [f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"],
    ]
    for source in sources:
        for name in source():
            if name and name not in seen and os.path.exists(name):
                seen.append(name)
                yield name


def _uv_install(version: str) -> list[str]:
    """Last resort on a fresh machine: let uv download a managed CPython."""
    uv = shutil.which("uv")
    if not uv:
        return []
    try:
        done = subprocess.run([uv, "python", "install", version], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.SubprocessError):
        return []
    return _uv_find(version) if done.returncode == 0 else []


def find_python(request: str | None = None, *, allow_install: bool = True) -> tuple[str, str]:
    """Resolve GPTQ_PYTHON-style input (a path, a version, or None) to (path, full version)."""
    request = (request or "").strip() or DEFAULT_VERSION
    if not _VERSION_RE.match(request):
        path = os.path.expanduser(request)
        version = probe(path)
        if version is None:
            raise InterpreterNotFound(
                f"GPTQ_PYTHON={request} is not a runnable Python interpreter; "
                "point it at a python3.13 executable or set a version such as 3.13"
            )
        return path, version
    tried: list[str] = []
    for path in candidates(request):
        tried.append(path)
        version = probe(path)
        if version and matches(version, request):
            return path, version
    if allow_install:
        for path in _uv_install(request):
            version = probe(path)
            if version and matches(version, request):
                return path, version
    where = ", ".join(tried) if tried else "nothing on PATH, in uv or in pyenv"
    raise InterpreterNotFound(
        f"no working Python {request} found (tried: {where}); install one "
        f"(`uv python install {request}` or `pyenv install {request}`) "
        f"or set GPTQ_PYTHON=/path/to/python{request}"
    )
