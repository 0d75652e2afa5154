"""`nox -s doctor`: what is present and what is missing before a long run, one line each, then the preflight.

Runs in nox's own interpreter (`python -m axera_pipeline.host.doctor`), before any environment exists;
the preflight (which needs pyyaml) runs in the host venv whose python `--preflight-python` names.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from axera_pipeline.common import matmul_rate, quantize_time, resources
from axera_pipeline.common.cli import Parser, UserError, run
from axera_pipeline.common.defaults import DEFAULT_MODEL
from axera_pipeline.host import gptq_env
from axera_pipeline.host.interpreter import InterpreterNotFound, find_python
from axera_pipeline.toolchain import prepare

PROG = "doctor"
GIB = 2**30
# bf16 weight bytes of models we know without downloading them.
KNOWN_SIZES = {DEFAULT_MODEL: 3.6 * GIB}


@dataclass
class Check:
    status: str  # "ok", "warn" or "missing"
    what: str
    detail: str

    def line(self) -> str:
        return f"{self.status:<8}{self.what:<22}{self.detail}"


def _run(cmd: list[str], timeout: int = 60) -> tuple[int, str]:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError) as exc:
        return 1, str(exc)
    return done.returncode, (done.stdout + done.stderr).strip()


def check_python(environ) -> Check:
    try:
        path, version = find_python(environ.get("GPTQ_PYTHON"), allow_install=False)
    except InterpreterNotFound as exc:
        return Check("missing", "Python 3.13", str(exc))
    return Check("ok", "Python 3.13", f"{path} ({version})")


def check_uv() -> Check:
    uv = shutil.which("uv")
    if not uv:
        return Check("missing", "uv", "install it: python3 -m pip install uv")
    return Check("ok", "uv", _run([uv, "--version"])[1])


def check_gptq_env(environ) -> Check:
    try:
        stack = gptq_env.selected_stack(environ)
        path, version = find_python(environ.get("GPTQ_PYTHON"), allow_install=False)
    except (gptq_env.EnvError, InterpreterNotFound) as exc:
        return Check("missing", "GPTQ environment", str(exc))
    if gptq_env.is_current(stack, gptq_env.stamp_of(stack, path, version)):
        return Check("ok", "GPTQ environment", f"{stack.venv} (stack {stack.name}), up to date")
    return Check(
        "warn",
        "GPTQ environment",
        f"not built or out of date; the next nox run builds it from {stack.lock.name} (~6 GB)",
    )


def check_gpu(model: str, environ) -> Check:
    smi = shutil.which("nvidia-smi")
    if smi:
        code, out = _run([smi, "--query-gpu=name,memory.total", "--format=csv,noheader"])
        if code == 0 and out:
            return Check("ok", "GPU", f"{out.splitlines()[0]} (quantize time on a GPU: not measured yet)")
    python = gptq_env.existing(environ)
    rates = matmul_rate.rates(str(python) if python else None)
    return Check(
        "warn",
        "GPU",
        f"none found: quantizing runs on the CPU, {quantize_time.cpu_minutes(model, rates=rates)}",
    )


def check_toolchain(environ) -> list[Check]:
    """The same facts `nox -s toolchain` prints, without loading an image or unpacking a package."""
    return [Check(*fact) for fact in prepare.facts(environ, prepare=False)]


def model_bytes(model: str) -> float | None:
    folder = Path(model).expanduser()
    if folder.is_dir():
        return float(sum(p.stat().st_size for p in folder.glob("*.safetensors")) or 0) or None
    return KNOWN_SIZES.get(model)


def check_resources(model: str, parallel: int) -> list[Check]:
    size = model_bytes(model)
    if size is None:
        return [Check("warn", "RAM and disk", f"size of {model} unknown; pass a local folder to estimate")]
    # Quantizing: measured 3.2 GB peak for a 3.6 GB (bf16) model with GPTQModel's disk offload.
    quant_ram = 1 * GIB + 0.6 * size
    build_ram = resources.pulsar2_ram(size, parallel)
    ram = resources.meminfo("MemAvailable")
    status = "ok" if ram >= build_ram else ("warn" if ram >= quant_ram else "missing")
    checks = [
        Check(
            status,
            "RAM",
            f"{ram / GIB:.1f} GiB available; quantize needs ~{quant_ram / GIB:.1f}, "
            f"pulsar2 at --parallel {parallel} ~{build_ram / GIB:.1f} (lower --parallel if short)",
        )
    ]
    disk_need = size * 4  # hub cache + quantized copy + offload + two chip builds
    free = shutil.disk_usage(Path.cwd()).free
    checks.append(
        Check(
            "ok" if free >= disk_need else "missing",
            "disk",
            f"{free / GIB:.1f} GiB free here; the whole pipeline needs ~{disk_need / GIB:.1f}",
        )
    )
    return checks


def report(model: str, parallel: int, environ=os.environ) -> list[Check]:
    return [
        check_python(environ),
        check_uv(),
        check_gptq_env(environ),
        check_gpu(model, environ),
        *check_toolchain(environ),
        *check_resources(model, parallel),
    ]


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="nox -s doctor --", description=__doc__.splitlines()[0])
    p.add_argument("--model", default=DEFAULT_MODEL, help="model to size RAM and disk for (%(default)s)")
    p.add_argument("--parallel", type=int, default=8, help="pulsar2 --parallel planned (%(default)s)")
    p.add_argument("--preflight-python", help="the host venv's python, to run the preflight with")
    args = p.parse_args(argv)
    checks = report(args.model, args.parallel)
    for check in checks:
        print(check.line(), flush=True)
    if args.preflight_python:
        python = gptq_env.existing()
        preflight = [args.preflight_python, "-m", "axera_pipeline.toolchain.preflight", "--model", args.model]
        env = {**os.environ, "GPTQ_ENV_PYTHON": str(python) if python else ""}
        subprocess.run([*preflight, "--parallel", str(args.parallel)], env=env, check=False)
    missing = [c.what for c in checks if c.status == "missing"]
    if missing:
        raise UserError(f"missing: {', '.join(missing)}")
    return 0


if __name__ == "__main__":
    run(main, PROG)
