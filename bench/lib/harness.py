"""What every benchmark shares: the machine, timing children, printing figures as a table and JSON."""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
LIB = BENCH / "lib"
EXPERIMENTS = BENCH / "experiments"
TEST_HELPERS = ROOT / "tests" / "helpers"
CACHE = Path(os.environ.get("BENCH_CACHE", Path.home() / ".cache" / "axera-llm-pipeline" / "bench"))
FLAGS_OF_INTEREST = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "fma")


def machine() -> dict:
    flags: list[str] = []
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                flags = [f for f in line.split(":", 1)[1].split() if f in FLAGS_OF_INTEREST]
            if line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
        mem = next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal"))
        ram_gib = int(mem.split()[1]) / 2**20
    except (OSError, StopIteration):
        ram_gib = 0.0
    gpu = "none"
    if shutil.which("nvidia-smi"):
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True
        )
        gpu = out.stdout.strip() or "none"
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "ram_gib": round(ram_gib, 1),
        "cpu_flags": flags,
        "gpu": gpu,
        "os": platform.platform(),
    }


def gptq_python() -> str:
    """The GPTQ environment's python, built from its lock if needed (as `nox -s gptq-env` does)."""
    from axera_pipeline.host import gptq_env

    return str(gptq_env.ensure(log=lambda m: print(m, file=sys.stderr)))


def package_versions(python: str) -> dict:
    names = ("torch", "transformers", "gptqmodel")
    code = (
        "import importlib.metadata as m, json, platform; print(json.dumps({'python': "
        f"platform.python_version(), **{{p: m.version(p) for p in {names!r}}}}}))"
    )
    return json.loads(subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout)


def measure(cmd: list[str], env: dict | None = None, cwd: Path = ROOT, quiet: bool = True) -> dict:
    """Wall time and peak RSS (largest process in the tree) of one command, run through GNU time."""
    stats = Path(f"/tmp/bench-time-{os.getpid()}.txt")
    full = ["/usr/bin/time", "-f", "%e %M", "-o", str(stats), *cmd]
    started = time.monotonic()
    done = subprocess.run(
        full,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE if quiet else None,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wall = time.monotonic() - started
    if done.returncode != 0:
        tail = (done.stdout or "")[-3000:]
        raise SystemExit(f"bench: `{' '.join(cmd[:4])} ...` failed ({done.returncode}):\n{tail}")
    _, max_kib = stats.read_text().split()[-2:]
    stats.unlink()
    return {
        "wall_s": round(wall, 2),
        "peak_rss_mib": round(int(max_kib) / 1024, 1),
        "output": done.stdout or "",
    }


def self_peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def make_model(python: str, out: Path, *args: str) -> Path:
    if not (out / "config.json").exists():
        subprocess.run(
            [python, str(TEST_HELPERS / "make_tiny_model.py"), str(out), *args],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return out


def table(headers: list[str], rows: list[list]) -> str:
    def cell(v):
        if isinstance(v, float):
            return f"{v:.0f}" if abs(v) >= 1000 else f"{v:.3g}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def report(name: str, command: str, markdown: str, figures: dict, python: str | None = None) -> None:
    """Print the table and the JSON, and keep both under bench/results/ for BENCHMARKS.md."""
    record = {
        "benchmark": name,
        "command": command,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine(),
        "packages": package_versions(python) if python else {},
        "figures": figures,
    }
    print(markdown)
    print(json.dumps(record, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(f"Command: `{command}`\n\n{markdown}\n")


def bench_python() -> str:
    """A venv with the GPTQ lock plus envs/bench.in; the GPTQ environment itself stays as locked."""
    import hashlib

    from axera_pipeline.host import gptq_env
    from axera_pipeline.host.interpreter import find_python

    stack = gptq_env.selected_stack()
    extras = ROOT / "envs" / "bench.in"
    interpreter, version = find_python(os.environ.get("GPTQ_PYTHON"))
    venv = ROOT / ".nox" / f"bench-{stack.name}"
    stamp = hashlib.sha256(stack.lock.read_bytes() + extras.read_bytes() + interpreter.encode()).hexdigest()
    marker = venv / gptq_env.STAMP
    if not (marker.is_file() and marker.read_text().strip() == stamp):
        shutil.rmtree(venv, ignore_errors=True)
        python = str(venv / "bin" / "python")
        for cmd in (
            ["uv", "venv", "--quiet", "--python", interpreter, str(venv)],
            ["uv", "pip", "sync", "--python", python, "--require-hashes", str(stack.lock)],
            ["uv", "pip", "install", "--python", python, "-r", str(extras)],
            ["uv", "pip", "install", "--quiet", "--python", python, "--no-deps", "-e", str(ROOT)],
        ):
            subprocess.run(cmd, check=True)
        marker.write_text(stamp + "\n")
    return str(venv / "bin" / "python")
