"""A GPTQ checkpoint's packed tensors read back as integer codes and weights, and written back as a
derived checkpoint (bench env)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file


def unpack(packed: torch.Tensor, bits: int, along: int) -> torch.Tensor:
    """GPTQ's int32 packing undone: 32 / bits codes per word along dim 0 (qweight) or 1 (qzeros)."""
    shifts = torch.arange(0, 32, bits, dtype=torch.int32)
    mask = (1 << bits) - 1
    if along == 0:
        return ((packed.unsqueeze(1) >> shifts.view(1, -1, 1)) & mask).reshape(-1, packed.shape[1])
    return ((packed.unsqueeze(2) >> shifts.view(1, 1, -1)) & mask).reshape(packed.shape[0], -1)


def centered_codes(tensors: dict, prefix: str, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One linear's group of each input column and its codes minus their zero point, [out, in] int8."""
    codes = unpack(tensors[prefix + ".qweight"], bits, along=0)  # [in, out]
    # GPTQ's v1 checkpoint format stores zero - 1.
    zeros = unpack(tensors[prefix + ".qzeros"], bits, along=1)[:, : codes.shape[1]] + 1
    group_of = tensors[prefix + ".g_idx"].long()
    return group_of, (codes - zeros[group_of]).to(torch.int8).t().contiguous()


def dequantized(tensors: dict, prefix: str, bits: int) -> torch.Tensor:
    """One linear's weight as the checkpoint encodes it, [out, in] float32."""
    group_of, centered = centered_codes(tensors, prefix, bits)
    return centered.float() * tensors[prefix + ".scales"].float()[group_of].t()


def quantized_linears(model: torch.nn.Module, gptq_dir: Path) -> tuple[int, dict, dict]:
    """The checkpoint's bit width, its tensors, and `model`'s linears that it quantized, by name."""
    from safetensors.torch import load_file

    bits = json.loads((gptq_dir / "quantize_config.json").read_text())["bits"]
    tensors = load_file(str(gptq_dir / "model.safetensors"))
    linears = {name: m for name, m in model.named_modules() if name + ".qweight" in tensors}
    if not linears:
        raise SystemExit(f"{gptq_dir}: no GPTQ linears whose names match the fp model's")
    return bits, tensors, linears


def scale_error(model: torch.nn.Module, gptq_dir: Path, t: float) -> int:
    """Each of `model`'s linears that the checkpoint quantized becomes fp plus `t` times the checkpoint's
    error on it (t = 1: the checkpoint's weights, t = 0: fp's), in place; returns how many. A yardstick
    for how the figures move with the size of the same error, not a quantization."""
    bits, tensors, linears = quantized_linears(model, gptq_dir)
    with torch.no_grad():
        for name, module in linears.items():
            error = dequantized(tensors, name, bits) - module.weight.float()
            module.weight.add_((t * error).to(module.weight.dtype))
    return len(linears)


def write_derived(source: Path, out: Path, tensors: dict, block: str, record: dict) -> None:
    """`source`'s checkpoint with `tensors` as its weights and its manifest plus `record` under `block`,
    so cached evaluations of the source are never reused for it; GPTQ's logs, which no longer describe
    the weights, stay behind. Staged beside `out` and renamed into place, so `out` is never half-written."""
    stage = out.with_name(out.name + ".tmp")
    shutil.rmtree(stage, ignore_errors=True)
    left_behind = shutil.ignore_patterns("model.safetensors", "logs", "quant_log.csv")
    shutil.copytree(source, stage, ignore=left_behind)
    save_file(tensors, str(stage / "model.safetensors"), metadata={"format": "pt"})
    manifest = json.loads((source / "manifest.json").read_text())
    manifest[block] = record
    (stage / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    stage.rename(out)
