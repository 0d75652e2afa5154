"""Faults through the real user path, with both cores kept busy: Ctrl-C and SIGKILL at each phase,
concurrent runs, a full disk, pulsar2 hanging with workers, corrupt inputs. Earlier output survives."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FAKES, Run, docker_env, run_cmd, tree_digest

from axera_pipeline.common.basics import load_json

pytestmark = pytest.mark.e2e
FAST = ["--calib-size", "32"]


@pytest.fixture(scope="module", autouse=True)
def busy_cores():
    """Busy loops on every core: cleanup that only works on an idle machine fails here."""
    loops = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(max(2, os.cpu_count() or 2))
    ]
    yield
    for loop in loops:
        loop.kill()
        loop.wait()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def quantize_cmd(model: Path, output: Path, *extra: str) -> list[str]:
    return [
        "nox",
        "-s",
        "quantize",
        "--",
        "--model",
        str(model),
        "--output",
        str(output),
        "--force",
        *FAST,
        *extra,
    ]


@pytest.mark.parametrize("phase", ["loading", "quantizing", "saving", "renaming"])
def test_ctrl_c_at_each_phase_keeps_earlier_output(phase, good_output, tiny_hunyuan):
    before = tree_digest(good_output)
    run = Run(quantize_cmd(tiny_hunyuan, good_output), {"AXERA_PIPELINE_FAULT": f"pause:{phase}"})
    run.wait_for(f"[fault] paused at {phase}")
    run.signal(signal.SIGINT)
    output = run.finish()
    assert run.proc.returncode == 130, output[-2000:]
    ours = [ln for ln in output.splitlines() if ln.startswith("quantize:")]
    assert ours[-1] == "quantize: interrupted; the earlier output is unchanged"
    assert tree_digest(good_output) == before
    assert leftovers(good_output.parent) == []


def test_ctrl_c_through_make_while_working(good_output, tiny_hunyuan, build_dir):
    """No pause: interrupted inside GPTQModel's own work, through make."""
    before = tree_digest(good_output)
    args = f"--output {good_output} --force --calib-size 32"
    run = Run(["make", "quantize", f"MODEL={tiny_hunyuan}", f"ARGS={args}"], {"BUILD_DIR": str(build_dir)})
    run.wait_for("[quantize] quantizing")
    run.signal(signal.SIGINT)
    output = run.finish()
    assert run.proc.returncode in (130, -signal.SIGINT, 2), output[-2000:]
    assert "quantize: interrupted; the earlier output is unchanged" in output
    assert tree_digest(good_output) == before
    assert leftovers(good_output.parent) == []


@pytest.mark.parametrize("phase", ["quantizing", "saving"])
def test_sigkill_leaves_staging_that_the_next_run_reclaims(phase, good_output, tiny_hunyuan):
    before = tree_digest(good_output)
    run = Run(quantize_cmd(tiny_hunyuan, good_output), {"AXERA_PIPELINE_FAULT": f"pause:{phase}"})
    run.wait_for(f"[fault] paused at {phase}")
    run.signal(signal.SIGKILL)  # what the OOM killer does: no cleanup at all
    run.finish()
    assert tree_digest(good_output) == before
    assert [n for n in leftovers(good_output.parent) if ".tmp-" in n], "a killed run leaves its staging"
    done = run_cmd(quantize_cmd(tiny_hunyuan, good_output))
    assert done.returncode == 0, done.stdout[-3000:]
    assert "staging folder(s) left by interrupted runs of gptq-int4" in done.stdout
    assert " reclaimed)" in done.stdout
    assert leftovers(good_output.parent) == []


def test_one_writer_per_output(good_output, tiny_hunyuan, tmp_path):
    resume = tmp_path / "resume"
    first = Run(
        quantize_cmd(tiny_hunyuan, good_output),
        {"AXERA_PIPELINE_FAULT": "pause:quantizing", "AXERA_PIPELINE_RESUME": str(resume)},
    )
    first.wait_for("[fault] paused at quantizing")
    staging = [n for n in leftovers(good_output.parent) if ".tmp-" in n]
    no_wait = run_cmd(quantize_cmd(tiny_hunyuan, good_output, "--no-wait"))
    assert no_wait.returncode != 0
    line = [ln for ln in (no_wait.stdout + no_wait.stderr).splitlines() if "quantize: error:" in ln][-1]
    assert "is being written by pid" in line and "(started 20" in line and "quantize)" in line
    assert [n for n in leftovers(good_output.parent) if ".tmp-" in n] == staging  # a live run's: untouched
    second = Run(
        ["nox", "-s", "quantize", "--", "--model", str(tiny_hunyuan), "--output", str(good_output), *FAST]
    )
    second.wait_for("waiting for pid")
    resume.touch()
    assert first.finish() and first.proc.returncode == 0
    output = second.finish()
    assert second.proc.returncode == 0, output[-2000:]
    assert "is up to date" in output and "[quantize] quantizing" not in output
    assert leftovers(good_output.parent) == []


def test_make_j2_builds_both_chips(quantized_hunyuan, tiny_hunyuan, tmp_path):
    build_dir = tmp_path / "build"
    shutil.copytree(quantized_hunyuan, build_dir / tiny_hunyuan.name / "gptq-int4")
    env = {"BUILD_DIR": str(build_dir), "PULSAR2_BIN": "", **docker_env(tmp_path)}
    done = run_cmd(["make", "-j2", "build-ax650", "build-ax620e", f"MODEL={tiny_hunyuan}"], env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    for chip in ("ax650", "ax620e"):
        assert load_json(build_dir / tiny_hunyuan.name / chip / "manifest.json")["result"]["build_command"]
    assert done.stdout.count("into Docker (once)") == 1
    assert "[quantize]" not in done.stdout


def orphans(under: Path) -> list[str]:
    """Processes still running with a path under `under` on their command line."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(under) in cmdline and "heartbeat" in cmdline:
            found.append(cmdline)
    return found


@pytest.mark.parametrize("backend", ["local", "docker"])
def test_ctrl_c_stops_the_whole_pulsar2_tree(backend, built_ax650, quantized_hunyuan, tmp_path):
    good = tmp_path / "good" / "ax650"
    shutil.copytree(built_ax650, good)
    before = tree_digest(good)
    env = {"FAKE_PULSAR2_FAIL": "hang"}
    env |= (
        {"PULSAR2_BIN": str(FAKES / "pulsar2")}
        if backend == "local"
        else {"PULSAR2_BIN": "", **docker_env(tmp_path)}
    )
    run = Run(
        [
            "nox",
            "-s",
            "build-ax650",
            "--",
            "--input",
            str(quantized_hunyuan),
            "--output",
            str(good),
            "--force",
        ],
        env,
    )
    run.wait_for("waiting for workers")
    beats = next(good.parent.glob(".ax650.tmp-*")) / "worker.heartbeat"
    deadline = time.monotonic() + 60
    while not beats.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    run.signal(signal.SIGINT)
    output = run.finish()
    assert run.proc.returncode == 130, output[-3000:]
    assert "build: interrupted; the earlier output is unchanged" in output
    time.sleep(1.0)
    assert orphans(good.parent) == [], "no pulsar2 worker keeps writing"
    assert tree_digest(good) == before and leftovers(good.parent) == []
    if backend == "docker":
        calls = [json.loads(ln) for ln in Path(env["FAKE_DOCKER_LOG"]).read_text().splitlines()]
        name = next(c[c.index("--name") + 1] for c in calls if c[:1] == ["run"] and "--name" in c)
        assert ["stop", "--time", "5", name] in calls
        assert not list((Path(env["FAKE_DOCKER_STATE"]) / "containers").iterdir())


def test_disk_full_injected_is_one_line(good_output, tiny_hunyuan):
    before = tree_digest(good_output)
    done = run_cmd(quantize_cmd(tiny_hunyuan, good_output), env={"AXERA_PIPELINE_FAULT": "enospc:saving"})
    assert done.returncode != 0
    errors = [ln for ln in (done.stdout + done.stderr).splitlines() if "quantize: error:" in ln]
    assert len(errors) == 1 and "disk full while writing" in errors[0] and "model.safetensors" in errors[0]
    assert "MiB free under" in errors[0] and "Traceback" not in done.stdout + done.stderr
    assert tree_digest(good_output) == before and leftovers(good_output.parent) == []


@pytest.fixture
def small_filesystem(tmp_path):
    mount = tmp_path / "small-fs"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(
            f"cannot mount a small filesystem here ({done.stderr.decode().strip()[:80]}); "
            "the injected ENOSPC test covers the same path"
        )
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_on_a_real_small_filesystem(small_filesystem, quantized_hunyuan, tiny_hunyuan, tmp_path):
    earlier = small_filesystem / "gptq-int4"
    shutil.copytree(quantized_hunyuan, earlier)
    before = tree_digest(earlier)
    resume = tmp_path / "resume"
    run = Run(
        quantize_cmd(tiny_hunyuan, earlier),
        {"AXERA_PIPELINE_FAULT": "pause:saving", "AXERA_PIPELINE_RESUME": str(resume)},
    )
    run.wait_for("[fault] paused at saving")
    filler = small_filesystem / "filler"
    with open(filler, "wb") as handle:  # fill what is left, as another program would
        try:
            while True:
                handle.write(b"\0" * (1 << 20))
                handle.flush()
        except OSError:
            pass
    resume.touch()
    output = run.finish()
    filler.unlink()
    assert run.proc.returncode != 0
    errors = [ln for ln in output.splitlines() if "quantize: error:" in ln]
    assert len(errors) == 1 and "disk full while writing" in errors[0], output[-3000:]
    assert tree_digest(earlier) == before
    assert [n for n in leftovers(small_filesystem) if ".tmp-" in n] == []


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("truncate weights", "model.safetensors is truncated: its header describes"),
        ("truncate config", "config.json is not valid JSON"),
        ("break tokenizer", "tokenizer.json does not parse"),
    ],
)
def test_corrupt_inputs_are_one_line_naming_the_file(damage, expected, tiny_hunyuan, good_output, tmp_path):
    model = tmp_path / "damaged"
    shutil.copytree(tiny_hunyuan, model)
    target = {"truncate weights": "model.safetensors", "truncate config": "config.json"}.get(
        damage, "tokenizer.json"
    )
    data = (model / target).read_bytes()
    (model / target).write_bytes(data[: len(data) // 2])
    before = tree_digest(good_output)
    done = run_cmd(quantize_cmd(model, good_output))
    errors = [ln for ln in (done.stdout + done.stderr).splitlines() if "quantize: error:" in ln]
    assert done.returncode != 0 and len(errors) == 1 and expected in errors[0], done.stdout[-2000:]
    assert str(model) in errors[0] and "Traceback" not in done.stdout + done.stderr
    assert tree_digest(good_output) == before
