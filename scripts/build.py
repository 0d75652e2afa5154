#!/usr/bin/env python3
"""Build a GPTQ checkpoint for an Axera chip with pulsar2 and package it (host venv, `nox -s build-*`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from axera_pipeline.common.cli import run  # noqa: E402
from axera_pipeline.toolchain.build import main  # noqa: E402

run(main, "build")
