"""Benchmark 10b: verify's time on HY-MT1.5-1.8B, for both bf16 arithmetics, extrapolated from small runs.

`nox -s verify --emulate ax650` on HY-MT-width random models (hidden 2048, intermediate 6144, vocab
120818) of 1 and 2 layers, quantized first, on --rows held-out rows, once per arithmetic
(gptq/bf16_arithmetic.py). The difference between the two depths is one layer's cost, the rest is
what does not grow with depth (the lm_head, the embeddings, loading); both are extrapolated to the
1.8B model's 32 layers and verify's 32 rows, and marked so. Run it alone: timings taken while other
work shares the cores are not comparable (a run where one layer costs less than nothing says so).
"""

from __future__ import annotations

import argparse
import subprocess
import time

from bench.arithmetic_bench import HY_MT_WIDTH
from bench.lib.harness import CACHE, ROOT, bench_python, make_model, report, table

HY_MT_LAYERS, VERIFY_ROWS = 32, 32
LOOSE = [
    *("--threshold", "kl_divergence<=1000", "--threshold", "top1_agreement>=0"),
    *("--threshold", "chrf_vs_reference_model>=0", "--threshold", "logits_cosine>=-1"),
    *("--threshold", "last_hidden_cosine>=-1", "--threshold", "perplexity_ratio<=1000000"),
]


def quantized(python: str, layers: int):
    fp = make_model(
        python,
        CACHE / f"hy-mt-width-{layers}l",
        "--layers",
        str(layers),
        *HY_MT_WIDTH,
        "--model-vocab",
        "120818",
    )
    q4 = CACHE / f"hy-mt-width-{layers}l-q4"
    if not (q4 / "manifest.json").is_file():
        command = ["nox", "-s", "quantize", "--", "--model", str(fp), "--output", str(q4)]
        subprocess.run(command, cwd=ROOT, check=True, stdin=subprocess.DEVNULL, capture_output=True)
    return fp, q4


def verify_seconds(fp, q4, layers: int, mode: str, rows: int) -> float:
    out = CACHE / f"verify-{layers}l-{mode}"
    command = [
        "nox",
        "-s",
        "verify",
        "--",
        "--reference",
        str(fp),
        "--quantized",
        str(q4),
        "--output",
        str(out),
    ]
    command += ["--emulate", "ax650", "--limit", str(rows), "--bf16-arithmetic", mode, "--force", *LOOSE]
    started = time.monotonic()
    subprocess.run(command, cwd=ROOT, check=True, stdin=subprocess.DEVNULL, capture_output=True)
    return time.monotonic() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=8, help="verify rows at 1 and 2 layers (%(default)s)")
    args = p.parse_args()
    python = bench_python()
    models = {layers: quantized(python, layers) for layers in (1, 2)}
    figures, rows = {}, []
    for mode in ("native", "fp32-matmul"):
        one, two = (verify_seconds(*models[n], n, mode, args.rows) for n in (1, 2))
        per_layer, fixed = two - one, 2 * one - two
        valid = per_layer > 0 and fixed > 0
        estimate = (fixed + per_layer * HY_MT_LAYERS) * VERIFY_ROWS / args.rows / 60 if valid else None
        figures[mode] = {"1 layer s": round(one, 1), "2 layers s": round(two, 1), "estimate_min": estimate}
        shown = f"~{estimate:.0f} (extrapolated)" if valid else "not valid: rerun alone"
        rows.append([mode, round(one, 1), round(two, 1), shown])
    headers = [
        "bf16 arithmetic",
        f"1 layer, {args.rows} rows (s)",
        "2 layers (s)",
        "HY-MT1.5-1.8B, 32 rows (min)",
    ]
    report("verify_time", "nox -s bench -- verify_time", table(headers, rows), figures, python)


if __name__ == "__main__":
    main()
