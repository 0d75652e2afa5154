"""What the board feeds the model for verify's held-out HY-MT prompts, measured on real vocabularies.

The package writer tries every tokenizer.txt form a tokenizer allows and keeps the one whose board ids
(the Python encoder, checked against Axera's code in test_axllm_tokenizer.py) keep most of verify's
tokens with every template marker one token (toolchain/package/id_check.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_model, run_cmd
from helpers import real_vocab

from axera_pipeline.common.cli import UserError
from axera_pipeline.toolchain.package import id_check

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def tiny_hy_mt(gptq_python: str, tmp_path_factory) -> Path:
    """An HY-MT-like tiny model: HY-MT1.5's markers, chat template and pre-tokenizer, random weights."""
    return make_model(gptq_python, tmp_path_factory.mktemp("models") / "tiny-hy-mt", "--hy-mt")


@pytest.fixture(scope="session")
def hy_mt_vocabularies(gptq_python: str) -> dict[str, Path]:
    return real_vocab.hy_mt_folders(gptq_python)


def chosen(folder: Path, gptq_python: str) -> tuple[id_check.Measured, list[id_check.Measured]]:
    measured = id_check.measure(folder, "HunYuan", gptq_python)
    return id_check.choose(measured, "HunYuan"), measured


def test_the_hy_mt_like_model_gets_verify_s_ids_with_byte_level_markers(tiny_hy_mt, gptq_python):
    best, measured = chosen(tiny_hy_mt, gptq_python)
    assert best.key == "3-bytelevel" and best.agree == best.rows == 32, best.record()
    raw = next(m for m in measured if m.key == "3")
    assert not raw.usable and "<｜hy_User｜>" in raw.lost  # Axera's converter's form: markers as bytes
    done = run_cmd(["nox", "-s", "preflight", "--", "--model", str(tiny_hy_mt), "--chip", "ax650"])
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(ln for ln in done.stdout.splitlines() if " token ids " in ln)
    assert line.startswith("ok") and "32/32 held-out rows give the model verify's token ids" in line


@pytest.mark.parametrize("name", real_vocab.BYTE_LEVEL)
def test_hy_mt_prompts_on_real_byte_level_vocabularies(
    name, hy_mt_vocabularies, gptq_python, record_property
):
    """Every marker stays one token, and at least 95% of verify's held-out rows reach the model as its
    ids. Qwen's and Llama-3's tokenizers keep punctuation with the newlines after it (`：\\n\\n`,
    `.\\n\\n`, one token each in every HY-MT prompt), which tokenizer.axera's ASCII-only pre-split cuts
    in two: the `+joins` form lists those tokens (found on the calibration prompts) as special, so the
    board matches them whole. DeepSeek's tokenizer splits there too and needs none."""
    best, measured = chosen(hy_mt_vocabularies[name], gptq_python)
    record_property("forms", [m.record() for m in measured])
    assert best.usable and best.agree >= 0.95 * best.rows, best.record()
    plain = next(m for m in measured if m.key == "3-bytelevel")
    if name == "deepseek-llm":
        assert best.key == "3-bytelevel" and plain.agree == plain.rows
    else:
        assert best.key == "3-bytelevel+joins" and "\\n\\n" in plain.first, plain.record()
        assert best.txt.joined and len(best.txt.special) == len(plain.txt.special) + len(best.txt.joined)


@pytest.mark.parametrize("name", real_vocab.SENTENCEPIECE)
def test_hunyuan_markers_cannot_survive_a_sentencepiece_vocabulary(name, hy_mt_vocabularies, gptq_python):
    """HunYuan's markers hold `▁`, which every SentencePiece form mangles when the board finds special
    tokens by their decoded text (type 0 replaces the first `▁` and the bytes after it, type 3's ▁ mode
    every `▁`): the build refuses such a model in one line rather than garble every prompt."""
    with pytest.raises(UserError, match="no tokenizer.txt form this tokenizer allows keeps axllm's HunYuan"):
        chosen(hy_mt_vocabularies[name], gptq_python)
