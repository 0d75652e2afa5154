"""The Hugging Face subfolder of a package: config, generation config and tokenizer for Axera's Python demo.

The demo pins transformers 4.57.1, while the checkpoint was saved by the GPTQ environment's 5.x. The
copy keeps every 5.x field and adds the 4.x spellings next to them, so both versions load it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from axera_pipeline.common.checkpoint import TOKENIZER_FILES

# 5.x names its fast tokenizer TokenizersBackend (GPTQModel saves TokenizersBackendFast); 4.x knows
# the same thing as PreTrainedTokenizerFast.
V5_TOKENIZER_CLASS_PREFIX = "TokenizersBackend"
# Written by loaders into the saved config, not tokenizer settings.
LOADER_KEYS = ("is_local", "local_files_only")


def v4_config(config: dict[str, Any]) -> dict[str, Any]:
    """The model config with 4.x's rope_theta/rope_scaling and torch_dtype beside 5.x's fields."""
    out = {k: v for k, v in config.items() if k != "quantization_config"}
    rope = out.get("rope_parameters")
    if isinstance(rope, dict):
        if "rope_theta" in rope:
            out.setdefault("rope_theta", rope["rope_theta"])
        kind = rope.get("rope_type", "default")
        if kind != "default" and "rope_scaling" not in out:
            out["rope_scaling"] = {"type": kind, **{k: v for k, v in rope.items() if k != "rope_theta"}}
    if "dtype" in out:
        out.setdefault("torch_dtype", out["dtype"])
    return out


def v4_tokenizer_config(config: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in config.items() if k not in LOADER_KEYS}
    if str(out.get("tokenizer_class", "")).startswith(V5_TOKENIZER_CLASS_PREFIX):
        out["tokenizer_class"] = "PreTrainedTokenizerFast"
    extra = out.get("extra_special_tokens")
    if isinstance(extra, list):  # 5.x's list form; 4.x wants a mapping here and reads the list below
        out.pop("extra_special_tokens")
        out.setdefault("additional_special_tokens", extra)
    return out


def write(checkpoint: Path, target: Path) -> list[str]:
    """Copy config, generation config and tokenizer files into `target`; returns the names written."""
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name in ("config.json", *TOKENIZER_FILES):
        source = checkpoint / name
        if not source.is_file():
            continue
        if name == "config.json":
            data = v4_config(json.loads(source.read_text(encoding="utf-8")))
            (target / name).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        elif name == "tokenizer_config.json":
            data = v4_tokenizer_config(json.loads(source.read_text(encoding="utf-8")))
            (target / name).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        else:
            shutil.copy2(source, target / name)
        written.append(name)
    return written
