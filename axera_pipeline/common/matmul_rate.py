"""This machine's matmul rates for the quantize-time estimate: probed once in the GPTQ environment, cached.

The probe (`python -m axera_pipeline.gptq.matmul_probe`) runs only where the GPTQ environment already
exists; nothing here builds it. The cache sits in .nox/ beside the environments, keyed by this
machine (host name, CPU model, core count) and the interpreter, and is probed again after a week.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

from axera_pipeline.common.atomic import write_text
from axera_pipeline.common.cli import UserError
from axera_pipeline.common.gptq_call import run_json
from axera_pipeline.common.paths import REPO

CACHE = REPO / ".nox" / "matmul-rates.json"
MAX_AGE_S = 7 * 24 * 3600


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_key(python: str) -> str:
    return f"{platform.node()}|{cpu_model()}|{os.cpu_count()}|{os.path.abspath(python)}"


def probe(python: str, timeout: float = 120.0) -> dict | None:
    try:
        found = run_json(python, "matmul_probe", timeout=timeout)
    except UserError:
        return None
    return found if {"fp32", "bf16"} <= found.keys() else None


def rates(python: str | None, cache: Path = CACHE) -> dict | None:
    """{"fp32": GFLOP/s, "bf16": GFLOP/s} of this machine, or None when the GPTQ environment is missing."""
    if not python:
        return None
    key = machine_key(python)
    try:
        known = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    entry = known.get(key) if isinstance(known, dict) else None
    if isinstance(entry, dict) and time.time() - entry.get("measured", 0) < MAX_AGE_S:
        return entry["rates"]
    found = probe(python)
    if found:
        known = known if isinstance(known, dict) else {}
        known[key] = {"rates": found, "measured": time.time()}
        cache.parent.mkdir(parents=True, exist_ok=True)
        write_text(cache, json.dumps(known, indent=2) + "\n")
    return found
