#!/usr/bin/env python3
"""Compare axllm's prompt for a tokenizer_type with the model's own template (GPTQ environment)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from axera_pipeline.common.cli import run  # noqa: E402
from axera_pipeline.gptq.template_check import main  # noqa: E402

run(main, "template-check")
