"""A model's small files (config and tokenizer, never the weights), for checks that need no weights.

A local folder is used as it is. A hub id is looked up in the Hugging Face cache first, then its
small files are fetched over HTTP (`HF_ENDPOINT`, `HF_TOKEN`, `HF_HUB_OFFLINE` as the hub's own tools
read them) into this project's cache. When the hub cannot be reached and nothing is cached, the
caller gets `Unreachable` with one line to print, and the run goes on without these checks.
"""

from __future__ import annotations

import os
import re
import urllib.error
import urllib.request
from pathlib import Path

from axera_pipeline.common.atomic import write_bytes
from axera_pipeline.common.cli import UserError

SMALL_FILES = (
    "config.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "chat_template.json",
    "generation_config.json",
    "special_tokens_map.json",
    "tokenizer.json",
)
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
TIMEOUT_S = 10.0


class Unreachable(Exception):
    """The hub could not be asked and nothing is cached: checks that need the files are skipped."""


def cache_root() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "axera-llm-pipeline" / "hub"


def hf_cache() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface")
    return home / "hub"


def in_hf_cache(model: str) -> Path | None:
    """The cached snapshot of `model` that `main` points to, when it holds a config.json."""
    repo = hf_cache() / f"models--{model.replace('/', '--')}"
    try:
        revision = (repo / "refs" / "main").read_text().strip()
    except OSError:
        return None
    snapshot = repo / "snapshots" / revision
    return snapshot if (snapshot / "config.json").is_file() else None


def _get(url: str) -> bytes | None:
    """The file's bytes; None when the hub says it has no such file."""
    request = urllib.request.Request(url, headers={"User-Agent": "axera-llm-pipeline"})
    if os.environ.get("HF_TOKEN"):
        request.add_header("Authorization", f"Bearer {os.environ['HF_TOKEN']}")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403, 404):
            return None
        raise Unreachable(f"the hub answered {exc.code} for {url}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Unreachable(f"cannot reach {url.split('/')[2]} ({reason})") from None


def fetch(model: str, target: Path) -> Path:
    """Download the small files of `model` into `target`; each file is written whole or not at all."""
    if os.environ.get("HF_HUB_OFFLINE") in ("1", "true", "True", "YES", "yes"):
        raise Unreachable("HF_HUB_OFFLINE is set and the model is not in the Hugging Face cache")
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    got = {}
    for name in SMALL_FILES:
        data = _get(f"{endpoint}/{model}/resolve/main/{name}")
        if data is None and name == "config.json":
            raise UserError(f"the hub has no config.json for {model}; is the id right (and HF_TOKEN set)?")
        if data is not None:
            got[name] = data
    target.mkdir(parents=True, exist_ok=True)
    for name, data in got.items():
        write_bytes(target / name, data)
    return target


def locate(model: str) -> Path:
    """A folder holding the model's config.json (and tokenizer files where it has them)."""
    folder = Path(model).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise UserError(f"{folder} has no config.json; is it a Hugging Face model folder?")
        return folder
    if not HUB_ID.match(model) or model.startswith((".", "/", "~")):
        raise UserError(f"{model} is neither a folder nor a hub id (org/name)")
    cached = in_hf_cache(model)
    if cached is not None:
        return cached
    ours = cache_root() / model.replace("/", "--")
    if (ours / "config.json").is_file():
        return ours
    return fetch(model, ours)
