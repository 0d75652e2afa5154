"""Run one of the GPTQ side's modules in the GPTQ environment and read the JSON object it prints last.

The host, toolchain and board sides never import transformers or torch; where they need them (the
template check, a board run's scores, the matmul probe) they run `python -m axera_pipeline.gptq.NAME`
with the GPTQ environment's interpreter as its own process, and a failure there comes back as one line.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from axera_pipeline.common.basics import last_line
from axera_pipeline.common.cli import UserError

GPTQ_PACKAGE = "axera_pipeline.gptq"


def run_json(python: str, module: str, *args: str, timeout: float | None = None) -> dict[str, Any]:
    """`python -m axera_pipeline.gptq.<module> args...`'s last stdout line as JSON (a dotted module
    name is run as it is); UserError with its last error line."""
    name = module if "." in module else f"{GPTQ_PACKAGE}.{module}"
    try:
        done = subprocess.run(
            [python, "-m", name, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise UserError(f"{module} did not finish within {timeout:.0f} s") from None
    except OSError as exc:
        raise UserError(f"{module}: cannot start the GPTQ environment's python {python} ({exc})") from None
    if done.returncode != 0:
        raise UserError(f"{module}: {last_line(done.stderr, '') or f'exit status {done.returncode}'}")
    try:
        found = json.loads(last_line(done.stdout, ""))
    except ValueError:
        raise UserError(f"{module} printed no JSON result: {last_line(done.stdout, '')[:200]!r}") from None
    if not isinstance(found, dict):
        raise UserError(f"{module} printed {type(found).__name__}, not a JSON object")
    return found
