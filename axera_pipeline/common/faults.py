"""Fault injection for the fault tests and `nox -s bench -- faults` (AXERA_PIPELINE_FAULT), inert otherwise.

AXERA_PIPELINE_FAULT=pause:<phase> prints `[fault] paused at <phase> (pid N)` and waits (for the file
AXERA_PIPELINE_RESUME when set, else up to 10 minutes), so a test can interrupt or kill the run at
exactly that point; enospc:<phase> raises the error a full disk gives.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

PAUSE_S = 600.0


def at(phase: str, where: Path | None = None) -> None:
    action, _, target = os.environ.get("AXERA_PIPELINE_FAULT", "").partition(":")
    if target != phase:
        return
    if action == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(where or ""))
    if action == "pause":
        print(f"[fault] paused at {phase} (pid {os.getpid()})", flush=True)
        resume = os.environ.get("AXERA_PIPELINE_RESUME")
        deadline = time.monotonic() + PAUSE_S
        while time.monotonic() < deadline:
            if resume and Path(resume).exists():
                return
            time.sleep(0.1)
