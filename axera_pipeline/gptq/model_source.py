"""Find a model: a local folder as is, or a hub id through the Hugging Face cache (GPTQ environment)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from axera_pipeline.common.cli import UserError

_HF_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


def looks_like_hub_id(text: str) -> bool:
    return bool(_HF_ID.match(text)) and not text.startswith((".", "/", "~"))


def resolve_model(model: str) -> Path:
    """A local folder as is; a hub id through the local cache (or the hub, when online)."""
    local = Path(model).expanduser()
    if local.exists():
        if not local.is_dir():
            raise UserError(f"--model {model} is a file; give the model's folder")
        return local.resolve()
    if not looks_like_hub_id(model):
        raise UserError(f"model folder {model} does not exist")
    try:
        from huggingface_hub import snapshot_download

        patterns = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.py"]
        return Path(snapshot_download(model, allow_patterns=patterns))
    except Exception as exc:  # noqa: BLE001 - the hub raises many types; the user needs one line
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        hint = " (HF_HUB_OFFLINE is set)" if offline else ""
        raise UserError(
            f"cannot get {model} from the Hugging Face hub{hint}: {type(exc).__name__}; "
            "download it first or pass a local folder with --model ./path"
        ) from None
