"""Turn data rows into the text a translation LLM sees: the HY-MT prompt in the model's chat template."""

from __future__ import annotations

from typing import Any

from axera_pipeline.common.messages import row_messages


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
