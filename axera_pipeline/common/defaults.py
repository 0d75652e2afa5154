"""What the pipeline converts when no model is named, and where its outputs go by default.

The Makefile's `MODEL ?=` repeats DEFAULT_MODEL (Make cannot import Python); a test keeps them equal.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_MODEL = "tencent/HY-MT1.5-1.8B"


def model_name(model: str) -> str:
    """The folder a model's outputs go under, `$BUILD_DIR/<name>/`: a hub id's or a folder's last part."""
    return Path(model.rstrip("/")).name


def build_dir() -> Path:
    """BUILD_DIR (the Makefile exports it), else `build`."""
    return Path(os.environ.get("BUILD_DIR") or "build")


def checkpoint(model: str = DEFAULT_MODEL, bits: int = 4) -> Path:
    """Where `make quantize` writes a model's GPTQ checkpoint: `$BUILD_DIR/<name>/gptq-int<bits>`."""
    return build_dir() / model_name(model) / f"gptq-int{bits}"
