"""End-to-end: the pulsar2 toolchain environment (`nox -s toolchain`), pulsar2 5.x/6.x/7.x, llm_build2,
the 7.x licence, the package form and failing fast before quantizing, with the stand-ins in tests/fakes/."""

from __future__ import annotations

import json
import shutil
import tarfile

import pytest
from conftest import FAKES, docker_calls, docker_env, run_cmd
from test_build_logic import AX620E_NOTES, AX620E_V2, AX650_NOTES, AX650_V2

from axera_pipeline.common.basics import load_json

pytestmark = pytest.mark.e2e


def toolchain(env: dict, *args: str):
    return run_cmd(["nox", "-s", "toolchain", "--", *args], env=env)


def build(chip: str, checkpoint, output, env: dict, *args: str):
    return run_cmd(
        ["nox", "-s", f"build-{chip}", "--", "--input", str(checkpoint), "--output", str(output), *args],
        env=env,
    )


def report(done) -> dict[str, str]:
    """`nox -s toolchain` lines by what they describe."""
    lines = {}
    for line in done.stdout.splitlines():
        parts = line.split(None, 1)
        if parts and parts[0] in ("ok", "warn", "missing"):
            what = "pulsar2 version" if line.split()[1:3] == ["pulsar2", "version"] else line.split()[1]
            if line.split()[1:3] == ["build", "command"]:
                what = "build command"
            lines[what] = line
    return lines


def pulsar2_argv(folder, prefix="hunyuan_v1_dense") -> list[str]:
    return json.loads((folder / f"{prefix}_post.axmodel").read_text())["argv"]


def local(version: str) -> dict:
    return {"PULSAR2_BIN": str(FAKES / "pulsar2"), "FAKE_PULSAR2_VERSION": version}


def test_toolchain_session_reports_a_local_install():
    done = toolchain(local("5.1-patch1"))
    assert done.returncode == 0, done.stdout[-3000:]
    lines = report(done)
    assert "local " in lines["pulsar2"] and "tests/fakes/pulsar2" in lines["pulsar2"]
    assert "5.1-patch1 (commit 9f2c41ab)" in lines["pulsar2 version"]
    assert "llm_build listed; builds use llm_build" in lines["build command"]
    assert "none needed by pulsar2 5.1-patch1" in lines["licence"]


def test_6x_lists_both_commands_and_pulsar2_command_picks_one():
    done = toolchain({**local("6.0-lite"), "PULSAR2_COMMAND": "llm_build2"})
    assert done.returncode == 0, done.stdout[-3000:]
    assert "llm_build, llm_build2 listed; builds use llm_build2 (PULSAR2_COMMAND)" in done.stdout
    wrong = toolchain({**local("7.0"), "PULSAR2_COMMAND": "llm_build"})
    assert wrong.returncode != 0
    assert "PULSAR2_COMMAND=llm_build, but this pulsar2 only has llm_build2" in wrong.stdout


@pytest.mark.parametrize(
    ("version", "command_env", "command", "ax650", "ax620e"),
    [
        ("5.1-patch1", "", "llm_build", AX650_NOTES, AX620E_NOTES),
        ("6.0-lite", "", "llm_build", AX650_NOTES, AX620E_NOTES),
        ("6.0-lite", "llm_build2", "llm_build2", AX650_V2, AX620E_V2),
        ("7.0", "", "llm_build2", AX650_V2, AX620E_V2),
    ],
)
def test_both_chips_on_each_command_flag_for_flag(
    version, command_env, command, ax650, ax620e, quantized_hunyuan, tmp_path
):
    env = {**local(version), "PULSAR2_COMMAND": command_env}
    for chip, expected in (("ax650", ax650), ("ax620e", ax620e)):
        out = tmp_path / chip
        done = build(chip, quantized_hunyuan, out, env)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
        argv = pulsar2_argv(out)
        assert argv[:5] == [command, "--input_path", str(quantized_hunyuan), "--output_path", argv[4]]
        assert " ".join(argv[5:]) == expected
        m = load_json(out / "manifest.json")
        assert m["result"]["build_command"] == command and m["inputs"]["command"] == command
        assert m["inputs"]["toolchain"]["version"] == version
        assert (out / "hunyuan_v1_dense_p128_l1_together.axmodel").is_file()


def test_extra_prefill_chunk_through_the_build(quantized_hunyuan, tmp_path):
    out = tmp_path / "ax650"
    done = build("ax650", quantized_hunyuan, out, local("7.0"), "--extra-prefill-chunk", "--context", "4096")
    assert done.returncode == 0, done.stdout[-3000:]
    assert "--prefill_len 1152 --prefill_step_size 128 --max_context 4096" in " ".join(pulsar2_argv(out))


def test_limits_are_checked_in_the_commands_own_words(quantized_hunyuan, tmp_path):
    done = build("ax650", quantized_hunyuan, tmp_path / "o", local("7.0"), "--context", "1024")
    assert done.returncode != 0
    assert "prefill_len 1024 must be below max_context 1024" in done.stdout + done.stderr
    assert not (tmp_path / "o").exists()


def toolchain_archive(folder, version: str):
    """Axera's package form: a folder with bin/pulsar2 (a wrapper with its own Python), archived."""
    root = folder / f"ax_pulsar2_{version}"
    (root / "bin").mkdir(parents=True)
    shutil.copy2(FAKES / "pulsar2", root / "bin" / "pulsar2")
    (root / "VERSION").write_text(version + "\n")
    archive = folder / f"ax_pulsar2_{version}_package.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname=root.name)
    return root, archive


def test_archive_form_is_unpacked_once_and_reused(quantized_hunyuan, tmp_path):
    root, archive = toolchain_archive(tmp_path, "7.0")
    cache = tmp_path / "cache"
    env = {"PULSAR2_PACKAGE": str(archive), "PULSAR2_CACHE": str(cache), "PULSAR2_BIN": ""}
    first = toolchain(env)
    assert first.returncode == 0, first.stdout[-3000:]
    assert "unpacking" in first.stdout and "(once)" in first.stdout
    unpacked = [p for p in cache.iterdir() if p.name.startswith("pulsar2-archive-")]
    assert len(unpacked) == 1 and not [p for p in cache.iterdir() if p.name.startswith(".")]
    assert "7.0 (commit 9f2c41ab)" in report(first)["pulsar2 version"]
    out = tmp_path / "ax650"
    done = build("ax650", quantized_hunyuan, out, env)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "unpacking" not in done.stdout
    assert load_json(out / "manifest.json")["result"]["toolchain"]["kind"] == "archive"
    assert pulsar2_argv(out)[0] == "llm_build2"
    folder_form = toolchain({**env, "PULSAR2_PACKAGE": str(root)})
    assert folder_form.returncode == 0 and "archive (PULSAR2_PACKAGE) " in report(folder_form)["pulsar2"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nowhere.tar.gz", "does not exist"),
        ("empty", "holds no bin/pulsar2"),
        ("notes.txt", "neither a folder"),
    ],
)
def test_package_problems(spec, message, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    done = toolchain({"PULSAR2_PACKAGE": str(tmp_path / spec), "PULSAR2_BIN": ""})
    assert done.returncode != 0 and message in done.stdout


def docker_7x(tmp_path, **extra) -> dict:
    return {**docker_env(tmp_path, tag="7.0", version="7.0"), "PULSAR2_BIN": "", **extra}


def test_docker_7x_without_licence(quantized_hunyuan, tmp_path):
    env = docker_7x(tmp_path)
    done = toolchain(env)
    assert done.returncode != 0
    assert "needs a Sentinel licence: set PULSAR2_LICENSE=" in report(done)["licence"]
    failed = build("ax650", quantized_hunyuan, tmp_path / "o", env)
    assert failed.returncode != 0
    errors = [ln for ln in (failed.stdout + failed.stderr).splitlines() if "build: error:" in ln]
    assert len(errors) == 1 and "Sentinel key not found (H0007)" in errors[0]
    assert "set PULSAR2_LICENSE" in errors[0]
    assert not (tmp_path / "o").exists()


def test_docker_7x_with_licence(quantized_hunyuan, tmp_path):
    keys = tmp_path / "licences"
    keys.mkdir()
    (keys / "pulsar2.v2c").write_text("<hasp/>")
    (keys / "README.txt").write_text("not for the container")
    env = docker_7x(tmp_path, PULSAR2_LICENSE=str(keys))
    done = toolchain(env)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "pulsar2.v2c mounted read-only at /root/.hasplm/installed/32434/" in report(done)["licence"]
    assert "loading" in done.stdout
    out = tmp_path / "ax620e"
    built = build("ax620e", quantized_hunyuan, out, env)
    assert built.returncode == 0, built.stdout[-3000:]
    assert "loading" not in built.stdout  # the toolchain session loaded the image once
    assert " ".join(pulsar2_argv(out)[5:]) == AX620E_V2
    run = [c for c in docker_calls(env) if c[:1] == ["run"]][-1]
    mounts = [run[i + 1] for i, a in enumerate(run) if a == "-v"]
    assert mounts[0] == f"{quantized_hunyuan}:/data/input:ro" and mounts[1].endswith(":/data/output")
    assert mounts[2:] == [f"{keys / 'pulsar2.v2c'}:/root/.hasplm/installed/32434/pulsar2.v2c:ro"]
    assert run[run.index("--name") + 1].startswith("axera-pipeline-")


def test_make_all_fails_fast_without_a_toolchain(tiny_hunyuan, tmp_path):
    build_dir = tmp_path / "build"
    done = run_cmd(
        ["make", "all", f"MODEL={tiny_hunyuan}"],
        env={"BUILD_DIR": str(build_dir), "PULSAR2_BIN": "", "DOCKER": str(tmp_path / "no-docker")},
    )
    assert done.returncode != 0
    output = done.stdout + done.stderr
    errors = [ln for ln in output.splitlines() if "toolchain: error:" in ln]
    assert len(errors) == 1, output[-3000:]
    assert "set PULSAR2_BIN" in errors[0] and "not quantizing" in errors[0]
    assert "[quantize]" not in output
    assert not (build_dir / tiny_hunyuan.name / "gptq-int4").exists()


def test_make_build_fails_fast_when_the_checkpoint_is_missing(tiny_hunyuan, tmp_path):
    build_dir = tmp_path / "build"
    done = run_cmd(
        ["make", "build-ax650", f"MODEL={tiny_hunyuan}"],
        env={"BUILD_DIR": str(build_dir), "PULSAR2_BIN": str(tmp_path / "missing-pulsar2")},
    )
    assert done.returncode != 0
    assert "PULSAR2_BIN=" in done.stdout + done.stderr and "not quantizing" in done.stdout + done.stderr
    assert not (build_dir / tiny_hunyuan.name / "gptq-int4").exists()
