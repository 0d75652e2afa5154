"""Benchmark 2: warm start and no-op.

(a) Time from launching `nox -s quantize` with an existing environment to the first line the quantize
script prints (it prints before any heavy import). (b) A second `make all` with nothing changed, with
the stand-in pulsar2: its wall time, and whether any step ran again.
"""

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.lib.harness import CACHE, ROOT, gptq_python, make_model, report, table

FAKE_PULSAR2 = str(ROOT / "tests" / "fakes" / "pulsar2")
LOOSE = "--threshold 'chrf_vs_reference_model>=0' --threshold 'top1_agreement>=0'"


def time_to_script(model: Path, output: Path) -> float:
    started = time.monotonic()
    proc = subprocess.Popen(
        ["nox", "-s", "quantize", "--", "--model", str(model), "--output", str(output)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen = None
    for line in proc.stdout:
        if line.startswith("[quantize]") and seen is None:
            seen = time.monotonic() - started
    proc.wait()
    return seen if seen is not None else float("nan")


def timed(cmd: list[str], env: dict) -> tuple[float, str]:
    started = time.monotonic()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return time.monotonic() - started, done.stdout


def main() -> None:
    import os

    python = gptq_python()
    model = make_model(python, CACHE / "tiny-hunyuan-bench")
    with tempfile.TemporaryDirectory() as tmp:
        build = Path(tmp) / "build"
        env = {**os.environ, "BUILD_DIR": str(build), "PULSAR2_BIN": FAKE_PULSAR2}
        make_all = ["make", "all", f"MODEL={model}", f"VERIFY_ARGS={LOOSE}"]
        first, _ = timed(make_all, env)
        starts = [time_to_script(model, build / model.name / "gptq-int4") for _ in range(5)]
        seconds, outputs = zip(*(timed(make_all, env) for _ in range(5)), strict=True)
    reran = any("nox" in out for out in outputs)
    figures = {
        "nox_to_script_s": round(statistics.median(starts), 2),
        "nox_to_script_target_s": 3,
        "make_all_first_s": round(first, 1),
        "make_all_noop_s": round(statistics.median(seconds), 3),
        "make_all_noop_target_s": 2,
        "noop_reran_a_step": reran,
    }
    md = (
        table(
            ["figure", "median of 5", "target"],
            [
                [
                    "`nox -s quantize` start -> quantize script's first line (s)",
                    figures["nox_to_script_s"],
                    "<= 3",
                ],
                ["second `make all`, nothing changed (s)", figures["make_all_noop_s"], "<= 2"],
                ["steps re-run by the second `make all`", "yes" if reran else "none", "none"],
            ],
        )
        + f"\n\nFirst `make all` on the tiny model (quantize, verify, two stand-in builds): {first:.0f} s."
    )
    report("warm_start", "nox -s bench -- warm_start", md, figures, python)


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()  # --help, no options
    main()
