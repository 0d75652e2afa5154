"""Bad input through `nox -s quantize`: one clear line, non-zero exit, earlier output untouched."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import run_cmd, tree_digest

pytestmark = pytest.mark.e2e


def quantize(*args: str, env: dict | None = None):
    return run_cmd(["nox", "-s", "quantize", "--", *args], env=env)


def error_line(done) -> str:
    output = done.stdout + done.stderr  # nox passes the script's stderr through its stdout
    lines = [ln for ln in output.splitlines() if "error:" in ln or "aborted:" in ln]
    assert len(lines) >= 1, output[-2000:]
    assert "Traceback" not in output
    return lines[0]


@pytest.fixture
def broken_models(tiny_hunyuan, tmp_path):
    """Copies of the tiny model with one thing wrong each."""
    no_config = tmp_path / "no-config"
    shutil.copytree(tiny_hunyuan, no_config)
    (no_config / "config.json").unlink()
    no_weights = tmp_path / "no-weights"
    shutil.copytree(tiny_hunyuan, no_weights)
    (no_weights / "model.safetensors").unlink()
    unsupported = tmp_path / "unsupported"
    shutil.copytree(tiny_hunyuan, unsupported)
    config = json.loads((unsupported / "config.json").read_text())
    config["model_type"] = "not_a_real_llm"
    (unsupported / "config.json").write_text(json.dumps(config))
    return {"no_config": no_config, "no_weights": no_weights, "unsupported": unsupported}


def bad_calib(tmp_path, kind: str) -> str:
    path = tmp_path / f"calib-{kind}.jsonl"
    if kind == "empty":
        path.write_text("\n")
    elif kind == "garbage":
        path.write_text('{"text": "fine"}\n{not json\n')
    elif kind == "wrong-keys":
        path.write_text('{"question": "no text field"}\n')
    return str(path)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing-model", "does not exist"),
        ("hub-offline", "cannot get nobody/no-such-model from the Hugging Face hub (HF_HUB_OFFLINE is set)"),
        ("no-config", "has no config.json"),
        ("no-weights", "has no weights"),
        ("bits-3", "invalid choice: 3"),
        ("group-96", "--group-size 96 does not divide"),
        ("calib-missing", "does not exist"),
        ("calib-empty", "is empty"),
        ("calib-garbage", "is not valid JSON"),
        ("calib-wrong-keys", "each row needs"),
        ("calib-too-small", "larger than the calibration set"),
        ("device-bad", "invalid device"),
        ("unsupported", "not supported by GPTQModel; supported: "),
    ],
)
def test_bad_input_leaves_earlier_output(case, expected, good_output, tiny_hunyuan, broken_models, tmp_path):
    model = str(tiny_hunyuan)
    extra: list[str] = []
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    if case == "hub-offline":
        model = "nobody/no-such-model"
    elif case == "missing-model":
        model = str(tmp_path / "nope")
    elif case in ("no-config", "no-weights", "unsupported"):
        model = str(broken_models[case.replace("-", "_")])
    elif case == "bits-3":
        extra = ["--bits", "3"]
    elif case == "group-96":
        extra = ["--group-size", "96"]
    elif case == "calib-missing":
        extra = ["--calib", str(tmp_path / "absent.jsonl")]
    elif case.startswith("calib-") and case != "calib-too-small":
        extra = ["--calib", bad_calib(tmp_path, case.removeprefix("calib-"))]
    elif case == "calib-too-small":
        extra = ["--calib-size", "100000"]
    elif case == "device-bad":
        extra = ["--device", "tpu"]
    before = tree_digest(good_output)
    done = quantize("--model", model, "--output", str(good_output), "--force", *extra, env=env)
    assert done.returncode != 0
    assert expected in error_line(done)
    assert tree_digest(good_output) == before


def test_output_is_a_file(tiny_hunyuan, tmp_path):
    target = tmp_path / "a-file"
    target.write_text("keep me")
    done = quantize("--model", str(tiny_hunyuan), "--output", str(target))
    assert done.returncode != 0
    assert "is not a folder" in error_line(done)
    assert target.read_text() == "keep me"


def test_output_not_writable(tiny_hunyuan):
    done = quantize("--model", str(tiny_hunyuan), "--output", "/proc/pipeline-test/out")
    assert done.returncode != 0
    assert "cannot write under /proc" in error_line(done)


def test_no_python_313(tiny_hunyuan):
    done = quantize("--model", str(tiny_hunyuan), env={"GPTQ_PYTHON": "/nonexistent/python3.13"})
    assert done.returncode != 0
    assert "GPTQ_PYTHON=/nonexistent/python3.13 is not a runnable Python" in error_line(done)


def test_unknown_stack(tiny_hunyuan):
    done = quantize("--model", str(tiny_hunyuan), env={"GPTQ_STACK": "torch9"})
    assert done.returncode != 0
    assert "GPTQ_STACK=torch9 has no lock file" in error_line(done)
