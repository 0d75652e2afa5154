#!/usr/bin/env python3
"""Measure a GPTQ checkpoint against its reference (GPTQ environment: `nox -s verify -- ...`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from axera_pipeline.common.cli import run  # noqa: E402
from axera_pipeline.gptq.verify import main  # noqa: E402

run(main, "verify")
