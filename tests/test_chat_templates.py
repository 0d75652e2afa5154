"""axllm's prompt formats, as tokenizer.axera's src/*Tokenizer.hpp build them, and how a model's own
chat template picks one (docs/package.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT

from axera_pipeline.common import chat_format, chat_templates

FIXTURES = ROOT / "tests" / "fixtures" / "models"
USER = [{"role": "user", "content": "Hello"}]
SYSTEM_USER = [{"role": "system", "content": "Be brief."}, *USER]
HISTORY = [
    *USER,
    {"role": "assistant", "content": "<think>hmm</think>\n Hi!"},
    {"role": "user", "content": "Bye"},
]


@pytest.mark.parametrize(
    ("name", "messages", "expected"),
    [
        ("HunYuan", USER, "<｜hy_begin▁of▁sentence｜><｜hy_User｜>Hello<｜hy_Assistant｜>"),
        (
            "HunYuan",
            SYSTEM_USER,
            "<｜hy_begin▁of▁sentence｜>Be brief.<｜hy_place▁holder▁no▁3｜>"
            "<｜hy_User｜>Hello<｜hy_Assistant｜>",
        ),
        (
            "HunYuan",
            HISTORY,
            "<｜hy_begin▁of▁sentence｜><｜hy_User｜>Hello<｜hy_Assistant｜><think>hmm</think>\n Hi!"
            "<｜hy_place▁holder▁no▁2｜><｜hy_User｜>Bye<｜hy_Assistant｜>",
        ),
        ("Qwen3", USER, "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n"),
        # axllm keeps an answer's thinking in a Qwen3 history (think_in_prompt), as SmolLM2 does; the
        # earlier reading that stripped it was wrong (tests/fixtures/axera_tok/prompts.json, recorded).
        (
            "Qwen3",
            HISTORY,
            "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n<think>hmm</think>\n Hi!<|im_end|>\n"
            "<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n",
        ),
        (
            "SmolLM2",
            HISTORY,
            "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n<think>hmm</think>\n Hi!<|im_end|>\n"
            "<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n",
        ),
        (
            "MiniCPM4",
            SYSTEM_USER,
            "<s><|im_start|>system\nBe brief.<|im_end|>\n"
            "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n",
        ),
        (
            "MiniCPM5",
            [{"role": "user", "content": "Hello /no_think"}],
            "<s><|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
        ),
        (
            "Gemma3",
            SYSTEM_USER,
            "<bos><start_of_turn>user\nBe brief.\n\nHello<end_of_turn>\n<start_of_turn>model\n",
        ),
        ("Gemma4", USER, "<bos><|turn>user\nHello<turn|>\n<|turn>model\n"),
    ],
)
def test_axllm_formats_as_tokenizer_axera_writes_them(name, messages, expected):
    assert chat_templates.render(name, messages) == expected


def test_without_a_generation_prompt():
    assert chat_templates.render("HunYuan", USER, False).endswith("Hello<｜hy_place▁holder▁no▁8｜>")
    assert chat_templates.render("Qwen3", USER, False).endswith("<|im_end|>\n")


def test_formats_that_write_their_own_bos():
    assert [
        n for n in ("HunYuan", "Gemma3", "MiniCPM4", "Qwen3", "SmolLM2") if chat_templates.writes_bos(n)
    ] == [
        "HunYuan",
        "Gemma3",
        "MiniCPM4",
    ]
    assert not chat_templates.can_render("InternVL3") and not chat_templates.writes_bos("InternVL3")


def test_every_name_rendered_here_is_registered_in_axllm():
    assert set(chat_templates.RENDERERS) <= set(chat_format.registered())
    assert set(chat_format.table()["renders_format"]) <= set(chat_format.registered())


# The name each fixture's own template picks, whether axllm renders that format, and why.
EXPECTED = {
    "HY-MT1.5-1.8B": ("HunYuan", "hunyuan", True),
    "Qwen3-0.6B": ("Qwen3", "chatml", True),
    "Qwen2.5-1.5B-Instruct": ("Qwen2_5", "chatml", True),
    "SmolLM2-135M-Instruct": ("SmolLM2", "chatml", True),
    "Llama-3.2-1B-Instruct": ("Qwen3", "llama3", False),
    "TinyLlama-1.1B-Chat-v1.0": ("Qwen3", "zephyr", False),
    "gemma-3-270m-it": ("Gemma3", "gemma", True),
    "Ministral-3-3B-Instruct-2512": ("Qwen3", "mistral", False),
    "llava-1.5-7b-hf": ("Qwen3", "unknown", False),
    "Phi-4-mini-instruct": ("Qwen3", "phi", False),
}


@pytest.mark.parametrize("model", sorted(EXPECTED))
def test_the_models_own_template_decides(model):
    folder = FIXTURES / model
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    choice = chat_format.for_model(folder, chat_format.model_types(config))
    assert (choice.name, choice.format, choice.exact) == EXPECTED[model]
    if choice.exact:
        assert choice.warning() == ""
    else:
        assert "--axllm-tokenizer-type" in choice.warning() and "not trained on" in choice.warning()


def test_model_type_only_breaks_ties():
    chatml = (FIXTURES / "Qwen3-0.6B" / "tokenizer_config.json").read_text(encoding="utf-8")
    template = json.loads(chatml)["chat_template"]
    assert chat_format.choose(template, ["qwen2"]).name == "Qwen2_5"
    assert chat_format.choose(template, ["llama"]).name == "SmolLM2"
    # An unknown model type with ChatML: the template decides (it writes <think>: Qwen3).
    assert chat_format.choose(template, ["brand_new"]).name == "Qwen3"
    assert chat_format.choose(template.replace("<think>", "<x>"), ["brand_new"]).name == "Qwen2_5"
    # A Llama model whose template is HunYuan's gets HunYuan, whatever its model_type says.
    hunyuan = json.loads((FIXTURES / "HY-MT1.5-1.8B" / "tokenizer_config.json").read_text())["chat_template"]
    assert chat_format.choose(hunyuan, ["llama"]).name == "HunYuan"


def test_no_template_and_overrides():
    base = chat_format.choose("", ["hunyuan_v1_dense"])
    assert (base.name, base.format, base.exact) == ("HunYuan", "none", False)
    assert "has no chat template" in base.warning()
    llama3 = (FIXTURES / "Llama-3.2-1B-Instruct" / "tokenizer_config.json").read_text(encoding="utf-8")
    forced = chat_format.choose(json.loads(llama3)["chat_template"], ["llama"], "SmolLM2")
    assert (forced.name, forced.exact) == ("SmolLM2", False)
    qwen = json.loads((FIXTURES / "Qwen3-0.6B" / "tokenizer_config.json").read_text())["chat_template"]
    assert chat_format.choose(qwen, ["qwen3"], "Qwen2_5").exact  # another ChatML name: same format


def test_the_template_may_sit_in_its_own_file(tmp_path: Path):
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"eos_token": "</s>"}))
    assert chat_format.model_template(tmp_path) == ""
    (tmp_path / "chat_template.jinja").write_text("{{ '<start_of_turn>user' }}")
    assert chat_format.detect(chat_format.model_template(tmp_path))["format"] == "gemma"
    (tmp_path / "chat_template.jinja").unlink()
    named = [{"name": "tool_use", "template": "x"}, {"name": "default", "template": "[INST] {{ m }} [/INST]"}]
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": named}))
    assert chat_format.detect(chat_format.model_template(tmp_path))["format"] == "llama2"
