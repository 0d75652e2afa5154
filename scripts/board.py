#!/usr/bin/env python3
"""Deploy a package to a board over SSH, serve it with axllm, measure it there (host venv: `nox -s board`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from axera_pipeline.board.run import main  # noqa: E402
from axera_pipeline.common.cli import run  # noqa: E402

run(main, "board")
