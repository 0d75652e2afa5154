#!/usr/bin/env python3
"""Will this model build with pulsar2 and fit on the board? (host venv: `nox -s preflight`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from axera_pipeline.common.cli import run  # noqa: E402
from axera_pipeline.toolchain.preflight import main  # noqa: E402

run(main, "preflight")
