"""Compare a package's tokenizer.txt with the Hugging Face tokenizer it came from (GPTQ environment).

Usage: python tokenizer_roundtrip.py MODEL_DIR TOKENIZER_TXT [--type1-copy OUT]
Prints one JSON object: vocabulary agreement id for id; for type 3 the ranked-BPE encoding of the
held-out sentences (every calibration language) against the Hugging Face ids; for type 1 (or the
type 1 copy written with --type1-copy) the agreement of greedy longest match.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import axllm_tokenizer  # noqa: E402


def sentences() -> list[dict]:
    path = ROOT / "data" / "eval" / "heldout_sentences.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def hf_token_bytes(tok, i: int) -> bytes:
    from axera_pipeline.toolchain.package.tokenizer_txt import bytes_to_unicode

    decode = {ch: b for b, ch in bytes_to_unicode().items()}
    token = tok.convert_ids_to_tokens(i)
    if i in tok.all_special_ids or not all(ch in decode for ch in token):
        return token.encode()
    return bytes(decode[ch] for ch in token)


def type3(tok, board) -> dict:
    vocab = {t: i for i, t in enumerate(board.tokens)}
    backend = tok.backend_tokenizer
    per_lang: dict[str, list[bool]] = {}
    mismatches = []
    for row in sentences():
        text = backend.normalizer.normalize_str(row["text"]) if backend.normalizer else row["text"]
        ids = []
        for word, _ in backend.pre_tokenizer.pre_tokenize_str(text):
            ids += [vocab[piece] for piece in axllm_tokenizer.ranked_bpe(word, board.merges)]
        want = tok.encode(row["text"], add_special_tokens=False)
        per_lang.setdefault(row["lang"], []).append(ids == want)
        if ids != want:
            mismatches.append({"text": row["text"], "board": ids, "hf": want})
    return {
        "vocab_match": all(board.tokens[i] == tok.convert_ids_to_tokens(i) for i in range(len(tok))),
        "vocab_size": [len(board.tokens), len(tok)],
        "bpe_agreement": {lang: sum(ok) / len(ok) for lang, ok in per_lang.items()},
        "mismatches": mismatches[:3],
    }


def type0(tok, board) -> dict:
    per_lang: dict[str, list[bool]] = {}
    for row in sentences():
        ids = axllm_tokenizer.sentencepiece_bpe(row["text"], board)
        per_lang.setdefault(row["lang"], []).append(ids == tok.encode(row["text"], add_special_tokens=False))
    vocab = [tok.convert_ids_to_tokens(i).replace("\u2581", " ").encode() for i in range(len(tok))]
    return {
        "vocab_match": all(
            board.token_bytes[i] == vocab[i] for i in range(min(len(vocab), len(board.token_bytes)))
        ),
        "vocab_size": [len(board.token_bytes), len(tok)],
        "bpe_agreement": {lang: sum(ok) / len(ok) for lang, ok in per_lang.items()},
    }


def type1(tok, board) -> dict:
    agree, tokens_agree, tokens_total = 0, 0, 0
    for row in sentences():
        ids = axllm_tokenizer.greedy_longest_match(row["text"].encode(), board.token_bytes)
        want = tok.encode(row["text"], add_special_tokens=False)
        agree += ids == want
        tokens_agree += sum(a == b for a, b in zip(ids, want, strict=False))
        tokens_total += max(len(ids), len(want))
    rows = len(sentences())
    return {
        "vocab_match": all(board.token_bytes[i] == hf_token_bytes(tok, i) for i in range(len(tok))),
        "greedy_sentence_agreement": agree / rows,
        "greedy_token_agreement": tokens_agree / tokens_total,
    }


def main() -> None:
    from transformers import AutoTokenizer

    model, txt = Path(sys.argv[1]), Path(sys.argv[2])
    tok = AutoTokenizer.from_pretrained(model)
    board = axllm_tokenizer.read(txt)
    report = {"type": board.kind, "stop": board.stop, "special": board.special, "prefix": board.prefix}
    report |= {3: type3, 0: type0}.get(board.kind, type1)(tok, board)
    if "--type1-copy" in sys.argv:
        from axera_pipeline.toolchain.package import tokenizer_txt

        tokenizer = json.loads((model / "tokenizer.json").read_text(encoding="utf-8"))
        copy = tokenizer_txt.from_vocab_only(model, tokenizer, dict(tokenizer["model"]["vocab"]))
        out = Path(sys.argv[sys.argv.index("--type1-copy") + 1])
        out.write_text(copy.text(), encoding="utf-8")
        report["type1_copy"] = type1(tok, axllm_tokenizer.read(out))
    print(json.dumps(report, ensure_ascii=False))


if __name__ == "__main__":
    main()
