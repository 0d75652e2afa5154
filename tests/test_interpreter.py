"""Finding Python 3.13 without trusting shims."""

from __future__ import annotations

import sys

import pytest

from axera_pipeline.host import interpreter
from axera_pipeline.host.interpreter import InterpreterNotFound, find_python, matches


def test_matches_versions():
    assert matches("3.13.0", "3.13")
    assert matches("3.13.0", "3.13.0")
    assert not matches("3.1.5", "3.1.0")
    assert not matches("3.12.9", "3.13")
    assert not matches("3.130.0", "3.13")


def test_probe_rejects_broken_shim(tmp_path):
    shim = tmp_path / "python3.13"
    shim.write_text("#!/bin/sh\necho 'pyenv: python3.13: command not found' >&2\nexit 127\n")
    shim.chmod(0o755)
    assert interpreter.probe(str(shim)) is None
    assert interpreter.probe(sys.executable) == ".".join(map(str, sys.version_info[:3]))


def test_explicit_path_wins(monkeypatch):
    monkeypatch.setattr(interpreter, "candidates", lambda v: pytest.fail("should not search"))
    path, version = find_python(sys.executable)
    assert path == sys.executable and version.startswith(".".join(map(str, sys.version_info[:2])))


def test_bad_explicit_path_is_one_clear_error():
    with pytest.raises(InterpreterNotFound, match="GPTQ_PYTHON=/no/such/python is not a runnable"):
        find_python("/no/such/python")


def test_skips_broken_candidates_and_wrong_versions(monkeypatch, tmp_path):
    shim = tmp_path / "broken"
    shim.write_text("#!/bin/sh\nexit 127\n")
    shim.chmod(0o755)
    want = ".".join(map(str, sys.version_info[:2]))
    monkeypatch.setattr(interpreter, "candidates", lambda v: [str(shim), sys.executable])
    assert find_python(want, allow_install=False)[0] == sys.executable


def test_nothing_found_says_how_to_get_one(monkeypatch):
    monkeypatch.setattr(interpreter, "candidates", lambda v: [sys.executable])
    monkeypatch.setattr(interpreter, "_uv_install", lambda v: [])
    with pytest.raises(InterpreterNotFound) as err:
        find_python("3.99")
    message = str(err.value)
    assert "no working Python 3.99 found" in message
    assert "uv python install 3.99" in message and "GPTQ_PYTHON" in message


def test_pyenv_versions_are_candidates(monkeypatch, tmp_path):
    exe = tmp_path / "versions" / "3.13.0" / "bin" / "python3.13"
    exe.parent.mkdir(parents=True)
    exe.write_text("")
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    assert str(exe) in interpreter._pyenv_candidates("3.13")
