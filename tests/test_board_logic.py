"""Board package parts without a build: tokenizer.txt per type, axllm configs, HF subfolder, the check."""

from __future__ import annotations

import base64
import json
import re
import struct
from pathlib import Path

import pytest

from axera_pipeline.common import axllm_tokenizer
from axera_pipeline.common import package_layout as layout
from axera_pipeline.common.cli import UserError
from axera_pipeline.toolchain.package import (
    axllm_config,
    check,
    hf_folder,
    sentencepiece_model,
    tokenizer_txt,
)

BYTE_LEVEL = {
    "added_tokens": [
        {"id": 0, "content": "<s>", "special": True},
        {"id": 1, "content": "</s>", "special": True},
        {"id": 7, "content": "<|end|>", "special": True},
    ],
    "pre_tokenizer": {"type": "ByteLevel"},
    "decoder": {"type": "ByteLevel"},
    "post_processor": {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<s>"}}, {"Sequence": {"id": "A"}}],
        "special_tokens": {"<s>": {"id": "<s>", "ids": [0]}},
    },
    "model": {
        "type": "BPE",
        "vocab": {"<s>": 0, "</s>": 1, "a": 2, "b": 3, "Ġ": 4, "ab": 5, "Ġab": 6},
        "merges": [["a", "b"], "Ġ ab"],
    },
}


def folder_with(tmp_path: Path, tokenizer: dict | None = None, **files) -> Path:
    folder = tmp_path / "tok"
    folder.mkdir(parents=True, exist_ok=True)
    if tokenizer is not None:
        (folder / "tokenizer.json").write_text(json.dumps(tokenizer))
    for name, content in files.items():
        target = folder / name.replace("__", ".")
        target.write_bytes(content) if isinstance(content, bytes) else target.write_text(content)
    return folder


def read_back(tmp_path: Path, converted: tokenizer_txt.TokenizerTxt) -> axllm_tokenizer.Tokenizer:
    path = tmp_path / "tokenizer.txt"
    path.write_text(converted.text(), encoding="utf-8")
    return axllm_tokenizer.read(path)


def test_byte_level_bpe_is_type_3_with_merges_in_rank_order(tmp_path):
    folder = folder_with(
        tmp_path,
        BYTE_LEVEL,
        tokenizer_config__json=json.dumps({"eos_token": "</s>"}),
        generation_config__json=json.dumps({"eos_token_id": [1, 7]}),
    )
    board = read_back(tmp_path, tokenizer_txt.convert(folder))
    assert board.kind == 3
    assert board.tokens == [t.encode() for t in ["<s>", "</s>", "a", "b", "Ġ", "ab", "Ġab", "<|end|>"]]
    assert board.ranks == {("a", "b"): 0, ("Ġ", "ab"): 1}
    assert board.special == [0, 1, 7] and board.stop == [1, 7] and board.prefix == [0]
    assert board.encode(" ab<|end|>") == [0, 6, 7]


def test_sentencepiece_model_is_type_0(tmp_path):
    def piece(text: str, score: float, kind: int) -> bytes:
        body = b"\x0a" + bytes([len(text.encode())]) + text.encode() + b"\x15" + struct.pack("<f", score)
        body += b"\x18" + bytes([kind])
        return b"\x0a" + bytes([len(body)]) + body

    proto = piece("<unk>", 0.0, 2) + piece("▁the", -1.5, 1) + piece("<0x41>", 0.0, 6)
    proto += b"\x12\x02\x08\x01"  # a trainer_spec field the reader skips
    folder = folder_with(
        tmp_path,
        {"added_tokens": [{"id": 4, "content": "<img>", "special": True}]},
        tokenizer__model=proto,
        generation_config__json=json.dumps({"eos_token_id": 0}),
    )
    assert [p.piece for p in sentencepiece_model.read_pieces(folder / "tokenizer.model")] == [
        "<unk>",
        "▁the",
        "<0x41>",
    ]
    board = read_back(tmp_path, tokenizer_txt.convert(folder))
    assert board.kind == 0
    assert board.pieces[:3] == [(b"<unk>", 0.0, 2), (b" the", -1.5, 1), (b"<0x41>", 0.0, 6)]
    assert board.pieces[3] == (b"<unused_3>", 0.0, 5) and board.pieces[4] == (b"<img>", 0.0, 4)


def test_tiktoken_and_vocab_only_are_type_1(tmp_path):
    ranks = "\n".join(f"{base64.b64encode(t).decode()} {i}" for i, t in enumerate([b"a", b"b", b" ab"]))
    folder = folder_with(
        tmp_path, {"added_tokens": [{"id": 3, "content": "<|eot|>"}]}, hy__tiktoken=ranks + "\n"
    )
    board = read_back(tmp_path, tokenizer_txt.convert(folder))
    assert board.kind == 1 and board.tokens == [b"a", b"b", b" ab", b"<|eot|>"]
    assert board.encode(b"b ab<|eot|>") == [1, 2, 3]  # greedy longest match, not ranked BPE
    vocab_only = {**BYTE_LEVEL, "model": {"type": "BPE", "vocab": BYTE_LEVEL["model"]["vocab"], "merges": []}}
    board = read_back(tmp_path, tokenizer_txt.convert(folder_with(tmp_path / "v", vocab_only)))
    assert board.kind == 1 and board.tokens[6] == b" ab" and board.prefix == [0]


def test_sentencepiece_style_tokenizer_json_is_type_0_with_ranked_scores(tmp_path):
    """gemma's tokenizer.json without its tokenizer.model: the board's merges follow the ranks."""
    vocab = {
        "<unk>": 0,
        "<bos>": 1,
        "<0x41>": 2,
        "▁": 3,
        "h": 4,
        "e": 5,
        "y": 6,
        "he": 7,
        "hey": 8,
        "▁hey": 9,
    }
    tokenizer = {
        "added_tokens": [
            {"id": 0, "content": "<unk>", "special": True},
            {"id": 1, "content": "<bos>", "special": True},
        ],
        "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
        "model": {
            "type": "BPE",
            "byte_fallback": True,
            "unk_token": "<unk>",
            "vocab": vocab,
            "merges": [["h", "e"], ["he", "y"], ["▁", "hey"]],
        },
    }
    board = read_back(tmp_path, tokenizer_txt.convert(folder_with(tmp_path, tokenizer)))
    assert board.kind == 0 and [kind for _, _, kind in board.pieces[:4]] == [2, 3, 6, 1]
    assert board.pieces[7][1] > board.pieces[8][1] > board.pieces[9][1]
    assert board.encode(" hey") == [9]
    assert board.encode("heyA") == [8, 2]


@pytest.mark.parametrize(
    ("tokenizer", "message"),
    [
        (
            {
                "model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a a"]},
                "pre_tokenizer": {"type": "Metaspace"},
            },
            "a BPE tokenizer.json (pre-tokenizer Metaspace)",
        ),
        ({"model": {"type": "WordPiece", "vocab": {"a": 0}}}, "a WordPiece tokenizer.json"),
        (None, "has no tokenizer.json, tokenizer.model or *.tiktoken"),
    ],
)
def test_tokenizers_axllm_cannot_read_get_one_clear_line(tmp_path, tokenizer, message):
    with pytest.raises(UserError, match=re.escape(message)):
        tokenizer_txt.convert(folder_with(tmp_path, tokenizer))


def test_a_token_with_a_newline_is_written_only_in_byte_level_form(tmp_path):
    odd = json.loads(json.dumps(BYTE_LEVEL))
    odd["added_tokens"].append({"id": 8, "content": "line\nbreak"})
    forms = tokenizer_txt.forms(folder_with(tmp_path, odd))
    assert [f.form for f in forms] == ["3-bytelevel", "1"]  # raw type 3 would need a line with a newline
    board = read_back(tmp_path, forms[0])
    assert board.tokens[8] == "lineĊbreak".encode() and board.encode("line\nbreak") == [0, 8]
    odd["model"]["vocab"]["x\ny"] = 9
    with pytest.raises(UserError, match="holds a newline"):
        tokenizer_txt.from_byte_level_bpe(folder_with(tmp_path / "n", odd), odd, added_byte_level=False)


def test_axllm_model_name_turns_on_its_hy_mt_handling():
    assert "hy-mt" in axllm_config.model_name("tencent/HY-MT1.5-1.8B")


def test_config_and_post_config_are_typed_as_axllm_parses_them():
    config = axllm_config.config(
        name="hy-mt1.5-1.8b",
        tokenizer_type="HunYuan",
        prefix="hunyuan_v1_dense",
        prefill_chunk=128,
        layers=32,
        vocab=120818,
        hidden=2048,
        bos=False,
        hf_config={"pad_token_id": 0},
        runtime={"prefill_token_num": 128},
    )
    for key, kind in check.REQUIRED.items():
        assert check.has_type(config[key], kind), key
    assert config["template_filename_axmodel"] == "hunyuan_v1_dense_p128_l%d_together.axmodel"
    assert config["use_mmap_load_embed"] is True and config["url_tokenizer_model"] == "tokenizer.txt"
    post = axllm_config.post_config({"do_sample": True, "temperature": 1, "top_k": 20.0, "top_p": 0.6})
    for key, kind in check.POST_CONFIG.items():
        assert check.has_type(post[key], kind), key
    assert post["enable_top_k_sampling"] and post["top_k"] == 20 and isinstance(post["temperature"], float)
    greedy = axllm_config.post_config({"do_sample": False, "temperature": 0.7})
    assert not any(v for k, v in greedy.items() if k.startswith("enable_"))


def test_hf_subfolder_carries_both_transformers_spellings():
    config = hf_folder.v4_config(
        {
            "model_type": "hunyuan_v1_dense",
            "dtype": "bfloat16",
            "rope_parameters": {"rope_theta": 10000.0, "rope_type": "dynamic", "alpha": 1000.0},
            "quantization_config": {"bits": 4},
        }
    )
    assert config["rope_theta"] == 10000.0 and config["rope_scaling"] == {
        "type": "dynamic",
        "rope_type": "dynamic",
        "alpha": 1000.0,
    }
    assert config["torch_dtype"] == "bfloat16" and "quantization_config" not in config
    tok = hf_folder.v4_tokenizer_config(
        {"tokenizer_class": "TokenizersBackendFast", "extra_special_tokens": ["<a>"], "is_local": True}
    )
    assert tok == {"tokenizer_class": "PreTrainedTokenizerFast", "additional_special_tokens": ["<a>"]}


CHATML = {
    **BYTE_LEVEL,
    "added_tokens": [
        *BYTE_LEVEL["added_tokens"],
        {"id": 8, "content": "<|im_start|>", "special": True},
        {"id": 9, "content": "<|im_end|>", "special": True},
    ],
}


def minimal_package(folder: Path, **config_changes) -> Path:
    """A package as the rules read it: 2 layers, 10 x 4 bf16 embeddings, a type 3 tokenizer.txt whose
    special tokens hold the ChatML markers of its tokenizer_type."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "model_name": "m",
        "template_filename_axmodel": "m_p128_l%d_together.axmodel",
        "axmodel_num": 2,
        "filename_post_axmodel": "m_post.axmodel",
        "url_tokenizer_model": "tokenizer.txt",
        "tokenizer_type": "Qwen2_5",
        "filename_tokens_embed": "e.bin",
        "tokens_embed_num": 10,
        "tokens_embed_size": 4,
        **config_changes,
    }
    (folder / "config.json").write_text(json.dumps(config))
    for name in ("m_p128_l0_together.axmodel", "m_p128_l1_together.axmodel", "m_post.axmodel"):
        (folder / name).write_text("graph")
    (folder / "e.bin").write_bytes(bytes(10 * 4 * 2))
    src = folder_with(folder.parent, CHATML, generation_config__json='{"eos_token_id": 1}')
    (folder / "tokenizer.txt").write_text(tokenizer_txt.convert(src).text())
    (folder / "post_config.json").write_text(json.dumps(axllm_config.post_config({})))
    return folder


def test_the_check_reads_the_rules_not_our_own_layout(tmp_path):
    folder = minimal_package(tmp_path / "pkg")
    report = check.check(folder, python_demo=False)
    assert report.ok, report.problems
    auto = check.check(folder)
    assert auto.ok and any("Python demo cannot run" in n for n in auto.notes)
    required = check.check(folder, python_demo=True)
    assert not required.ok and "model.embed_tokens.weight.npy is missing" in required.problems[0]


@pytest.mark.parametrize(
    ("changes", "line"),
    [
        ({"tokens_embed_size": 4.0}, "config.json tokens_embed_size must be an integer, not 4.0"),
        ({"axmodel_num": True}, "config.json axmodel_num must be an integer, not True"),
        ({"template_filename_axmodel": "m_l%s_%d.axmodel"}, "must hold exactly one %d"),
        ({"filename_post_axmodel": "/abs/m_post.axmodel"}, "must be a bare file name"),
        ({"url_tokenizer_model": "http://host/tokenizer"}, "is a URL; axllm reads local files only"),
        ({"use_mmap_load_embed": 1}, "use_mmap_load_embed must be true or false, not 1"),
        ({"axmodel_num": 3}, "1 of 3 layer files (axmodel_num) are missing"),
    ],
)
def test_the_check_names_each_problem(tmp_path, changes, line):
    report = check.check(minimal_package(tmp_path / "pkg", **changes), python_demo=False)
    assert any(p.startswith(line) or line in p for p in report.problems), report.problems


def test_tokenizer_txt_problems(tmp_path):
    folder = minimal_package(tmp_path / "pkg")
    good = (folder / "tokenizer.txt").read_text()
    lines = good.split("\n")
    (folder / "tokenizer.txt").write_text("\n".join(lines[:6]) + "\n")
    assert any("(truncated)" in p for p in check.check(folder, python_demo=False).problems)
    (folder / "tokenizer.txt").write_text("\n".join([lines[0], "5 3 0", lines[2], *lines[3:]]))
    assert any("line 3 holds" in p for p in check.check(folder, python_demo=False).problems)
    (folder / "tokenizer.txt").write_text("\n".join([lines[0], "5 0 0", "0 1 7 8 9", *lines[3:]]))
    assert any("no stop ids" in p for p in check.check(folder, python_demo=False).problems)


def test_a_table_of_2_gib_needs_mmap(tmp_path):
    folder = minimal_package(tmp_path / "pkg", tokens_embed_num=2**20, tokens_embed_size=1024)
    with open(folder / "e.bin", "wb") as handle:
        handle.truncate(2**20 * 1024 * 2)  # sparse: 2 GiB on paper only
    problems = check.check(folder, python_demo=False).problems
    assert any("set use_mmap_load_embed: true" in p for p in problems)
    (folder / "config.json").write_text(
        json.dumps({**json.loads((folder / "config.json").read_text()), "use_mmap_load_embed": True})
    )
    assert check.check(folder, python_demo=False).ok


def test_npy_header_is_read_without_numpy(tmp_path):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (8, 4), }".ljust(117) + "\n"
    path = tmp_path / layout.EMBED_NPY
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + bytes(128))
    assert check.npy_header(path) == ("<f4", (8, 4))
