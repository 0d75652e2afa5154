"""Copy everything the process writes to stdout/stderr (C extensions and children too) to a log."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _close_quietly(handle) -> None:
    try:
        handle.close()
    except OSError:
        pass


@contextmanager
def tee_output(log_path: Path) -> Iterator[None]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    read_end, write_end = os.pipe()

    def pump() -> None:
        log = open(log_path, "ab")  # noqa: SIM115 - closed below, or dropped when the disk is full
        while chunk := os.read(read_end, 65536):
            os.write(saved_out, chunk)
            if log is None:
                continue
            try:
                log.write(chunk)
                log.flush()
            except OSError:  # a full disk must not silence the console, least of all its error line
                _close_quietly(log)
                log = None
        if log is not None:
            _close_quietly(log)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    os.dup2(write_end, 1)
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved_out, 1)
        os.dup2(saved_err, 2)
        thread.join(timeout=10)
        os.close(read_end)
        os.close(saved_out)
        os.close(saved_err)
