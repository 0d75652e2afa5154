"""Sizes that follow from a model's config.json alone: weights per layer, parameters, KV cache."""

from __future__ import annotations

from typing import Any


def text_config(config: dict[str, Any]) -> dict[str, Any]:
    """The language model's config (vision-language configs nest it under text_config)."""
    return config.get("text_config") or config


def head_dim(config: dict[str, Any]) -> int:
    c = text_config(config)
    return int(c.get("head_dim") or int(c["hidden_size"]) // int(c.get("num_attention_heads", 1)))


def kv_heads(config: dict[str, Any]) -> int:
    c = text_config(config)
    return int(c.get("num_key_value_heads") or c.get("num_attention_heads", 1))


def layer_weights(config: dict[str, Any]) -> int:
    """Weights of one decoder layer's linear projections (attention and MLP)."""
    c = text_config(config)
    hidden = int(c["hidden_size"])
    heads = int(c.get("num_attention_heads", 1))
    attention = 2 * hidden * heads * head_dim(config) + 2 * hidden * kv_heads(config) * head_dim(config)
    return attention + 3 * hidden * int(c["intermediate_size"])


def layers(config: dict[str, Any]) -> int:
    return int(text_config(config)["num_hidden_layers"])


def vocab_and_hidden(config: dict[str, Any]) -> tuple[int, int]:
    c = text_config(config)
    return int(c["vocab_size"]), int(c["hidden_size"])


def tied(config: dict[str, Any]) -> bool:
    return bool(config.get("tie_word_embeddings", text_config(config).get("tie_word_embeddings", False)))


def parameters(config: dict[str, Any]) -> int:
    """Decoder linears plus the embedding table, plus the lm_head when it is not tied to it."""
    vocab, hidden = vocab_and_hidden(config)
    return layers(config) * layer_weights(config) + vocab * hidden * (1 if tied(config) else 2)


def kv_cache_bytes(config: dict[str, Any], context: int, element_bytes: int = 2) -> int:
    """K and V for `context` tokens in every layer, bf16: 2 x context x kv_heads x head_dim x 2 bytes."""
    return layers(config) * 2 * context * kv_heads(config) * head_dim(config) * element_bytes
