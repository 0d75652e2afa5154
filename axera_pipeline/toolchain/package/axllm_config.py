"""axllm's config.json and post_config.json for a package, in axllm's own schema (docs/package.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from axera_pipeline.common import package_layout as layout


def model_name(source: str, override: str = "") -> str:
    """Free text for axllm; lower case so that HY-MT models contain `hy-mt` (axllm's translation switch)."""
    return override or Path(source.rstrip("/")).name.lower()


def config(
    *,
    name: str,
    tokenizer_type: str,
    prefix: str,
    prefill_chunk: int,
    layers: int,
    vocab: int,
    hidden: int,
    bos: bool,
    hf_config: dict[str, Any],
    runtime: dict[str, int],
) -> dict[str, Any]:
    """Every key axllm requires, typed as it parses them, with bare file names; plus the optional ones."""
    text = hf_config.get("text_config") or hf_config
    data: dict[str, Any] = {
        "model_name": name,
        "template_filename_axmodel": layout.layer_template(prefix, prefill_chunk),
        "axmodel_num": layers,
        "filename_post_axmodel": layout.post_model(prefix),
        "url_tokenizer_model": layout.TOKENIZER_TXT,
        "tokenizer_type": tokenizer_type,
        "filename_tokens_embed": layout.EMBED_BF16,
        "tokens_embed_num": vocab,
        "tokens_embed_size": hidden,
        "post_config_path": layout.POST_CONFIG,
        # mmap: no copy of the table in RAM, and no 32-bit size check that tables of 2 GiB or more fail.
        "use_mmap_load_embed": True,
        "bos": bos,
        "eos": False,
    }
    if isinstance(text.get("pad_token_id"), int):
        data["pad_token_id"] = text["pad_token_id"]
    if isinstance(text.get("sliding_window"), int):
        data["sliding_window"] = text["sliding_window"]
    if isinstance(text.get("layer_types"), list):
        data["layer_types"] = list(text["layer_types"])
    # What the axmodels were built for (axllm reads the shapes from the models themselves).
    data.update(runtime)
    return data


def post_config(generation: dict[str, Any]) -> dict[str, Any]:
    """Sampling from generation_config.json; greedy where the model does not sample. All nine keys, typed."""
    sampling = bool(generation.get("do_sample", False))
    return {
        "enable_temperature": sampling and "temperature" in generation,
        "temperature": float(generation.get("temperature", 0.7)),
        "enable_repetition_penalty": "repetition_penalty" in generation
        and float(generation["repetition_penalty"]) != 1.0,
        "repetition_penalty": float(generation.get("repetition_penalty", 1.0)),
        "penalty_window": 20,
        "enable_top_p_sampling": sampling and "top_p" in generation,
        "top_p": float(generation.get("top_p", 0.8)),
        "enable_top_k_sampling": sampling and "top_k" in generation,
        "top_k": int(generation.get("top_k", 1)),
    }
