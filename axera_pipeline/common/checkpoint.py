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
# Any one of these makes a folder's tokenizer loadable (the others only configure it).
VOCABULARY_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")


def has_tokenizer(folder: Path) -> bool:
    return any((folder / name).is_file() for name in VOCABULARY_FILES)


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


JSON_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json")


def check_safetensors(path: Path) -> None:
    """A truncated or corrupt .safetensors is one line naming the file, not a loader's traceback."""
    size = path.stat().st_size
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
            length = int.from_bytes(head, "little") if len(head) == 8 else -1
            if not 0 < length <= size - 8:
                raise ValueError("no safetensors header")
            header = json.loads(handle.read(length))
        ends = [int(t["data_offsets"][1]) for k, t in header.items() if k != "__metadata__"]
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        raise UserError(f"{path} is not a readable safetensors file (truncated or corrupt)") from None
    if size < 8 + length + max(ends, default=0):
        raise UserError(
            f"{path} is truncated: its header describes {8 + length + max(ends)} bytes, the file holds {size}"
        )


def check_json_files(path: Path) -> None:
    for name in JSON_FILES:
        target = path / name
        if target.is_file():
            try:
                json.loads(target.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise UserError(f"{target} does not parse ({str(exc).splitlines()[0]})") from None


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
    for weights in ckpt.weights:
        if weights.suffix == ".safetensors":
            check_safetensors(weights)
    check_json_files(path)
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
