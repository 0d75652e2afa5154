"""Run one of scripts/ in the GPTQ environment and read the JSON object it prints last.

The host, toolchain and board sides never import transformers or torch; where they need them (the
template check, a board run's scores, the matmul probe) they run a script with the GPTQ environment's
interpreter as its own process, and a failure there comes back as one line.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from axera_pipeline.common.cli import UserError
from axera_pipeline.common.paths import SCRIPTS


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def run_json(python: str, script: str, *args: str, timeout: float | None = None) -> dict[str, Any]:
    """`python scripts/<script> args...`'s last stdout line as JSON; UserError with its last error line."""
    try:
        done = subprocess.run(
            [python, str(SCRIPTS / script), *args], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise UserError(f"{script} did not finish within {timeout:.0f} s") from None
    except OSError as exc:
        raise UserError(f"{script}: cannot start the GPTQ environment's python {python} ({exc})") from None
    if done.returncode != 0:
        raise UserError(f"{script}: {last_line(done.stderr) or f'exit status {done.returncode}'}")
    try:
        found = json.loads(last_line(done.stdout))
    except ValueError:
        raise UserError(f"{script} printed no JSON result: {last_line(done.stdout)[:200]!r}") from None
    if not isinstance(found, dict):
        raise UserError(f"{script} printed {type(found).__name__}, not a JSON object")
    return found
