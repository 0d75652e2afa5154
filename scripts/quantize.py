#!/usr/bin/env python3
"""Quantize a Hugging Face causal LM to GPTQ (GPTQ environment: `nox -s quantize -- ...`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from axera_pipeline.common.cli import run  # noqa: E402
from axera_pipeline.gptq.quantize import main  # noqa: E402

run(main, "quantize")
