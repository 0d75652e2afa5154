"""Benchmark 7: where a HY-MT1.5-1.8B-shaped decoder layer's quantize time goes, and what makes it faster.

One random-weight hunyuan_v1_dense layer at HY-MT1.5-1.8B's width (hidden 2048, intermediate 6144,
16 heads of 128, 4 KV heads, vocab 120818), quantized by the pipeline's own code with GPTQModel's
phases timed (bench/lib/profile_layer.py): forward passes, Hessian accumulation, the GPTQ solve, packing,
offload I/O, each with its FLOPs against the fp32 and bf16 matmul rates measured in the same run. Then
the same for each candidate setting. Calibration: the bundled set with the pipeline's defaults, or
--calib-tokens-like rows (see --calib).
"""

import argparse
import json
import os
import subprocess
from pathlib import Path

from scaling import WIDTH

from bench.lib.harness import CACHE, gptq_python, make_model, report, table

# name -> (quantize options, environment)
CANDIDATES = {
    "defaults": ([], {}),
    "batch 1": (["--batch-size", "1"], {}),
    "batch 8": (["--batch-size", "8"], {}),
    "no true-sequential": (["--no-true-sequential"], {}),
    "MSE off (the notes' settings)": (["--mse", "0"], {}),
    "hessian bf16": (["--hessian", "bf16"], {}),
    "fast (MSE off, hessian bf16)": (["--mse", "0", "--hessian", "bf16"], {}),
    "torch intra-op threads 1": ([], {"OMP_NUM_THREADS": "1"}),
    # GPTQModel's CPU worker pool cannot be tried at 1: GPTQModel 7.5.0 refuses to start
    # ("Virtual pool 'model_loader:cpu' requests 2 workers but parent 'cpu' only has 1").
}


def run(python: str, model: Path, name: str, options: list[str], env: dict) -> dict:
    out = CACHE / f"profile-{name.replace(' ', '-')}.json"
    print(f"== {name}: {' '.join(options) or '(pipeline defaults)'}", flush=True)
    subprocess.run(
        [python, "-m", "bench.lib.profile_layer", str(model), str(out), *options],
        check=True,
        env={**os.environ, **env},
    )
    return json.loads(out.read_text())


def phase_rows(result: dict) -> list[list]:
    rates = result["matmul_gflops"]
    rows = []
    for phase, p in result["phases"].items():
        rate = p["gflop"] / p["seconds"] if p["seconds"] and p["gflop"] else None
        rows.append(
            [
                phase,
                p["seconds"],
                f"{100 * p['seconds'] / result['total_s']:.0f}%",
                p["gflop"] or "-",
                round(rate, 1) if rate else "-",
                f"{100 * rate / rates['fp32']:.0f}%" if rate else "-",
                f"{100 * rate / rates['bf16']:.0f}%" if rate else "-",
            ]
        )
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="*", help="candidates to run (default: all)")
    p.add_argument("--calib", help="calibration file (default: the bundled set)")
    args = p.parse_args()
    python = gptq_python()
    model = make_model(python, CACHE / "hymt-width-l1", "--layers", "1", *WIDTH)
    calib = ["--calib", args.calib] if args.calib else []
    results = {}
    for name, (options, env) in CANDIDATES.items():
        if args.only and name not in args.only:
            continue
        try:
            results[name] = run(python, model, name, [*options, *calib], env)
        except subprocess.CalledProcessError as exc:
            print(f"{name}: failed ({exc.returncode}); left out of the table", flush=True)
    base = results.get("defaults") or next(iter(results.values()))
    before_file = Path(__file__).resolve().parent / "results" / "profile-before.json"
    before_record = json.loads(before_file.read_text()) if before_file.exists() else None
    before = before_record["figures"]["results"]["defaults"] if before_record else None
    if before:
        # The same forward passes; its own count charged whole layers where GPTQModel stops a pass early.
        before["phases"]["forward"]["gflop"] = base["phases"]["forward"]["gflop"]
    md = (
        f"One layer at HY-MT1.5-1.8B's width, {base['calibration_tokens']} calibration tokens "
        f"(the bundled set through this model's tokenizer), CPU. Matmul rates measured in the same run: "
        f"fp32 {base['matmul_gflops']['fp32']} GFLOP/s, bf16 {base['matmul_gflops']['bf16']} GFLOP/s "
        "(4096x2048 @ 2048x6144).\n\nWhere the time goes with the pipeline's defaults (exclusive time; "
        "'other' is loading the model, tokenizing and GPTQModel's bookkeeping):\n\n"
        + table(["phase", "s", "share", "GFLOP", "GFLOP/s", "of fp32 peak", "of bf16 peak"], phase_rows(base))
        + (
            "\n\nBefore this project's Hessian change (GPTQModel's own fp32 X^T X for every module, "
            f"measured {before_record['date']}; forward FLOPs as counted in this "
            "run):\n\n"
            + table(
                ["phase", "s", "share", "GFLOP", "GFLOP/s", "of fp32 peak", "of bf16 peak"],
                phase_rows(before),
            )
            if before
            else ""
        )
        + "\n\nCandidates (same layer, same calibration):\n\n"
        + table(
            [
                "candidate",
                "total s",
                "forward s",
                "hessian s",
                "solve s",
                "pack s",
                "offload s",
                "other s",
                "GPTQ loss",
            ],
            [
                [
                    name,
                    r["total_s"],
                    *(
                        r["phases"][ph]["seconds"]
                        for ph in ("forward", "hessian", "solve", "pack", "offload", "other")
                    ),
                    f"{r['gptq_loss_mean']:.4g}",
                ]
                for name, r in results.items()
            ],
        )
    )
    report("profile", "nox -s bench -- profile", md, {"results": results}, python)


if __name__ == "__main__":
    main()
