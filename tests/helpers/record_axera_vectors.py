"""Record what Axera's own tokenizer code does, as test fixtures. A developer's tool, not the suite's.

Usage: python tests/helpers/record_axera_vectors.py --axera-tok PATH --gptq-python PY
(from the repository root, with this project importable; `axera_tok` is tokenizer.axera, the library
axllm links, compiled behind a small command line: it is not part of this project and users do not
have it). Writes tests/fixtures/axera_tok/:

- texts.json, chats.json: the texts and conversations (13 groups of texts; HY-MT prompts and
  multi-turn chats), from this repository's data, llama.cpp's tokenizer test texts and edge cases;
- synthetic/*.txt: small hand-made tokenizer.txt files that exercise each type's corners;
- vectors/*.json: for every synthetic file and every form of every real vocabulary (real_vocab.py),
  the ids axera_tok gives each text and each conversation, with the file's sha256;
- prompts.json: the text every template renders for every conversation (axllm's templates).

tests/test_axllm_tokenizer.py compares the Python encoder with these files; it never runs axera_tok.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import real_vocab

from axera_pipeline.common import chat_templates
from axera_pipeline.common.axllm_tokenizer import B2U
from axera_pipeline.common.messages import question_messages
from axera_pipeline.toolchain.package import tokenizer_txt

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "axera_tok"
NAMES = sorted(chat_templates.RENDERERS)


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def llama_cpp_texts() -> list[str]:
    """llama.cpp's tokenizer test texts (the sdist's .inp files), deduplicated."""
    found: list[str] = []
    for name in real_vocab.VOCABS:
        inputs = (real_vocab.models_dir() / f"ggml-vocab-{name}.gguf.inp").read_text(encoding="utf-8")
        for text in inputs.split("\n__ggml_vocab_test__\n"):
            text = text.removesuffix("\n__ggml_vocab_test__\n").removesuffix("\n__ggml_vocab_test__")
            if text not in found and len(text) < 400:
                found.append(text)
    return found


def texts() -> dict[str, list[str]]:
    data = ROOT / "data"
    translation = rows(data / "eval" / "heldout_translation.jsonl")
    calibration = rows(data / "calibration" / "hy_mt_calibration.jsonl")
    sentences = rows(data / "eval" / "heldout_sentences.jsonl")
    by_lang: dict[str, list[str]] = {}
    for row in calibration:
        by_lang.setdefault(row["tgt"], []).append(row["target"])
    prompts = [question_messages(row)[0]["content"] for row in translation]
    return {
        "hy-mt prompts": prompts[:20],
        "chinese": [r["text"] for r in sentences if r["lang"] == "zh"] + by_lang["zh"][:12],
        "english": [r["source"] for r in translation[:10]],
        "latin with accents": by_lang["fr"][:6] + by_lang["de"][:6] + by_lang["es"][:4] + by_lang["pt"][:4],
        "japanese and korean": by_lang["ja"][:6] + by_lang["ko"][:4],
        "cyrillic": by_lang["ru"][:6],
        "code": [
            "def f(x):\n    return x ** 2\n",
            "for (int i = 0; i < n; ++i) { sum += a[i]; }",
            "__init__.py",
            "x_y = snake_case_name",
            "SELECT * FROM t WHERE id='42';",
        ],
        "urls and numbers": [
            "https://example.com/a/b?c=1&d=two#frag",
            "mail@example.org",
            "2024-12-03 10:45:07",
            "3.14159 and 1,234,567.89",
            "1234567890",
            "v1.2.3-rc4",
        ],
        "runs of spaces": ["a  b", "a   b  c", "  lead", "trail  ", "x\n\ny", "\t\ttab", "a \n b", " ", ""],
        "contractions": ["don't it's we're I've I'm we'll he'd", "'s 't 're", "O'Neil's"],
        "emoji and symbols": ["emoji 🦙🚀 ok", "✅ done ❌", "½ ¼ ° § ©", "→ ← ↑ ↓", "中文，English；混合。"],
        "markers in text": [
            "<｜hy_User｜>inside text",
            "<|im_start|>user\nhi<|im_end|>",
            "<s>x</s>",
            "<bos><start_of_turn>user",
            "<|a|><|ab|>",
        ],
        "llama.cpp test texts": llama_cpp_texts(),
    }


def chats() -> list[dict]:
    translation = rows(ROOT / "data" / "eval" / "heldout_translation.jsonl")
    found = [{"messages": question_messages(row), "add_generation_prompt": True} for row in translation]
    found += [
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}]},
        {
            "messages": [
                {"role": "user", "content": "2+2?"},
                {"role": "assistant", "content": "<think>\nsimple\n</think>\n\n4"},
                {"role": "user", "content": "and 3+3? /no_think"},
            ]
        },
        {
            "messages": [
                {"role": "system", "content": "You translate."},
                {"role": "user", "content": "Hello"},
                {"role": "assistant", "content": "你好"},
                {"role": "user", "content": "Thanks"},
            ]
        },
        {"messages": [{"role": "user", "content": "no generation prompt"}], "add_generation_prompt": False},
        {"messages": [{"role": "user", "content": "  spaced  \n"}], "add_generation_prompt": True},
    ]
    return [{"add_generation_prompt": True, **c} for c in found]


# Hand-made tokenizer.txt files: each type's corners (duplicates, ties, byte fallback, decode quirks).
def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def header(kind: int, special: list[int], stop: list[int], prefix: list[int]) -> list[str]:
    ids = " ".join(str(i) for i in [*special, *stop, *prefix])
    return [f"430 {kind}", f"{len(special)} {len(stop)} {len(prefix)}", ids]


def synthetic_type0() -> str:
    pieces = [
        ("<unk>", 0.0, 2), ("<s>", 0.0, 3), ("</s>", 0.0, 3), ("<0x41>", 0.0, 6), ("<0xE4>", 0.0, 6),
        ("<0xB8>", 0.0, 6), ("<0xAD>", 0.0, 6), (" ", -0.5, 1), ("a", -1.0, 1), ("b", -1.0, 1),
        ("ab", -2.0, 1), (" ab", -3.0, 1), ("ba", -2.0, 1), ("aba", -4.0, 1), ("<user>", 0.0, 4),
        ("x▁y", 0.0, 3), ("ab", -1.5, 1), ("é", -1.0, 1), ("e", -1.0, 1), ("c", 0.0, 5),
        ("▁q", 0.0, 3), ("ee", -1.25, 1), ("eé", -1.25, 1),
    ]  # fmt: skip
    lines = [f"{b64(p)} {s!r} {t}" for p, s, t in pieces]
    return "\n".join([*header(0, [1, 2, 14, 15, 20], [2], [1]), str(len(lines)), *lines]) + "\n"


def synthetic_type1() -> str:
    tokens = [b"a", b"b", b"ab", b"abc", b"", b"a", b"<eot>", b" ", "中".encode(), b"bc"]
    lines = [b64(t) for t in tokens]
    lines[9] = b64(b"bc").rstrip("=") + "=junk"  # the reader stops at '='
    return "\n".join([*header(1, [6], [6], []), str(len(lines)), *lines]) + "\n"


def synthetic_type2() -> str:
    vocab = [f"[unused{i}]" for i in range(120)]
    words = {
        0: "[PAD]", 100: "[UNK]", 101: "[CLS]", 102: "[SEP]", 1: "hello", 2: "world", 3: "##s", 4: "play",
        5: "##ing", 6: "un", 7: "##able", 8: ",", 9: "!", 10: "中", 11: "国", 12: "x", 13: "##y", 14: "é",
    }  # fmt: skip
    for i, w in words.items():
        vocab[i] = w
    lines = [b64(t) for t in vocab]
    return "\n".join([*header(2, [101, 102], [102], [101]), str(len(lines)), *lines]) + "\n"


def level(text: str) -> str:
    return "".join(B2U[b] for b in text.encode())


def synthetic_type3() -> str:
    base = list(B2U)  # every byte, so that every text has tokens
    merged = ["ab", " a", " ab", "in", "it", "'s", "  ", "ca", "caf"]
    tokens = [*base, *(level(m) for m in merged)]
    merges = [("a", "b"), (level(" "), "a"), (level(" a"), "b"), ("i", "n"), ("i", "t"), ("'", "s")]
    merges += [(level(" "), level(" ")), ("c", "a"), ("ca", "f")]
    specials = ["<|a|>", "<|ab|>", "<x>", "<x>y", "<｜u｜>"]
    lines = [*tokens, *specials, level("<｜v｜>")]
    first = len(tokens)
    lines[first + 1] = "b64:" + b64(lines[first + 1])  # a b64: line, as Axera's newer converter writes
    merge_lines = [f"{a} {b}" for a, b in merges]
    merge_lines[0] = f"b64:{b64('a')} b64:{b64('b')}"
    special_ids = [first + 2, first + 3, first, first + 1, first + 4, first + 5]  # `<x>` before `<x>y`
    body = [f"{len(lines)} {len(merge_lines)}", *lines, *merge_lines]
    return "\n".join([*header(3, special_ids, [first], []), *body]) + "\n"


def synthetic_type3_spaces() -> str:
    words = [f"▁w{i}" for i in range(1100)]
    tokens = ["<s>", "</s>", "▁", "w", "▁w", *[str(d) for d in range(10)], "<0x41>", "<0x0A>", *words, "▁x"]
    merges = [
        "▁ w",
        *(f"▁w {d}" for d in range(10)),
        *(f"▁w{a} {b}" for a in range(1, 10) for b in range(10)),
    ]
    merges = [m for m in merges if m.replace(" ", "") in tokens]
    body = [f"{len(tokens)} {len(merges)}", *tokens, *merges]
    return "\n".join([*header(3, [0, 1], [1], [0]), *body]) + "\n"


SYNTHETIC = {
    "type0": synthetic_type0,
    "type1": synthetic_type1,
    "type2": synthetic_type2,
    "type3": synthetic_type3,
    "type3-spaces": synthetic_type3_spaces,
}
SYNTHETIC_TEXTS = {
    "type0": ["ab", "ba", "aba", "abab", " ab", "A", "中", "c", "é", "eé", "ee", "<user>ab", "x y",
              "x▁y", "d"],
    "type1": ["abcab", "aab", "xa", "中a", "<eot>ab", "bc", "a b"],
    "type2": ["Hello, world!", "playing", "unable", "xyz", "中国", "é", "hellos", "[CLS] x", "a\tb"],
    "type3": ["a  b", "it's", "  x", "__x", "a1b", "café", "中文，好", "<x>y<|ab|>", "<｜u｜><｜v｜>",
              "ab ab"],
    "type3-spaces": ["w1 w2", " x", "A", "\n", "中", "w12 w3"],
}  # fmt: skip


def axera(tool: str, *args: str, lines: list[str]) -> list[str]:
    done = subprocess.run(
        [tool, *args],
        input="".join(line + "\n" for line in lines),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"axera_tok {' '.join(args)} failed: {done.stderr[-1000:]}")
    return done.stdout.split("\n")[: len(lines)]


def vectors(tool: str, path: Path, text_list: list[str], chat_list: list[dict], names: list[str]) -> dict:
    ids = axera(tool, "encode", str(path), lines=[json.dumps(t, ensure_ascii=False) for t in text_list])
    found = {
        "tokenizer_txt_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "texts": ids,
        "chats": {},
    }
    for name in names:
        out = axera(
            tool, "chat", str(path), name, lines=[json.dumps(c, ensure_ascii=False) for c in chat_list]
        )
        found["chats"][name] = [" ".join(map(str, json.loads(line)["ids"])) for line in out]
    return found


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--axera-tok", required=True, help="the axera_tok binary")
    parser.add_argument("--gptq-python", required=True, help="the GPTQ environment's python")
    args = parser.parse_args()
    tool = args.axera_tok
    groups, chat_list = texts(), chats()
    all_texts = [t for group in groups.values() for t in group]
    write_json(FIXTURES / "texts.json", groups)
    write_json(FIXTURES / "chats.json", chat_list)
    for name, make in SYNTHETIC.items():
        path = FIXTURES / "synthetic" / f"{name}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(make(), encoding="utf-8")
        inputs = {"inputs": SYNTHETIC_TEXTS[name], "conversations": chat_list[-5:]}
        found = vectors(tool, path, inputs["inputs"], inputs["conversations"], ["SmolLM2"])
        write_json(FIXTURES / "vectors" / f"synthetic-{name}.json", {**inputs, **found})
    probe = FIXTURES / "synthetic" / "type3.txt"
    prompts = {}
    for name in NAMES:
        for flag in (True, False):
            asked = [{**c, "add_generation_prompt": flag} for c in chat_list]
            out = axera(
                tool, "chat", str(probe), name, lines=[json.dumps(c, ensure_ascii=False) for c in asked]
            )
            prompts[f"{name} {'with' if flag else 'without'} generation prompt"] = [
                json.loads(line)["prompt"] for line in out
            ]
    write_json(FIXTURES / "prompts.json", prompts)
    sources = {**real_vocab.folders(args.gptq_python)}
    sources |= {
        f"hy-mt-{n}": f
        for n, f in real_vocab.hy_mt_folders(args.gptq_python).items()
        if n in ("qwen2", "deepseek-llm", "llama-spm")
    }
    scratch = real_vocab.cache() / "recorded"
    scratch.mkdir(parents=True, exist_ok=True)
    for source, folder in sources.items():
        templates = ["HunYuan"] if source.startswith("hy-mt") else ["SmolLM2", "HunYuan"]
        for txt in tokenizer_txt.forms(folder):
            path = scratch / f"{source}.{txt.form}.txt"
            path.write_text(txt.text(), encoding="utf-8")
            found = vectors(tool, path, all_texts, chat_list, templates)
            write_json(
                FIXTURES / "vectors" / f"{source}.{txt.form}.json",
                {"source": source, "form": txt.form, **found},
            )
            print(f"recorded {source} {txt.form}", file=sys.stderr)


if __name__ == "__main__":
    main()
