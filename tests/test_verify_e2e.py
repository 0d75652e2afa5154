"""End-to-end: `make verify` / `nox -s verify` on the tiny models."""

from __future__ import annotations

import json
import shlex
import shutil
import struct

import pytest
from conftest import HELPERS, TINY_MODEL_THRESHOLDS, run_cmd

from axera_pipeline.common.basics import load_json

pytestmark = pytest.mark.e2e
FIGURES = {
    "logits_cosine",
    "kl_divergence",
    "top1_agreement",
    "last_hidden_cosine",
    "perplexity",
    "perplexity_ratio",
    "chrf_vs_reference_model",
    "chrf_vs_human",
}


def verify(*args: str):
    return run_cmd(["nox", "-s", "verify", "--", *args, *shlex.split(TINY_MODEL_THRESHOLDS)])


def one_error(done) -> str:
    output = done.stdout + done.stderr
    lines = [ln for ln in output.splitlines() if "verify: error:" in ln]
    assert lines, output[-3000:]
    assert "Traceback" not in output
    return lines[-1]


def test_report_has_every_figure(verified_hunyuan):
    report = load_json(verified_hunyuan / "verify.json")
    # `make verify` measures on the chips' numerics as `make all` does: the board step's report.
    assert set(report["results"]["emulated"]) == {"ax650+ax620e"}
    assert report["passed"] is True
    assert FIGURES <= set(report["results"]["gptq"]) and FIGURES <= set(report["results"]["rtn"])
    assert report["results"]["gptq"]["positions"] > 100
    assert report["results"]["reference_perplexity"] > 0
    assert len(report["gptq_loss"]) == 2 * 7
    assert {c["figure"] for c in report["checks"]} >= {"kl_divergence", "logits_cosine"}
    assert (verified_hunyuan / "PASSED").is_file()
    md = (verified_hunyuan / "verify.md").read_text()
    assert md.startswith("# Verify: PASSED") and "| kl_divergence |" in md
    # Every row's translation by every variant, for the board step to compare the board with.
    rows = [json.loads(line) for line in (verified_hunyuan / "translations.jsonl").read_text().splitlines()]
    assert len(rows) == 32 and {"source", "target", "reference_model", "gptq", "rtn"} <= rows[0].keys()
    assert [r["gptq"] for r in rows[:5]] == [e["gptq"] for e in report["results"]["examples"]]


def test_gptq_is_at_least_as_close_as_round_to_nearest(verified_hunyuan):
    res = load_json(verified_hunyuan / "verify.json")["results"]
    assert res["gptq"]["kl_divergence"] <= res["rtn"]["kl_divergence"]
    assert res["gptq"]["logits_cosine"] >= res["rtn"]["logits_cosine"]


def test_plot_is_a_valid_png(verified_hunyuan):
    raw = (verified_hunyuan / "verify.png").read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n" and raw[12:16] == b"IHDR"
    width, height = struct.unpack(">II", raw[16:24])
    assert width >= 600 and height >= 300


def test_rerun_reuses_the_report(verified_hunyuan, quantized_hunyuan, tiny_hunyuan):
    before = (verified_hunyuan / "verify.json").read_bytes()
    chips = ["--emulate", "ax650", "--emulate", "ax620e"]  # as `make verify` runs it
    done = verify("--reference", str(tiny_hunyuan), "--quantized", str(quantized_hunyuan), *chips)
    assert done.returncode == 0
    assert "is up to date" in done.stdout
    assert (verified_hunyuan / "verify.json").read_bytes() == before


def test_broken_checkpoint_fails(gptq_python, quantized_hunyuan, tiny_hunyuan, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(quantized_hunyuan, broken)
    done = run_cmd([gptq_python, str(HELPERS / "break_checkpoint.py"), str(broken)])
    assert done.returncode == 0, done.stderr[-2000:]
    done = run_cmd(
        ["nox", "-s", "verify", "--", "--reference", str(tiny_hunyuan), "--quantized", str(broken)]
    )
    assert done.returncode != 0
    error = one_error(done)
    # A random-weight model's predictions are nearly uniform, so KL stays small; these collapse.
    assert "FAILED:" in error and "logits_cosine" in error and "top1_agreement" in error
    report = load_json(tmp_path / "broken-verify" / "verify.json")
    assert report["passed"] is False and not (tmp_path / "broken-verify" / "PASSED").exists()


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("mismatch", "do not match: model_type llama vs hunyuan_v1_dense"),
        ("not-gptq", "is not a GPTQ checkpoint"),
        ("eval-missing", "eval set /nonexistent.jsonl does not exist"),
        ("eval-empty", "is empty"),
        ("eval-not-translation", "row 1 is not a translation row"),
        ("eval-malformed", "is not valid JSON"),
        ("threshold-syntax", "--threshold 'kl_divergence<0.3' does not parse"),
        ("threshold-unknown", "unknown threshold figure(s) speed"),
        ("threshold-file", "is not valid JSON"),
        ("emulate-unknown", "unknown chip profile 'ax999'; available: ax620e"),
        ("emulate-bad-type", "post_weight_type 's4' is not one of bf16, s8"),
    ],
)
def test_bad_input(case, expected, quantized_hunyuan, tiny_hunyuan, tiny_llama, tmp_path):
    reference, quantized, extra = tiny_hunyuan, quantized_hunyuan, []
    bad = tmp_path / "bad.jsonl"
    if case == "mismatch":
        reference = tiny_llama
    elif case == "not-gptq":
        quantized = tiny_hunyuan
    elif case == "eval-missing":
        extra = ["--eval-set", "/nonexistent.jsonl"]
    elif case == "eval-empty":
        bad.write_text("\n")
        extra = ["--eval-set", str(bad)]
    elif case == "eval-not-translation":
        bad.write_text('{"text": "just text"}\n')
        extra = ["--eval-set", str(bad)]
    elif case == "eval-malformed":
        bad.write_text('{"src": "en"\n')
        extra = ["--eval-set", str(bad)]
    elif case == "threshold-syntax":
        extra = ["--threshold", "kl_divergence<0.3"]
    elif case == "threshold-unknown":
        extra = ["--threshold", "speed>=1"]
    elif case == "threshold-file":
        bad.write_text("{nope")
        extra = ["--thresholds", str(bad)]
    elif case == "emulate-unknown":
        extra = ["--emulate", "ax999"]
    elif case == "emulate-bad-type":
        profile = tmp_path / "odd.yaml"
        profile.write_text("chip: AX650\npost_weight_type: s4\n")
        extra = ["--emulate", str(profile)]
    done = verify("--reference", str(reference), "--quantized", str(quantized), *extra)
    assert done.returncode != 0
    assert expected in one_error(done)


@pytest.fixture(scope="session")
def emulated_report(quantized_hunyuan, tiny_hunyuan, tmp_path_factory) -> dict:
    """verify with the two shipped chips (one numeric setting) and a bf16-lm_head profile of our own."""
    folder = tmp_path_factory.mktemp("emulate")
    bf16_post = folder / "ax650-bf16-post.yaml"
    bf16_post.write_text(
        "chip: AX650\ncontext_len: 2048\nprefill_chunk: 128\nmax_prefill_len: 1024\npost_weight_type: bf16\n"
    )
    out = folder / "report"
    done = verify(
        "--reference",
        str(tiny_hunyuan),
        "--quantized",
        str(quantized_hunyuan),
        "--output",
        str(out),
        "--emulate",
        "ax650",
        "--emulate",
        "ax620e",
        "--emulate",
        str(bf16_post),
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert done.stdout.count("emulating ") == 2, "ax650 and ax620e share one numeric setting: one pass"
    return {
        "report": load_json(out / "verify.json"),
        "md": (out / "verify.md").read_text(),
        "stdout": done.stdout,
    }


def test_emulated_figures_are_there_and_differ_from_gptq(emulated_report):
    res = emulated_report["report"]["results"]
    assert set(res["emulated"]) == {"ax650+ax620e", "ax650-bf16-post"}
    # On a 4-bit checkpoint ax620e's `-w s4` holds the checkpoint's own grid: the same pass as ax650.
    assert res["emulation"]["ax650+ax620e"] == {
        "profiles": ["ax650", "ax620e"],
        "hidden_state_type": "bf16",
        "post_weight_type": "s8",
        "weight_type": None,
    }
    board = res["emulated"]["ax650+ax620e"]
    assert FIGURES <= set(board) and board["kl_divergence_vs_gptq"] > 0
    assert board["kl_divergence"] != res["gptq"]["kl_divergence"]
    assert board["top1_agreement_vs_gptq"] < 1.0


def test_a_bf16_lm_head_stays_closer_to_gptq_than_s8(emulated_report):
    emulated = emulated_report["report"]["results"]["emulated"]
    assert (
        emulated["ax650-bf16-post"]["kl_divergence_vs_gptq"]
        < emulated["ax650+ax620e"]["kl_divergence_vs_gptq"]
    )


def test_the_limits_judge_the_emulated_variants(emulated_report):
    checks = emulated_report["report"]["checks"]
    assert {c["variant"] for c in checks} == {"ax650+ax620e", "ax650-bf16-post"}
    md = emulated_report["md"]
    assert "| figure | GPTQ | emulated ax650+ax620e | emulated ax650-bf16-post | round-to-nearest |" in md
    assert "emulates the documented types, not pulsar2's kernels" in md


def test_the_emulation_is_device_correct_and_its_fp32_products_stay_bf16(quantized_hunyuan, gptq_python):
    """Every tensor where the model is (the meta device, through the real dequantize and emulate), and
    the fp32-matrix-product arithmetic: bf16 results, closer to native bf16 than fp32 is."""
    import subprocess

    done = subprocess.run(
        [gptq_python, str(HELPERS / "check_emulation.py"), str(quantized_hunyuan)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["dequantized_devices"] == ["meta"] and found["emulated_devices"] == ["meta"]
    assert found["logits_dtype_fp32_matmul"] == "bfloat16"
    assert found["kl_native_vs_fp32_matmul"] < found["kl_fp32_vs_native"], found
    assert found["s4_levels_max"] <= 16
    print(f"\nemulation arithmetic on the tiny model: {found}")


def test_make_all_bits_8_emulates_the_s4_weights_ax620e_holds(tiny_hunyuan, tmp_path):
    """With BITS=8 the AX620E build gets `-w s4`: pulsar2 requantizes the 8-bit weights to 4 bits, so
    verify emulates that chip on its own pass with the weights rounded onto the s4 grid, and AX650 on
    the checkpoint's. This run also forces the fp32-matrix-product arithmetic (AXERA_BF16_ARITHMETIC)."""
    from conftest import FAKES

    env = {
        "BUILD_DIR": str(tmp_path),
        "PULSAR2_BIN": str(FAKES / "pulsar2"),
        "AXERA_BF16_ARITHMETIC": "fp32-matmul",
    }
    done = run_cmd(
        ["make", "all", "BITS=8", f"MODEL={tiny_hunyuan}", f"VERIFY_ARGS={TINY_MODEL_THRESHOLDS} --limit 8"],
        env=env,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = load_json(tmp_path / tiny_hunyuan.name / "gptq-int8-verify" / "verify.json")
    res = report["results"]
    assert res["bf16_arithmetic"]["mode"] == "fp32-matmul" and report["inputs"]["bits"] == 8
    assert set(res["emulated"]) == {"ax650", "ax620e"}
    assert (
        res["emulation"]["ax620e"]["weight_type"] == "s4" and res["emulation"]["ax650"]["weight_type"] is None
    )
    # Rounded onto 16 levels, the AX620E variant is further from the 8-bit checkpoint than AX650's.
    assert (
        res["emulated"]["ax620e"]["kl_divergence_vs_gptq"] > res["emulated"]["ax650"]["kl_divergence_vs_gptq"]
    )
    md = (tmp_path / tiny_hunyuan.name / "gptq-int8-verify" / "verify.md").read_text()
    assert "decoder weights held as s4" in md and "matrix products in fp32" in md
    for chip in ("ax650-int8", "ax620e-int8"):
        assert (tmp_path / tiny_hunyuan.name / chip / "manifest.json").is_file()
