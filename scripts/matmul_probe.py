#!/usr/bin/env python3
"""Print this machine's fp32 and bf16 matmul rates as JSON (GPTQ environment; the preflight asks)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from axera_pipeline.common.cli import run  # noqa: E402
from axera_pipeline.gptq.matmul_probe import main  # noqa: E402

run(main, "matmul-probe")
