"""Compare a package's tokenizer.txt with the Hugging Face tokenizer it came from (GPTQ environment).

Usage: python tokenizer_roundtrip.py MODEL_DIR TOKENIZER_TXT [--type1-copy OUT]
Prints one JSON object: whether every id decodes on the board to the Hugging Face token's bytes; for
the held-out sentences (every calibration language), how often the board's ids (common/axllm_tokenizer,
tokenizer.axera's encoder) are Hugging Face's, and whether they decode back to the sentence. With
--type1-copy, the same for a type 1 copy of the vocabulary.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from axera_pipeline.common import axllm_tokenizer
from axera_pipeline.common.paths import DATA


def sentences() -> list[dict]:
    path = DATA / "eval" / "heldout_sentences.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def hf_token_bytes(tok, i: int) -> bytes:
    """A token's bytes: a byte-level token mapped back through GPT-2's table, an added one as text."""
    token = tok.convert_ids_to_tokens(i)
    if i in tok.all_special_ids or i in tok.added_tokens_decoder or token is None:
        return (token or "").encode()
    if all(ch in axllm_tokenizer.U2B for ch in token):
        return bytes(axllm_tokenizer.U2B[ch] for ch in token)
    return token.replace("\u2581", " ").encode()


def compare(tok, board: axllm_tokenizer.Tokenizer) -> dict:
    per_lang: dict[str, list[bool]] = {}
    mismatches, lossless = [], True
    for row in sentences():
        ids = board.encode(row["text"])[len(board.prefix) :]
        want = tok.encode(row["text"], add_special_tokens=False)
        per_lang.setdefault(row["lang"], []).append(ids == want)
        lossless &= board.decode_ids(ids) == row["text"].encode()
        if ids != want:
            mismatches.append({"text": row["text"], "board": ids, "hf": want})
    size = min(board.size(), len(tok))
    return {
        "vocab_match": all(board.decode(i) == hf_token_bytes(tok, i) for i in range(size)),
        "vocab_size": [board.size(), len(tok)],
        "agreement": {lang: sum(ok) / len(ok) for lang, ok in per_lang.items()},
        "lossless": lossless,
        "mismatches": mismatches[:3],
    }


def main() -> None:
    from transformers import AutoTokenizer

    model, txt = Path(sys.argv[1]), Path(sys.argv[2])
    tok = AutoTokenizer.from_pretrained(model)
    board = axllm_tokenizer.read(txt)
    report = {"type": board.kind, "stop": board.stop, "special": board.special, "prefix": board.prefix}
    report |= compare(tok, board)
    if "--type1-copy" in sys.argv:
        from axera_pipeline.toolchain.package import tokenizer_txt

        tokenizer = json.loads((model / "tokenizer.json").read_text(encoding="utf-8"))
        copy = tokenizer_txt.from_vocab_only(model, tokenizer, dict(tokenizer["model"]["vocab"]))
        out = Path(sys.argv[sys.argv.index("--type1-copy") + 1])
        out.write_text(copy.text(), encoding="utf-8")
        report["type1_copy"] = compare(tok, axllm_tokenizer.read(out))
    print(json.dumps(report, ensure_ascii=False))


if __name__ == "__main__":
    main()
