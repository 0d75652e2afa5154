"""Run pulsar2 in a process group of its own, stream its output to console and log, stop it all on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from axera_pipeline.toolchain.pulsar2_log import BuildLog

GRACE_S = 10.0


def stop_group(proc: subprocess.Popen, grace_s: float = GRACE_S) -> None:
    """SIGTERM the whole process group, then SIGKILL whatever is left after `grace_s`."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def stream(
    cmd: list[str], env: dict[str, str], log_path: Path, on_interrupt: Callable[[], None] | None = None
) -> tuple[int, BuildLog]:
    """Run pulsar2, copying every line to the console and the log, and gather what it said.

    pulsar2 gets a session of its own, so a Ctrl-C reaches this process only; it then stops the
    container (on_interrupt) and the whole process tree before the exception goes on.
    """
    facts = BuildLog()
    with open(log_path, "w", encoding="utf-8") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
            start_new_session=True,
        )
        try:
            line = "\n"
            for line in proc.stdout:  # universal newlines: progress bars' \r ends a line too
                sys.stdout.write(line)
                sys.stdout.flush()
                log.write(line)
                facts.feed(line)
            if not line.endswith("\n"):  # killed mid-line: our verdict must start a line of its own
                sys.stdout.write("\n")
                log.write("\n")
            return proc.wait(), facts
        except BaseException:
            if on_interrupt is not None:
                on_interrupt()
            stop_group(proc)
            raise
