#!/usr/bin/env python3
"""Prepare the pulsar2 toolchain a build will use and report it (host venv: `nox -s toolchain`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from axera_pipeline.common.cli import run  # noqa: E402
from axera_pipeline.toolchain.report import main  # noqa: E402

run(main, "toolchain")
