"""Write axllm's tokenizer.txt from a Hugging Face tokenizer folder, with no Hugging Face library.

The format (docs/package.md; tokenizer.axera's tests/convert_tokenizer.py and its reader): line 1
`430 <type>`; line 2 `<n_special> <n_stop> <n_prefix>`; line 3 those ids; then the body of the type:
- 3, Hugging Face BPE: `<vocab_len> <merge_len>`, the token strings in id order, the merges;
- 1, tiktoken-style: `<N>`, then each token's bytes in base64, the line index being the id;
- 0, SentencePiece: `<N>`, then `<base64 piece> <score> <piece type>` per id (`▁` written as a space).
Lines end in `\\n` only (the reader uses getline), so no token may hold a newline.

A tokenizer usually allows more than one form (`forms`): a byte-level BPE as type 3 with every line
as it is (Axera's converter), as type 3 with the added tokens' lines in byte-level form (so that the
board, which finds special tokens by their decoded text, finds `<｜hy_User｜>`), or as type 1. Which
one the board encodes like the model is measured, not assumed (package/id_check.py).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from axera_pipeline.common.basics import load_json
from axera_pipeline.common.cli import UserError
from axera_pipeline.toolchain.package import sentencepiece_model

MAGIC = 430
SENTENCEPIECE, TIKTOKEN, BERT, HUGGINGFACE = 0, 1, 2, 3
TYPE_NAMES = {
    SENTENCEPIECE: "sentencepiece",
    TIKTOKEN: "tiktoken",
    BERT: "bert",
    HUGGINGFACE: "huggingface BPE",
}


# The forms a tokenizer.txt can take, by key: what each is, in a user's words.
FORMS = {
    "3-bytelevel": "huggingface BPE (type 3), added tokens in byte-level form",
    "3": "huggingface BPE (type 3), every line as it is",
    "1": "tiktoken (type 1), each token's bytes",
    "0": "sentencepiece (type 0)",
    "3-spaces": "huggingface BPE (type 3) in its ▁ mode",
}


@dataclass
class TokenizerTxt:
    kind: int
    special: list[int]
    stop: list[int]
    prefix: list[int]
    body: list[str] = field(repr=False)
    entries: int = 0  # tokens in the vocabulary
    form: str = ""  # a key of FORMS
    bos: list[int] = field(default_factory=list)  # what the tokenizer puts before plain text
    joined: list[int] = field(default_factory=list)  # vocabulary tokens listed as special: matched whole

    @property
    def describe(self) -> str:
        base = FORMS.get(self.form, TYPE_NAMES[self.kind])
        if self.joined:
            base += f", {len(self.joined)} whitespace-ending tokens matched whole"
        return base

    def with_joins(self, ids: list[int]) -> TokenizerTxt:
        """The same file with vocabulary tokens the board's pre-split would cut listed as special
        tokens: tokenizer.axera matches those in the text before splitting, so they stay one id."""
        return replace(self, special=[*self.special, *ids], joined=list(ids))

    def text(self) -> str:
        head = [
            f"{MAGIC} {self.kind}",
            f"{len(self.special)} {len(self.stop)} {len(self.prefix)}",
            " ".join(str(i) for i in [*self.special, *self.stop, *self.prefix]),
        ]
        return "\n".join([*head, *self.body]) + "\n"


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte <-> printable character table, used by byte-level BPE vocabularies."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def _token_text(value) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return value.get("content")
    return None


def _ids_of(tokenizer: dict) -> dict[str, int]:
    """Every token's id: the model vocabulary plus added tokens."""
    ids = dict((tokenizer.get("model") or {}).get("vocab") or {})
    for added in tokenizer.get("added_tokens", []):
        ids[added["content"]] = int(added["id"])
    return ids


def special_ids(tokenizer: dict) -> list[int]:
    """Added tokens: the board matches them in text as whole tokens, as Hugging Face does."""
    return sorted({int(a["id"]) for a in tokenizer.get("added_tokens", [])})


def stop_ids(folder: Path, ids: dict[str, int]) -> list[int]:
    """Every EOS the tokenizer and generation_config.json name, in order, without repeats."""
    found: list[int] = []
    config = folder / "tokenizer_config.json"
    if config.is_file():
        eos = _token_text(load_json(config).get("eos_token"))
        if eos is not None and eos in ids:
            found.append(ids[eos])
    generation = folder / "generation_config.json"
    if generation.is_file():
        eos_ids = load_json(generation).get("eos_token_id")
        found += [eos_ids] if isinstance(eos_ids, int) else [i for i in eos_ids or [] if isinstance(i, int)]
    return list(dict.fromkeys(found))


def prefix_ids(tokenizer: dict) -> list[int]:
    """Tokens the tokenizer puts before plain text (its post-processor's template), e.g. a BOS."""
    post = tokenizer.get("post_processor") or {}
    processors = post.get("processors", [post]) if post.get("type") == "Sequence" else [post]
    for proc in processors:
        if proc.get("type") != "TemplateProcessing":
            continue
        prefix: list[int] = []
        for piece in proc.get("single", []):
            if "Sequence" in piece:
                return prefix
            name = piece.get("SpecialToken", {}).get("id")
            prefix += proc.get("special_tokens", {}).get(name, {}).get("ids", [])
    return []


def _check_line_safe(token: str, where: str) -> None:
    if "\n" in token:
        raise UserError(f"{where}: token {token!r} holds a newline, which tokenizer.txt cannot carry")


def _in_id_order(ids: dict[str, int], what: str, *, raw_lines: bool = True) -> list[str]:
    """Tokens by id; raw_lines when they are written as lines as they are (type 3), not in base64."""
    by_id: dict[int, str] = {}
    for token, i in ids.items():
        if raw_lines:
            _check_line_safe(token, what)
        by_id[i] = token
    size = max(by_id) + 1 if by_id else 0
    # Holes would be read back as empty tokens; a unique placeholder can never match text.
    return [by_id.get(i, f"<|unused_{i}|>") for i in range(size)]


def merge_lines(tokenizer: dict) -> list[str]:
    merges: list[str] = []
    for merge in tokenizer["model"].get("merges", []):
        pair = merge.split(" ", 1) if isinstance(merge, str) else list(merge)
        if len(pair) != 2 or " " in pair[0] or " " in pair[1] or "\n" in pair[0] + pair[1]:
            raise UserError(f"tokenizer.json: merge {merge!r} cannot be written as `left right`")
        merges.append(f"{pair[0]} {pair[1]}")
    return merges


def byte_level(text: str) -> str:
    """A string as a byte-level vocabulary spells it: each UTF-8 byte as GPT-2's character for it."""
    table = bytes_to_unicode()
    return "".join(table[b] for b in text.encode("utf-8"))


def from_byte_level_bpe(folder: Path, tokenizer: dict, *, added_byte_level: bool) -> TokenizerTxt:
    """Type 3. The board finds a special token by decoding its line through GPT-2's byte table, which
    drops every character outside it: with added_byte_level the added tokens' lines are spelled in
    that table, so they decode to their own text; without, they are written as they are."""
    ids = _ids_of(tokenizer)
    by_id = {i: token for token, i in ids.items()}
    if added_byte_level:
        by_id |= {int(a["id"]): byte_level(a["content"]) for a in tokenizer.get("added_tokens", [])}
    vocab = _in_id_order({token: i for i, token in by_id.items()}, "tokenizer.json")
    merges = merge_lines(tokenizer)
    body = [f"{len(vocab)} {len(merges)}", *vocab, *merges]
    prefix = prefix_ids(tokenizer)
    form = "3-bytelevel" if added_byte_level else "3"
    return TokenizerTxt(
        HUGGINGFACE, special_ids(tokenizer), stop_ids(folder, ids), prefix, body, len(vocab), form, prefix
    )


def from_spaces_bpe(folder: Path, tokenizer: dict) -> TokenizerTxt:
    """Type 3 for a SentencePiece-style BPE (`▁` for spaces, byte fallback): the board's ▁ mode."""
    ids = _ids_of(tokenizer)
    vocab = _in_id_order(ids, "tokenizer.json")
    merges = merge_lines(tokenizer)
    body = [f"{len(vocab)} {len(merges)}", *vocab, *merges]
    return TokenizerTxt(
        HUGGINGFACE,
        special_ids(tokenizer),
        stop_ids(folder, ids),
        prefix_ids(tokenizer),
        body,
        entries=len(vocab),
        form="3-spaces",
        bos=prefix_ids(tokenizer),
    )


def spaces_mode(tokenizer: dict) -> bool:
    """The board runs type 3 in its ▁ mode when over 1024 tokens start with `▁`, eight times `Ġ`'s."""
    vocab = (tokenizer.get("model") or {}).get("vocab") or {}
    space = sum(1 for t in vocab if t.startswith("\u2581"))
    gpt2 = sum(1 for t in vocab if t.startswith("\u0120"))
    return space > 1024 and space > gpt2 * 8


def from_tiktoken(folder: Path, ranks_file: Path, tokenizer: dict) -> TokenizerTxt:
    by_id: dict[int, bytes] = {}
    for number, line in enumerate(ranks_file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            token, rank = line.split()
            by_id[int(rank)] = base64.b64decode(token, validate=True)
        except ValueError:
            raise UserError(f"{ranks_file}:{number} is not `<base64 token> <rank>`") from None
    ids: dict[str, int] = {}
    for added in tokenizer.get("added_tokens", []):
        by_id[int(added["id"])] = added["content"].encode()
        ids[added["content"]] = int(added["id"])
    size = max(by_id) + 1
    body = [str(size), *(base64.b64encode(by_id.get(i, b"")).decode() for i in range(size))]
    prefix = prefix_ids(tokenizer)
    return TokenizerTxt(
        TIKTOKEN, special_ids(tokenizer), stop_ids(folder, ids), prefix, body, size, "1", prefix
    )


def from_vocab_only(folder: Path, tokenizer: dict, vocab_ids: dict[str, int]) -> TokenizerTxt:
    """A vocabulary without merges: token bytes by id (byte-level characters mapped back to bytes)."""
    decode = {ch: b for b, ch in bytes_to_unicode().items()}
    ids = {**vocab_ids, **{a["content"]: int(a["id"]) for a in tokenizer.get("added_tokens", [])}}
    added = {a["content"] for a in tokenizer.get("added_tokens", [])}
    by_id: dict[int, bytes] = {}
    for token, i in ids.items():
        if token not in added and all(ch in decode for ch in token):
            by_id[i] = bytes(decode[ch] for ch in token)
        else:
            by_id[i] = token.encode()
    size = max(by_id) + 1
    body = [str(size), *(base64.b64encode(by_id.get(i, b"")).decode() for i in range(size))]
    prefix = prefix_ids(tokenizer)
    return TokenizerTxt(
        TIKTOKEN, special_ids(tokenizer), stop_ids(folder, ids), prefix, body, size, "1", prefix
    )


def from_sentencepiece(folder: Path, model_file: Path, tokenizer: dict) -> TokenizerTxt:
    pieces = sentencepiece_model.read_pieces(model_file)
    ids = {p.piece: i for i, p in enumerate(pieces)}
    body_pieces = [(p.piece, p.score, p.kind) for p in pieces]
    for added in sorted(tokenizer.get("added_tokens", []), key=lambda a: int(a["id"])):
        i = int(added["id"])
        ids[added["content"]] = i
        if i >= len(body_pieces):  # tokens added on top of the model (e.g. gemma3's image token)
            # A hole gets a piece of its own: an empty one would make the board read the line's score
            # as its piece and keep the previous line's type.
            body_pieces += [
                (f"<unused_{n}>", 0.0, sentencepiece_model.UNUSED) for n in range(len(body_pieces), i)
            ]
            body_pieces.append((added["content"], 0.0, sentencepiece_model.USER_DEFINED))
    return _sentencepiece_txt(folder, tokenizer, ids, body_pieces)


def _sentencepiece_txt(
    folder: Path, tokenizer: dict, ids: dict[str, int], pieces: list[tuple[str, float, int]]
) -> TokenizerTxt:
    """Type 0's body: `<base64 piece> <score> <piece type>` per id."""
    lines = []
    for piece, score, kind in pieces:
        # The board encodes raw text, so spaces must meet the pieces' ▁ as spaces (as Axera's converter does).
        data = piece.replace("\u2581", " ").encode()
        lines.append(f"{base64.b64encode(data).decode()} {score!r} {kind}")
    return TokenizerTxt(
        SENTENCEPIECE,
        special_ids(tokenizer),
        stop_ids(folder, ids),
        prefix_ids(tokenizer),
        [str(len(lines)), *lines],
        len(lines),
        "0",
        prefix_ids(tokenizer),
    )


def _sentencepiece_style(tokenizer: dict) -> bool:
    """A SentencePiece BPE saved as tokenizer.json: spaces as ▁, byte fallback, no byte-level mapping."""
    model = tokenizer.get("model") or {}
    text = json.dumps(
        {k: tokenizer.get(k) for k in ("normalizer", "pre_tokenizer", "decoder")}, ensure_ascii=False
    )
    return model.get("type") == "BPE" and ("\u2581" in text or bool(model.get("byte_fallback")))


def from_sentencepiece_json(folder: Path, tokenizer: dict) -> TokenizerTxt:
    """Type 0 from a SentencePiece BPE's tokenizer.json (e.g. gemma's, when tokenizer.model is absent).

    The board merges the adjacent pair whose joined piece scores highest; giving each piece minus the
    rank of the merge that makes it reproduces the ranked merges. Multi-character pieces no merge makes
    are user-defined (matched whole, never merged into), as in a SentencePiece model.
    """
    model = tokenizer["model"]
    ids = _ids_of(tokenizer)
    made_by: dict[str, int] = {}
    for rank, merge in enumerate(model.get("merges", [])):
        left, right = merge.split(" ", 1) if isinstance(merge, str) else merge
        made_by.setdefault(left + right, rank)
    added = {a["content"]: a for a in tokenizer.get("added_tokens", [])}
    pieces: list[tuple[str, float, int]] = []
    for token in _in_id_order(ids, "tokenizer.json", raw_lines=False):
        if token in added:
            kind = (
                sentencepiece_model.CONTROL
                if added[token].get("special")
                else sentencepiece_model.USER_DEFINED
            )
            if token == model.get("unk_token"):
                kind = sentencepiece_model.UNKNOWN
            pieces.append((token, 0.0, kind))
        elif len(token) == 6 and token.startswith("<0x") and token.endswith(">"):
            pieces.append((token, 0.0, sentencepiece_model.BYTE))
        elif token in made_by:
            pieces.append((token, -float(made_by[token]), sentencepiece_model.NORMAL))
        elif len(token) == 1:
            pieces.append((token, 0.0, sentencepiece_model.NORMAL))
        else:
            pieces.append((token, 0.0, sentencepiece_model.USER_DEFINED))
    return _sentencepiece_txt(folder, tokenizer, ids, pieces)


def describe(tokenizer: dict) -> str:
    model = tokenizer.get("model") or {}
    pre = (tokenizer.get("pre_tokenizer") or {}).get("type", "none")
    return f"a {model.get('type', 'unknown')} tokenizer.json (pre-tokenizer {pre})"


def _is_byte_level(tokenizer: dict) -> bool:
    def has(node) -> bool:
        if not isinstance(node, dict):
            return False
        return node.get("type") == "ByteLevel" or any(has(n) for n in node.get("pretokenizers", []))

    return has(tokenizer.get("pre_tokenizer")) or (tokenizer.get("decoder") or {}).get("type") == "ByteLevel"


def forms(folder: Path) -> list[TokenizerTxt]:
    """Every tokenizer.txt this folder's tokenizer can be written as, the likeliest to agree first."""
    tokenizer_json = folder / "tokenizer.json"
    tokenizer = load_json(tokenizer_json) if tokenizer_json.is_file() else {}
    model = tokenizer.get("model") or {}
    spaces = (
        [lambda: from_spaces_bpe(folder, tokenizer)]
        if model.get("merges") and _sentencepiece_style(tokenizer) and spaces_mode(tokenizer)
        else []
    )
    if (folder / "tokenizer.model").is_file():
        makers = [lambda: from_sentencepiece(folder, folder / "tokenizer.model", tokenizer), *spaces]
    elif tiktoken := sorted(folder.glob("*.tiktoken")):
        makers = [lambda: from_tiktoken(folder, tiktoken[0], tokenizer)]
    elif model.get("type") == "BPE" and model.get("merges") and _is_byte_level(tokenizer):
        makers = [
            lambda: from_byte_level_bpe(folder, tokenizer, added_byte_level=True),
            lambda: from_byte_level_bpe(folder, tokenizer, added_byte_level=False),
            lambda: from_vocab_only(folder, tokenizer, dict(model["vocab"])),
        ]
    elif model.get("merges") and _sentencepiece_style(tokenizer):
        makers = [lambda: from_sentencepiece_json(folder, tokenizer), *spaces]
    elif model.get("type") in ("WordLevel", "BPE") and model.get("vocab") and not model.get("merges"):
        makers = [lambda: from_vocab_only(folder, tokenizer, dict(model["vocab"]))]
    elif (folder / "vocab.json").is_file() and not (folder / "merges.txt").is_file():
        makers = [lambda: from_vocab_only(folder, tokenizer, load_json(folder / "vocab.json"))]
    elif not tokenizer:
        raise UserError(f"{folder} has no tokenizer.json, tokenizer.model or *.tiktoken to convert")
    else:
        raise UserError(
            f"cannot write tokenizer.txt from {describe(tokenizer)} in {folder}: axllm reads byte-level "
            "BPE (type 3), vocabulary-only/tiktoken (type 1) or SentencePiece (type 0: tokenizer.model, "
            "or a SentencePiece BPE tokenizer.json)"
        )
    made, unwritable = [], []
    for make in makers:
        try:
            made.append(make())
        except UserError as exc:  # a form this vocabulary cannot be written in (a newline in a token)
            unwritable.append(str(exc))
    if not made:
        raise UserError(unwritable[0])
    return made


def convert(folder: Path) -> TokenizerTxt:
    """The first form: what the package gets when the agreement with the model cannot be measured."""
    return forms(folder)[0]
