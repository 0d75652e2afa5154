"""Benchmark 6: every fault tried, and what happened to the output (`nox -s bench -- faults`).

Ctrl-C and SIGKILL at each phase of a quantize, concurrent runs, a full disk (injected, and on a small
tmpfs where the machine allows mounting one), pulsar2 crashing, killed and interrupted (local and
Docker stand-ins), corrupt inputs; all while busy loops keep every core occupied. For each: the exit
status, the last line the user saw, whether the earlier output is byte-identical, what was left
behind, and what the next run did.
"""

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.lib.harness import CACHE, ROOT, gptq_python, make_model, report, table

FAKES = ROOT / "tests" / "fakes"
FAST = ["--calib-size", "32"]


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return h.hexdigest()


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def error_line(output: str, prog: str) -> str:
    """The step's own last `prog: ...` line (its one-line error), without the scratch folder."""
    lines = [ln.strip() for ln in output.splitlines() if ln.startswith(f"{prog}:")]
    line = lines[-1] if lines else "(none)"
    return line.replace(str(WORK[0]) + "/", "") if WORK else line


WORK: list[Path] = []  # the scratch folder, left out of the lines shown


def run(cmd, env=None, pause=None, sig=None, resume=None, timeout=900):
    """Run a user command in its own process group; optionally signal it when it pauses at a phase."""
    env = {**os.environ, **(env or {})}
    if pause:
        env["AXERA_PIPELINE_FAULT"] = pause
    if resume:
        env["AXERA_PIPELINE_RESUME"] = str(resume)
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    seen = []
    if sig is not None:
        for line in proc.stdout:
            seen.append(line)
            if "[fault] paused at" in line or "waiting for workers" in line:
                time.sleep(0.5)
                os.killpg(proc.pid, sig)
                break
    rest, _ = proc.communicate(timeout=timeout)
    return proc.returncode, "".join(seen) + rest


class Case:
    def __init__(self, rows: list, earlier: Path):
        self.rows, self.earlier = rows, earlier

    def record(self, fault: str, code: int, output: str, prog: str, next_run: str = "") -> None:
        intact = digest(self.earlier) == self.before
        left = [n for n in hidden(self.earlier.parent) if n != ".offload"]
        self.rows.append(
            [
                fault,
                code,
                error_line(output, prog),
                "intact" if intact else "**CHANGED**",
                ", ".join(left) or "none",
                next_run,
            ]
        )

    def start(self) -> None:
        self.before = digest(self.earlier)


def quantize_cmd(model: Path, out: Path, *extra: str) -> list[str]:
    return [
        "nox",
        "-s",
        "quantize",
        "--",
        "--model",
        str(model),
        "--output",
        str(out),
        "--force",
        *FAST,
        *extra,
    ]


def quantize_faults(model: Path, earlier: Path, rows: list, work: Path) -> None:
    case = Case(rows, earlier)
    for phase in ("loading", "quantizing", "saving", "renaming"):
        case.start()
        code, out = run(quantize_cmd(model, earlier), pause=f"pause:{phase}", sig=signal.SIGINT)
        case.record(f"quantize: Ctrl-C while {phase}", code, out, "quantize")
    for phase in ("quantizing", "saving"):
        case.start()
        code, out = run(quantize_cmd(model, earlier), pause=f"pause:{phase}", sig=signal.SIGKILL)
        left = ", ".join(hidden(earlier.parent))
        intact = "intact" if digest(earlier) == case.before else "**CHANGED**"
        again_code, again = run(quantize_cmd(model, earlier))
        reclaimed = next(
            (ln.split("] ", 1)[-1] for ln in again.splitlines() if "reclaimed" in ln), "nothing reclaimed"
        )
        case.rows.append(
            [
                f"quantize: SIGKILL while {phase}",
                code,
                "(killed: no last line)",
                intact,
                left or "none",
                f"exit {again_code}; {reclaimed}",
            ]
        )
    # Two writers of one output.
    case.start()
    resume = work / "resume"
    first = subprocess.Popen(
        quantize_cmd(model, earlier),
        cwd=ROOT,
        env={**os.environ, "AXERA_PIPELINE_FAULT": "pause:quantizing", "AXERA_PIPELINE_RESUME": str(resume)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    for line in first.stdout:
        if "[fault] paused at" in line:
            break
    code, out = run(quantize_cmd(model, earlier, "--no-wait"))
    case.record(
        "quantize: a second run with --no-wait", code, out, "quantize", "left behind: the live run's own"
    )
    second = subprocess.Popen(
        [c for c in quantize_cmd(model, earlier) if c != "--force"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    time.sleep(5)
    resume.touch()
    first.communicate(timeout=900)
    waited, _ = second.communicate(timeout=900)
    did = (
        "waited, then: up to date, no work" if "is up to date" in waited and "waiting for" in waited else "??"
    )
    case.before = digest(earlier)
    case.record("quantize: a second run that waits", second.returncode, waited, "quantize", did)
    case.start()
    code, out = run(quantize_cmd(model, earlier), env={"AXERA_PIPELINE_FAULT": "enospc:saving"})
    case.record("quantize: disk full while saving (injected ENOSPC)", code, out, "quantize")
    small = work / "small-fs"
    small.mkdir()
    if (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", str(small)], capture_output=True
        ).returncode
        == 0
    ):
        try:
            real = Case(rows, small / "gptq-int4")
            shutil.copytree(earlier, real.earlier)
            real.start()
            resume = work / "resume-disk"
            proc = subprocess.Popen(
                quantize_cmd(model, real.earlier),
                cwd=ROOT,
                env={
                    **os.environ,
                    "AXERA_PIPELINE_FAULT": "pause:saving",
                    "AXERA_PIPELINE_RESUME": str(resume),
                },
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            seen = []
            for line in proc.stdout:
                seen.append(line)
                if "[fault] paused at" in line:
                    break
            with open(small / "filler", "wb") as handle:
                try:
                    while True:
                        handle.write(b"\0" * (1 << 20))
                        handle.flush()
                except OSError:
                    pass
            resume.touch()
            rest, _ = proc.communicate(timeout=900)
            (small / "filler").unlink()
            real.record(
                "quantize: disk full while saving (96 MiB tmpfs)",
                proc.returncode,
                "".join(seen) + rest,
                "quantize",
            )
        finally:
            subprocess.run(["umount", "-l", str(small)], check=False)
    else:
        rows.append(
            [
                "quantize: disk full on a small filesystem",
                "-",
                "not run: cannot mount tmpfs here",
                "-",
                "-",
                "",
            ]
        )
    for damage, target in (
        ("truncated model.safetensors", "model.safetensors"),
        ("truncated config.json", "config.json"),
        ("tokenizer.json that does not parse", "tokenizer.json"),
    ):
        broken = work / f"broken-{target}"
        shutil.rmtree(broken, ignore_errors=True)
        shutil.copytree(model, broken)
        data = (broken / target).read_bytes()
        (broken / target).write_bytes(data[: len(data) // 2])
        case.start()
        code, out = run(quantize_cmd(broken, earlier))
        case.record(f"quantize: {damage}", code, out, "quantize")


def build_faults(quantized: Path, earlier: Path, rows: list, work: Path) -> None:
    case = Case(rows, earlier)
    local = {"PULSAR2_BIN": str(FAKES / "pulsar2")}
    docker = {
        "PULSAR2_BIN": "",
        "DOCKER": str(FAKES / "docker"),
        "FAKE_DOCKER_STATE": str(work / "docker-state"),
        "FAKE_DOCKER_LOG": str(work / "docker.log"),
        "PULSAR2_IMAGE_TAR": str(image_archive(work)),
    }
    cmd = ["nox", "-s", "build-ax650", "--", "--input", str(quantized), "--output", str(earlier), "--force"]
    for fault, env, sig in (
        ("build: pulsar2 crashes", {**local, "FAKE_PULSAR2_FAIL": "crash"}, None),
        ("build: pulsar2 killed (OOM)", {**local, "FAKE_PULSAR2_FAIL": "kill"}, None),
        ("build: Ctrl-C, local pulsar2 with workers", {**local, "FAKE_PULSAR2_FAIL": "hang"}, signal.SIGINT),
        ("build: Ctrl-C, pulsar2 in Docker", {**docker, "FAKE_PULSAR2_FAIL": "hang"}, signal.SIGINT),
    ):
        case.start()
        code, out = run(cmd, env=env, sig=sig)
        time.sleep(1)
        orphans = sum(
            1
            for proc in Path("/proc").iterdir()
            if (proc / "cmdline").exists() and b"heartbeat" in safe_read(proc / "cmdline")
        )
        note = f"{orphans} pulsar2 process(es) left running"
        if "Docker" in fault:
            note += (
                "; container stopped"
                if '"stop"' in (work / "docker.log").read_text()
                else "; container NOT stopped"
            )
        case.record(fault, code, out, "build", note)
        (earlier.parent / "ax650.failed.log").unlink(missing_ok=True)


def safe_read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def image_archive(work: Path) -> Path:
    import io
    import tarfile

    archive = work / "ax_pulsar2_5.1.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        data = json.dumps({"pulsar2": {"5.1": "0" * 64}}).encode()
        info = tarfile.TarInfo("repositories")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return archive


def make_j2(model: Path, quantized: Path, rows: list, work: Path) -> None:
    build_dir = work / "build-j2"
    shutil.copytree(quantized, build_dir / model.name / "gptq-int4")
    env = {**os.environ, "BUILD_DIR": str(build_dir), "PULSAR2_BIN": str(FAKES / "pulsar2")}
    done = subprocess.run(
        ["make", "-j2", "build-ax650", "build-ax620e", f"MODEL={model}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    built = [c for c in ("ax650", "ax620e") if (build_dir / model.name / c / "manifest.json").is_file()]
    rows.append(
        ["make -j2 build-ax650 build-ax620e", done.returncode, "", "-", "none", f"built: {', '.join(built)}"]
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--no-busy", action="store_true", help="run on an idle machine instead")
    args = p.parse_args()
    python = gptq_python()
    model = make_model(python, CACHE / "tiny-hunyuan-faults")
    work = Path(tempfile.mkdtemp(prefix="faults-", dir=CACHE))
    WORK.append(work)
    busy = (
        []
        if args.no_busy
        else [
            subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)
        ]
    )
    rows: list = []
    try:
        quantized = work / "q" / "gptq-int4"
        subprocess.run(
            ["nox", "-s", "quantize", "--", "--model", str(model), "--output", str(quantized), *FAST],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        earlier_q = work / "earlier" / "gptq-int4"
        shutil.copytree(quantized, earlier_q)
        quantize_faults(model, earlier_q, rows, work)
        earlier_b = work / "earlier-build" / "ax650"
        subprocess.run(
            ["nox", "-s", "build-ax650", "--", "--input", str(quantized), "--output", str(earlier_b)],
            cwd=ROOT,
            check=True,
            capture_output=True,
            env={**os.environ, "PULSAR2_BIN": str(FAKES / "pulsar2")},
        )
        build_faults(quantized, earlier_b, rows, work)
        make_j2(model, quantized, rows, work)
    finally:
        for loop in busy:
            loop.kill()
        shutil.rmtree(work, ignore_errors=True)
    md = (
        f"Tiny hunyuan_v1_dense model, stand-in pulsar2 and Docker, "
        f"{'idle machine' if args.no_busy else f'busy loops on all {os.cpu_count()} cores'}. "
        "Earlier output: byte-identical after the fault? Left behind: hidden files beside the output "
        "(a killed run's staging stays until the next run reclaims it).\n\n"
        + table(
            ["fault", "exit", "last line the user saw", "earlier output", "left behind", "next run / notes"],
            rows,
        )
    )
    report("faults", "nox -s bench -- faults", md, {"rows": rows, "busy": not args.no_busy}, python)


if __name__ == "__main__":
    main()
