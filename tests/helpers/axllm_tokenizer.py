"""tokenizer.txt read back as axllm's reader reads it (docs/package.md), written for the tests.

Independent of the package's converter: line 1 `430 <type>`, line 2 the three counts, line 3 the ids
(missing ones become 0), then the body by type; lines split on \\n only, a truncated body reads as
empty tokens. Also the two encoders the board uses: ranked BPE (type 3) and greedy longest match
over token bytes (types 1 and 2).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class BoardTokenizer:
    kind: int
    special: list[int]
    stop: list[int]
    prefix: list[int]
    tokens: list[str] = field(default_factory=list)  # type 3: raw strings; types 0-2: decoded text
    token_bytes: list[bytes] = field(default_factory=list)  # types 0-2
    merges: dict[tuple[str, str], int] = field(default_factory=dict)  # type 3: pair -> rank
    scores: list[float] = field(default_factory=list)  # type 0
    piece_types: list[int] = field(default_factory=list)  # type 0


def _ints(line: str) -> list[int]:
    return [int(x) for x in line.split()]


def read(path: Path) -> BoardTokenizer:
    lines = path.read_bytes().decode("utf-8").split("\n")
    magic, kind = _ints(lines[0])
    if magic != 430 or kind not in (0, 1, 2, 3):
        raise ValueError(f"tokenizer.init failed: header {lines[0]!r}")
    n_special, n_stop, n_prefix = _ints(lines[1])
    ids = _ints(lines[2]) + [0] * (n_special + n_stop + n_prefix)
    tok = BoardTokenizer(
        kind,
        ids[:n_special],
        ids[n_special : n_special + n_stop],
        ids[n_special + n_stop : n_special + n_stop + n_prefix],
    )
    body = lines[3:]

    def line(i: int) -> str:
        return body[i] if i < len(body) else ""

    if kind == 3:
        vocab_len, merge_len = _ints(body[0])
        tok.tokens = [line(1 + i) for i in range(vocab_len)]
        for rank in range(merge_len):
            left, _, right = line(1 + vocab_len + rank).partition(" ")
            tok.merges[(left, right)] = rank
    elif kind in (1, 2):
        count = _ints(body[0])[0]
        tok.token_bytes = [base64.b64decode(line(1 + i)) for i in range(count)]
    else:
        count = _ints(body[0])[0]
        for i in range(count):
            piece, score, piece_type = (line(1 + i).split(" ") + ["", "0", "1"])[:3]
            tok.token_bytes.append(base64.b64decode(piece))
            tok.scores.append(float(score))
            tok.piece_types.append(int(piece_type))
    return tok


def ranked_bpe(word: str, merges: dict[tuple[str, str], int]) -> list[str]:
    """Merge the adjacent pair of lowest rank until none is left (Hugging Face's BPE)."""
    parts = list(word)
    while len(parts) > 1:
        ranked = [
            (merges.get((a, b), None), i) for i, (a, b) in enumerate(zip(parts, parts[1:], strict=False))
        ]
        ranked = [(r, i) for r, i in ranked if r is not None]
        if not ranked:
            break
        _, i = min(ranked)
        parts[i : i + 2] = [parts[i] + parts[i + 1]]
    return parts


def greedy_longest_match(data: bytes, vocab: list[bytes]) -> list[int]:
    """The board's type 1 encoder: at each position the longest token that matches."""
    index = {token: i for i, token in enumerate(vocab) if token}
    longest = max(len(t) for t in index)
    out, pos = [], 0
    while pos < len(data):
        for size in range(min(longest, len(data) - pos), 0, -1):
            if data[pos : pos + size] in index:
                out.append(index[data[pos : pos + size]])
                pos += size
                break
        else:
            return out  # the board stops with an error here
    return out


def sentencepiece_bpe(text: str, tok: BoardTokenizer) -> list[int]:
    """The board's type 0 encoder: merge the adjacent pair whose joined NORMAL piece scores highest
    (ties: leftmost) until none is left; unknown pieces fall back to <0xXX> byte pieces."""
    normal = {
        t.decode("utf-8", "replace"): i for i, t in enumerate(tok.token_bytes) if tok.piece_types[i] == 1
    }
    reserved = {
        t.decode("utf-8", "replace"): i for i, t in enumerate(tok.token_bytes) if tok.piece_types[i] != 1
    }
    unk = next((i for i, kind in enumerate(tok.piece_types) if kind == 2), 0)
    symbols = list(text)
    while len(symbols) > 1:
        best = None
        for i in range(len(symbols) - 1):
            piece = symbols[i] + symbols[i + 1]
            if piece in normal:
                score = tok.scores[normal[piece]]
                if best is None or score > best[0]:
                    best = (score, i)
        if best is None:
            break
        i = best[1]
        symbols[i : i + 2] = [symbols[i] + symbols[i + 1]]
    ids: list[int] = []
    for piece in symbols:
        found = reserved.get(piece, normal.get(piece, unk))
        if found == unk:
            ids += [reserved.get(f"<0x{b:02X}>", unk) for b in piece.encode()]
        else:
            ids.append(found)
    return ids
