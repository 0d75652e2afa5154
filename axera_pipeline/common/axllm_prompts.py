"""axllm's prompt as token ids: its template for `tokenizer_type` (chat_templates) encoded by its
tokenizer (axllm_tokenizer), and what makes a package's prompts wrong before any figure is measured.

Standard library only, so check-package judges a folder's markers without the model's tokenizer; the
template check (GPTQ side) compares these ids with verify's.
"""

from __future__ import annotations

from collections.abc import Sequence

from axera_pipeline.common import chat_format, chat_templates
from axera_pipeline.common.axllm_tokenizer import Tokenizer
from axera_pipeline.common.chat_templates import Message


def encode_chat(tok: Tokenizer, name: str, messages: Sequence[Message], generation_prompt: bool = True):
    """`tokenizer->encode(history)`: the template's text, then Tokenizer::encode."""
    return tok.encode(chat_templates.render(name, messages, generation_prompt))


def marker_ids(tok: Tokenizer, name: str) -> dict[str, list[int]]:
    """Each marker the template writes, encoded alone (without the prefix every encode starts with)."""
    return {marker: tok.encode(marker)[len(tok.prefix) :] for marker in chat_templates.markers(name)}


def lost_markers(tok: Tokenizer, name: str) -> dict[str, list[int]]:
    """Markers that do not reach the model as one special token, with the ids they become."""
    special = set(tok.special)
    return {m: ids for m, ids in marker_ids(tok, name).items() if len(ids) != 1 or ids[0] not in special}


def problems(tok: Tokenizer, name: str) -> list[str]:
    """What makes every prompt wrong on the board, one line each: a name axllm does not register, a
    marker that becomes pieces, a BOS from both the file's prefix and the template."""
    found = []
    if name not in chat_format.registered():
        near = [n for n in chat_format.registered() if n.lower() == name.lower()]
        hint = f" (the name is {near[0]}: case counts)" if near else ""
        found.append(f"tokenizer_type {name!r} is not registered in axllm, LLM.Init fails{hint}")
        return found
    if not chat_templates.can_render(name):
        return found
    lost = lost_markers(tok, name)
    if lost:
        shown = "; ".join(f"{m} becomes {len(ids)} ids" for m, ids in list(lost.items())[:3])
        found.append(
            f"axllm's {name} markers do not survive tokenizer.txt ({shown}): the board would prompt the "
            "model with byte pieces instead of its chat markers"
        )
    if tok.prefix and chat_templates.writes_bos(name):
        found.append(
            f"tokenizer.txt prepends {tok.prefix} to every prompt and axllm's {name} template writes its "
            "own BOS: the model would see two"
        )
    return found
