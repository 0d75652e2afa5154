"""How long quantizing a model takes on this machine, from measured costs scaled by its matmul rates.

`nox -s bench -- profile` measures one HY-MT1.5-1.8B-shaped layer, phase by phase, and the fp32 and
bf16 matmul rates of the machine it ran on. Forward passes and Hessians cost in proportion to the
calibration tokens; the GPTQ solve (with its clipping search), packing and offload once per layer;
all scale with a layer's weights. This machine's own rates (a probe of a second or two in the GPTQ
environment: common/matmul_rate.py, gptq/matmul_probe.py) scale the forward passes by the bf16 ratio
and the rest by the fp32 ratio: two machines with the same CPU name were measured at 745 and 417
GFLOP/s in bf16.
"""

from __future__ import annotations

import json
from pathlib import Path

from axera_pipeline.common.defaults import DEFAULT_MODEL
from axera_pipeline.common.model_shape import layer_weights, layers
from axera_pipeline.common.paths import REPO

PROFILE = REPO / "bench" / "results" / "profile.json"
GEMMA = REPO / "bench" / "results" / "gemma.json"
# The default model's config, so it needs no download to be sized.
KNOWN_CONFIGS = {
    DEFAULT_MODEL: {
        "model_type": "hunyuan_v1_dense",
        "num_hidden_layers": 32,
        "hidden_size": 2048,
        "intermediate_size": 6144,
        "num_attention_heads": 16,
        "num_key_value_heads": 4,
        "head_dim": 128,
        "vocab_size": 120818,
        "tie_word_embeddings": True,
    }
}


def model_config(model: str) -> dict | None:
    folder = Path(model).expanduser()
    if (folder / "config.json").is_file():
        try:
            return json.loads((folder / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
    return KNOWN_CONFIGS.get(model)


def default_calibration_tokens(measured: dict, gemma: Path = GEMMA) -> tuple[int, str]:
    """Tokens of the bundled calibration set through a real large-vocabulary tokenizer, when measured."""
    try:
        tokens = json.loads(gemma.read_text())["figures"]["calibration_tokens"]
        return int(tokens), "the bundled set through gemma-3-270m's tokenizer"
    except (OSError, ValueError, KeyError, TypeError):
        return int(measured["calibration_tokens"]), "the profile's own calibration"


def scales(measured: dict, rates: dict | None) -> tuple[float, float, str]:
    """(forward factor, everything-else factor, where the rates came from) against the profile's machine."""
    theirs = measured.get("matmul_gflops") or {}
    try:
        return (
            theirs["bf16"] / rates["bf16"],
            theirs["fp32"] / rates["fp32"],
            (
                f"this machine's matmul rates, fp32 {rates['fp32']:.3g} and bf16 {rates['bf16']:.3g} "
                f"GFLOP/s, against the profile's {theirs['fp32']:.3g} and {theirs['bf16']:.3g}"
            ),
        )
    except (KeyError, TypeError, ZeroDivisionError):
        return 1.0, 1.0, "the profile machine's speed (this machine's rates not measured yet)"


def cpu_seconds(
    config: dict, rates: dict | None = None, profile: Path = PROFILE, gemma: Path = GEMMA
) -> dict:
    """The estimate and what it rests on: seconds, layers, calibration tokens and their sources."""
    measured = json.loads(profile.read_text())["figures"]["results"]["defaults"]
    phases = {name: phase["seconds"] for name, phase in measured["phases"].items()}
    forward_scale, other_scale, rate_source = scales(measured, rates)
    tokens, token_source = default_calibration_tokens(measured, gemma)
    per_token_forward = phases["forward"] / measured["calibration_tokens"] * forward_scale
    per_token_hessian = phases["hessian"] / measured["calibration_tokens"] * other_scale
    per_layer = (phases["solve"] + phases["pack"] + phases["offload"]) * other_scale
    size = layer_weights(config) / measured["layer_weights"]
    seconds = phases["other"] * other_scale + layers(config) * size * (
        (per_token_forward + per_token_hessian) * tokens + per_layer
    )
    return {
        "seconds": seconds,
        "layers": layers(config),
        "tokens": tokens,
        "tokens_from": token_source,
        "rates_from": rate_source,
    }


def cpu_minutes(model: str, profile: Path = PROFILE, gemma: Path = GEMMA, rates: dict | None = None) -> str:
    """One phrase for doctor and the preflight: `~12 min for 32 layers (...)`, or what to run to know."""
    config = model_config(model)
    if not profile.is_file():
        return "not measured on this machine yet (`nox -s bench -- profile`)"
    if config is None:
        return "unknown for this model (pass a local folder to size it)"
    try:
        found = cpu_seconds(config, rates, profile, gemma)
    except (OSError, ValueError, KeyError, TypeError):
        return "not measured on this machine yet (`nox -s bench -- profile`)"
    return (
        f"~{found['seconds'] / 60:.0f} min for {found['layers']} layers and {found['tokens']} calibration "
        f"tokens ({found['tokens_from']}; {found['rates_from']})"
    )
