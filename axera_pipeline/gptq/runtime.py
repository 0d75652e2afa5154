"""What every GPTQ-side step sets up before torch and gptqmodel are imported, and shares at its edge."""

from __future__ import annotations

import os
import re
from pathlib import Path

from axera_pipeline.common.cli import UserError

# Versions recorded in manifests: the packages that decide what a quantized model looks like.
PACKAGES = ("torch", "transformers", "gptqmodel", "optimum", "tokenizers", "safetensors")


def device_arg(text: str) -> str:
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", text):
        raise ValueError(text)
    return text


device_arg.__name__ = "device (auto, cpu, cuda or cuda:N)"


def prepare_environment(*sources: str) -> None:
    """Settings that must be in place before gptqmodel is imported (see notes/gptqmodel.md)."""
    # gptqmodel (via tokenicer) points HF_HOME at /tmp when unset, hiding the user's cache.
    os.environ.setdefault("HF_HOME", str(Path.home() / ".cache" / "huggingface"))
    # Its CPU pool asks for 2 workers and fails on 1-2 core machines unless told how many.
    if (os.cpu_count() or 1) <= 2:
        os.environ.setdefault("GPTQMODEL_CPU_WORKERS", "2")
    # Everything on disk: never touch the network (a hub id or dataset name among them needs it).
    if all(Path(s).expanduser().exists() for s in sources):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")


def resolve_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {requested} asked for, but torch sees no CUDA device")
    return requested
