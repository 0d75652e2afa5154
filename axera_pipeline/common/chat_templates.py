"""axllm's prompt formats: the text axllm builds from chat messages for a package's `tokenizer_type`.

Written from tokenizer.axera's `src/*Tokenizer.hpp` (vendored in AXERA-TECH/ax-llm), text content only.
axllm encodes the result with tokenizer.txt, which prepends its prefix ids to every encode
(`Tokenizer::encode` in `src/tokenizer/tokenizer_optimized.cpp`). Standard library only: the build,
the preflight, the board step (host side) and the token-level check (GPTQ side) all render with it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

Message = Mapping[str, str]

HY_BOS = "<｜hy_begin▁of▁sentence｜>"
HY_USER = "<｜hy_User｜>"
HY_ASSISTANT = "<｜hy_Assistant｜>"
HY_END_OF_ANSWER = "<｜hy_place▁holder▁no▁2｜>"
HY_END_OF_SYSTEM = "<｜hy_place▁holder▁no▁3｜>"
HY_NO_PROMPT = "<｜hy_place▁holder▁no▁8｜>"
CHATML_ROLES = ("system", "user", "assistant")


def _strip(text: str) -> str:
    return text.strip(" \t\n\r\v\f")


def remove_thinking(text: str, end: str = "</think>") -> str:
    """What comes after the end-of-thinking tag, trimmed (BaseMixinTokenizer::remove_thinking)."""
    at = text.find(end)
    return _strip(text if at < 0 else text[at + len(end) :])


def _asks_for_answer(messages: Sequence[Message], generation_prompt: bool) -> bool:
    return bool(messages) and messages[-1]["role"] == "user" and generation_prompt


def hunyuan(messages: Sequence[Message], generation_prompt: bool = True) -> str:
    out, rest = [HY_BOS], list(messages)
    if rest and rest[0]["role"] == "system":
        out += [rest.pop(0)["content"], HY_END_OF_SYSTEM]
    for m in rest:
        if m["role"] == "user":
            out += [HY_USER, m["content"]]
        elif m["role"] == "assistant":
            out += [HY_ASSISTANT, m["content"], HY_END_OF_ANSWER]
    out.append(HY_ASSISTANT if _asks_for_answer(messages, generation_prompt) else HY_NO_PROMPT)
    return "".join(out)


def _chatml(start: str, turns: Sequence[tuple[str, str]], answer: bool) -> str:
    """`<|im_start|>role\ncontent<|im_end|>\n` per (role, content) turn, and the answer's header."""
    out = [start]
    out += [f"<|im_start|>{role}\n{content}<|im_end|>\n" for role, content in turns if role in CHATML_ROLES]
    if answer:
        out.append("<|im_start|>assistant\n")
    return "".join(out)


def chatml(bos: str = "") -> Callable[[Sequence[Message], bool], str]:
    """Qwen2_5/Qwen3/Qwen3_5 (Qwen3Tokenizer.hpp), SmolLM2, MiniCPM4 (after `<s>`). An answer's thinking
    stays in the history: axllm sets think_in_prompt for every name but Gemma4 (src/runner/LLM_init.cpp;
    the June 2026 Kylin-agent copy turns it off for the Qwen3 names, which only matters past one turn)."""

    def render(messages: Sequence[Message], generation_prompt: bool = True) -> str:
        turns = [(m["role"], m["content"]) for m in messages]
        return _chatml(bos, turns, _asks_for_answer(messages, generation_prompt))

    return render


def minicpm5(messages: Sequence[Message], generation_prompt: bool = True) -> str:
    """ChatML after `<s>`; a last user turn loses a `/no_think` or `/think` marker, which then opens the
    answer with an empty or an open think block (MiniCPM5Tokenizer.hpp, thinking mode unspecified)."""
    last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=-1)
    turns, opening = [], ""
    for i, m in enumerate(messages):
        content = m["content"]
        if m["role"] == "user" and i == len(messages) - 1:
            for marker, think in (("/no_think", "<think>\n\n</think>\n\n"), ("/think", "<think>\n")):
                if marker in content:
                    content, opening = _strip(content.replace(marker, "", 1)), think
                    break
        elif m["role"] == "assistant" and not i > last_user >= 0:
            content = remove_thinking(content)
        turns.append((m["role"], content))
    asks = _asks_for_answer(messages, generation_prompt)
    return _chatml("<s>", turns, asks) + (opening if asks else "")


def gemma3(messages: Sequence[Message], generation_prompt: bool = True) -> str:
    """`<bos>`, a system message folded into the first user turn (Gemma3Tokenizer.hpp)."""
    out, rest, system = ["<bos>"], list(messages), ""
    if rest and rest[0]["role"] == "system":
        system = rest.pop(0)["content"] + "\n\n"
    for m in rest:
        if m["role"] == "user":
            out += ["<start_of_turn>user\n", system, m["content"], "<end_of_turn>\n"]
            system = ""
        elif m["role"] == "assistant":
            out += ["<start_of_turn>model\n", m["content"], "<end_of_turn>\n"]
    if _asks_for_answer(messages, generation_prompt):
        out.append("<start_of_turn>model\n")
    return "".join(out)


def gemma4(messages: Sequence[Message], generation_prompt: bool = True) -> str:
    """`<bos>`, then `<|turn>role\\n...<turn|>\\n` per message (Gemma4Tokenizer.hpp, text only)."""
    out = ["<bos>"]
    for m in messages:
        role = {"assistant": "model"}.get(m["role"], m["role"])
        if role in ("system", "user", "model"):
            out.append(f"<|turn>{role}\n{m['content']}<turn|>\n")
    if _asks_for_answer(messages, generation_prompt):
        out.append("<|turn>model\n")
    return "".join(out)


# Names whose `tokenizer_type` renders a format reproduced here; the VL variants render text the same way.
RENDERERS: dict[str, Callable[[Sequence[Message], bool], str]] = {
    "HunYuan": hunyuan,
    **{name: chatml() for name in ("Qwen3", "Qwen3VL", "Qwen3Omni", "Qwen3_5", "Qwen3_5VL")},
    "Qwen2_5": chatml(),
    "SmolLM2": chatml(),
    **{name: chatml(bos="<s>") for name in ("MiniCPM4", "MiniCPMV4", "MiniCPMO4_5")},
    "MiniCPM5": minicpm5,
    "Gemma3": gemma3,
    "Gemma3VL": gemma3,
    "Gemma4": gemma4,
    "Gemma4VL": gemma4,
}


def can_render(name: str) -> bool:
    return name in RENDERERS


def render(name: str, messages: Sequence[Message], generation_prompt: bool = True) -> str:
    """The prompt axllm builds for `tokenizer_type` `name`; KeyError for a format not reproduced here."""
    return RENDERERS[name](messages, generation_prompt)


def writes_bos(name: str) -> bool:
    """Whether the format starts with the model's BOS itself, so tokenizer.txt must not prepend another."""
    return can_render(name) and render(name, [{"role": "user", "content": "x"}]).startswith(
        (HY_BOS, "<bos>", "<s>")
    )


# A conversation that makes every template write all its markers: a system turn, an answered turn,
# a question (with and without the generation prompt).
MARKER_PROBE = [
    {"role": "system", "content": "s"},
    {"role": "user", "content": "u"},
    {"role": "assistant", "content": "a"},
    {"role": "user", "content": "u"},
]
MARKER = re.compile(r"<[^<>\s]+>")


def markers(name: str) -> list[str]:
    """The special strings axllm's template for `name` writes literally (`<|im_start|>`, `<bos>`, ...):
    each must reach the model as one token."""
    if not can_render(name):
        return []
    text = render(name, MARKER_PROBE) + render(name, MARKER_PROBE, False)
    return list(dict.fromkeys(MARKER.findall(text)))
