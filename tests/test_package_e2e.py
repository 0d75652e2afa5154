"""End-to-end: board packages that axllm and Axera's Python demo load as they are, and `check-package`."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile

import pytest
from conftest import FAKES, HELPERS, ROOT, run_cmd

from axera_pipeline.common.basics import load_json
from axera_pipeline.toolchain.package import tokenizer_txt

pytestmark = pytest.mark.e2e


def check_package(folder, *extra):
    return run_cmd(["nox", "-s", "check-package", "--", str(folder), *extra])


def problems(done) -> list[str]:
    return [ln.split(None, 1)[1] for ln in done.stdout.splitlines() if ln.startswith("problem ")]


@pytest.mark.parametrize("model", ["hunyuan", "llama"])
def test_a_chip_build_passes_the_package_check(model, built_ax650, built_llama_ax650):
    folder = built_ax650 if model == "hunyuan" else built_llama_ax650
    done = check_package(folder)
    assert done.returncode == 0, done.stdout[-3000:]
    assert problems(done) == []
    config = load_json(folder / "config.json")
    assert config["tokenizer_type"] == ("HunYuan" if model == "hunyuan" else "SmolLM2")
    assert config["url_tokenizer_model"] == "tokenizer.txt" and config["use_mmap_load_embed"] is True
    for key in ("template_filename_axmodel", "filename_post_axmodel", "filename_tokens_embed"):
        assert "/" not in config[key]


def test_make_check_package(built_ax650, build_dir, tiny_hunyuan):
    done = run_cmd(["make", "check-package", f"DIR={built_ax650}"])
    assert done.returncode == 0, done.stdout[-2000:]
    assert "loads as axllm and the Python demo read it" in done.stdout


def broken(folder, variant: str) -> None:
    config_file = folder / "config.json"
    config = load_json(config_file)
    if variant == "missing key":
        del config["tokens_embed_num"]
    elif variant == "wrong type":
        config["axmodel_num"] = "2"
    elif variant == "./ path":
        config["filename_tokens_embed"] = "./" + config["filename_tokens_embed"]
    elif variant == "missing layer":
        (folder / (config["template_filename_axmodel"] % 1)).unlink()
    elif variant == "short embedding file":
        path = folder / config["filename_tokens_embed"]
        path.write_bytes(path.read_bytes()[:-2])
    elif variant == "bad tokenizer header":
        path = folder / "tokenizer.txt"
        path.write_text("431 3\n" + path.read_text().split("\n", 1)[1])
    elif variant == "missing post_config key":
        post = load_json(folder / "post_config.json")
        del post["top_k"]
        (folder / "post_config.json").write_text(json.dumps(post))
    config_file.write_text(json.dumps(config))


@pytest.mark.parametrize(
    ("variant", "line"),
    [
        ("missing key", "config.json has no tokens_embed_num (axllm requires it)"),
        ("wrong type", "config.json axmodel_num must be an integer, not '2'"),
        (
            "missing layer",
            "1 of 2 layer files (axmodel_num) are missing: hunyuan_v1_dense_p128_l1_together.axmodel",
        ),
        (
            "short embedding file",
            "model.embed_tokens.weight.bfloat16.bin is 524286 bytes; tokens_embed_num x",
        ),
        ("bad tokenizer header", "tokenizer.txt header '431 3' must be `430 <type 0-3>`"),
        ("missing post_config key", "post_config.json has no top_k (axllm reads all nine keys)"),
        (
            "./ path",
            "config.json filename_tokens_embed './model.embed_tokens.weight.bfloat16.bin' must be a bare",
        ),
    ],
)
def test_each_broken_variant_fails_with_its_own_line(variant, line, built_ax650, tmp_path):
    copy = tmp_path / "ax650"
    shutil.copytree(built_ax650, copy)
    broken(copy, variant)
    before = sorted((p.name, p.stat().st_mtime_ns) for p in copy.rglob("*"))
    done = check_package(copy)
    assert done.returncode != 0
    found = problems(done)
    assert len(found) == 1 and found[0].startswith(line), found
    assert "check-package: error: 1 problem(s)" in done.stdout + done.stderr
    assert sorted((p.name, p.stat().st_mtime_ns) for p in copy.rglob("*")) == before  # nothing changed


@pytest.mark.parametrize("model", ["hunyuan", "llama"])
def test_tokenizer_txt_reads_back_as_the_board_reads_it(
    model, built_ax650, built_llama_ax650, tiny_hunyuan, tiny_llama, gptq_python, tmp_path, record_property
):
    folder, source = (built_ax650, tiny_hunyuan) if model == "hunyuan" else (built_llama_ax650, tiny_llama)
    done = subprocess.run(
        [
            gptq_python,
            str(HELPERS / "tokenizer_roundtrip.py"),
            str(source),
            str(folder / "tokenizer.txt"),
            "--type1-copy",
            str(tmp_path / "type1.txt"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["type"] == 3 and report["vocab_match"] is True
    assert report["vocab_size"][0] == report["vocab_size"][1]
    # tokenizer.axera's encoder, not Hugging Face's: on these tiny vocabularies its ASCII-only pre-split
    # still gives every sentence Hugging Face's ids, in every language of the calibration set.
    assert set(report["agreement"]) == {"zh", "en", "fr", "de", "es", "ja", "ko", "ru", "pt"}
    assert all(v == 1.0 for v in report["agreement"].values()), report["mismatches"]
    assert report["lossless"] is True
    eos = load_json(source / "generation_config.json")["eos_token_id"]
    assert set([eos] if isinstance(eos, int) else eos) <= set(report["stop"])
    greedy = report["type1_copy"]
    assert greedy["vocab_match"] is True and greedy["lossless"] is True
    assert min(greedy["agreement"].values()) < 1.0  # greedy longest match is not ranked BPE
    record_property("type1_greedy_agreement", greedy["agreement"])
    print(f"\n{model}: type 1 greedy longest match gives Hugging Face's ids on {greedy['agreement']}")


@pytest.fixture(scope="session")
def board_demo_python(tmp_path_factory) -> str:
    """A small venv as a board-side Python has it for Axera's demo: transformers 4.57.1, no torch."""
    venv = ROOT / ".nox" / "board-demo"
    python = venv / "bin" / "python"
    stamp = venv / ".lock-sha"
    lock = (ROOT / "envs" / "board-demo.lock").read_bytes()
    import hashlib

    digest = hashlib.sha256(lock).hexdigest()
    if not (python.exists() and stamp.is_file() and stamp.read_text() == digest):
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run(["uv", "venv", "--quiet", "-p", "python3", str(venv)], check=True)
        subprocess.run(
            ["uv", "pip", "sync", "--quiet", "--python", str(python), str(ROOT / "envs" / "board-demo.lock")],
            check=True,
        )
        stamp.write_text(digest)
    return str(python)


LOAD = """
import json, sys
from transformers import AutoConfig, AutoTokenizer, __version__
config = AutoConfig.from_pretrained(sys.argv[1])
tok = AutoTokenizer.from_pretrained(sys.argv[1])
messages = [{"role": "user", "content": "hello"}]
prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
print(json.dumps({"version": __version__, "model_type": config.model_type, "layers": config.num_hidden_layers,
                  "ids": tok(prompt, add_special_tokens=False)["input_ids"], "eos": tok.eos_token_id}))
"""


def test_hf_subfolder_loads_with_the_demos_transformers_and_with_5x(
    built_ax650, board_demo_python, gptq_python
):
    results = []
    for python in (board_demo_python, gptq_python):
        done = subprocess.run(
            [python, "-c", LOAD, str(built_ax650 / "hf_tokenizer")], capture_output=True, text=True, cwd=ROOT
        )
        assert done.returncode == 0, done.stderr[-3000:]
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    old, new = results
    assert old["version"] == "4.57.1" and new["version"].startswith("5.")
    assert old["model_type"] == new["model_type"] == "hunyuan_v1_dense" and old["layers"] == 2
    assert old["ids"] == new["ids"] and old["eos"] == new["eos"]


def test_no_python_demo_and_bundle(quantized_hunyuan, tmp_path):
    out = tmp_path / "ax650"
    done = run_cmd(
        [
            "nox",
            "-s",
            "build-ax650",
            "--",
            "--input",
            str(quantized_hunyuan),
            "--output",
            str(out),
            "--no-python-demo",
            "--bundle",
        ],
        env={"PULSAR2_BIN": str(FAKES / "pulsar2")},
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert not (out / "model.embed_tokens.weight.npy").exists()
    assert "only axllm can run it" in (out / "README.md").read_text()
    with tarfile.open(tmp_path / "ax650.tar.gz") as tar:
        names = set(tar.getnames())
    assert {"ax650/config.json", "ax650/tokenizer.txt", "ax650/hf_tokenizer/tokenizer.json"} <= names
    checked = check_package(out)
    assert checked.returncode == 0 and "Python demo cannot run this folder" in checked.stdout


def test_a_package_that_would_not_load_is_a_failed_build(quantized_hunyuan, tmp_path):
    parent = tmp_path / "odd%dir"
    done = run_cmd(
        [
            "nox",
            "-s",
            "build-ax650",
            "--",
            "--input",
            str(quantized_hunyuan),
            "--output",
            str(parent / "ax650"),
        ],
        env={"PULSAR2_BIN": str(FAKES / "pulsar2")},
    )
    assert done.returncode != 0
    errors = [ln for ln in (done.stdout + done.stderr).splitlines() if "build: error:" in ln]
    assert len(errors) == 1 and "the package would not load on the board: the folder path" in errors[0]
    assert not (parent / "ax650").exists() and not [p for p in parent.iterdir() if p.name.startswith(".")]


def test_the_package_readme_states_template_memory_and_boards(built_ax650):
    readme = (built_ax650 / "README.md").read_text(encoding="utf-8")
    assert "## Chat template on the board" in readme and "`HunYuan`" in readme and "WARNING" not in readme
    assert "## Memory on the board (estimated)" in readme and "| llm-8850 | fits |" in readme
    summary = load_json(built_ax650 / "manifest.json")["result"]["package"]
    assert summary["chat_template"] == {"model_format": "hunyuan", "exact": True, "warning": ""}
    assert summary["memory_estimate_mib"]["cmm"] >= summary["memory_estimate_mib"]["axmodel_files"]
    # HunYuan's template writes the BOS itself: tokenizer.txt must not prepend a second one.
    assert summary["prefix_ids"] == [] and (built_ax650 / "tokenizer.txt").read_text().split("\n")[
        1
    ].endswith(" 0")


def test_a_tokenizer_type_whose_markers_the_vocabulary_lacks_stops_the_build(quantized_hunyuan, tmp_path):
    """The HunYuan model as Qwen3: its vocabulary has no <|im_start|>, which the board would encode as
    byte pieces on every prompt. That stops the build before pulsar2, in one line."""
    out = tmp_path / "ax650"
    env = {"PULSAR2_BIN": str(FAKES / "pulsar2")}
    args = ["--input", str(quantized_hunyuan), "--output", str(out), "--axllm-tokenizer-type", "Qwen3"]
    done = run_cmd(["nox", "-s", "build-ax650", "--", *args], env=env)
    assert done.returncode != 0
    line = next(ln for ln in (done.stdout + done.stderr).splitlines() if ln.startswith("build: error:"))
    assert "keeps axllm's Qwen3 prompt intact" in line and "<|im_start|> becomes" in line
    assert "at a time (log: build.log)" not in done.stdout and not out.exists()  # pulsar2 never started


def test_a_template_axllm_does_not_render_is_loud_everywhere(quantized_hunyuan, tmp_path):
    """A base model (no chat template): axllm still wraps every prompt in its HunYuan template, which
    keeps its markers here but is not what the model was trained on. The build goes on, loudly."""
    base = tmp_path / "base" / "gptq-int4"
    shutil.copytree(quantized_hunyuan, base)
    config = load_json(base / "tokenizer_config.json")
    config.pop("chat_template", None)
    (base / "tokenizer_config.json").write_text(json.dumps(config, ensure_ascii=False))
    (base / "chat_template.jinja").unlink(missing_ok=True)
    out = tmp_path / "ax650"
    env = {"PULSAR2_BIN": str(FAKES / "pulsar2")}
    done = run_cmd(["nox", "-s", "build-ax650", "--", "--input", str(base), "--output", str(out)], env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    said = done.stdout + done.stderr
    assert "[build] WARNING: the model has no chat template" in said and "--axllm-tokenizer-type" in said
    assert "**WARNING:** the model has no chat template" in (out / "README.md").read_text()
    checked = check_package(out)
    assert checked.returncode == 0, checked.stdout
    warnings = [ln for ln in checked.stdout.splitlines() if ln.startswith("WARNING")]
    assert any("as HunYuan" in w and "a format it was not trained on" in w for w in warnings), warnings
    # verify prompted the base model with plain text: no row reaches it on the board as verify's ids.
    assert any("token ids (measured now): 0/32 held-out rows" in w for w in warnings), warnings


def test_check_package_prints_the_figure_and_fails_markers_the_board_loses(built_ax650, tmp_path):
    """The built package states its agreement; the same package with tokenizer.txt as Axera's converter
    writes it (type 3, special tokens as raw text: `｜` and `▁` are not in GPT-2's byte table, so the
    board's decoder drops them and never finds the markers) fails in one line."""
    done = check_package(built_ax650)
    assert done.returncode == 0, done.stdout[-3000:]
    figure = next(ln for ln in done.stdout.splitlines() if "token ids (measured now)" in ln)
    assert "32/32 held-out rows give the model verify's token ids" in figure, figure
    copy = tmp_path / "ax650"
    shutil.copytree(built_ax650, copy)
    raw = next(t for t in tokenizer_txt.forms(copy / "hf_tokenizer") if t.form == "3")
    (copy / "tokenizer.txt").write_text(raw.text(), encoding="utf-8")
    done = check_package(copy)
    assert done.returncode != 0
    found = problems(done)
    assert len(found) == 1 and found[0].startswith(
        "axllm's HunYuan markers do not survive tokenizer.txt ("
    ), found
    assert "<｜hy_User｜> becomes" in found[0] or "<｜hy_begin▁of▁sentence｜> becomes" in found[0]
