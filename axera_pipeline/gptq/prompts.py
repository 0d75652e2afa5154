"""Turn data rows into the text a translation LLM sees: the HY-MT prompt in the model's chat template."""

from __future__ import annotations

import json
from typing import Any

from axera_pipeline.common.cli import UserError
from axera_pipeline.common.paths import DATA

LANGUAGES: dict[str, dict[str, str]] = json.loads((DATA / "languages.json").read_text(encoding="utf-8"))
# HY-MT's published prompt styles: a Chinese instruction whenever Chinese is on either side.
ZH_PROMPT = "将以下文本翻译为{target}，注意只需要输出翻译后的结果，不要额外解释：\n\n{source}"
XX_PROMPT = "Translate the following segment into {target}, without additional explanation.\n\n{source}"


def translation_prompt(src: str, tgt: str, source: str) -> str:
    for code in (src, tgt):
        if code not in LANGUAGES:
            raise UserError(f"unknown language code {code!r}; known: {', '.join(LANGUAGES)}")
    if "zh" in (src, tgt):
        return ZH_PROMPT.format(target=LANGUAGES[tgt]["zh"], source=source)
    return XX_PROMPT.format(target=LANGUAGES[tgt]["en"], source=source)


def row_messages(row: dict[str, Any]) -> list[dict[str, str]] | None:
    """Chat messages for a translation or chat row; None for a plain-text row."""
    if "messages" in row:
        return list(row["messages"])
    if {"src", "tgt", "source"} <= row.keys():
        messages = [{"role": "user", "content": translation_prompt(row["src"], row["tgt"], row["source"])}]
        if row.get("target"):
            messages.append({"role": "assistant", "content": row["target"]})
        return messages
    return None


def render(tokenizer: Any, row: dict[str, Any], *, generation_prompt: bool = False) -> str:
    """The row as one string, through the tokenizer's chat template when it has one."""
    messages = row_messages(row)
    if messages is None:
        return str(row["text"])
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=generation_prompt
        )
    text = "\n\n".join(m["content"] for m in messages)
    return text + ("\n\n" if generation_prompt else "")


def adds_own_bos(tokenizer: Any, row: dict[str, Any]) -> bool:
    """True when the chat template renders the row and so writes its own BOS token."""
    return row_messages(row) is not None and bool(getattr(tokenizer, "chat_template", None))


def encode_row(
    tokenizer: Any, row: dict[str, Any], max_length: int, *, generation_prompt: bool = False
) -> list[int]:
    """Token ids of a row; plain text gets the tokenizer's BOS (models such as Gemma break without it)."""
    text = render(tokenizer, row, generation_prompt=generation_prompt)
    special = not adds_own_bos(tokenizer, row)
    return tokenizer(text, truncation=True, max_length=max_length, add_special_tokens=special)["input_ids"]
