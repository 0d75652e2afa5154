#!/usr/bin/env python3
"""Write the embedding tables a board package needs (GPTQ environment; called by the build)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from axera_pipeline.common.cli import run  # noqa: E402
from axera_pipeline.gptq.embeddings import main  # noqa: E402

run(main, "package")
