"""How long quantizing a model takes on this kind of machine, from measured costs, not a guess.

`nox -s bench -- profile` measures one HY-MT1.5-1.8B-shaped layer: forward passes and Hessians cost in
proportion to the calibration tokens, the GPTQ solve (with its clipping search), packing and offload
once per layer; both scale with a layer's weights.
"""

from __future__ import annotations

import json
from pathlib import Path

from axera_pipeline.common.paths import REPO

PROFILE = REPO / "bench" / "results" / "profile.json"
GEMMA = REPO / "bench" / "results" / "gemma.json"
# tencent/HY-MT1.5-1.8B's config, so the default model needs no download to be sized.
KNOWN_CONFIGS = {
    "tencent/HY-MT1.5-1.8B": {
        "num_hidden_layers": 32,
        "hidden_size": 2048,
        "intermediate_size": 6144,
        "num_attention_heads": 16,
        "num_key_value_heads": 4,
        "head_dim": 128,
    }
}


def layer_weights(config: dict) -> int:
    """Weights of one decoder layer's linear projections (attention and MLP)."""
    c = config.get("text_config") or config
    hidden = int(c["hidden_size"])
    heads = int(c.get("num_attention_heads", 1))
    head_dim = int(c.get("head_dim") or hidden // heads)
    kv = int(c.get("num_key_value_heads") or heads)
    attention = 2 * hidden * heads * head_dim + 2 * hidden * kv * head_dim
    return attention + 3 * hidden * int(c["intermediate_size"])


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


def cpu_minutes(model: str, profile: Path = PROFILE, gemma: Path = GEMMA) -> str:
    """One phrase for doctor: `~12 min for 32 layers (...)`, or what to run to know."""
    config = model_config(model)
    try:
        measured = json.loads(profile.read_text())["figures"]["results"]["defaults"]
    except (OSError, ValueError, KeyError, TypeError):
        return "not measured on this machine yet (`nox -s bench -- profile`)"
    if config is None:
        return "unknown for this model (pass a local folder to size it)"
    phases = {name: phase["seconds"] for name, phase in measured["phases"].items()}
    per_token = (phases["forward"] + phases["hessian"]) / measured["calibration_tokens"]
    per_layer = phases["solve"] + phases["pack"] + phases["offload"]
    tokens, source = default_calibration_tokens(measured, gemma)
    layers = int((config.get("text_config") or config)["num_hidden_layers"])
    scale = layer_weights(config) / measured["layer_weights"]
    seconds = phases["other"] + layers * scale * (per_token * tokens + per_layer)
    return f"~{seconds / 60:.0f} min for {layers} layers and {tokens} calibration tokens ({source})"
