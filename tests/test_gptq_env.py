"""The GPTQ environment's lock handling and reuse logic (no environment is built here)."""

from __future__ import annotations

import json

import pytest

from axera_pipeline.host import gptq_env

LOCK = """--no-binary gptqmodel

gptqmodel==7.5.0 \\
    --hash=sha256:aaaa
    # via -r envs/gptq-torch2.9.in
torch==2.9.1 \\
    --hash=sha256:bbbb \\
    --hash=sha256:cccc
    # via gptqmodel
"""


def test_pinned_versions():
    assert gptq_env.pinned(LOCK, "torch") == "2.9.1"
    assert gptq_env.pinned(LOCK, "gptqmodel") == "7.5.0"
    assert gptq_env.pinned(LOCK, "numpy") is None


def test_without_package_drops_entry_and_hashes():
    rest = gptq_env.without_package(LOCK, "gptqmodel")
    assert "gptqmodel==" not in rest and "aaaa" not in rest
    assert "torch==2.9.1" in rest and "cccc" in rest


def test_real_locks_pin_the_documented_stacks():
    default = gptq_env.selected_stack({})
    assert default.name == "torch2.9"
    text = default.lock.read_text()
    assert gptq_env.pinned(text, "torch") == "2.9.1"
    assert gptq_env.pinned(text, "torchvision") == "0.24.1"
    assert gptq_env.pinned(text, "gptqmodel") == "7.5.0"
    assert gptq_env.pinned(text, "torchao") == "0.17.0"
    assert gptq_env.pinned(text, "requests")
    assert "--no-binary gptqmodel" in text and "--hash=sha256:" in text
    newest = gptq_env.selected_stack({"GPTQ_STACK": "torch2.14"}).lock.read_text()
    assert gptq_env.pinned(newest, "torch") == "2.14.1"
    assert gptq_env.pinned(newest, "gptqmodel") == "7.7.0"


def test_unknown_stack_lists_the_known_ones():
    with pytest.raises(gptq_env.EnvError, match="choose one of: torch2.14, torch2.9"):
        gptq_env.selected_stack({"GPTQ_STACK": "torch1"})


def test_stamp_changes_with_lock_source_and_interpreter(tmp_path):
    lock = tmp_path / "gptq-x.lock"
    lock.write_text(LOCK)
    stack = gptq_env.Stack("x", lock, "")
    base = gptq_env.stamp_of(stack, "/py", "3.13.0")
    assert base == gptq_env.stamp_of(stack, "/py", "3.13.0")
    assert base != gptq_env.stamp_of(gptq_env.Stack("x", lock, "/src"), "/py", "3.13.0")
    assert base != gptq_env.stamp_of(stack, "/py", "3.13.1")
    lock.write_text(LOCK + "# edited\n")
    assert base != gptq_env.stamp_of(stack, "/py", "3.13.0")


def test_is_current_needs_python_and_matching_stamp(tmp_path, monkeypatch):
    monkeypatch.setenv("GPTQ_ENV_DIR", str(tmp_path / "venv"))
    stack = gptq_env.Stack("x", tmp_path / "lock", "")
    assert not gptq_env.is_current(stack, "s1")
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    (tmp_path / "venv" / "bin" / "python").write_text("")
    (tmp_path / "venv" / gptq_env.STAMP).write_text("s1\n")
    assert gptq_env.is_current(stack, "s1")
    assert not gptq_env.is_current(stack, "s2")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "https://github.com/ModelCloud/GPTQModel.git@v7.5.0",
            "gptqmodel @ git+https://github.com/ModelCloud/GPTQModel.git@v7.5.0",
        ),
        (
            "git+https://example.org/GPTQModel.git@main",
            "gptqmodel @ git+https://example.org/GPTQModel.git@main",
        ),
    ],
)
def test_source_requirement_urls(source, expected):
    assert gptq_env._source_requirement(source) == expected


def test_source_requirement_checkout(tmp_path):
    (tmp_path / "setup.py").write_text("")
    assert gptq_env._source_requirement(str(tmp_path)) == str(tmp_path.resolve())
    with pytest.raises(gptq_env.EnvError, match="neither a local folder nor a git URL"):
        gptq_env._source_requirement("not-a-thing")


def test_quantize_time_comes_from_measured_costs(tmp_path):
    from axera_pipeline.common import model_shape
    from axera_pipeline.common import quantize_time as estimate

    profile = tmp_path / "profile.json"
    assert "not measured on this machine yet" in estimate.cpu_minutes(
        "tencent/HY-MT1.5-1.8B", profile, profile
    )
    hymt_layer = model_shape.layer_weights(estimate.KNOWN_CONFIGS["tencent/HY-MT1.5-1.8B"])
    assert hymt_layer == 2 * 2048 * 2048 + 2 * 2048 * 512 + 3 * 2048 * 6144
    phase = {"forward": 20.0, "hessian": 20.0, "solve": 15.0, "pack": 1.0, "offload": 4.0, "other": 10.0}
    measured = {
        "phases": {name: {"seconds": seconds} for name, seconds in phase.items()},
        "layer_weights": hymt_layer,
        "calibration_tokens": 20000,
    }
    profile.write_text(json.dumps({"figures": {"results": {"defaults": measured}}}))
    # 40 s per 20k tokens and 20 s per layer; 32 layers at 10k tokens: 10 s + 32 x (20 + 20) s = 21.5 min.
    gemma = tmp_path / "gemma.json"
    gemma.write_text(json.dumps({"figures": {"calibration_tokens": 10000}}))
    assert estimate.cpu_minutes("tencent/HY-MT1.5-1.8B", profile, gemma).startswith(
        "~22 min for 32 layers and 10000"
    )
    assert "profile's own calibration" in estimate.cpu_minutes(
        "tencent/HY-MT1.5-1.8B", profile, tmp_path / "no"
    )
    assert "unknown for this model" in estimate.cpu_minutes("someone/else", profile, gemma)
    # This machine's rates scale the profile machine's: forward passes by bf16, the rest by fp32.
    measured["matmul_gflops"] = {"fp32": 200.0, "bf16": 800.0}
    profile.write_text(json.dumps({"figures": {"results": {"defaults": measured}}}))
    # Forward as measured, everything else twice as slow: 20 s + 32 x (10 + 20 + 40) s = 37.7 min.
    slower_fp32 = estimate.cpu_minutes(
        "tencent/HY-MT1.5-1.8B", profile, gemma, {"fp32": 100.0, "bf16": 800.0}
    )
    assert slower_fp32.startswith("~38 min for 32 layers") and "fp32 100 and bf16 800" in slower_fp32


def crashing_once(tmp_path) -> list[str]:
    """A command that dies of a segmentation fault the first time and succeeds after."""
    seen = tmp_path / "seen"
    return ["sh", "-c", f'[ -e "{seen}" ] && exit 0; touch "{seen}"; kill -SEGV $$']


def test_a_crashed_idempotent_step_runs_once_more(tmp_path) -> None:
    logged: list[str] = []
    gptq_env._run(crashing_once(tmp_path), logged.append, retry_crash=True)
    assert any("crashed (SIGSEGV); running it once more" in line for line in logged)


def test_a_crash_is_not_retried_unless_asked(tmp_path) -> None:
    with pytest.raises(gptq_env.EnvError, match="exit status -11"):
        gptq_env._run(crashing_once(tmp_path), lambda _: None)


def test_an_ordinary_failure_is_not_retried(tmp_path) -> None:
    count = tmp_path / "count"
    cmd = ["sh", "-c", f'echo x >> "{count}"; exit 3']
    with pytest.raises(gptq_env.EnvError, match="exit status 3"):
        gptq_env._run(cmd, lambda _: None, retry_crash=True)
    assert count.read_text() == "x\n"


def test_two_crashes_fail(tmp_path) -> None:
    with pytest.raises(gptq_env.EnvError, match="exit status -11"):
        gptq_env._run(["sh", "-c", "kill -SEGV $$"], lambda _: None, retry_crash=True)
