"""Does the board give the model the token ids verify gave it? (GPTQ environment)

For each held-out row: verify's ids (the model's own chat template through transformers, encoded as
`model_prompts.encode_row` encodes it) against the board's (axllm's template for NAME, rendered by
common/chat_templates.py and encoded by common/axllm_tokenizer.py with each candidate tokenizer.txt,
as tokenizer.axera would). Per candidate: rows identical, the first difference, the markers that do
not reach the model as one token. A folder with only its configs is compared at the level of the
rendered text. Prints one JSON object.
"""

from __future__ import annotations

import json
from collections import Counter
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

from axera_pipeline.common import axllm_prompts, axllm_tokenizer, chat_format, chat_templates
from axera_pipeline.common.checkpoint import has_tokenizer
from axera_pipeline.common.cli import Parser, UserError, run
from axera_pipeline.common.messages import question_messages
from axera_pipeline.common.paths import DATA
from axera_pipeline.gptq.datasets_io import load_rows

PROG = "template-check"
DEFAULT_ROWS = DATA / "eval" / "heldout_translation.jsonl"


def candidate(text: str) -> tuple[str, Path]:
    form, sep, path = text.partition("=")
    if not sep or not form or not path:
        raise ValueError(text)
    return form, Path(path)


candidate.__name__ = "FORM=PATH"


def parse_args(argv: list[str] | None = None):
    p = Parser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("folder", type=Path, help="a model folder, or a package's Hugging Face subfolder")
    p.add_argument("--name", required=True, help="axllm's tokenizer_type")
    p.add_argument(
        "--tokenizer-txt",
        type=candidate,
        action="append",
        default=[],
        metavar="FORM=PATH",
        help="a candidate tokenizer.txt, labelled (repeatable)",
    )
    p.add_argument("--eval-set", default=str(DEFAULT_ROWS), help="translation rows (%(default)s)")
    p.add_argument("--limit", type=int, default=0, help="first N rows (0 = all)")
    return p.parse_args(argv)


def first_difference(ours: list, theirs: list) -> int:
    return next(
        (i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b), min(len(ours), len(theirs))
    )


def special_strings(folder: Path) -> dict[str, str]:
    """bos/eos/pad/unk as the template sees them (tokenizer_config.json, strings or added-token dicts)."""
    try:
        config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    found = {}
    for key in ("bos_token", "eos_token", "pad_token", "unk_token"):
        value = config.get(key)
        value = value.get("content") if isinstance(value, dict) else value
        if isinstance(value, str):
            found[key] = value
    return found


def jinja_environment():
    """Jinja as transformers sets it up for chat templates (trim_blocks, lstrip_blocks, loop controls,
    raise_exception, strftime_now, tojson): importing transformers itself costs two seconds."""
    from datetime import datetime

    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str):
        raise ValueError(message)

    def tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(
            value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
        )

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals.update(raise_exception=raise_exception, strftime_now=lambda fmt: datetime.now().strftime(fmt))
    return env


def hf_text(template: str, messages: list[dict[str, str]], specials: dict[str, str]) -> str:
    """The model's template rendered as transformers renders it (no tokenizer needed)."""
    if not template:
        return (
            "\n\n".join(m["content"] for m in messages) + "\n\n"
        )  # verify's prompt for template-less models
    try:
        compiled = jinja_environment().from_string(template)
        return compiled.render(messages=messages, add_generation_prompt=True, **specials)
    except Exception:  # noqa: BLE001 - a template needing transformers' own extensions: use its renderer
        from transformers.utils.chat_template_utils import render_jinja_template

    rendered = render_jinja_template(
        [messages], chat_template=template, add_generation_prompt=True, **specials
    )
    while isinstance(rendered, (list, tuple)):
        rendered = rendered[0]
    return str(rendered)


def kept(verify: list, board: list) -> int:
    """How many of verify's tokens the board's sequence keeps, in order (the longest common blocks)."""
    return sum(
        block.size for block in SequenceMatcher(None, verify, board, autojunk=False).get_matching_blocks()
    )


def missed(verify: list, board: list) -> Counter:
    """verify's tokens the board's sequences do not keep, counted once per row they are missed in."""
    found: Counter = Counter()
    for theirs, ours in zip(verify, board, strict=True):
        kept_at: set[int] = set()
        for block in SequenceMatcher(None, theirs, ours, autojunk=False).get_matching_blocks():
            kept_at.update(range(block.a, block.a + block.size))
        found.update({theirs[i] for i in range(len(theirs)) if i not in kept_at})
    return found


def joins(tokenizer, verify: list, board: list, special: list[int]) -> list[int]:
    """Tokens ending or starting in whitespace that a fifth of the rows or more lose to the board's
    ASCII-only pre-split (`：\\n\\n` cut in two): matched whole as special tokens, they reach the model as
    verify's ids. A fifth: the prompt templates' own tokens, never one sentence's."""
    found = []
    for token, rows in missed(verify, board).most_common():
        text = tokenizer.decode([token])
        if rows * 5 >= len(verify) and token not in special and len(text) > 1 and text.strip() != text:
            found.append(token)
    return found


def compare(name: str, verify: list, board: list, level: str, show_verify, show_board) -> dict[str, Any]:
    agree, first, tokens, total = 0, None, 0, 0
    for number, (theirs, ours) in enumerate(zip(verify, board, strict=True)):
        total += len(theirs)
        tokens += kept(theirs, ours)
        if theirs == ours:
            agree += 1
            continue
        if first is None:
            at = first_difference(ours, theirs)
            verify_at, board_at = show_verify(theirs, at), show_board(ours, at)
            first = {
                "row": number,
                "position": at,
                "verify": verify_at,
                "board": board_at,
                "where": f"first at row {number}, position {at}: verify {verify_at}, the board {board_at}",
            }
    share = round(tokens / total, 4) if total else 1.0
    return {"level": level, "rows": len(verify), "agree": agree, "first": first, "token_share": share}


def load_board(path: Path) -> axllm_tokenizer.Tokenizer:
    try:
        return axllm_tokenizer.read(path)
    except axllm_tokenizer.LoadError as exc:
        raise UserError(f"{path}: axllm cannot load it ({exc})") from None


def shown(text: bytes | str, ids: list[int]) -> str:
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return f"{text!r} (ids {ids})"


def by_ids(folder: Path, name: str, candidates: list[tuple[str, Path]], messages: list) -> dict[str, Any]:
    from transformers import AutoTokenizer

    from axera_pipeline.gptq.model_prompts import encode_row

    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except Exception as exc:  # noqa: BLE001 - tokenizers raise many types; the user needs one line
        raise UserError(f"the tokenizer in {folder} does not load: {str(exc).splitlines()[0]}") from None
    verify = [encode_row(tokenizer, {"messages": m}, 1_000_000, generation_prompt=True) for m in messages]
    own = {m: tokenizer(m, add_special_tokens=False)["input_ids"] for m in chat_templates.markers(name)}
    forms = []
    for form, path in candidates:
        board = load_board(path)
        ids = [axllm_prompts.encode_chat(board, name, m) for m in messages]

        def show_verify(row: list[int], at: int) -> str:
            return shown(tokenizer.decode(row[at : at + 3]), row[at : at + 3]) if at < len(row) else "(end)"

        def show_board(row: list[int], at: int, board=board) -> str:
            return shown(board.decode_ids(row[at : at + 3]), row[at : at + 3]) if at < len(row) else "(end)"

        found = compare(name, verify, ids, "ids", show_verify, show_board)
        markers = axllm_prompts.marker_ids(board, name)
        found |= {
            "form": form,
            "path": str(path),
            "prefix": board.prefix,
            "lost": {m: b for m, b in markers.items() if len(own[m]) == 1 and b != own[m]},
            "unknown_to_model": [m for m in markers if len(own[m]) != 1],
            "problems": axllm_prompts.problems(board, name),
            "joins": joins(tokenizer, verify, ids, board.special) if verify != ids else [],
        }
        forms.append(found)
    return {"checked": True, "name": name, "level": "ids", "rows": len(messages), "forms": forms}


def by_text(folder: Path, name: str, messages: list) -> dict[str, Any]:
    template, specials = chat_format.model_template(folder), special_strings(folder)
    verify = [hf_text(template, m, specials) for m in messages]
    board = [chat_templates.render(name, m) for m in messages]

    def show(text: str, at: int) -> str:
        return repr(text[at : at + 40]) if at < len(text) else "(end)"

    return {"checked": True, "name": name, **compare(name, verify, board, "text", show, show)}


def check(folder: Path, name: str, candidates: list[tuple[str, Path]], rows: list[dict]) -> dict[str, Any]:
    if not chat_templates.can_render(name):
        return {"checked": False, "name": name, "why": f"axllm's {name} format is not reproduced here"}
    messages = [question_messages(row) for row in rows]
    if has_tokenizer(folder):
        if not candidates:
            raise UserError("name the tokenizer.txt to check with --tokenizer-txt FORM=PATH")
        return by_ids(folder, name, candidates, messages)
    return by_text(folder, name, messages)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not (args.folder / "config.json").is_file() and not (args.folder / "tokenizer_config.json").is_file():
        raise UserError(f"{args.folder} holds neither config.json nor tokenizer_config.json")
    rows = load_rows(args.eval_set, what="eval set")
    rows = rows[: args.limit] if args.limit else rows
    print(json.dumps(check(args.folder, args.name, args.tokenizer_txt, rows), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    run(main, PROG)
