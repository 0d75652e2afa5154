"""One writer per output: an advisory lock file beside it, naming the run that holds it.

flock on `.<name>.lock`; the holder writes its pid, start time and command into the file, so a second
run can say whom it waits for. The file is removed on release (while still held), and a run that
locked a file already removed tries again, so the lock survives that race.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from axera_pipeline.common.cli import UserError


def lock_path(output: Path) -> Path:
    return output.parent / f".{output.name}.lock"


def holder(path: Path) -> str:
    """`pid 123 (started 2026-11-25 21:03:12, quantize)` from a lock file, or a vaguer line."""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info["started"]))
        return f"pid {info['pid']} (started {started}, {info['what']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another run"


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == path.stat().st_ino
    except FileNotFoundError:
        return False


@contextmanager
def exclusive(
    output: Path, what: str, *, wait: bool = True, say: Callable[[str], None] = print
) -> Iterator[None]:
    """Hold the lock of `output` for the block; wait for another holder, or fail at once if not `wait`."""
    path = lock_path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    told = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            who = holder(path)
            if not wait:
                os.close(fd)
                raise UserError(
                    f"{output} is being written by {who}; wait for it, or run without --no-wait"
                ) from None
            if not told:
                say(f"waiting for {who}, which is writing {output}")
                told = True
            fcntl.flock(fd, fcntl.LOCK_EX)
        if _same_file(fd, path):
            break
        os.close(fd)  # the holder removed this file as it released it: lock the new one
    try:
        info = {"pid": os.getpid(), "started": time.time(), "what": what, "argv": sys.argv}
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(info).encode())
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)
