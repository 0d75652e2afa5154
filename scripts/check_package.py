#!/usr/bin/env python3
"""Check a folder as axllm and Axera's Python demo would read it (host venv: `nox -s check-package`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from axera_pipeline.common.cli import run  # noqa: E402
from axera_pipeline.toolchain.check_package import main  # noqa: E402

run(main, "check-package")
