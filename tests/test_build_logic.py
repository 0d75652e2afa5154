"""Chip profiles, pulsar2 argv for both commands, backends and the build verdict (no pulsar2 runs)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from axera_pipeline.common.cli import UserError
from axera_pipeline.toolchain import backends, profiles, pulsar2_args, pulsar2_log
from axera_pipeline.toolchain.backends import docker, licence, local

NOTES_LAST = [f"--last_kv_cache_len {n}" for n in range(128, 1025, 128)]
# The original notes' commands (AXERA-TECH/HY-MT1.5-1.8B.axera model_convert/README.md), with -c 0
# as Axera now uses.
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
# The same builds on llm_build2 (docs/build.md: the mapping of the notes' AX650 command).
AX650_V2 = (
    "--hidden_state_type bf16 --prefill_len 1024 --prefill_step_size 128 --max_context 2048 "
    "--chip AX650 -c 0 --parallel 8"
)
AX620E_V2 = (
    "--hidden_state_type bf16 -w s4 --prefill_len 1024 --prefill_step_size 128 --max_context 2048 "
    "--chip AX620E -c 0 --parallel 32"
)


def argv_tail(p: profiles.Profile, command: str = "llm_build") -> str:
    return " ".join(pulsar2_args.render(command, p, "IN", "OUT")[5:])


@pytest.mark.parametrize("command", ["llm_build", "llm_build2"])
def test_argv_starts_with_the_command_and_paths(command):
    assert pulsar2_args.render(command, profiles.load("ax650"), "IN", "OUT")[:5] == [
        command,
        "--input_path",
        "IN",
        "--output_path",
        "OUT",
    ]


@pytest.mark.parametrize(
    ("profile", "command", "expected"),
    [
        ("ax650", "llm_build", AX650_NOTES),
        ("ax620e", "llm_build", AX620E_NOTES),
        ("ax650", "llm_build2", AX650_V2),
        ("ax620e", "llm_build2", AX620E_V2),
    ],
)
def test_profiles_reproduce_the_notes_flag_for_flag(profile, command, expected):
    assert argv_tail(profiles.load(profile), command) == expected


def test_environment_per_chip():
    assert profiles.load("ax650").env == {"FLOAT_MATMUL_USE_CONV_EU": "1"}
    assert profiles.load("ax620e").env == {}


def test_extra_prefill_chunk_is_a_visible_setting():
    p = profiles.with_overrides(profiles.load("ax650"), extra_prefill_chunk=True)
    assert "--prefill_len 1152 --prefill_step_size 128" in argv_tail(p, "llm_build2")
    assert argv_tail(p, "llm_build") == AX650_NOTES  # llm_build says it with its series


def test_context_settings_are_visible():
    ax650 = profiles.load("ax650")
    assert (ax650.context_len, ax650.kv_cache_len, ax650.max_prefill_len) == (2048, 2047, 1024)
    one_k = profiles.load("ax620e-1k")
    assert (one_k.context_len, one_k.max_prefill_len, one_k.chip) == (1024, 512, "AX620E")
    assert argv_tail(one_k, "llm_build2").startswith("--hidden_state_type bf16 -w s4 --prefill_len 512 ")
    assert "--kv_cache_len 1023 --last_kv_cache_len 128 --last_kv_cache_len 256" in argv_tail(one_k)
    assert profiles.load("ax630c").chip == "AX620E"


def test_every_shipped_profile_is_valid_for_both_commands():
    assert {"ax650", "ax620e", "ax620e-1k", "ax630c"} <= set(profiles.available())
    for name in profiles.available():
        for command in pulsar2_args.RENDER:
            pulsar2_args.render(command, profiles.load(name), "IN", "OUT")


def test_overrides_in_both_vocabularies():
    p = profiles.with_overrides(
        profiles.load("ax650"), parallel=2, check_level=1, kv_cache_len=1023, max_prefill_len=512
    )
    assert (p.parallel, p.check_level, p.context_len) == (2, 1, 1024)
    assert p.history_lengths == (128, 256, 384, 512)
    assert "--prefill_len 512 --prefill_step_size 128 --max_context 1024" in argv_tail(p, "llm_build2")
    q = profiles.with_overrides(profiles.load("ax650"), prefill_len=256, last_kv_cache_len=[256, 512])
    assert (q.prefill_chunk, q.history_lengths, q.max_prefill_len) == (256, (256, 512), 512)
    r = profiles.with_overrides(profiles.load("ax650"), context_len=4096)
    assert "--max_context 4096" in argv_tail(r, "llm_build2") and "--kv_cache_len 4095" in argv_tail(r)


@pytest.mark.parametrize(
    ("changes", "command", "message"),
    [
        ({"kv_cache_len": 1000}, "llm_build", "last_kv_cache_len 1024 must be below kv_cache_len 1000"),
        ({"kv_cache_len": 1000}, "llm_build2", "prefill_len 1024 must be below max_context 1001"),
        (
            {"prefill_len": 100},
            "llm_build",
            "last_kv_cache_len 1024 is not a positive multiple of prefill_len 100",
        ),
        ({"last_kv_cache_len": [128, 128]}, "llm_build", "repeated values"),
        ({"context_len": 1024}, "llm_build2", "prefill_len 1024 must be below max_context 1024"),
    ],
)
def test_each_command_checks_its_limits_in_its_own_words(changes, command, message):
    p = profiles.with_overrides(profiles.load("ax650"), **changes)
    with pytest.raises(UserError, match=message):
        pulsar2_args.render(command, p, "IN", "OUT")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"parallel": 0}, "parallel must be a positive integer"),
        ({"check_level": 3}, "check_level must be 0, 1 or 2"),
        ({"chip": "AX999"}, "unknown chip 'AX999'"),
        ({"weight_type": "s3"}, "weight_type 's3' is not one of"),
        ({"hidden_state_type": "int8"}, "hidden_state_type 'int8' is not one of"),
        ({"max_prefill_len": 200}, "--max-prefill-len 200 must be a multiple"),
        ({"context_len": 0}, "context_len must be a positive integer"),
    ],
)
def test_inconsistent_settings_are_refused(changes, message):
    with pytest.raises(UserError, match=message):
        profiles.with_overrides(profiles.load("ax650"), **changes)


def test_profile_files_are_checked(tmp_path):
    with pytest.raises(UserError, match="unknown chip profile 'ax999'; available: ax620e"):
        profiles.load("ax999")
    bad = tmp_path / "typo.yaml"
    bad.write_text("chip: AX650\ncontext_len: 2048\nprefill_chunk: 128\nmax_prefill_len: 1024\nparalel: 4\n")
    with pytest.raises(UserError, match="unknown field"):
        profiles.load(str(bad))
    bad.write_text("chip: AX650\n")
    with pytest.raises(UserError, match="missing field"):
        profiles.load(str(bad))
    bad.write_text("chip: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        profiles.load(str(bad))
    new_chip = tmp_path / "mychip.yaml"
    new_chip.write_text("chip: AX620E\ncontext_len: 512\nprefill_chunk: 64\nmax_prefill_len: 128\n")
    mine = profiles.load(str(new_chip))
    assert mine.name == "mychip" and "--last_kv_cache_len 64 --last_kv_cache_len 128" in argv_tail(mine)


def test_docker_command_mounts_only_what_it_needs(tmp_path):
    key = tmp_path / "pulsar2.v2c"
    key.write_text("licence")
    chain = backends.Toolchain("docker", "/usr/bin/docker", image="pulsar2:7.0", licences=(key,))
    cmd = chain.command(
        ["llm_build2", "--chip", "AX650"],
        {"FLOAT_MATMUL_USE_CONV_EU": "1"},
        (Path("/in"), Path("/out")),
        "axera-pipeline-1",
    )
    assert cmd[:2] == ["/usr/bin/docker", "run"]
    assert "--privileged" not in cmd and "host" not in cmd
    assert cmd[cmd.index("--network") + 1] == "none"
    assert cmd[cmd.index("--name") + 1] == "axera-pipeline-1"
    mounts = [cmd[i + 1] for i, a in enumerate(cmd) if a == "-v"]
    assert mounts == [
        "/in:/data/input:ro",
        "/out:/data/output",
        f"{key}:{licence.IN_CONTAINER_DIR}/pulsar2.v2c:ro",
    ]
    assert "FLOAT_MATMUL_USE_CONV_EU=1" in cmd
    assert cmd[-4:-1] == ["/bin/bash", "pulsar2:7.0", "-c"]
    assert cmd[-1].startswith("pulsar2 llm_build2 --chip AX650; rc=$?; chown -R ")


def test_local_command():
    chain = backends.Toolchain("local", "/opt/pulsar2/bin/pulsar2")
    assert chain.command(["llm_build"], {}, (Path("/i"), Path("/o"))) == [
        "/opt/pulsar2/bin/pulsar2",
        "llm_build",
    ]


def test_version_and_commands_come_from_the_toolchain():
    assert backends.parse_version("version: 5.1-patch1\ncommit: 9f2c41ab\n") == ("5.1-patch1", "9f2c41ab")
    assert backends.parse_commands("usage: pulsar2 [-h] {version,build,llm_build} ...") == ("llm_build",)
    assert backends.parse_commands("{version,llm_build,llm_build2}") == ("llm_build", "llm_build2")
    assert backends.parse_commands("usage: pulsar2 [-h] {version,llm_build2} ...") == ("llm_build2",)
    assert backends.parse_commands("usage: pulsar2 [-h] {version,build} ...") == ()


def test_which_command_a_build_uses():
    assert backends.choose(("llm_build", "llm_build2")) == "llm_build"
    assert backends.choose(("llm_build2",)) == "llm_build2"
    assert backends.choose(("llm_build", "llm_build2"), "llm_build2") == "llm_build2"
    with pytest.raises(UserError, match="PULSAR2_COMMAND=llm_build, but this pulsar2 only has llm_build2"):
        backends.choose(("llm_build2",), "llm_build")
    with pytest.raises(UserError, match="PULSAR2_COMMAND=build3 is not one of llm_build, llm_build2"):
        backends.choose(("llm_build",), "build3")


def test_licence_files(tmp_path):
    assert licence.files("") == ()
    with pytest.raises(UserError, match="does not exist"):
        licence.files(str(tmp_path / "nope.v2c"))
    with pytest.raises(UserError, match="folder without .v2c files"):
        licence.files(str(tmp_path))
    (tmp_path / "a.v2c").write_text("x")
    (tmp_path / "notes.txt").write_text("not mounted")
    assert [p.name for p in licence.files(str(tmp_path))] == ["a.v2c"]
    with pytest.raises(UserError, match="is not a .v2c licence file"):
        licence.files(str(tmp_path / "notes.txt"))
    assert licence.needs_licence("7.0") and not licence.needs_licence("6.0-lite")


def test_local_binary_checks(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        local.find(str(tmp_path / "pulsar2"))
    (tmp_path / "pulsar2").write_text("#!/bin/sh\n")
    with pytest.raises(UserError, match="is not executable"):
        local.find(str(tmp_path / "pulsar2"))
    assert docker.DEFAULT_IMAGE == "pulsar2:5.1"


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


def test_markers_are_matched_by_message_not_module_path():
    where = "axnn.yamain.command.llm_build2:llm_build2"
    done_7x = f"2026-06-02 09:13:40.112 | SUCCESS  | {where}:364 - build llm model done!"
    assert pulsar2_log.judge(0, feed([done_7x]), [], 8).ok
    error_7x = f"2026-06-02 09:13:40.112 | ERROR    | {where}:141 - boom"
    failed = pulsar2_log.judge(1, feed([error_7x]), [], 8)
    assert not failed.ok and failed.message.endswith("boom")


def test_missing_licence_is_one_line_saying_what_to_set():
    line = (
        "2026-06-02 09:13:40.112 | ERROR    | axnn.yamain.common.license:check:42 - "
        "Sentinel key not found (H0007)"
    )
    verdict = pulsar2_log.judge(1, feed([line]), ["x_post.axmodel"], 8)
    assert not verdict.ok and "Sentinel key not found (H0007)" in verdict.message
    assert "set PULSAR2_LICENSE" in verdict.message


def test_emulation_runs_once_per_distinct_numeric_setting(tmp_path):
    from axera_pipeline.gptq import chip_numerics

    groups = chip_numerics.distinct(["ax650", "ax620e", "ax620e-1k", "ax650"])
    assert list(groups.values()) == [["ax650", "ax620e", "ax620e-1k"]]
    (numerics,) = groups
    assert (numerics.hidden_state_type, numerics.post_weight_type) == ("bf16", "s8")
    own = tmp_path / "fp16.yaml"
    own.write_text("chip: AX650\nhidden_state_type: fp16\npost_weight_type: bf16\n")
    assert len(chip_numerics.distinct(["ax650", str(own)])) == 2


def test_the_weights_a_profile_holds_split_the_emulation_by_the_checkpoint_s_bits(tmp_path):
    """`-w s4` keeps a 4-bit checkpoint's grid but requantizes an 8-bit one: on BITS=8, AX620E is its
    own pass; a weight type the emulation cannot model is refused in one line."""
    from axera_pipeline.common.cli import UserError
    from axera_pipeline.gptq import chip_numerics

    four = chip_numerics.distinct(["ax650", "ax620e"], bits=4)
    assert list(four.values()) == [["ax650", "ax620e"]] and next(iter(four)).weight_type is None
    eight = chip_numerics.distinct(["ax650", "ax620e"], bits=8)
    assert list(eight.values()) == [["ax650"], ["ax620e"]]
    assert [n.weight_type for n in eight] == [None, "s4"] and "decoder weights s4" in list(eight)[1].label
    fp8 = tmp_path / "fp8.yaml"
    fp8.write_text("chip: AX650\nweight_type: fp8_e4m3\n")
    with pytest.raises(UserError, match="weight_type fp8_e4m3 on a 4-bit GPTQ checkpoint is not emulated"):
        chip_numerics.distinct([str(fp8)], bits=4)


@pytest.mark.parametrize(
    ("flags", "cap", "native"),
    [
        ({"avx2", "avx512f"}, None, False),
        ({"avx512f", "avx512_bf16"}, None, True),
        ({"amx_bf16", "avx512_bf16"}, "AVX512_CORE", False),
        ({"amx_bf16"}, "AVX512_CORE_AMX", True),
        ({"avx512_bf16"}, "avx2", False),
    ],
)
def test_bf16_arithmetic_is_native_only_where_the_cpu_multiplies_bf16(flags, cap, native):
    from axera_pipeline.gptq import bf16_arithmetic

    found, why = bf16_arithmetic.cpu_has_bf16(flags, cap)
    assert found is native and why


def test_bf16_arithmetic_can_be_forced(monkeypatch):
    from axera_pipeline.common.cli import UserError
    from axera_pipeline.gptq import bf16_arithmetic

    monkeypatch.setenv(bf16_arithmetic.ENV, "fp32-matmul")
    assert bf16_arithmetic.choose("cuda").mode == "fp32-matmul"
    assert bf16_arithmetic.choose("cpu", "native").mode == "native"
    monkeypatch.setenv(bf16_arithmetic.ENV, "fast")
    with pytest.raises(
        UserError, match="AXERA_BF16_ARITHMETIC='fast' is not one of auto, native, fp32-matmul"
    ):
        bf16_arithmetic.choose("cpu")
    monkeypatch.delenv(bf16_arithmetic.ENV)
    assert bf16_arithmetic.choose("cuda").mode == "native"
