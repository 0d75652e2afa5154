"""Channel equalisation before GPTQ: per-channel scales folded exactly into the model (GPTQ environment).

In each decoder layer, four places feed a quantized linear: the input norm (q/k/v), the pre-MLP norm
(gate/up), v_proj (o_proj, through attention, which is linear in v) and up_proj (down_proj, through the
elementwise product). For each, the earlier op's output channel c is divided by s_c and the linears'
input column c multiplied by s_c: the full-precision function is unchanged (up to the storage dtype's
rounding), while channels that carry large activations get weights that are larger, so a finer int4
grid. s = mean|x|^alpha over the calibration set (as AWQ chooses it), normalised to a geometric mean
of 1. Nothing is added to the model: the checkpoint stays plain GPTQ with ordinary norms.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from axera_pipeline.common.checkpoint import TOKENIZER_FILES
from axera_pipeline.common.cli import UserError

# (place, the linear whose input is measured)
PLACES = (("qkv", "q_proj"), ("o", "o_proj"), ("gate_up", "gate_proj"), ("down", "down_proj"))


def decoder_layers(model: Any) -> Any:
    layers = getattr(getattr(model, "model", None), "layers", None)
    if layers is None:
        raise UserError(
            f"--equalize does not know model_type {model.config.model_type!r}'s layout (no model.layers); "
            "run without --equalize"
        )
    return layers


def layer_parts(layer: Any, model_type: str) -> dict[str, Any]:
    """The modules equalisation touches in one decoder layer, or a one-line error naming what is missing."""
    attn, mlp = getattr(layer, "self_attn", None), getattr(layer, "mlp", None)
    pre_mlp = getattr(layer, "pre_feedforward_layernorm", None) or getattr(
        layer, "post_attention_layernorm", None
    )
    parts = {
        "input_norm": getattr(layer, "input_layernorm", None),
        "pre_mlp_norm": pre_mlp,
        **{name: getattr(attn, name, None) for name in ("q_proj", "k_proj", "v_proj", "o_proj")},
        **{name: getattr(mlp, name, None) for name in ("gate_proj", "up_proj", "down_proj")},
    }
    missing = [name for name, module in parts.items() if module is None]
    if missing:
        raise UserError(
            f"--equalize does not know model_type {model_type!r}'s layer layout (no {', '.join(missing)}); "
            "run without --equalize"
        )
    return parts


def input_means(model: Any, samples: Iterable[list[int]], say: Callable[[str], None]) -> dict:
    """Mean |x| per input channel of each place's linear, over the calibration samples."""
    import torch

    sums: dict[tuple[int, str], list] = {}

    def hook(key):
        def record(_module, args):
            x = args[0].detach().reshape(-1, args[0].shape[-1]).float().abs()
            total = sums.setdefault(key, [0.0, 0])
            total[0] = x.sum(0) + total[0]
            total[1] += x.shape[0]

        return record

    handles = []
    for index, layer in enumerate(decoder_layers(model)):
        parts = layer_parts(layer, model.config.model_type)
        for place, linear in PLACES:
            handles.append(parts[linear].register_forward_pre_hook(hook((index, place))))
    samples = list(samples)
    try:
        with torch.no_grad():
            for number, ids in enumerate(samples, start=1):
                model(input_ids=torch.tensor([ids]))
                if number % 50 == 0 or number == len(samples):
                    say(f"equalisation statistics: {number}/{len(samples)} rows")
    finally:
        for handle in handles:
            handle.remove()
    return {key: total / count for key, (total, count) in sums.items()}


def scales(mean: Any, alpha: float) -> Any:
    """mean^alpha with a geometric mean of 1, so the weights keep their overall size."""
    s = mean.clamp(min=1e-5) ** alpha
    return s / s.log().mean().exp()


def fold(model: Any, means: dict, alpha: float) -> None:
    """Divide each place's earlier output by its scales and multiply the linears' inputs by them."""
    import torch

    gemma_norm = model.config.model_type.startswith("gemma")  # weight stored as w, applied as 1 + w

    def scale_norm(norm, s):
        w = norm.weight.data.float()
        norm.weight.data = ((1 + w) / s - 1 if gemma_norm else w / s).to(norm.weight.dtype)

    def scale_columns(linear, s):
        linear.weight.data = (linear.weight.data.float() * s).to(linear.weight.dtype)

    def divide_rows(linear, s):
        linear.weight.data = (linear.weight.data.float() / s[:, None]).to(linear.weight.dtype)
        if linear.bias is not None:
            linear.bias.data = (linear.bias.data.float() / s).to(linear.bias.dtype)

    with torch.no_grad():
        for index, layer in enumerate(decoder_layers(model)):
            p = layer_parts(layer, model.config.model_type)
            s = scales(means[(index, "qkv")], alpha)
            scale_norm(p["input_norm"], s)
            for name in ("q_proj", "k_proj", "v_proj"):
                scale_columns(p[name], s)
            s = scales(means[(index, "gate_up")], alpha)
            scale_norm(p["pre_mlp_norm"], s)
            scale_columns(p["gate_proj"], s)
            scale_columns(p["up_proj"], s)
            s = scales(means[(index, "down")], alpha)
            divide_rows(p["up_proj"], s)
            scale_columns(p["down_proj"], s)
            # o_proj's input is v's output repeated over each key-value group's query heads: one scale
            # per v channel, shared by the heads that read it.
            kv_width, o_width = p["v_proj"].out_features, p["o_proj"].in_features
            head_dim = getattr(layer.self_attn, "head_dim", None) or model.config.head_dim
            groups = o_width // kv_width
            per_head = means[(index, "o")].view(kv_width // head_dim, groups, head_dim).mean(1)
            s = scales(per_head.reshape(-1), alpha)
            divide_rows(p["v_proj"], s)
            scale_columns(p["o_proj"], s.view(-1, 1, head_dim).expand(-1, groups, -1).reshape(-1))


def equalize_checkpoint(
    source: Path, target: Path, samples: list[list[int]], alpha: float, say: Callable[[str], None]
) -> None:
    """Write an equalised copy of the checkpoint at `source` to `target` (weights in their own dtype)."""
    import shutil

    from transformers import AutoModelForCausalLM

    say(f"equalising channels (alpha {alpha}) on {len(samples)} calibration rows")
    try:
        model = AutoModelForCausalLM.from_pretrained(source, dtype="auto").eval()
    except (ValueError, KeyError) as exc:  # an architecture transformers has no causal-LM class for
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(
            f"--equalize cannot load {source} as a causal LM ({first}); run without --equalize"
        ) from None
    fold(model, input_means(model, samples, say), alpha)
    model.save_pretrained(target)
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, target / name)
