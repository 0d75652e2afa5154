"""Small helpers every side shares: a step's console line, a tool's first or last line, reading JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from axera_pipeline.common.cli import UserError


def sayer(prog: str) -> Callable[[str], None]:
    """`say(message)` printing `[prog] message` at once, the form every step's progress takes."""

    def say(message: str) -> None:
        print(f"[{prog}] {message}", flush=True)

    return say


def last_line(text: str, default: str = "no output") -> str:
    """The last non-blank line of a tool's output, stripped: what an error message quotes."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else default


def first_line(text: str, default: str = "no output") -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[0] if lines else default


def read_json(path: Path) -> Any:
    """A JSON file's content, or None when it is missing or does not parse."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def load_json(path: Path) -> Any:
    """A JSON file's content; a missing or broken file is one line saying which and why."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} cannot be read as JSON: {first_line(str(exc))}") from None
