"""Real tokenizers as Hugging Face folders, from the vocabulary-only GGUF files in llama-cpp-python's sdist.

Runs in the GPTQ environment (it checks each folder with `tokenizers`). Usage:
  python gguf_vocab.py MODELS_DIR OUT_DIR NAME [NAME ...]
MODELS_DIR holds `ggml-vocab-NAME.gguf` with its `.inp`/`.out` (llama.cpp's test texts and the ids
the real tokenizer gives them); OUT_DIR/NAME/ gets tokenizer.json, tokenizer_config.json, and for a
SentencePiece vocabulary tokenizer.model. Prints one JSON object: per name, how many of the `.inp`
texts the folder encodes to the `.out` ids (a right folder matches them all).

transformers' own GGUF loader gives every `llama` GGUF GPT-2's pre-tokenizer, which is wrong for
Llama-3 and DeepSeek: tokenizer.json is written here from the GGUF's tokens, types and merges with each
family's own pre-tokenizer (the regexes of the models' tokenizer.json, as llama.cpp's llama-vocab.cpp
quotes them).
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

# GGUF value types (ggml's gguf.h).
SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
STRING, ARRAY = 8, 9
# GGUF token types (llama.cpp's llama_token_type).
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

QWEN2 = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
    r"|\s+(?!\S)|\s+"
)
QWEN35 = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
LLAMA3 = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# DeepSeek-LLM's letters, as code point ranges (written as text they would be at the mercy of Unicode
# normalisation: U+1FD3 becomes U+0390 and a range turns empty).
DEEPSEEK_LETTERS = [
    (0x41, 0x5A),
    (0x61, 0x7A),
    (0xB5, 0xB5),
    (0xC0, 0xD6),
    (0xD8, 0xF6),
    (0xF8, 0x1BA),
    (0x1BC, 0x1BF),
    (0x1C4, 0x293),
    (0x295, 0x2AF),
    (0x370, 0x373),
    (0x376, 0x376),
    (0x377, 0x377),
    (0x37B, 0x37D),
    (0x37F, 0x37F),
    (0x386, 0x386),
    (0x388, 0x38A),
    (0x38C, 0x38C),
    (0x38E, 0x3A1),
    (0x3A3, 0x3F5),
    (0x3F7, 0x481),
    (0x48A, 0x52F),
    (0x531, 0x556),
    (0x10A0, 0x10C5),
    (0x13A0, 0x13F5),
    (0x13F8, 0x13FD),
    (0x1C90, 0x1CBA),
    (0x1CBD, 0x1CBF),
    (0x1D00, 0x1D2B),
    (0x1D6B, 0x1D77),
    (0x1D79, 0x1D9A),
    (0x1E00, 0x1F15),
    (0x1F18, 0x1F1D),
    (0x1F20, 0x1F45),
    (0x1F48, 0x1F4D),
    (0x1F50, 0x1F57),
    (0x1F59, 0x1F59),
    (0x1F5B, 0x1F5B),
    (0x1F5D, 0x1F5D),
    (0x1F5F, 0x1F7D),
    (0x1F80, 0x1FB4),
    (0x1FB6, 0x1FBC),
    (0x1FBE, 0x1FBE),
    (0x1FC2, 0x1FC4),
    (0x1FC6, 0x1FCC),
    (0x1FD0, 0x1FD3),
    (0x1FD6, 0x1FDB),
    (0x1FE0, 0x1FEC),
    (0x1FF2, 0x1FF4),
    (0x1FF6, 0x1FFC),
    (0x2102, 0x2102),
    (0x2107, 0x2107),
    (0x210A, 0x2113),
    (0x2115, 0x2115),
    (0x2119, 0x211D),
    (0x2124, 0x2124),
    (0x2126, 0x2126),
    (0x2128, 0x2128),
    (0x212A, 0x212D),
    (0x212F, 0x2134),
    (0x2139, 0x2139),
    (0x213C, 0x213F),
    (0x2145, 0x2149),
    (0x214E, 0x214E),
    (0x2183, 0x2183),
    (0x2184, 0x2184),
    (0x2C00, 0x2C7B),
    (0x2C7E, 0x2CE4),
    (0x2CEB, 0x2CEE),
    (0x2CF2, 0x2CF2),
    (0x2CF3, 0x2CF3),
    (0xA640, 0xA66D),
    (0xA680, 0xA69B),
    (0xA722, 0xA76F),
    (0xA771, 0xA787),
    (0xA78B, 0xA78E),
    (0xAB70, 0xABBF),
    (0xFB00, 0xFB06),
    (0xFB13, 0xFB17),
    (0xFF21, 0xFF3A),
    (0xFF41, 0xFF5A),
    (0x10400, 0x1044F),
    (0x104B0, 0x104D3),
    (0x104D8, 0x104FB),
    (0x10C80, 0x10CB2),
    (0x10CC0, 0x10CF2),
    (0x118A0, 0x118DF),
    (0x1E900, 0x1E943),
]


def char_class(ranges: list[tuple[int, int]]) -> str:
    return "".join(chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in ranges)


DEEPSEEK_LLM = [
    "[\r\n]",
    "\\s?[" + char_class(DEEPSEEK_LETTERS) + "]+",
    "\\s?[!-/:-~\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002]+",
    "\\s+$",
    "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+",
    "\\p{N}+",
]
# Each family's pre-tokenizer regexes (Split, isolated, in order), its normalizer, whether the BPE
# model uses a whole word found in the vocabulary without merging (Llama-3's ignore_merges).
BYTE_LEVEL = {
    "qwen2": {"splits": [QWEN2], "nfc": True},
    "qwen35": {"splits": [QWEN35]},  # no NFC: its test texts keep decomposed accents apart
    "llama-bpe": {"splits": [LLAMA3], "ignore_merges": True},
    "deepseek-llm": {"splits": DEEPSEEK_LLM},
}
SENTENCEPIECE = ("llama-spm", "phi-3")


def read_gguf(path: Path) -> dict:
    """The metadata of a GGUF file (v2/v3, little-endian): every key and its value."""
    data = path.read_bytes()
    at = 0

    def take(fmt: str):
        nonlocal at
        values = struct.unpack_from("<" + fmt, data, at)
        at += struct.calcsize("<" + fmt)
        return values[0]

    def text() -> str:
        nonlocal at
        size = take("Q")
        at += size
        return data[at - size : at].decode("utf-8", "replace")

    def value(kind: int):
        if kind == STRING:
            return text()
        if kind == ARRAY:
            inner, count = take("I"), take("Q")
            if inner == STRING:
                return [text() for _ in range(count)]
            fmt = SCALARS[inner]
            items = list(struct.unpack_from(f"<{count}{fmt}", data, at))
            nonlocal_step(struct.calcsize(f"<{count}{fmt}"))
            return items
        return take(SCALARS[kind])

    def nonlocal_step(size: int) -> None:
        nonlocal at
        at += size

    if data[:4] != b"GGUF":
        raise SystemExit(f"{path} is not a GGUF file")
    at = 4
    take("I")  # version
    take("Q")  # tensors
    count = take("Q")
    meta = {}
    for _ in range(count):
        key = text()
        meta[key] = value(take("I"))
    return meta


def added(token_id: int, content: str, special: bool) -> dict:
    return {
        "id": token_id,
        "content": content,
        "single_word": False,
        "lstrip": False,
        "rstrip": False,
        "normalized": False,
        "special": special,
    }


def bos_processor(bos: str, bos_id: int) -> dict:
    return {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [
            {"SpecialToken": {"id": bos, "type_id": 0}},
            {"Sequence": {"id": "A", "type_id": 0}},
            {"SpecialToken": {"id": bos, "type_id": 1}},
            {"Sequence": {"id": "B", "type_id": 1}},
        ],
        "special_tokens": {bos: {"id": bos, "ids": [bos_id], "tokens": [bos]}},
    }


def byte_level_json(name: str, meta: dict) -> dict:
    family = BYTE_LEVEL[name]
    tokens, types = meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.token_type"]
    vocab = {t: i for i, (t, kind) in enumerate(zip(tokens, types, strict=True)) if kind in (NORMAL, UNUSED)}
    extra = [
        added(i, t, kind == CONTROL)
        for i, (t, kind) in enumerate(zip(tokens, types, strict=True))
        if kind in (CONTROL, USER_DEFINED, UNKNOWN)
    ]
    splits = [
        {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False}
        for regex in family["splits"]
    ]
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    bos_id = meta.get("tokenizer.ggml.bos_token_id")
    adds_bos = meta.get("tokenizer.ggml.add_bos_token", False) and bos_id is not None
    post = bos_processor(tokens[bos_id], bos_id) if adds_bos else None
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": extra,
        "normalizer": {"type": "NFC"} if family.get("nfc") else None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [*splits, byte_level]},
        "post_processor": post or {**byte_level, "trim_offsets": False},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": "",
            "end_of_word_suffix": "",
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": bool(family.get("ignore_merges")),
            "vocab": vocab,
            "merges": list(meta["tokenizer.ggml.merges"]),
        },
    }


def sentencepiece_merges(pieces: list[str], scores: list[float], types: list[int]) -> list[str]:
    """Merges from a SentencePiece BPE vocabulary, as transformers' SentencePieceExtractor derives
    them: every split of a piece into two pieces, ordered by the joined piece's score."""
    vocab = {p: i for i, (p, kind) in enumerate(zip(pieces, types, strict=True)) if kind == NORMAL}
    found = []
    for piece, index in vocab.items():
        local = [
            (piece[:k], piece[k:]) for k in range(1, len(piece)) if piece[:k] in vocab and piece[k:] in vocab
        ]
        local.sort(key=lambda pair: (vocab[pair[0]], vocab[pair[1]]))
        found += [(scores[index], pair) for pair in local]
    found.sort(key=lambda item: -item[0])
    return [f"{a} {b}" for _, (a, b) in found]


def sentencepiece_json(meta: dict) -> dict:
    pieces, scores = meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.scores"]
    types = meta["tokenizer.ggml.token_type"]
    vocab = {p: i for i, p in enumerate(pieces)}
    extra = [
        added(i, p, kind in (CONTROL, UNKNOWN))
        for i, (p, kind) in enumerate(zip(pieces, types, strict=True))
        if kind in (CONTROL, UNKNOWN, USER_DEFINED)
    ]
    bos_id = meta["tokenizer.ggml.bos_token_id"]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": extra,
        "normalizer": {
            "type": "Sequence",
            "normalizers": [
                {"type": "Prepend", "prepend": "▁"},
                {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
            ],
        },
        "pre_tokenizer": None,
        "post_processor": bos_processor(pieces[bos_id], bos_id),
        "decoder": {
            "type": "Sequence",
            "decoders": [
                {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
                {"type": "ByteFallback"},
                {"type": "Fuse"},
                {"type": "Strip", "content": " ", "start": 1, "stop": 0},
            ],
        },
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": pieces[types.index(UNKNOWN)],
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": True,
            "byte_fallback": True,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": sentencepiece_merges(pieces, scores, types),
        },
    }


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, wire: int, payload: bytes) -> bytes:
    return varint(number << 3 | wire) + payload


def sentencepiece_model(meta: dict) -> bytes:
    """tokenizer.model (sentencepiece_model.proto's ModelProto): the pieces, a BPE trainer spec with
    byte fallback, and the normalizer spec Llama's uses (a dummy prefix, no whitespace removal)."""
    out = bytearray()
    for piece, score, kind in zip(
        meta["tokenizer.ggml.tokens"],
        meta["tokenizer.ggml.scores"],
        meta["tokenizer.ggml.token_type"],
        strict=True,
    ):
        raw = piece.encode()
        body = (
            field(1, 2, varint(len(raw)) + raw)
            + field(2, 5, struct.pack("<f", score))
            + field(3, 0, varint(kind))
        )
        out += field(1, 2, varint(len(body)) + body)
    trainer = field(3, 0, varint(2)) + field(35, 0, varint(1))  # model_type BPE, byte_fallback
    out += field(2, 2, varint(len(trainer)) + trainer)
    name = b"identity"
    normalizer = field(1, 2, varint(len(name)) + name) + field(3, 0, varint(1)) + field(4, 0, varint(0))
    normalizer += field(5, 0, varint(1))
    out += field(3, 2, varint(len(normalizer)) + normalizer)
    return bytes(out)


def tokenizer_config(meta: dict, tokens: list[str]) -> dict:
    bos = meta.get("tokenizer.ggml.bos_token_id")
    eos = meta.get("tokenizer.ggml.eos_token_id")
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": tokens[bos] if bos is not None else None,
        "eos_token": tokens[eos] if eos is not None else None,
        "add_bos_token": bool(meta.get("tokenizer.ggml.add_bos_token", False)),
        "clean_up_tokenization_spaces": False,
        "model_max_length": 1_000_000,
    }


def test_cases(models: Path, name: str) -> list[tuple[str, list[int]]]:
    separator = "\n__ggml_vocab_test__\n"
    inputs = (models / f"ggml-vocab-{name}.gguf.inp").read_text(encoding="utf-8").split(separator)
    outputs = (models / f"ggml-vocab-{name}.gguf.out").read_text(encoding="utf-8").split("\n")
    inputs[-1] = inputs[-1].removesuffix("\n__ggml_vocab_test__\n").removesuffix("\n__ggml_vocab_test__")
    return [(text, [int(i) for i in ids.split()]) for text, ids in zip(inputs, outputs, strict=False)]


def write(models: Path, out: Path, name: str) -> dict:
    from tokenizers import Tokenizer

    meta = read_gguf(models / f"ggml-vocab-{name}.gguf")
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    if name in SENTENCEPIECE:
        tokenizer = sentencepiece_json(meta)
        (folder / "tokenizer.model").write_bytes(sentencepiece_model(meta))
    else:
        tokenizer = byte_level_json(name, meta)
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False), encoding="utf-8")
    config = tokenizer_config(meta, meta["tokenizer.ggml.tokens"])
    (folder / "tokenizer_config.json").write_text(json.dumps(config, ensure_ascii=False, indent=2))
    loaded = Tokenizer.from_file(str(folder / "tokenizer.json"))
    cases = test_cases(models, name)
    wrong = [text for text, ids in cases if loaded.encode(text, add_special_tokens=False).ids != ids]
    return {"cases": len(cases), "identical": len(cases) - len(wrong), "first_wrong": wrong[:1]}


def main() -> None:
    models, out, *names = sys.argv[1:]
    print(json.dumps({name: write(Path(models), Path(out), name) for name in names}, ensure_ascii=False))


if __name__ == "__main__":
    main()
