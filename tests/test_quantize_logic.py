"""quantize.py's argument handling, input checks, manifest skip logic and atomic output."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import namedtuple
from pathlib import Path

import pytest
from conftest import ROOT

from axera_pipeline.common import atomic, checkpoint, defaults, manifest, messages
from axera_pipeline.common.cli import UserError
from axera_pipeline.common.paths import DATA
from axera_pipeline.gptq import datasets_io, model_prompts, model_source, quantize, runtime


def test_defaults():
    args = quantize.parse_args([])
    assert args.model == "tencent/HY-MT1.5-1.8B"
    assert (args.bits, args.group_size, args.device, args.force) == (4, 128, "auto", False)
    assert Path(args.calib) == datasets_io.DEFAULT_CALIB


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--bits", "3"], "invalid choice: 3"),
        (["--device", "npu"], "invalid device"),
        (["--max-length", "0"], "--max-length must be positive"),
        (["--calib-size", "-1"], "--calib-size must be positive"),
        (["--calib-concat-size", "-5"], "--calib-concat-size must be positive"),
    ],
)
def test_usage_errors_are_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        quantize.parse_args(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:1"])
def test_devices_accepted(device):
    assert quantize.parse_args(["--device", device]).device == device


def test_default_output_follows_model_name_and_bits(monkeypatch):
    monkeypatch.setenv("BUILD_DIR", "out")
    assert defaults.checkpoint("tencent/HY-MT1.5-1.8B", 4) == Path("out/HY-MT1.5-1.8B/gptq-int4")
    assert defaults.checkpoint("./models/my-llm/", 8) == Path("out/my-llm/gptq-int8")
    monkeypatch.delenv("BUILD_DIR")
    assert defaults.checkpoint("x/y", 4) == Path("build/y/gptq-int4")


def test_one_default_model_and_the_makefile_agrees():
    """The Makefile's MODEL default repeats defaults.DEFAULT_MODEL (Make cannot import it)."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert f"MODEL ?= {defaults.DEFAULT_MODEL}\n" in makefile
    named = subprocess.run(
        ["git", "grep", "-l", "-F", defaults.DEFAULT_MODEL, "--", "axera_pipeline", "noxfile.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert named == ["axera_pipeline/common/defaults.py"], named


def write_model(folder: Path, **config) -> checkpoint.Checkpoint:
    folder.mkdir(parents=True, exist_ok=True)
    base = {
        "model_type": "llama",
        "hidden_size": 256,
        "intermediate_size": 768,
        "num_attention_heads": 4,
    }
    (folder / "config.json").write_text(json.dumps({**base, **config}))
    write_safetensors(folder / "model.safetensors", 992)
    return checkpoint.load_checkpoint(folder)


def write_safetensors(path: Path, data_bytes: int) -> None:
    """A well-formed safetensors file: one uint8 tensor of `data_bytes` bytes."""
    header = json.dumps(
        {"w": {"dtype": "U8", "shape": [data_bytes], "data_offsets": [0, data_bytes]}}
    ).encode()
    path.write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * data_bytes)


def test_corrupt_inputs_are_one_line_naming_the_file(tmp_path):
    good = write_model(tmp_path / "m")
    weights = good.path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(UserError, match="model.safetensors is truncated: its header describes"):
        checkpoint.load_checkpoint(good.path)
    weights.write_bytes(b"\xff" * 64)
    with pytest.raises(UserError, match="model.safetensors is not a readable safetensors file"):
        checkpoint.load_checkpoint(good.path)
    write_safetensors(weights, 16)
    (good.path / "tokenizer.json").write_text('{"model": {"type": "BPE"')
    with pytest.raises(UserError, match="tokenizer.json does not parse"):
        checkpoint.load_checkpoint(good.path)
    (good.path / "tokenizer.json").unlink()
    (good.path / "config.json").write_text('{"model_type": "lla')
    with pytest.raises(UserError, match="config.json is not valid JSON"):
        checkpoint.load_checkpoint(good.path)


def test_group_size_must_divide_widths(tmp_path):
    ckpt = write_model(tmp_path / "m")
    checkpoint.check_group_size(ckpt, 128)
    checkpoint.check_group_size(ckpt, -1)
    with pytest.raises(UserError, match=r"--group-size 512 does not divide .*hidden_size=256"):
        checkpoint.check_group_size(ckpt, 512)
    with pytest.raises(UserError, match="positive or -1"):
        checkpoint.check_group_size(ckpt, 0)


def test_vision_language_config_uses_text_widths(tmp_path):
    ckpt = write_model(tmp_path / "vl", text_config={"hidden_size": 96, "num_attention_heads": 2})
    with pytest.raises(UserError, match="hidden_size=96"):
        checkpoint.check_group_size(ckpt, 64)


def test_hub_ids_and_paths(tmp_path):
    assert model_source.looks_like_hub_id("tencent/HY-MT1.5-1.8B")
    assert not model_source.looks_like_hub_id("./models/x")
    assert not model_source.looks_like_hub_id("a/b/c")
    with pytest.raises(UserError, match="model folder ./nope/x does not exist"):
        model_source.resolve_model("./nope/x")
    (tmp_path / "f").write_text("")
    with pytest.raises(UserError, match="is a file"):
        model_source.resolve_model(str(tmp_path / "f"))


def test_checkpoint_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="has no config.json"):
        checkpoint.load_checkpoint(tmp_path / "empty")
    (tmp_path / "empty" / "config.json").write_text("{oops")
    with pytest.raises(UserError, match="is not valid JSON"):
        checkpoint.load_checkpoint(tmp_path / "empty")
    (tmp_path / "empty" / "config.json").write_text('{"model_type": "llama"}')
    with pytest.raises(UserError, match="has no weights"):
        checkpoint.load_checkpoint(tmp_path / "empty")


def test_calibration_sources(tmp_path):
    rows = datasets_io.load_rows(datasets_io.DEFAULT_CALIB)
    assert len(rows) >= 256
    assert len({(r["src"], r["tgt"]) for r in rows}) >= 5
    txt = tmp_path / "c.txt"
    txt.write_text("one\n\ntwo\n")
    assert datasets_io.load_rows(txt) == [{"text": "one"}, {"text": "two"}]
    assert datasets_io.fingerprint(rows) == datasets_io.fingerprint(list(rows))
    assert datasets_io.fingerprint(rows[:-1]) != datasets_io.fingerprint(rows)


def test_bundled_calibration_is_held_apart_from_eval():
    calib = {r["source"] for r in datasets_io.load_rows(datasets_io.DEFAULT_CALIB)}
    held = datasets_io.load_rows(DATA / "eval" / "heldout_translation.jsonl")
    assert not calib & {r["source"] for r in held}


def test_calibration_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        datasets_io.load_rows(tmp_path / "none.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(UserError, match="not UTF-8"):
        datasets_io.load_rows(bad)
    bad.write_text('{"text": "ok"}\n[1, 2]\n')
    with pytest.raises(UserError, match=r"bad.jsonl:2: each row needs"):
        datasets_io.load_rows(bad)


def test_select_rows():
    rows = [{"text": str(i)} for i in range(5)]
    assert quantize.select_rows(rows, 0) == rows
    assert quantize.select_rows(rows, 2) == rows[:2]
    with pytest.raises(UserError, match="larger than the calibration set"):
        quantize.select_rows(rows, 6)


def test_prompts_follow_hy_mt_style():
    zh = messages.translation_prompt("en", "zh", "Hello.")
    assert zh.startswith("将以下文本翻译为中文") and zh.endswith("Hello.")
    fr = messages.translation_prompt("en", "fr", "Hello.")
    assert fr.startswith("Translate the following segment into French")
    msgs = messages.row_messages({"src": "zh", "tgt": "en", "source": "你好", "target": "Hi"})
    assert [m["role"] for m in msgs] == ["user", "assistant"] and "英语" in msgs[0]["content"]
    with pytest.raises(UserError, match="unknown language code 'xx'"):
        messages.translation_prompt("xx", "en", "a")


def test_manifest_skip_logic(tmp_path):
    inputs = {"model": {"files": {"a": "1"}}, "options": {"bits": 4}}
    assert not manifest.is_up_to_date(tmp_path, inputs)
    manifest.write(tmp_path, {"inputs": inputs, "result": {}})
    assert manifest.is_up_to_date(tmp_path, inputs)
    assert not manifest.is_up_to_date(tmp_path, {**inputs, "options": {"bits": 8}})
    (tmp_path / "manifest.json").write_text("{truncated")
    assert not manifest.is_up_to_date(tmp_path, inputs)


def test_hash_files(tmp_path):
    (tmp_path / "a").write_text("x")
    digest = manifest.hash_files([tmp_path / "a"], tmp_path)
    assert digest == {"a": "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"}


def test_staged_folder_replaces_only_on_success(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old").write_text("good")
    with pytest.raises(RuntimeError), atomic.staged_folder(out) as stage:
        (stage / "new").write_text("half")
        raise RuntimeError("boom")
    assert [p.name for p in out.iterdir()] == ["old"]
    with pytest.raises(KeyboardInterrupt), atomic.staged_folder(out) as stage:
        (stage / "new").write_text("half")
        raise KeyboardInterrupt
    assert [p.name for p in out.iterdir()] == ["old"]
    with atomic.staged_folder(out) as stage:
        (stage / "new").write_text("done")
    assert [p.name for p in out.iterdir()] == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_destination_checks(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="is not a folder"):
        atomic.check_destination(tmp_path / "file")
    atomic.check_destination(tmp_path / "new" / "deeper")
    assert not (tmp_path / "new").exists()


def test_too_little_disk(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10 * 2**30, 9 * 2**30, 2**30))
    with pytest.raises(UserError, match=r"not enough disk for the model: 2.0 GiB needed, 1.0 GiB free"):
        atomic.check_free_space(tmp_path / "x" / "y", 2 * 2**30, "the model")
    atomic.check_free_space(tmp_path, 2**29, "the model")


def test_needed_bytes_grows_with_bits(tmp_path):
    ckpt = write_model(tmp_path / "m")
    assert quantize.needed_bytes(ckpt, 8) > quantize.needed_bytes(ckpt, 4) > ckpt.weight_bytes
    # The equalised copy of the input is on disk beside GPTQModel's offload copy.
    equalized = quantize.needed_bytes(ckpt, 4, equalized=True)
    assert equalized >= quantize.needed_bytes(ckpt, 4) + ckpt.weight_bytes


def test_loss_summary():
    log = {
        "gptq": [
            {"layer": 0, "module": "mlp.up_proj", "loss": "0.5", "samples": "10"},
            {"layer": 1, "module": "mlp.up_proj", "loss": "1.5", "samples": "10"},
            {"layer": 1, "module": "self_attn.q_proj", "loss": "bad"},
        ]
    }
    summary = quantize.loss_summary(log)
    assert summary["modules"] == 2 and summary["mean"] == 1.0 and summary["max"] == 1.5
    assert summary["by_module"]["mlp.up_proj"] == {"mean": 1.0, "max": 1.5}
    assert quantize.loss_summary({})["mean"] is None


def test_offline_only_when_every_source_is_on_disk(tmp_path, monkeypatch):
    for name in ("HF_HUB_OFFLINE", "HF_HOME", "GPTQMODEL_CPU_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    runtime.prepare_environment(str(tmp_path), "org/some-dataset")
    assert "HF_HUB_OFFLINE" not in os.environ
    assert os.environ["HF_HOME"].endswith(".cache/huggingface")
    runtime.prepare_environment(str(tmp_path), str(datasets_io.DEFAULT_CALIB))
    assert os.environ["HF_HUB_OFFLINE"] == "1"


class FakeTokenizer:
    """Records how it was called; a chat template (or none) decides who writes the BOS token."""

    def __init__(self, chat_template):
        self.chat_template = chat_template
        self.calls = []

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        return "<bos>" + "|".join(m["content"] for m in messages)

    def __call__(self, text, truncation, max_length, add_special_tokens):
        self.calls.append(add_special_tokens)
        return {"input_ids": list(range(min(len(text), max_length)))}


def test_bos_comes_from_the_template_or_the_tokenizer():
    row = {"src": "en", "tgt": "fr", "source": "Hi", "target": "Salut"}
    templated = FakeTokenizer("{{ messages }}")
    model_prompts.encode_row(templated, row, 8)
    model_prompts.encode_row(templated, {"text": "plain"}, 8)
    assert templated.calls == [False, True]
    bare = FakeTokenizer(None)
    assert len(model_prompts.encode_row(bare, row, 1000)) == len(model_prompts.render(bare, row))
    assert bare.calls == [True]


def test_gptq_settings_are_options_recorded_as_used():
    default = quantize.gptq_settings(quantize.parse_args([]))
    assert default == {
        "sym": True,
        "desc_act": False,
        "damp_percent": 0.01,
        "act_group_aware": True,
        "true_sequential": True,
        "mse": 2.4,
    }
    assert quantize.parse_args([]).hessian == "fp32"
    assert quantize.parse_args([]).equalize == 0
    args = quantize.parse_args(
        [
            "--damp",
            "0.05",
            "--no-act-group-aware",
            "--no-true-sequential",
            "--mse",
            "2.4",
            "--calib-sort",
            "none",
        ]
    )
    assert quantize.gptq_settings(args) | {"calib_sort": args.calib_sort} == {
        "sym": True,
        "desc_act": False,
        "damp_percent": 0.05,
        "act_group_aware": False,
        "true_sequential": False,
        "mse": 2.4,
        "calib_sort": "none",
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--damp", "1.5"], "--damp must be between 0 and 1"),
        (["--mse", "-1"], "--mse must be 0 (off)"),
        (["--equalize", "1.5"], "--equalize must be between 0 (off) and 1"),
        (["--gptaq", "-0.1"], "--gptaq must be between 0 (off) and 1"),
        (["--gptaq", "0.25", "--batch-size", "4"], "--gptaq needs --batch-size 1"),
        (["--gptaq", "0.25", "--act-group-aware"], "--act-group-aware does not apply with --gptaq"),
        (["--gptaq", "0.25", "--hessian", "bf16"], "--hessian bf16 does not apply with --gptaq"),
    ],
)
def test_gptq_setting_mistakes(argv, message, capsys):
    with pytest.raises(SystemExit):
        quantize.parse_args(argv)
    assert message in capsys.readouterr().err


def test_equalize_is_recorded_only_when_on(tmp_path):
    """Outputs made before --equalize existed keep matching their manifests (no needless requantizing)."""
    ckpt = write_model(tmp_path / "m")
    rows = [{"text": "a"}]
    off = quantize.build_inputs(quantize.parse_args([]), ckpt, rows)["options"]
    on = quantize.build_inputs(quantize.parse_args(["--equalize", "0.2"]), ckpt, rows)["options"]
    assert "equalize" not in off
    assert on == {**off, "equalize": 0.2}


def test_gptaq_turns_off_what_it_replaces(tmp_path):
    """GPTAQ runs one sample at a time in column order; the manifest records what really ran."""
    ckpt = write_model(tmp_path / "m")
    rows = [{"text": "a"}]
    plain = quantize.parse_args([])
    assert (plain.batch_size, plain.act_group_aware) == (4, True)
    gptaq = quantize.parse_args(["--gptaq", "0.25"])
    assert (gptaq.batch_size, gptaq.act_group_aware) == (1, False)
    off = quantize.build_inputs(plain, ckpt, rows)["options"]
    on = quantize.build_inputs(gptaq, ckpt, rows)["options"]
    assert "gptaq" not in off
    assert on == {**off, "gptaq": 0.25, "batch_size": 1, "act_group_aware": False}
