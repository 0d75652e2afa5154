"""End-to-end: `make build-ax650` / `make build-ax620e` with the stand-in pulsar2 and Docker CLI."""

from __future__ import annotations

import ast
import json
import shutil
import struct

import pytest
from conftest import TINY_MODEL_THRESHOLDS, docker_calls, run_cmd, tree_digest
from test_build_logic import AX620E_NOTES, AX650_NOTES

from axera_pipeline.common.basics import load_json

pytestmark = pytest.mark.e2e


def axmodel_record(folder, name="hunyuan_v1_dense_post.axmodel") -> dict:
    return json.loads((folder / name).read_text())


def npy_header(path) -> tuple[dict, int]:
    raw = path.read_bytes()
    assert raw[:6] == b"\x93NUMPY"
    length = struct.unpack("<H", raw[8:10])[0]
    return ast.literal_eval(raw[10 : 10 + length].decode()), 10 + length


def test_ax650_argv_environment_and_layout(built_ax650, quantized_hunyuan):
    record = axmodel_record(built_ax650)
    argv = record["argv"]
    assert argv[0] == "llm_build" and argv[1] == "--input_path" and argv[3] == "--output_path"
    assert " ".join(argv[5:]) == AX650_NOTES
    assert record["env"] == {"FLOAT_MATMUL_USE_CONV_EU": "1"}
    names = {p.name for p in built_ax650.iterdir()}
    layers = [f"hunyuan_v1_dense_p128_l{i}_together.axmodel" for i in range(2)]
    for name in [
        *layers,
        "hunyuan_v1_dense_post.axmodel",
        "model.embed_tokens.weight.npy",
        "model.embed_tokens.weight.bfloat16.bin",
        "config.json",
        "tokenizer.txt",
        "post_config.json",
        "hf_tokenizer",
        "README.md",
        "manifest.json",
        "build.log",
    ]:
        assert name in names, f"{name} missing from {sorted(names)}"
    assert not [n for n in names if n.startswith(".")]


def test_ax650_packaging(built_ax650, quantized_hunyuan):
    config = load_json(quantized_hunyuan / "config.json")
    vocab, hidden = config["vocab_size"], config["hidden_size"]
    header, offset = npy_header(built_ax650 / "model.embed_tokens.weight.npy")
    assert header["descr"] == "<f4" and header["shape"] == (vocab, hidden)
    bf16 = (built_ax650 / "model.embed_tokens.weight.bfloat16.bin").read_bytes()
    assert len(bf16) == vocab * hidden * 2
    f32 = (built_ax650 / "model.embed_tokens.weight.npy").read_bytes()[offset:]
    first = struct.unpack(f"<{hidden}I", f32[: 4 * hidden])
    assert [v >> 16 for v in first] == list(struct.unpack(f"<{hidden}H", bf16[: 2 * hidden]))
    runtime = load_json(built_ax650 / "config.json")
    assert runtime["template_filename_axmodel"] == "hunyuan_v1_dense_p128_l%d_together.axmodel"
    assert runtime["axmodel_num"] == 2 and runtime["filename_post_axmodel"] == "hunyuan_v1_dense_post.axmodel"
    assert (runtime["tokens_embed_num"], runtime["tokens_embed_size"]) == (vocab, hidden)
    hf_config = load_json(built_ax650 / "hf_tokenizer" / "config.json")
    assert hf_config["model_type"] == config["model_type"] and "quantization_config" not in hf_config
    assert "top_k" in load_json(built_ax650 / "post_config.json")


def test_ax650_manifest(built_ax650):
    m = load_json(built_ax650 / "manifest.json")
    files = m["result"]["files"]
    on_disk = {str(p.relative_to(built_ax650)) for p in built_ax650.rglob("*") if p.is_file()}
    assert set(files) == on_disk - {"manifest.json"} and "hf_tokenizer/tokenizer.json" in files
    assert all(len(v) == 64 for v in files.values())
    assert m["result"]["pulsar2_command"][0] == "llm_build" and m["result"]["build_command"] == "llm_build"
    assert m["result"]["package"]["tokenizer_type"] == "HunYuan"
    assert m["inputs"]["package"]["python_demo"] is True
    assert m["inputs"]["profile"]["chip"] == "AX650"
    assert m["inputs"]["toolchain"] == {"version": "5.1-patch1", "commit": "9f2c41ab", "image_id": ""}
    assert m["result"]["toolchain"]["kind"] == "local"
    assert set(m["result"]["timings_s"]) == {"build", "package"}


def test_rerun_is_a_no_op(built_ax650, tiny_hunyuan, build_dir, local_pulsar2):
    before = tree_digest(built_ax650)
    done = run_cmd(
        ["make", "build-ax650", f"MODEL={tiny_hunyuan}"], env={"BUILD_DIR": str(build_dir), **local_pulsar2}
    )
    assert done.returncode == 0
    assert "is up to date" in done.stdout
    assert tree_digest(built_ax650) == before


def test_ax620e_through_docker(quantized_hunyuan, tiny_hunyuan, build_dir, docker_pulsar2, tmp_path):
    out = tmp_path / "ax620e"
    done = run_cmd(
        ["make", "build-ax620e", f"MODEL={tiny_hunyuan}", f"ARGS=--output {out} --bundle"],
        env={"BUILD_DIR": str(build_dir), **docker_pulsar2},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "loading" in done.stdout and "into Docker (once)" in done.stdout
    record = axmodel_record(out)
    assert " ".join(record["argv"][5:]) == AX620E_NOTES
    pulsar2_argv = load_json(out / "manifest.json")["result"]["pulsar2_command"]
    assert pulsar2_argv[2] == "/data/input" and pulsar2_argv[4] == "/data/output"
    assert record["env"] == {}
    runs = [c for c in docker_calls(docker_pulsar2) if c[:1] == ["run"]]
    build_run = runs[-1]
    assert "--privileged" not in build_run and "--net" not in build_run
    assert build_run[build_run.index("--network") + 1] == "none"
    mounts = [build_run[i + 1] for i, a in enumerate(build_run) if a == "-v"]
    assert mounts[0] == f"{quantized_hunyuan}:/data/input:ro" and mounts[1].endswith(":/data/output")
    assert not [a for a in build_run if a.startswith("FLOAT_MATMUL_USE_CONV_EU")]
    m = load_json(out / "manifest.json")
    assert m["inputs"]["toolchain"]["image_id"].startswith("sha256:")
    assert (tmp_path / "ax620e.tar.gz").is_file()


def test_check_level_1_import_error_is_success(quantized_hunyuan, local_pulsar2, tmp_path):
    out = tmp_path / "checked"
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
            "--check-level",
            "1",
        ],
        env=local_pulsar2,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert "ImportError: Loading a GPTQ quantized model requires gptqmodel" in done.stdout
    assert "its image has no gptqmodel, a known limitation" in done.stdout
    assert " -c 1 " in " ".join(axmodel_record(out)["argv"]) + " "


def test_fresh_checkout_quantizes_first(built_llama_ax650):
    """`make build-ax650` where nothing is quantized yet quantizes first (the fixture checks it did)."""
    assert (built_llama_ax650.with_name("gptq-int4") / "manifest.json").is_file()
    assert (built_llama_ax650 / "llama_post.axmodel").is_file()


def test_make_all_twice_runs_nothing_the_second_time(make_all_run, tiny_hunyuan, quantized_hunyuan):
    build_dir = quantized_hunyuan.parent.parent
    assert "[quantize]" not in make_all_run.stdout  # `make quantize` made it: make reuses it
    assert (quantized_hunyuan.with_name("gptq-int4-verify") / "PASSED").is_file()
    verified = load_json(quantized_hunyuan.with_name("gptq-int4-verify") / "verify.json")
    assert set(verified["results"]["emulated"]) == {"ax650+ax620e"}, "make all verifies the chips it builds"
    assert (quantized_hunyuan.with_name("ax620e") / "manifest.json").is_file()
    make_all = ["make", "all", f"MODEL={tiny_hunyuan}", f"VERIFY_ARGS={TINY_MODEL_THRESHOLDS}"]
    second = run_cmd(make_all, env={"BUILD_DIR": str(build_dir), "PULSAR2_BIN": "/nonexistent"})
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "nox" not in second.stdout, second.stdout


def build(*args, env):
    return run_cmd(["nox", "-s", "build-ax650", "--", *args], env=env)


def one_error(done) -> str:
    output = done.stdout + done.stderr
    lines = [ln for ln in output.splitlines() if "build: error:" in ln or "aborted:" in ln]
    assert lines, output[-3000:]
    return lines[-1]


def rebuild_fails(good_build, checkpoint, env, *args) -> str:
    """Force a rebuild over a good build that must fail; the good build and its folder stay clean."""
    before = tree_digest(good_build)
    done = build("--input", str(checkpoint), "--output", str(good_build), "--force", *args, env=env)
    assert done.returncode != 0
    assert tree_digest(good_build) == before
    assert not [p for p in good_build.parent.iterdir() if p.name.startswith(".")]
    return one_error(done)


@pytest.fixture
def good_build(built_ax650, tmp_path):
    copy = tmp_path / "good" / "ax650"
    shutil.copytree(built_ax650, copy)
    return copy


@pytest.mark.parametrize(
    ("env_extra", "args", "expected"),
    [
        (
            {"FAKE_PULSAR2_FAIL": "crash"},
            [],
            "failed before `build llm model done!`: RuntimeError: NPU graph",
        ),
        (
            {"FAKE_PULSAR2_FAIL": "kill"},
            ["--parallel", "4"],
            "killed by SIGKILL before finishing (probably out of memory); "
            "retry with a lower --parallel than 4",
        ),
        (
            {"FAKE_PULSAR2_FAIL": "missing-file"},
            [],
            "1 expected file(s) are missing: hunyuan_v1_dense_post.axmodel",
        ),
        ({"FAKE_PULSAR2_FAIL": "check-mismatch"}, ["--check-level", "1"], "its check failed: "),
        ({}, ["--kv-cache-len", "1000"], "last_kv_cache_len 1024 must be below kv_cache_len 1000"),
        ({}, ["--prefill-len", "96"], "is not a positive multiple of prefill_len 96"),
        ({"PULSAR2_BIN": "/nonexistent/pulsar2"}, [], "PULSAR2_BIN=/nonexistent/pulsar2 does not exist"),
    ],
)
def test_failures_keep_the_earlier_build(
    env_extra, args, expected, good_build, quantized_hunyuan, local_pulsar2
):
    error = rebuild_fails(good_build, quantized_hunyuan, {**local_pulsar2, **env_extra}, *args)
    assert expected in error
    assert "Traceback" not in error


def test_failed_build_keeps_its_log(good_build, quantized_hunyuan, local_pulsar2):
    done = build(
        "--input",
        str(quantized_hunyuan),
        "--output",
        str(good_build),
        "--force",
        env={**local_pulsar2, "FAKE_PULSAR2_FAIL": "crash"},
    )
    assert done.returncode != 0
    log = good_build.with_name("ax650.failed.log")
    assert "RuntimeError: NPU graph lowering failed" in log.read_text()


def test_pulsar2_bin_not_executable(quantized_hunyuan, tmp_path):
    fake = tmp_path / "pulsar2"
    fake.write_text("#!/bin/sh\n")
    done = build(
        "--input", str(quantized_hunyuan), "--output", str(tmp_path / "o"), env={"PULSAR2_BIN": str(fake)}
    )
    assert "is not executable" in one_error(done)


@pytest.mark.parametrize(
    ("env_extra", "expected"),
    [
        ({"PULSAR2_IMAGE_TAR": ""}, "Docker image pulsar2:5.1 is not loaded; get Axera's ax_pulsar2_"),
        (
            {"PULSAR2_IMAGE_TAR": "/nonexistent.tar.gz"},
            "PULSAR2_IMAGE_TAR=/nonexistent.tar.gz does not exist",
        ),
        ({"PULSAR2_IMAGE": "pulsar2:9.9"}, "did not provide pulsar2:9.9 (it has pulsar2:5.1)"),
        ({"DOCKER": "/nonexistent/docker"}, "Docker CLI `/nonexistent/docker` not found; set PULSAR2_BIN"),
        ({"FAKE_DOCKER_NO_DAEMON": "1"}, "Docker is not usable: Cannot connect to the Docker daemon"),
    ],
)
def test_docker_problems(env_extra, expected, quantized_hunyuan, docker_pulsar2, good_build):
    assert expected in rebuild_fails(good_build, quantized_hunyuan, {**docker_pulsar2, **env_extra})


def test_bad_inputs(quantized_hunyuan, local_pulsar2, tmp_path):
    cases = {
        "missing": (["--input", str(tmp_path / "nope")], "does not exist; run `make quantize` first"),
        "not-a-checkpoint": (["--input", str(tmp_path)], "has no config.json"),
        "output-unwritable": (
            ["--input", str(quantized_hunyuan), "--output", "/proc/x/y"],
            "cannot write under",
        ),
    }
    for name, (args, expected) in cases.items():
        done = build(*args, env=local_pulsar2)
        assert done.returncode != 0, name
        assert expected in one_error(done), name


def test_unknown_chip_profile(quantized_hunyuan, local_pulsar2):
    done = run_cmd(
        ["nox", "-s", "build", "--", "--profile", "ax999", "--input", str(quantized_hunyuan)],
        env=local_pulsar2,
    )
    assert "unknown chip profile 'ax999'; available: ax620e, ax620e-1k, ax630c, ax650" in one_error(done)


def test_unsupported_model_type(quantized_hunyuan, local_pulsar2, tmp_path):
    odd = tmp_path / "odd"
    shutil.copytree(quantized_hunyuan, odd)
    config = load_json(odd / "config.json")
    config["model_type"] = "brand_new_arch"
    (odd / "config.json").write_text(json.dumps(config))
    # Unknown to the evidence: a warning, and pulsar2 decides (with its own message, ax-llm #32's).
    done = build("--input", str(odd), "--output", str(tmp_path / "o"), env=local_pulsar2)
    assert "no evidence that pulsar2 builds it" in done.stdout + done.stderr
    assert (
        "CodeException: (<LLMErrorCode.LLM_PREPARE: 0>, AssertionError('model_type error brand_new_arch'))"
        in (one_error(done))
    )
    # Known to be refused: one line before pulsar2 starts.
    config["model_type"] = "llava"
    (odd / "config.json").write_text(json.dumps(config))
    done = build("--input", str(odd), "--output", str(tmp_path / "o"), env=local_pulsar2)
    assert (
        "llava: pulsar2 refuses it (AssertionError: model_type error llava; AXERA-TECH/ax-llm issue #12)"
        in (one_error(done))
    )
    assert "prepare llm model" not in done.stdout


def test_embedding_shape_mismatch_fails_packaging(quantized_hunyuan, local_pulsar2, tmp_path):
    odd = tmp_path / "odd"
    shutil.copytree(quantized_hunyuan, odd)
    config = load_json(odd / "config.json")
    config["vocab_size"] += 1
    (odd / "config.json").write_text(json.dumps(config))
    done = build("--input", str(odd), "--output", str(tmp_path / "o"), env=local_pulsar2)
    assert done.returncode != 0
    assert "packaging failed: embeddings: error: embedding table is [" in one_error(done)
    assert "but config.json says vocab_size x hidden_size" in one_error(done)
    assert not (tmp_path / "o").exists()
