"""The chat messages a translation row becomes: HY-MT's published prompt. Standard library only: verify
renders them through the model's chat template (GPTQ side), the board step sends them to axllm."""

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


def question_messages(row: dict[str, Any]) -> list[dict[str, str]]:
    """What the model is asked for a row: its messages without the reference answer (none for plain text)."""
    return row_messages({k: v for k, v in row.items() if k != "target"}) or []
