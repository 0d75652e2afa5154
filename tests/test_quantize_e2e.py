"""End-to-end: `make quantize` / `nox -s quantize` on tiny models built by the tests, on the CPU."""

from __future__ import annotations

import json

import pytest
from conftest import HELPERS, run_cmd, tree_digest

from axera_pipeline.common.basics import load_json

pytestmark = pytest.mark.e2e


def test_checkpoint_layout_and_config(quantized_hunyuan):
    names = {p.name for p in quantized_hunyuan.iterdir()}
    for required in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
        "quantize_config.json",
        "manifest.json",
    ):
        assert required in names, f"{required} missing from {sorted(names)}"
    assert not [n for n in names if n.startswith(".")], "temporary files left in the output"
    assert list((quantized_hunyuan / "logs").glob("gptq_log_*.log")), "GPTQModel's own log is kept"
    qc = load_json(quantized_hunyuan / "config.json")["quantization_config"]
    assert qc["quant_method"] == "gptq"
    assert (qc["bits"], qc["group_size"], qc["sym"], qc["desc_act"]) == (4, 128, True, False)
    assert (quantized_hunyuan.parent / "gptq-int4.log").is_file()


def test_manifest_records_inputs_and_costs(quantized_hunyuan, tiny_hunyuan):
    m = load_json(quantized_hunyuan / "manifest.json")
    files = m["inputs"]["model"]["files"]
    assert "model.safetensors" in files and len(files["model.safetensors"]) == 64
    assert m["inputs"]["options"]["damp_percent"] == 0.01
    assert m["inputs"]["options"]["true_sequential"] is True
    assert m["inputs"]["options"]["calib_concat_size"] == 512
    assert m["inputs"]["calibration"]["rows"] == 269
    assert m["inputs"]["packages"]["gptqmodel"] == "7.5.0"
    loss = m["result"]["gptq_loss"]
    assert loss["modules"] == 2 * 7 and loss["mean"] > 0
    assert set(loss["by_module"]) >= {"self_attn.q_proj", "mlp.down_proj"}
    assert m["wall_time_s"] > 0 and m["peak_rss_mib"] > 100


def test_second_run_is_a_no_op(quantized_hunyuan, tiny_hunyuan, build_dir):
    before = tree_digest(quantized_hunyuan)
    done = run_cmd(["make", "quantize", f"MODEL={tiny_hunyuan}"], env={"BUILD_DIR": str(build_dir)})
    assert done.returncode == 0, done.stderr
    assert "up to date" in done.stdout
    assert tree_digest(quantized_hunyuan) == before


def test_reloads_generates_and_beats_round_to_nearest(gptq_python, tiny_hunyuan, quantized_hunyuan):
    done = run_cmd(
        [
            gptq_python,
            str(HELPERS / "check_quantized.py"),
            str(tiny_hunyuan),
            str(quantized_hunyuan),
        ]
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["generated_tokens"] > 0
    assert report["hf_class"] == "HunYuanDenseV1ForCausalLM"
    # transformers (+optimum/gptqmodel) and GPTQModel.load read the same weights.
    assert report["loaders_agree"]["logits_cosine"] > 0.999
    # On held-out prompts GPTQ must be at least as close to fp as plain round-to-nearest.
    assert report["gptq"]["kl_divergence"] <= report["rtn"]["kl_divergence"]
    assert report["gptq"]["logits_cosine"] >= report["rtn"]["logits_cosine"]


def test_llama_int8_equalized_gptaq_through_nox(tiny_llama, tmp_path):
    out = tmp_path / "llama-q8"
    done = run_cmd(
        [
            "nox",
            "-s",
            "quantize",
            "--",
            "--model",
            str(tiny_llama),
            "--output",
            str(out),
            "--bits",
            "8",
            "--group-size",
            "64",
            "--calib-size",
            "64",
            "--equalize",
            "0.2",
            "--gptaq",
            "0.25",
        ]
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    qc = load_json(out / "config.json")["quantization_config"]
    assert (qc["bits"], qc["group_size"]) == (8, 64)
    assert load_json(out / "config.json")["model_type"] == "llama"
    manifest = load_json(out / "manifest.json")
    assert manifest["inputs"]["calibration"]["rows"] == 64
    assert manifest["inputs"]["options"]["equalize"] == 0.2
    # GPTQModel's GPTAQ fails on batches of several samples: --gptaq alone must pick one.
    assert (manifest["inputs"]["options"]["gptaq"], manifest["inputs"]["options"]["batch_size"]) == (0.25, 1)
    assert "GPTAQ alpha 0.25, one sample per batch" in done.stdout
    assert "equalisation statistics: 64/64 rows" in done.stdout
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")], "the equalised copy is left"


def test_equalisation_keeps_each_family_exact(gptq_python):
    """Folded scales move the weights but not the full-precision logits; an unknown layout is one line."""
    done = run_cmd([gptq_python, str(HELPERS / "check_equalize.py")])
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    for family in ("hunyuan_v1_dense", "gemma3_text", "qwen3", "llama"):
        assert report[family]["places"] == 2 * 4
        assert report[family]["weights_moved"] > 0.1, family
        assert report[family]["logit_change"] < 1e-4, family
    assert report["unknown_layout"].startswith("--equalize does not know model_type 'llama'")
    assert report["not_causal"].startswith("--equalize cannot load ")
    assert report["not_causal"].endswith("; run without --equalize") and "\n" not in report["not_causal"]


def test_hessian_patch_matches_gptqmodel(gptq_python):
    """One X^T X per shared input gives GPTQModel's numbers exactly; bf16 products stay close."""
    done = run_cmd([gptq_python, str(HELPERS / "check_hessian.py")])
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["shared_equal"] is True
    assert 0 < report["bf16_relative_error"] < 0.01
