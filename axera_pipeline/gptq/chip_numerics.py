"""Emulate what the chip computes with a GPTQ checkpoint: the documented types, not pulsar2's kernels.

From a chip profile: hidden states, attention and the KV cache in `hidden_state_type` (the whole model
runs in that dtype); the post layer's matmul (lm_head) fake-quantized to `post_weight_type` (s8:
symmetric per output channel; fp8: per-channel scaled into torch's float8 range; bf16: rounded);
embeddings rounded to the hidden type, as the runtimes feed them. The decoder's weights are the GPTQ
checkpoint's own int4/int8 grid, dequantized, unless the profile's `weight_type` (pulsar2's `-w`)
holds them otherwise: s4 on an 8-bit checkpoint is rounded to nearest onto the 4-bit grid at the
checkpoint's group size (pulsar2 requantizes them so); s8 holds a 4-bit grid exactly; bf16/fp16 round
the dequantized weights. The final norm stays in the hidden type.

Every tensor stays on the model's device: the replacement layers are made where the quantized ones
were, from GPTQModel's torch backend (whose packed weights `dequantize_weight` reads; a repacking
kernel such as Marlin's would not give the checkpoint's weights back).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from axera_pipeline.common.chip_types import (
    DEFAULT_POST_WEIGHT_TYPE,
    HIDDEN_TYPES,
    POST_WEIGHT_TYPES,
    held_weight_type,
    profile_path,
)
from axera_pipeline.common.cli import UserError


@dataclass(frozen=True)
class Numerics:
    hidden_state_type: str
    post_weight_type: str
    weight_type: str | None = None  # None: the checkpoint's own grid, as pulsar2 keeps it without -w

    @property
    def label(self) -> str:
        weights = f", decoder weights {self.weight_type}" if self.weight_type else ""
        return f"{self.hidden_state_type} hidden, {self.post_weight_type} lm_head{weights}"


EMULATED_WEIGHTS = ("s4", "s8", "bf16", "fp16")


def held_weights(weight_type: str | None, bits: int | None, where: str) -> str | None:
    """The decoder's weights as the chip holds them, against the checkpoint's grid (None: as they are);
    a type the emulation does not model is refused, before anything is built."""
    held = held_weight_type(weight_type, bits)
    if held is not None and held not in EMULATED_WEIGHTS:
        raise UserError(
            f"{where}: weight_type {weight_type} on a {bits}-bit GPTQ checkpoint is not emulated (s4, s8, "
            "bf16 or fp16): verify cannot say what the board will compute; emulate another profile"
        )
    return held


def from_profile(profile: dict, bits: int | None, where: str = "profile") -> Numerics:
    """The numerics of a profile as a dict (a package's manifest keeps it so)."""
    return Numerics(
        profile.get("hidden_state_type") or "bf16",
        profile.get("post_weight_type") or DEFAULT_POST_WEIGHT_TYPE,
        held_weights(profile.get("weight_type"), bits, where),
    )


def load(name_or_path: str, bits: int | None = None) -> tuple[str, Numerics]:
    """(profile name, its numeric settings) from a profile name or file; bits: the checkpoint's, which
    the profile's weight_type is judged against."""
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
    return path.stem, Numerics(hidden, post, held_weights(data.get("weight_type"), bits, str(path)))


def distinct(profiles: list[str], bits: int | None = None) -> dict[Numerics, list[str]]:
    """One emulation per distinct numeric setting, with the profiles that share it (on a 4-bit
    checkpoint ax650 and ax620e do; on an 8-bit one ax620e's s4 weights are its own pass)."""
    groups: dict[Numerics, list[str]] = {}
    for spec in profiles:
        name, numerics = load(spec, bits)
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
    """Replace GPTQModel's quantized linears with float32 nn.Linear holding the same dequantized
    weights, each on the device its quantized layer was on."""
    import torch
    from gptqmodel.nn_modules.qlinear import BaseQuantLinear

    replaced = 0
    for name, module in list(model.named_modules()):
        if not isinstance(module, BaseQuantLinear):
            continue
        with torch.no_grad():
            weight = module.dequantize_weight().T
            dense = torch.nn.Linear(
                module.in_features,
                module.out_features,
                bias=module.bias is not None,
                device=weight.device,
                dtype=torch.float32,
            )
            dense.weight.copy_(weight.float())
            if module.bias is not None:
                dense.bias.copy_(module.bias.float())
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, dense)
        replaced += 1
    if not replaced:
        raise UserError("the GPTQ model holds no quantized linear layers to emulate")
    return replaced


def hold_weights(model: Any, weight_type: str, group_size: int) -> int:
    """The decoder's linears as the chip holds them under a weight_type other than the checkpoint's."""
    import torch

    from axera_pipeline.gptq.compare import rtn_weight

    count = 0
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Linear) and ".layers." in name:
                if weight_type in ("s4", "s8"):
                    module.weight.copy_(rtn_weight(module.weight, int(weight_type[1:]), group_size))
                else:
                    module.weight.copy_(module.weight.to(torch_dtype(weight_type)).float())
                count += 1
    return count


def emulate(dense_model: Any, numerics: Numerics, group_size: int = 128) -> Any:
    """A copy of a dequantized float32 model computing as the chip does, on the model's device."""
    import torch

    model = copy.deepcopy(dense_model)
    if numerics.weight_type:
        hold_weights(model, numerics.weight_type, group_size)
    head = model.get_output_embeddings()
    # Tied embeddings (gemma): the table the runtime reads stays as it is; only the post matmul changes.
    head.weight = torch.nn.Parameter(fake_quantize(head.weight, numerics.post_weight_type))
    model.config.tie_word_embeddings = False
    return model.to(torch_dtype(numerics.hidden_state_type)).eval()
