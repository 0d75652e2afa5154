"""Chip profiles, pulsar2 argv, toolchain commands and the build verdict (no pulsar2 run here)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from axera_pipeline.common.cli import UserError
from axera_pipeline.toolchain import backends as toolchain
from axera_pipeline.toolchain import profiles, pulsar2_log

NOTES_LAST = [f"--last_kv_cache_len {n}" for n in range(128, 1025, 128)]
# The original notes' commands (shared/seed/model_convert_README.md), with -c 0 as Axera now uses.
AX650_NOTES = " ".join(
    [
        "--hidden_state_type bf16 --prefill_len 128 --kv_cache_len 2047",
        *NOTES_LAST,
        "--chip AX650 -c 0 --parallel 8",
    ]
)
AX620E_NOTES = " ".join(
    [
        "--hidden_state_type bf16 -w s4 --prefill_len 128 --kv_cache_len 2047",
        *NOTES_LAST,
        "--chip AX620E -c 0 --parallel 32",
    ]
)


def argv_tail(p: profiles.Profile) -> str:
    return " ".join(profiles.pulsar2_args(p, "IN", "OUT")[5:])


def test_profiles_reproduce_the_notes_flag_for_flag():
    ax650 = profiles.load("ax650")
    assert profiles.pulsar2_args(ax650, "IN", "OUT")[:5] == [
        "llm_build",
        "--input_path",
        "IN",
        "--output_path",
        "OUT",
    ]
    assert argv_tail(ax650) == AX650_NOTES
    assert ax650.env == {"FLOAT_MATMUL_USE_CONV_EU": "1"}
    ax620e = profiles.load("ax620e")
    assert argv_tail(ax620e) == AX620E_NOTES
    assert ax620e.env == {}


def test_context_settings_are_visible():
    assert profiles.load("ax650").context_len == 2048
    assert profiles.load("ax650").max_prefill_len == 1024
    one_k = profiles.load("ax620e-1k")
    assert (one_k.context_len, one_k.max_prefill_len, one_k.chip) == (1024, 512, "AX620E")
    assert profiles.load("ax630c").chip == "AX620E"


def test_every_shipped_profile_is_valid():
    assert {"ax650", "ax620e", "ax620e-1k", "ax630c"} <= set(profiles.available())
    for name in profiles.available():
        profiles.load(name)


def test_overrides():
    p = profiles.with_overrides(
        profiles.load("ax650"), parallel=2, check_level=1, kv_cache_len=1023, max_prefill_len=512
    )
    assert (p.parallel, p.check_level, p.kv_cache_len) == (2, 1, 1023)
    assert p.last_kv_cache_len == (128, 256, 384, 512)
    q = profiles.with_overrides(profiles.load("ax650"), prefill_len=256, last_kv_cache_len=[256, 512])
    assert q.last_kv_cache_len == (256, 512)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"kv_cache_len": 1000}, "last_kv_cache_len 1024 must be below kv_cache_len 1000"),
        ({"prefill_len": 100}, "last_kv_cache_len 128 is not a positive multiple of prefill_len 100"),
        ({"last_kv_cache_len": [128, 128]}, "repeated values"),
        ({"parallel": 0}, "parallel must be a positive integer"),
        ({"check_level": 3}, "check_level must be 0, 1 or 2"),
        ({"chip": "AX999"}, "unknown chip 'AX999'"),
        ({"weight_type": "s3"}, "weight_type 's3' is not one of"),
        ({"hidden_state_type": "int8"}, "hidden_state_type 'int8' is not one of"),
        ({"max_prefill_len": 200}, "--max-prefill-len 200 must be a multiple"),
    ],
)
def test_inconsistent_settings_are_refused(changes, message):
    with pytest.raises(UserError, match=message):
        profiles.with_overrides(profiles.load("ax650"), **changes)


def test_profile_files_are_checked(tmp_path):
    with pytest.raises(UserError, match="unknown chip profile 'ax999'; available: ax620e"):
        profiles.load("ax999")
    bad = tmp_path / "typo.yaml"
    bad.write_text(
        "chip: AX650\nprefill_len: 128\nkv_cache_len: 2047\nlast_kv_cache_len: [128]\nparalel: 4\n"
    )
    with pytest.raises(UserError, match="unknown field"):
        profiles.load(str(bad))
    bad.write_text("chip: AX650\n")
    with pytest.raises(UserError, match="missing field"):
        profiles.load(str(bad))
    bad.write_text("chip: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        profiles.load(str(bad))
    new_chip = tmp_path / "mychip.yaml"
    new_chip.write_text("chip: AX620E\nprefill_len: 64\nkv_cache_len: 511\nlast_kv_cache_len: [64, 128]\n")
    assert profiles.load(str(new_chip)).name == "mychip"


def test_docker_command_mounts_only_what_it_needs():
    chain = toolchain.Toolchain("docker", "/usr/bin/docker", image="pulsar2:5.1")
    cmd = chain.command(
        ["llm_build", "--chip", "AX650"], {"FLOAT_MATMUL_USE_CONV_EU": "1"}, (Path("/in"), Path("/out"))
    )
    assert cmd[:2] == ["/usr/bin/docker", "run"]
    assert "--privileged" not in cmd and "host" not in cmd
    assert cmd[cmd.index("--network") + 1] == "none"
    assert "/in:/data/input:ro" in cmd and "/out:/data/output" in cmd
    assert "FLOAT_MATMUL_USE_CONV_EU=1" in cmd
    assert cmd[-4:-1] == ["/bin/bash", "pulsar2:5.1", "-c"]
    assert cmd[-1].startswith("pulsar2 llm_build --chip AX650; rc=$?; chown -R ")


def test_local_command():
    chain = toolchain.Toolchain("local", "/opt/pulsar2/bin/pulsar2")
    assert chain.command(["llm_build"], {}, (Path("/i"), Path("/o"))) == [
        "/opt/pulsar2/bin/pulsar2",
        "llm_build",
    ]


def test_versions():
    assert toolchain.parse_version("version: 5.1-patch1\ncommit: 9f2c41ab\n") == ("5.1-patch1", "9f2c41ab")
    toolchain.check_supported("5.1-patch1")
    toolchain.check_supported("6.0-lite")
    with pytest.raises(UserError, match="llm_build2"):
        toolchain.check_supported("7.0")


def test_local_binary_checks(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        toolchain.local(str(tmp_path / "pulsar2"))
    (tmp_path / "pulsar2").write_text("#!/bin/sh\n")
    with pytest.raises(UserError, match="is not executable"):
        toolchain.local(str(tmp_path / "pulsar2"))


def feed(lines: list[str]) -> pulsar2_log.BuildLog:
    log = pulsar2_log.BuildLog()
    for line in lines:
        log.feed(line)
    return log


DONE = "2026-01-21 11:04:41.387 | SUCCESS  | yamain.command.llm_build:llm_build:364 - build llm model done!"
IMPORT_ERROR = [
    "Traceback (most recent call last):",
    '  File "/x/quantizer_gptq.py", line 67, in validate_environment',
    "    raise ImportError(",
    "ImportError: Loading a GPTQ quantized model requires gptqmodel (`pip install gptqmodel`) or auto-gptq",
]


def test_verdict_success_and_known_import_error():
    assert pulsar2_log.judge(0, feed([DONE]), [], 8).ok
    verdict = pulsar2_log.judge(1, feed([DONE, "`torch_dtype` is deprecated!", *IMPORT_ERROR]), [], 8)
    assert verdict.ok and "no gptqmodel" in verdict.message


def test_verdict_failures():
    crash = pulsar2_log.judge(
        1, feed(["building llm decode layers 3/32", "RuntimeError: lowering failed"]), [], 8
    )
    assert not crash.ok and crash.message.endswith("RuntimeError: lowering failed")
    for code in (-signal.SIGKILL, 137):
        killed = pulsar2_log.judge(code, feed(["building llm decode layers 3/32"]), [], 8)
        assert not killed.ok and "SIGKILL" in killed.message and "lower --parallel than 8" in killed.message
    missing = pulsar2_log.judge(0, feed([DONE]), ["a_post.axmodel"], 8)
    assert not missing.ok and "missing: a_post.axmodel" in missing.message
    import_before_done = pulsar2_log.judge(1, feed(IMPORT_ERROR), [], 8)
    assert not import_before_done.ok
    other_after = pulsar2_log.judge(1, feed([DONE, "... | ERROR    | layer 0 mismatch"]), [], 8)
    assert not other_after.ok and "check failed" in other_after.message
    silent = pulsar2_log.judge(2, feed(["usage: pulsar2 ..."]), [], 8)
    assert not silent.ok and "exit status 2" in silent.message
