"""What every script shares at its edge: one-line errors, argparse that errs in one line, exit codes."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable
from typing import NoReturn


class UserError(Exception):
    """A mistake the user can fix; printed as one line, without a traceback."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (`prog: error: ...`) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


class Terminated(KeyboardInterrupt):
    """SIGTERM (nox's second step after Ctrl-C, `kill`): clean up exactly as for Ctrl-C."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def run(main: Callable[[], int | None], prog: str) -> NoReturn:
    """Call main(); turn UserError, Ctrl-C and SIGTERM into one line and a non-zero exit."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        code = main() or 0
    except UserError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr, flush=True)
        code = 1
    except KeyboardInterrupt as exc:
        code = 128 + (signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT)
        print(f"{prog}: interrupted; the earlier output is unchanged", file=sys.stderr, flush=True)
        sys.stdout.flush()
        # Cleanup is done; worker threads of the libraries must not keep the process alive.
        os._exit(code)
    sys.exit(code)
