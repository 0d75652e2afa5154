"""Inspect a Hugging Face model folder (or id) before any heavy library is imported."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from axera_pipeline.common.cli import UserError

WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "chat_template.jinja",
    "chat_template.json",
    "generation_config.json",
    "added_tokens.json",
)


@dataclass
class Checkpoint:
    path: Path
    config: dict = field(repr=False)

    @property
    def model_type(self) -> str:
        return str(self.config.get("model_type", ""))

    @property
    def text_config(self) -> dict:
        """The language model's config (vision-language configs nest it under text_config)."""
        return self.config.get("text_config") or self.config

    @property
    def weights(self) -> list[Path]:
        return sorted({p for pat in WEIGHT_PATTERNS for p in self.path.glob(pat)})

    @property
    def files(self) -> list[Path]:
        """Everything that determines the model: config, weights, tokenizer."""
        names = {"config.json", *TOKENIZER_FILES}
        extra = [self.path / n for n in sorted(names) if (self.path / n).is_file()]
        return sorted(set(extra) | set(self.weights))

    @property
    def weight_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.weights)

    def linear_widths(self) -> dict[str, int]:
        """Input widths of the decoder's linear layers, which a GPTQ group size must divide."""
        c = self.text_config
        hidden = int(c.get("hidden_size", 0))
        heads = int(c.get("num_attention_heads", 0))
        head_dim = int(c.get("head_dim") or (hidden // heads if heads else 0))
        widths = {
            "hidden_size": hidden,
            "intermediate_size": int(c.get("intermediate_size", 0)),
            "num_attention_heads * head_dim": heads * head_dim,
        }
        return {k: v for k, v in widths.items() if v}

    @property
    def name(self) -> str:
        return self.path.name


def load_checkpoint(path: Path) -> Checkpoint:
    config_file = path / "config.json"
    if not config_file.is_file():
        raise UserError(f"{path} has no config.json; is it a Hugging Face model folder?")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{config_file} is not valid JSON: {exc}") from None
    ckpt = Checkpoint(path, config)
    if not ckpt.model_type:
        raise UserError(f"{config_file} has no model_type")
    if not ckpt.weights:
        raise UserError(f"{path} has no weights (*.safetensors or pytorch_model*.bin)")
    return ckpt


def check_group_size(ckpt: Checkpoint, group_size: int) -> None:
    if group_size == -1:
        return
    if group_size <= 0:
        raise UserError(f"--group-size must be positive or -1 (per channel), not {group_size}")
    bad = {k: v for k, v in ckpt.linear_widths().items() if v % group_size}
    if bad:
        what = ", ".join(f"{k}={v}" for k, v in bad.items())
        raise UserError(
            f"--group-size {group_size} does not divide the layer widths ({what}); "
            "pick a divisor such as 32, 64 or 128"
        )
