"""The quantized variants of gemma-3-270m that the accuracy benchmark and the experiments evaluate.

A cell is the pipeline's defaults changed only as its name says: a `nox -s quantize` option, an
in-domain calibration file, or an experiment (bench/experiments/) run on a GPTQ cell's checkpoint.
Checkpoints are cached in the bench cache and redone only when what made them changed.
"""

import json
import subprocess
import time
from pathlib import Path

from bench.lib.harness import CACHE, ROOT

SWEEP = CACHE / "gemma-sweep"
# name -> quantize options on top of the pipeline's defaults
CELLS = {
    "defaults": [],
    "the notes' settings (MSE off)": ["--mse", "0"],
    "hessian bf16": ["--hessian", "bf16"],
    "fast (MSE off, hessian bf16)": ["--mse", "0", "--hessian", "bf16"],
    "damp 0.05": ["--damp", "0.05"],
    "damp 0.1": ["--damp", "0.1"],
    "GAR off": ["--no-act-group-aware"],
    "true-sequential off": ["--no-true-sequential"],
    "calib 96 rows": ["--calib-size", "96"],
    "calib + 256 HSK rows": ["calib:256"],
    "calib + 1024 HSK rows": ["calib:1024"],
    "calib + 2048 HSK rows": ["calib:2048"],
    "calib + 3800 HSK rows": ["calib:3800"],
    "group 64": ["--group-size", "64"],
    "group 64, calib + 1024 HSK rows": ["--group-size", "64", "calib:1024"],
    "equalize 0.1": ["--equalize", "0.1"],
    "equalize 0.2": ["--equalize", "0.2"],
    "equalize 0.3": ["--equalize", "0.3"],
    "equalize 0.5": ["--equalize", "0.5"],
    "GPTAQ 0.25": ["--gptaq", "0.25"],
    # Not a quantize option: the defaults' checkpoint with its scales tuned afterwards (tune_scales.py).
    "scales tuned by KL (4 epochs)": ["tune", "--epochs", "4"],
    # The same with the norm gains trained too, on the in-domain calibration, from that cell's GPTQ.
    "scales and norms tuned in-domain (calib + 1024 HSK rows, 2 epochs)": [
        "tune",
        "--epochs",
        "2",
        "--params",
        "scales+norms",
        "calib:1024",
    ],
    # Not a quantize option: another quantizer, AutoRound, in the defaults' layout (autoround_quantize.py).
    "AutoRound (200 iters)": ["autoround", "--iters", "200", "--dtype", "fp32"],
    "AutoRound (200 iters, bf16)": ["autoround", "--iters", "200", "--dtype", "bf16"],
    # A change far below any real effect: how far one quantization's luck moves the figures.
    "damp 0.011 (noise)": ["--damp", "0.011"],
}


def options_for(cell: str, python: str) -> list[str]:
    options = []
    for option in CELLS[cell]:
        if option.startswith("calib:"):
            extra = int(option.split(":")[1])
            calib = SWEEP / f"calib-plus-{extra}-hsk.jsonl"
            if not calib.exists():
                subprocess.run(
                    [
                        python,
                        "-m",
                        "bench.lib.translation_eval",
                        "--write-calibration",
                        str(extra),
                        str(calib),
                    ],
                    check=True,
                )
            options += ["--calib", str(calib)]
        else:
            options.append(option)
    return options


def cell_folder(cell: str) -> Path:
    return SWEEP / "".join(ch if ch.isalnum() or ch in "-." else "-" for ch in cell.replace("+", "plus"))


# Cells a bench script makes from a GPTQ cell's checkpoint: name -> (script, its manifest block).
DERIVED = {"tune": ("tune_scales.py", "scale_tuning"), "autoround": ("autoround_quantize.py", "autoround")}
# The GPTQ cell a derived cell starts from, where it is not the defaults.
SOURCE = {"scales and norms tuned in-domain (calib + 1024 HSK rows, 2 epochs)": "calib + 1024 HSK rows"}


def derived(cell: str, fp: Path, python: str) -> dict:
    """A cell its script makes from a GPTQ cell's checkpoint; redone only when that checkpoint or the
    script's options change (each `--flag value` is checked against the block the script records)."""
    kind, *flags = options_for(cell, python)
    script, block = DERIVED[kind]
    source = quantize(SOURCE.get(cell, "defaults"), fp, python)
    out = cell_folder(cell)
    made = json.loads((out / "manifest.json").read_text()) if (out / "manifest.json").is_file() else {}
    extra = made.pop(block, {})
    pairs = zip(flags[::2], flags[1::2], strict=True)
    wanted = {flag.lstrip("-").replace("-", "_"): value for flag, value in pairs}
    stale = made != json.loads((Path(source["dir"]) / "manifest.json").read_text())
    if stale or any(str(extra.get(key)) != value for key, value in wanted.items()):
        module = f"bench.experiments.{Path(script).stem}"
        command = [python, "-m", module, str(fp), source["dir"], str(out), *flags]
        subprocess.run(command, check=True)
        extra = json.loads((out / "manifest.json").read_text())[block]
    # Scale tuning starts from GPTQ's result, so its time adds to GPTQ's; AutoRound replaces it.
    seconds = extra["seconds"] + (source["quantize_wall_s"] if kind == "tune" else 0)
    return {
        **source,
        "dir": str(out),
        "quantize_wall_s": round(seconds, 1),
        "calibration_tokens": extra.get("calibration_tokens", source["calibration_tokens"]),
    }


def quantize(cell: str, fp: Path, python: str) -> dict:
    if CELLS[cell][:1] and CELLS[cell][0] in DERIVED:
        return derived(cell, fp, python)
    out = cell_folder(cell)
    started = time.monotonic()
    subprocess.run(
        ["nox", "-s", "quantize", "--", "--model", str(fp), "--output", str(out), *options_for(cell, python)],
        check=True,
        cwd=ROOT,
    )
    manifest = json.loads((out / "manifest.json").read_text())
    return {
        "dir": str(out),
        "seconds": round(time.monotonic() - started, 1),
        "quantize_wall_s": manifest["wall_time_s"],
        "calibration_tokens": manifest["result"]["calibration_tokens"],
        "size_mib": round(sum(p.stat().st_size for p in out.glob("*.safetensors")) / 2**20, 1),
        "options": manifest["inputs"]["options"],
    }


def evaluate(python: str, fp: Path, out: Path, quick: bool, options: list[str]) -> float:
    """translation_eval.py on fp and the variants in `options` into `out`; its wall time in seconds."""
    started = time.monotonic()
    quick_option = ["--quick"] if quick else []
    module = ["-m", "bench.lib.translation_eval"]
    subprocess.run([python, *module, str(fp), str(out), *quick_option, *options], check=True)
    return round(time.monotonic() - started, 1)
