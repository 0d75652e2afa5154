"""Which axllm `tokenizer_type` a model needs: from its own chat template, not from its model_type.

The model's template (tokenizer_config.json's `chat_template`, or chat_template.jinja/.json beside it)
is matched against the formats in data/axllm/chat_templates.json; the model_type only breaks ties
between axllm names that render the same format. A format axllm has no template for (Llama-2/3,
Mistral, Phi) gets the nearest name with `exact` false, which the build, check-package and the
package's README say loudly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from axera_pipeline.common.basics import read_json
from axera_pipeline.common.paths import DATA

CHAT_TEMPLATES = DATA / "axllm" / "chat_templates.json"
NO_TEMPLATE = "none"


@cache
def table() -> dict[str, Any]:
    return json.loads(CHAT_TEMPLATES.read_text(encoding="utf-8"))


def registered() -> list[str]:
    return list(table()["registered"])


def _default_of(template: Any) -> str:
    """A template string, or the `default` one of a list of named templates."""
    if isinstance(template, str):
        return template
    if isinstance(template, list):
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        return str(named.get("default") or next(iter(named.values()), "") or "")
    return ""


def model_template(folder: Path) -> str:
    """The model's own chat template: chat_template.jinja, chat_template.json or tokenizer_config.json."""
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    data = read_json(folder / "chat_template.json")
    if isinstance(data, dict) and data.get("chat_template"):
        return _default_of(data["chat_template"])
    config = read_json(folder / "tokenizer_config.json")
    return _default_of(config.get("chat_template")) if isinstance(config, dict) else ""


def special_tokens(folder: Path) -> set[str]:
    """Tokens the tokenizer matches whole (added tokens): where a template's markers must be."""
    found: set[str] = set()
    tokenizer = read_json(folder / "tokenizer.json")
    if isinstance(tokenizer, dict):
        found |= {a.get("content", "") for a in tokenizer.get("added_tokens", [])}
    config = read_json(folder / "tokenizer_config.json")
    if isinstance(config, dict):
        found |= {v.get("content", "") for v in (config.get("added_tokens_decoder") or {}).values()}
    return found - {""}


def detect(template: str) -> dict[str, Any] | None:
    """The first format whose markers all occur in the template; None for no template at all."""
    if not template.strip():
        return None
    for entry in table()["formats"]:
        if all(marker in template for marker in entry["markers"]):
            return entry
    return {"format": "unknown", "describe": "a format axllm does not know", "names": [], "nearest": "Qwen3"}


@dataclass(frozen=True)
class Choice:
    name: str  # axllm's tokenizer_type
    format: str  # the model's own format ("none": no chat template)
    describe: str
    exact: bool  # axllm renders the model's own format
    reason: str

    def warning(self) -> str:
        """One line for the log, check-package and the README; empty when the template matches."""
        if self.exact:
            return ""
        what = "has no chat template" if self.format == NO_TEMPLATE else f"is prompted in {self.describe}"
        return (
            f"the model {what}, which no axllm tokenizer_type renders: the board will prompt it as "
            f"{self.name} ({self.reason}), a format it was not trained on; pass --axllm-tokenizer-type NAME "
            "if another fits better"
        )


def _names_by_model_type(entry: dict[str, Any], model_types: list[str]) -> str | None:
    by_type = entry.get("by_model_type") or {}
    return next((by_type[t] for t in model_types if t in by_type), None)


def choose(template: str, model_types: list[str], override: str = "") -> Choice:
    """axllm's name for a model: its template's format first, then the tie-break by model_type."""
    entry = detect(template)
    if override:
        fmt = entry["format"] if entry else NO_TEMPLATE
        renders = table()["renders_format"].get(override)
        return Choice(
            override, fmt, entry["describe"] if entry else "", renders == fmt, "--axllm-tokenizer-type"
        )
    if entry is None:
        fallback = table()["no_template"]
        name = _names_by_model_type(fallback, model_types) or fallback["nearest"]
        return Choice(
            name, NO_TEMPLATE, "no chat template", False, f"nearest for model_type {model_types[0]}"
        )
    names = entry.get("names") or []
    if not names:
        return Choice(
            entry["nearest"], entry["format"], entry["describe"], False, entry.get("evidence", "nearest")
        )
    name = _names_by_model_type(entry, model_types)
    if name:
        return Choice(name, entry["format"], entry["describe"], True, f"model_type {model_types[0]}")
    if entry.get("thinking") and "<think>" in template:
        return Choice(
            entry["thinking"], entry["format"], entry["describe"], True, "the template writes <think>"
        )
    return Choice(names[0], entry["format"], entry["describe"], True, "the format's default")


def for_model(folder: Path, model_types: list[str], override: str = "") -> Choice:
    return choose(model_template(folder), model_types, override)


def renders_format(name: str) -> str | None:
    return table()["renders_format"].get(name)


def model_types(config: dict[str, Any]) -> list[str]:
    """The config's model_type, then its text model's (vision-language configs nest one)."""
    text = config.get("text_config") or {}
    found = [str(config.get("model_type") or ""), str(text.get("model_type") or "")]
    return [t for t in dict.fromkeys(found) if t] or ["unknown"]
