"""A package's tokenizer.txt as the board reads and encodes it: the token ids axllm feeds the model.

Written from tokenizer.axera's `src/tokenizer/tokenizer_optimized.cpp` (skylake5200/tokenizer @
063dbe8, the newest copy of the library axllm links; ax-llm vendors it as third_party/tokenizer.axera)
and checked against ids recorded from that code compiled (tests/fixtures/axera_tok/). What it does,
in the library's own terms:

- `Tokenizer::encode(text)`: the file's prefix ids, always; then the special ids found in the text by
  their *decoded* string (at each byte, the first match in the file's list order, not the longest);
  the text between them through the type's encoder.
- type 0 (SentencePiece): merge the adjacent pair whose joined NORMAL piece scores highest (float32
  scores, ties to the left) over UTF-8 characters of the raw text; unknown pieces fall back to
  `<0xXX>` byte pieces. No dummy prefix: the board never adds a leading `▁`.
- type 1 (tiktoken): greedy longest match over the tokens' bytes (not ranked BPE).
- type 2 (BERT): ASCII words lower-cased, punctuation alone, 3-byte UTF-8 characters alone, 2-byte
  ones dropped; WordPiece with `##` continuations, 100 for a word it cannot split.
- type 3 (Hugging Face BPE): byte-level over a simplified ASCII-only GPT-2 pre-split, or, when more
  than 1024 vocabulary lines start with `▁` (and eight times those with `Ġ`), `▁`-replacement BPE over
  the whole text with byte fallback. Its decoder drops every character outside GPT-2's byte table, so
  a special token written as its literal text (`<｜hy_User｜>`) is never found in the text.

Where the board only prints `Error: ...` and goes on with partial ids, `Tokenizer.errors` keeps the
line. Standard library only: check-package, the preflight, the build, the board step and the
stand-in axllm all encode with it.
"""

from __future__ import annotations

import heapq
import re
import struct
from collections.abc import Sequence
from pathlib import Path

MAGIC = 430
SENTENCEPIECE, TIKTOKEN, BERT, HUGGINGFACE = 0, 1, 2, 3
SPACE_MARK = "\u2581".encode()  # ▁
GPT2_SPACE = "\u0120".encode()  # Ġ
# SentencePiece piece types (sentencepiece_model.proto, as tokenizer.axera reads them).
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
BASE64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
BERT_UNKNOWN = 100  # word_piece's hard-coded [UNK]


class LoadError(ValueError):
    """axllm would log `tokenizer.init failed` (or load garbage): the message says which line."""


def base64_decode(text: bytes) -> bytes:
    """tokenizer.axera's decoder: reads up to the first `=` or non-base64 byte, drops a partial tail."""
    values = []
    for byte in text:
        if byte == ord("=") or byte not in BASE64:
            break
        values.append(BASE64.index(byte))
    out = bytearray()
    for start in range(0, len(values) - len(values) % 4, 4):
        a, b, c, d = values[start : start + 4]
        out += bytes(((a << 2) | (b >> 4), ((b & 15) << 4 | c >> 2) & 255, ((c & 3) << 6 | d) & 255))
    rest = values[len(values) - len(values) % 4 :]
    if rest:
        a, b, c, d = (rest + [0, 0, 0])[:4]
        tail = bytes(((a << 2) | (b >> 4), ((b & 15) << 4 | c >> 2) & 255, ((c & 3) << 6 | d) & 255))
        out += tail[: len(rest) - 1]
    return bytes(out)


def float32(value: float) -> float:
    return struct.unpack("f", struct.pack("f", value))[0]


def leading_int(line: bytes, what: str) -> int:
    """std::stoi: leading blanks, an optional sign, digits; anything else throws (axllm aborts)."""
    found = re.match(rb"\s*([+-]?\d+)", line)
    if not found:
        raise LoadError(f"{what} is not a number: {line[:40]!r}")
    return int(found.group(1))


def stream_ints(line: bytes, count: int) -> list[int]:
    """`istringstream >> int`, `count` times: a missing or malformed value and all after it are 0."""
    values: list[int] = []
    for word in line.split():
        if len(values) == count:
            break
        found = re.match(rb"[+-]?\d+", word)
        if not found:
            break
        values.append(int(found.group(0)))
        if found.end() != len(word):
            break
    return values + [0] * (count - len(values))


# GPT-2's byte <-> character table, as HuggingfaceTokenizer::load_vocab builds it.
def _byte_table() -> list[str]:
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    table, extra = [""] * 256, 0
    for byte in range(256):
        if byte in printable:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + extra)
            extra += 1
    return table


B2U = _byte_table()
U2B = {ch: byte for byte, ch in enumerate(B2U)}


def utf8_to_wstring(data: bytes) -> str:
    """tokenizer.axera's utf8_to_wstring: valid sequences become their code point, every byte of a
    malformed one becomes the code point of its own value."""
    out, i, n = [], 0, len(data)
    while i < n:
        c0 = data[i]
        if c0 < 0x80:
            out.append(chr(c0))
            i += 1
            continue
        point, advance = 0, 0
        if (c0 & 0xE0) == 0xC0 and i + 1 < n and (data[i + 1] & 0xC0) == 0x80:
            cp = (c0 & 0x1F) << 6 | (data[i + 1] & 0x3F)
            point, advance = (cp, 2) if cp >= 0x80 else (0, 0)
        elif (c0 & 0xF0) == 0xE0 and i + 2 < n and all((b & 0xC0) == 0x80 for b in data[i + 1 : i + 3]):
            cp = (c0 & 0x0F) << 12 | (data[i + 1] & 0x3F) << 6 | (data[i + 2] & 0x3F)
            point, advance = (cp, 3) if cp >= 0x800 and not 0xD800 <= cp <= 0xDFFF else (0, 0)
        elif (c0 & 0xF8) == 0xF0 and i + 3 < n and all((b & 0xC0) == 0x80 for b in data[i + 1 : i + 4]):
            cp = (
                (c0 & 0x07) << 18
                | (data[i + 1] & 0x3F) << 12
                | (data[i + 2] & 0x3F) << 6
                | (data[i + 3] & 0x3F)
            )
            point, advance = (cp, 4) if 0x10000 <= cp <= 0x10FFFF else (0, 0)
        if advance:
            out.append(chr(point))
            i += advance
        else:
            out.append(chr(c0))
            i += 1
    return "".join(out)


def wstring_to_utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def one_char_len(byte: int) -> int:
    """SentencePiece's UTF-8 length by the lead byte (a continuation byte counts as one)."""
    return (1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4)[byte >> 4]


def byte_piece(byte: int) -> bytes:
    return b"<0x%02X>" % byte


HEX_DIGITS = b"0123456789abcdefABCDEF"


def hex_byte(token: bytes) -> int | None:
    """parse_hex_byte_token: `<0xHH>` with two hex digits, else None."""
    if (
        len(token) == 6
        and token[:3] == b"<0x"
        and token[5:] == b">"
        and all(c in HEX_DIGITS for c in token[3:5])
    ):
        return int(token[3:5], 16)
    return None


class Tokenizer:
    """Line 1 `430 <type>`, line 2 the counts, line 3 the special, stop and prefix ids, then the body."""

    kind = -1

    def __init__(self, special: list[int], stop: list[int], prefix: list[int]):
        self.special, self.stop, self.prefix = special, stop, prefix
        self.errors: list[str] = []
        self._special_strings: list[tuple[int, bytes]] | None = None

    def load(self, body: list[bytes]) -> None:
        raise NotImplementedError

    def size(self) -> int:
        raise NotImplementedError

    def decode(self, token: int) -> bytes:
        """The bytes the board prints for one id."""
        raise NotImplementedError

    def encode_part(self, data: bytes, ids: list[int]) -> None:
        raise NotImplementedError

    def decode_ids(self, ids: Sequence[int]) -> bytes:
        return b"".join(self.decode(i) for i in ids)

    def special_strings(self) -> list[tuple[int, bytes]]:
        """Each special id with the text it is found by: its decoded bytes, in the file's order."""
        if self._special_strings is None:
            self._special_strings = [(i, self.decode(i)) for i in self.special]
        return self._special_strings

    def encode(self, text: str | bytes) -> list[int]:
        """Tokenizer::encode: the prefix ids, the special ids found by their decoded text, the rest."""
        data = text.encode("utf-8") if isinstance(text, str) else text
        self.errors = []
        ids = list(self.prefix)
        specials = [(i, s) for i, s in self.special_strings() if s]
        if not self.special:
            self.encode_part(data, ids)
            return ids
        firsts: dict[int, list[tuple[int, bytes]]] = {}
        for token, found in specials:
            firsts.setdefault(found[0], []).append((token, found))
        start, i, n = 0, 0, len(data)
        while i < n:
            for token, found in firsts.get(data[i], ()):
                if data.startswith(found, i):
                    if i > start:
                        self.encode_part(data[start:i], ids)
                    ids.append(token)
                    start = i + len(found)
                    i = start - 1
                    break
            i += 1
        if start < n:
            self.encode_part(data[start:], ids)
        return ids


class SentencePiece(Tokenizer):
    kind = SENTENCEPIECE

    def load(self, body: list[bytes]) -> None:
        count = leading_int(body[0] if body else b"", "the vocabulary count (line 4)")
        if len(body) - 1 < count:
            raise LoadError(f"declares {count} pieces but holds {len(body) - 1} (truncated)")
        self.pieces: list[tuple[bytes, float, int]] = []
        self.normal: dict[bytes, int] = {}
        self.reserved: dict[bytes, int] = {}
        self.unknown = 0
        # `line_str >> token >> score >> type` into variables declared outside the loop: a word the
        # line lacks keeps the previous line's value (a line without its piece reads its score as one).
        word, score, kind = b"", 0.0, 0
        for index, line in enumerate(body[1 : 1 + count]):
            words = line.split()
            word = words[0] if words else word
            if len(words) > 1:
                try:
                    score = float32(float(words[1]))
                except ValueError:
                    score = 0.0  # a failed extraction writes 0, and the type after it is not read
                    words = words[:2]
            if len(words) > 2:
                kind = stream_ints(words[2], 1)[0]
            piece = base64_decode(word)
            self.pieces.append((piece, score, kind))
            if kind == NORMAL:
                self.normal.setdefault(piece, index)
            else:
                self.reserved.setdefault(piece, index)
                if kind == UNKNOWN:
                    self.unknown = index

    def size(self) -> int:
        return len(self.pieces)

    def piece_id(self, piece: bytes) -> int:
        found = self.reserved.get(piece)
        if found is not None:
            return found
        return self.normal.get(piece, self.unknown)

    def decode(self, token: int) -> bytes:
        if not 0 <= token < len(self.pieces):
            return b""
        piece, _, kind = self.pieces[token]
        if kind == BYTE and len(piece) == 6 and piece[:3] == b"<0x" and piece[5:] == b">":
            high, low = (
                int(chr(c), 16) if c in HEX_DIGITS else 0 for c in piece[3:5]
            )  # hex2val: 0 if not hex
            return bytes([high << 4 | low])
        at = piece.find(SPACE_MARK)
        if at >= 0:  # std::string::replace(pos, pos + 3, " "): a later ▁ eats `pos` more bytes
            return piece[:at] + b" " + piece[at + at + 3 :]
        return piece

    def merge(self, data: bytes) -> list[bytes]:
        """bpe_encode: the highest-scoring NORMAL piece two neighbours make, ties to the left."""
        symbols: list[bytes] = []
        i = 0
        while i < len(data):
            size = min(len(data) - i, one_char_len(data[i]))
            symbols.append(data[i : i + size])
            i += size
        if not symbols:
            return []
        nxt = [i + 1 if i + 1 < len(symbols) else -1 for i in range(len(symbols))]
        prev = [i - 1 for i in range(len(symbols))]
        agenda: list[tuple[float, int, int, int]] = []

        def consider(left: int, right: int) -> None:
            if left == -1 or right == -1:
                return
            joined = symbols[left] + symbols[right]
            found = self.normal.get(joined)
            if found is not None:
                heapq.heappush(agenda, (-self.pieces[found][1], left, right, len(joined)))

        for i in range(1, len(symbols)):
            consider(i - 1, i)
        while agenda:
            _, left, right, size = heapq.heappop(agenda)
            if not symbols[left] or not symbols[right] or len(symbols[left]) + len(symbols[right]) != size:
                continue
            symbols[left] += symbols[right]
            symbols[right] = b""
            nxt[left] = nxt[right]
            if nxt[right] >= 0:
                prev[nxt[right]] = left
            consider(prev[left], left)
            consider(left, nxt[left])
        out, index = [], 0
        while index != -1:
            out.append(symbols[index])
            index = nxt[index]
        return out

    def encode_part(self, data: bytes, ids: list[int]) -> None:
        for piece in self.merge(data):
            token = self.piece_id(piece)
            if token == self.unknown:
                ids += [self.piece_id(byte_piece(b)) for b in piece]
            else:
                ids.append(token)


class Tiktoken(Tokenizer):
    kind = TIKTOKEN

    def load(self, body: list[bytes]) -> None:
        count = leading_int(body[0] if body else b"", "the vocabulary count (line 4)")
        if len(body) - 1 < count:
            raise LoadError(f"declares {count} tokens but holds {len(body) - 1} (truncated)")
        self.tokens = [base64_decode(line) for line in body[1 : 1 + count]]
        self.by_bytes: dict[bytes, int] = {}
        for token, data in enumerate(self.tokens):
            self.by_bytes.setdefault(data, token)  # encoder_: the first id of a repeated token
        self.trie: dict[bytes, int] = {data: token for token, data in enumerate(self.tokens) if data}
        self.longest = max((len(t) for t in self.tokens), default=0)

    def size(self) -> int:
        return len(self.tokens)

    def decode(self, token: int) -> bytes:
        return self.tokens[token] if 0 <= token < len(self.tokens) else b""

    def encode_part(self, data: bytes, ids: list[int]) -> None:
        """The trie's longest match at each position (the last id of a repeated token)."""
        i = 0
        while i < len(data):
            for size in range(min(self.longest, len(data) - i), 0, -1):
                token = self.trie.get(data[i : i + size])
                if token is not None:
                    ids.append(token)
                    i += size
                    break
            else:
                self.errors.append(f"Error: No encoding found for the sequence starting at position {i}")
                return


ASCII_PUNCT = set(b"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
ASCII_SPACE = set(b" \t\n\r\f\v")


class Bert(Tiktoken):
    kind = BERT

    def words(self, data: bytes) -> list[bytes]:
        out, i = [], 0
        while i < len(data):
            c = data[i]
            if c & 0x80:
                if c & 0xE0 == 0xE0:
                    out.append(data[i : i + 3])
                    i += 3
                else:
                    i += 1
            elif chr(c).isascii() and chr(c).isalnum():
                j = i
                while j < len(data) and data[j] < 0x80 and chr(data[j]).isalnum():
                    j += 1
                out.append(data[i:j].lower())
                i = j
            elif c in ASCII_PUNCT:
                out.append(data[i : i + 1])
                i += 1
            elif c in ASCII_SPACE:
                i += 1
            else:
                out.append(data[i : i + 1])
                i += 1
        return out

    def word_piece(self, word: bytes) -> list[int]:
        if word in self.by_bytes:
            return [self.by_bytes[word]]
        ids: list[int] = []
        rest = word
        while rest:
            for size in range(len(rest), 0, -1):
                candidate = (b"##" if ids else b"") + rest[:size]
                if candidate in self.by_bytes:
                    ids.append(self.by_bytes[candidate])
                    rest = rest[size:]
                    break
            else:
                ids.append(BERT_UNKNOWN)
                break
        return ids

    def encode_part(self, data: bytes, ids: list[int]) -> None:
        for word in self.words(data):
            ids += self.word_piece(word)


def ascii_alpha(c: int) -> bool:
    return 65 <= c <= 90 or 97 <= c <= 122


def ascii_digit(c: int) -> bool:
    return 48 <= c <= 57


def ascii_word(c: int) -> bool:
    return ascii_alpha(c) or ascii_digit(c) or c == 95


CONTRACTIONS = (b"'s", b"'t", b"'re", b"'ve", b"'m", b"'ll", b"'d")


def pre_split(data: bytes) -> list[bytes]:
    """HuggingfaceTokenizer's regex-free GPT-2 pre-split over raw bytes (ASCII classes only)."""
    out, i, n = [], 0, len(data)

    def run(j: int, keep) -> int:
        while j < n and keep(data[j]):
            j += 1
        return j

    def other(c: int) -> bool:
        return c not in ASCII_SPACE and not ascii_word(c)

    while i < n:
        c = data[i]
        if c == 39 and i + 1 < n:  # '
            found = next((lit for lit in CONTRACTIONS if data.startswith(lit, i)), None)
            if found:
                out.append(found)
                i += len(found)
                continue
        if c == 32 and i + 1 < n:
            following = data[i + 1]
            kind = (
                ascii_alpha
                if ascii_alpha(following)
                else ascii_digit
                if ascii_digit(following)
                else other
                if other(following)
                else None
            )
            if kind is not None:
                j = run(i + 2, kind)
                out.append(data[i:j])
                i = j
                continue
        if c in ASCII_SPACE:
            j = run(i + 1, lambda b: b in ASCII_SPACE)
        elif ascii_alpha(c):
            j = run(i + 1, ascii_alpha)
        elif ascii_digit(c):
            j = run(i + 1, ascii_digit)
        else:
            j = run(i + 1, other)
        out.append(data[i:j])
        i = j
    return out


class Huggingface(Tokenizer):
    kind = HUGGINGFACE

    def load(self, body: list[bytes]) -> None:
        vocab_len, merge_len = stream_ints(body[0] if body else b"", 2)
        if len(body) - 1 < vocab_len + merge_len:
            raise LoadError(
                f"declares {vocab_len} tokens and {merge_len} merges but holds {len(body) - 1} lines "
                "(truncated)"
            )
        self.tokens = [
            base64_decode(line[4:]) if line.startswith(b"b64:") else line for line in body[1 : 1 + vocab_len]
        ]
        self.by_bytes: dict[bytes, int] = {}
        for token, data in enumerate(self.tokens):
            self.by_bytes.setdefault(data, token)
        self.ranks: dict[tuple[str, str], int] = {}
        for rank, line in enumerate(body[1 + vocab_len : 1 + vocab_len + merge_len]):
            pair = self.merge_pair(line)
            if pair is None:
                raise LoadError(f"merge line {2 + vocab_len + rank + 3} has no `left right`: {line[:40]!r}")
            self.ranks.setdefault((utf8_to_wstring(pair[0]), utf8_to_wstring(pair[1])), rank)
        space = sum(1 for t in self.tokens if t.startswith(SPACE_MARK))
        gpt2 = sum(1 for t in self.tokens if t.startswith(GPT2_SPACE))
        self.space_mode = space > 1024 and space > gpt2 * 8

    @staticmethod
    def merge_pair(line: bytes) -> tuple[bytes, bytes] | None:
        at = line.find(b" ")
        if at < 0:
            return None
        left, right = line[:at], line[at + 1 :]
        if left.startswith(b"b64:"):
            if not right.startswith(b"b64:"):
                return None
            return base64_decode(left[4:]), base64_decode(right[4:])
        return left, right

    def size(self) -> int:
        return len(self.tokens)

    def decode(self, token: int) -> bytes:
        if not 0 <= token < len(self.tokens):
            return b""
        data = self.tokens[token]
        if self.space_mode:
            byte = hex_byte(data)
            return bytes([byte]) if byte is not None else data.replace(SPACE_MARK, b" ")
        return bytes(U2B[ch] for ch in utf8_to_wstring(data) if ch in U2B)

    def bpe(self, word: str) -> list[str]:
        """HuggingfaceTokenizer::bpe: merge the lowest-ranked adjacent pair, the leftmost of equals."""
        if len(word) < 2:
            return [word]
        parts = list(word)
        ranks = self.ranks
        while len(parts) > 1:
            best, at = None, -1
            for i in range(len(parts) - 1):
                rank = ranks.get((parts[i], parts[i + 1]))
                if rank is not None and (best is None or rank < best):
                    best, at = rank, i
            if best is None:
                break
            parts[at : at + 2] = [parts[at] + parts[at + 1]]
        return parts

    def encode_part(self, data: bytes, ids: list[int]) -> None:
        if self.space_mode:
            self.encode_spaces(data, ids)
            return
        for chunk in pre_split(data):
            for piece in self.bpe("".join(B2U[b] for b in chunk)):
                token = self.by_bytes.get(wstring_to_utf8(piece))
                if token is None:
                    self.errors.append(f"Error: token not in vocab: {wstring_to_utf8(piece)!r}")
                    break
                ids.append(token)

    def encode_spaces(self, data: bytes, ids: list[int]) -> None:
        """▁-replacement BPE over the whole text, unknown pieces as `<0xXX>` bytes."""
        for piece in self.bpe(utf8_to_wstring(data.replace(b" ", SPACE_MARK))):
            raw = wstring_to_utf8(piece)
            token = self.by_bytes.get(raw)
            if token is not None:
                ids.append(token)
                continue
            for byte in raw:
                fallback = self.by_bytes.get(byte_piece(byte))
                if fallback is None:
                    self.errors.append(f"Error: byte fallback token not in vocab: {byte_piece(byte)!r}")
                    return
                ids.append(fallback)


TYPES: dict[int, type[Tokenizer]] = {
    SENTENCEPIECE: SentencePiece,
    TIKTOKEN: Tiktoken,
    BERT: Bert,
    HUGGINGFACE: Huggingface,
}


def parse(data: bytes) -> Tokenizer:
    """A tokenizer.txt's bytes as createTokenizer reads them (lines split on \\n, as getline does)."""
    lines = data.split(b"\n")
    if len(lines[0].split()) < 2:
        raise LoadError(f"line 1 {lines[0][:40]!r} must be `{MAGIC} <type 0-3>`")
    head = stream_ints(lines[0], 2)
    if head[0] != MAGIC:
        raise LoadError(f"line 1 {lines[0][:40]!r} does not start with the magic number {MAGIC}")
    if head[1] not in TYPES:
        raise LoadError(f"line 1 names type {head[1]}; axllm knows 0, 1, 2 and 3")
    if len(lines) < 3 or len(lines[1].split()) < 3:
        raise LoadError("line 2 must be `<n_special> <n_stop> <n_prefix>`")
    counts = stream_ints(lines[1], 3)
    if min(counts) < 0:
        raise LoadError(f"line 2 holds a negative count: {lines[1][:40]!r}")
    ids = stream_ints(lines[2], sum(counts))
    special, stop = ids[: counts[0]], ids[counts[0] : counts[0] + counts[1]]
    prefix = ids[counts[0] + counts[1] :]
    tokenizer = TYPES[head[1]](special, stop, prefix)
    body = lines[3:]
    if body and body[-1] == b"":
        body = body[:-1]
    tokenizer.load(body)
    return tokenizer


def read(path: Path) -> Tokenizer:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise LoadError(f"cannot read {path}: {exc.strerror}") from None
    return parse(data)
