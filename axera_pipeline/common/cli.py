"""What every script shares at its edge: one-line errors, argparse that errs in one line, exit codes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NoReturn


class UserError(Exception):
    """A mistake the user can fix; printed as one line, without a traceback."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (`prog: error: ...`) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def run(main: Callable[[], int | None], prog: str) -> NoReturn:
    """Call main(); turn UserError and Ctrl-C into one line and a non-zero exit."""
    try:
        code = main() or 0
    except UserError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr, flush=True)
        code = 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; no partial output was kept", file=sys.stderr, flush=True)
        code = 130
    sys.exit(code)
