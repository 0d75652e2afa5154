"""Emulate what the chip computes with a GPTQ checkpoint: the documented types, not pulsar2's kernels.

From a chip profile: hidden states, attention and the KV cache in `hidden_state_type` (the whole model
runs in that dtype); the post layer's matmul (lm_head) fake-quantized to `post_weight_type` (s8:
symmetric per output channel; fp8: per-channel scaled into torch's float8 range; bf16: rounded);
embeddings rounded to the hidden type, as the runtimes feed them. The decoder's weights are the GPTQ
checkpoint's own int4/int8 grid, dequantized. The final norm stays in the hidden type.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from axera_pipeline.common.chip_types import (
    DEFAULT_POST_WEIGHT_TYPE,
    HIDDEN_TYPES,
    POST_WEIGHT_TYPES,
    profile_path,
)
from axera_pipeline.common.cli import UserError


@dataclass(frozen=True)
class Numerics:
    hidden_state_type: str
    post_weight_type: str

    @property
    def label(self) -> str:
        return f"{self.hidden_state_type} hidden, {self.post_weight_type} lm_head"


def load(name_or_path: str) -> tuple[str, Numerics]:
    """(profile name, its numeric settings) from a profile name or file."""
    import yaml

    path = profile_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    hidden = data.get("hidden_state_type") or "bf16"
    post = data.get("post_weight_type") or DEFAULT_POST_WEIGHT_TYPE
    if hidden not in HIDDEN_TYPES:
        raise UserError(f"{path}: hidden_state_type {hidden!r} is not one of {', '.join(HIDDEN_TYPES)}")
    if post not in POST_WEIGHT_TYPES:
        raise UserError(f"{path}: post_weight_type {post!r} is not one of {', '.join(POST_WEIGHT_TYPES)}")
    return path.stem, Numerics(hidden, post)


def distinct(profiles: list[str]) -> dict[Numerics, list[str]]:
    """One emulation per distinct numeric setting, with the profiles that share it (ax650 and ax620e do)."""
    groups: dict[Numerics, list[str]] = {}
    for spec in profiles:
        name, numerics = load(spec)
        groups.setdefault(numerics, [])
        if name not in groups[numerics]:
            groups[numerics].append(name)
    return groups


def torch_dtype(kind: str):
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[kind]


def fake_quantize(weight, kind: str):
    """The lm_head as the chip stores it, back in float32 (weight: [out, in])."""
    import torch

    w = weight.detach().float()
    if kind == "bf16":
        return w.to(torch.bfloat16).float()
    if kind == "s8":
        scale = w.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / 127.0
        return torch.clamp(torch.round(w / scale), -127, 127) * scale
    f8 = {"fp8_e4m3": torch.float8_e4m3fn, "fp8_e5m2": torch.float8_e5m2}[kind]
    scale = w.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / torch.finfo(f8).max
    return (w / scale).to(f8).float() * scale


def dequantize_in_place(model: Any) -> int:
    """Replace GPTQModel's quantized linears with float32 nn.Linear holding the same dequantized weights."""
    import torch
    from gptqmodel.nn_modules.qlinear import BaseQuantLinear

    replaced = 0
    for name, module in list(model.named_modules()):
        if not isinstance(module, BaseQuantLinear):
            continue
        dense = torch.nn.Linear(module.in_features, module.out_features, bias=module.bias is not None)
        with torch.no_grad():
            dense.weight.copy_(module.dequantize_weight().T.float())
            if module.bias is not None:
                dense.bias.copy_(module.bias.float())
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, dense)
        replaced += 1
    if not replaced:
        raise UserError("the GPTQ model holds no quantized linear layers to emulate")
    return replaced


def emulate(dense_model: Any, numerics: Numerics) -> Any:
    """A copy of a dequantized float32 model computing as the chip does."""
    import torch

    model = copy.deepcopy(dense_model)
    head = model.get_output_embeddings()
    # Tied embeddings (gemma): the table the runtime reads stays as it is; only the post matmul changes.
    head.weight = torch.nn.Parameter(fake_quantize(head.weight, numerics.post_weight_type))
    model.config.tie_word_embeddings = False
    return model.to(torch_dtype(numerics.hidden_state_type)).eval()
