#!/usr/bin/env python3
"""Score a board run: token counts, chrF/BLEU, agreement with the emulation (GPTQ environment)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from axera_pipeline.common.cli import run  # noqa: E402
from axera_pipeline.gptq.board_scores import main  # noqa: E402

run(main, "board-scores")
