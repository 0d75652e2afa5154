"""Benchmark 5: creating the GPTQ environment cold (empty uv cache) and warm (populated), and its size."""

import argparse
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.lib.harness import gptq_python, measure, report, table


def du(path: Path) -> float:
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True).stdout
    return int(out.split()[0]) / 2**30


def main() -> None:
    python = gptq_python()
    with tempfile.TemporaryDirectory(dir=Path.home()) as tmp:
        cache = Path(tmp) / "uv-cache"
        cold_env, warm_env = Path(tmp) / "cold", Path(tmp) / "warm"
        cold = measure(
            ["nox", "-s", "gptq-env"], env={"UV_CACHE_DIR": str(cache), "GPTQ_ENV_DIR": str(cold_env)}
        )
        warm = measure(
            ["nox", "-s", "gptq-env"], env={"UV_CACHE_DIR": str(cache), "GPTQ_ENV_DIR": str(warm_env)}
        )
        reuse = measure(
            ["nox", "-s", "gptq-env"], env={"UV_CACHE_DIR": str(cache), "GPTQ_ENV_DIR": str(warm_env)}
        )
        size, cache_size = du(cold_env), du(cache)
        shutil.rmtree(cache, ignore_errors=True)
    figures = {
        "cold_s": cold["wall_s"],
        "warm_s": warm["wall_s"],
        "reuse_s": reuse["wall_s"],
        "env_gib": round(size, 2),
        "uv_cache_gib": round(cache_size, 2),
        "stack": os.environ.get("GPTQ_STACK", "torch2.9"),
    }
    md = (
        table(
            ["case", "wall s"],
            [
                [
                    "cold: empty uv cache (downloads torch, CUDA libs, builds GPTQModel's sdist)",
                    cold["wall_s"],
                ],
                ["warm: new environment from a populated uv cache", warm["wall_s"]],
                ["reuse: environment already current", reuse["wall_s"]],
            ],
        )
        + f"\n\nEnvironment size {size:.1f} GiB; uv cache after the cold build {cache_size:.1f} GiB."
    )
    report("environment", "nox -s bench -- environment", md, figures, python)


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()  # --help, no options
    main()
