"""Benchmark 10: how verify's bf16 passes multiply, on this CPU and with oneDNN capped, and what it costs
in accuracy; verify's time on HY-MT1.5-1.8B extrapolated for both arithmetics.

Speed: one HY-MT-width forward (2 layers, hidden 2048, intermediate 6144, vocab 120818, 4 x 256
tokens, random weights) as fp32, native bf16 and bf16 with fp32 matrix products
(gptq/bf16_arithmetic.py), each with oneDNN as it comes and capped (ONEDNN_MAX_CPU_ISA=AVX512_CORE:
AVX-512 without BF16; AVX2), one process per setting. Accuracy: KL(native || fp32-matmul) per token
on the tiny test model and on google/gemma-3-270m, beside two native kernels (this CPU's and the
AVX2-capped one) and fp32. Verify's time: `nox -s verify --emulate ax650` on HY-MT-width random
models of 1 and 2 layers (quantized first), 8 rows, per arithmetic; the per-layer and fixed parts are
extrapolated to 32 layers and verify's 32 rows, and marked so.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

from bench.lib.gemma_model import gemma_folder
from bench.lib.harness import CACHE, ROOT, bench_python, make_model, report, table

CAPS = {"as it comes": None, "AVX512_CORE (no BF16)": "AVX512_CORE", "AVX2": "AVX2"}
MODES = ("fp32", "native", "fp32-matmul")
HY_MT_WIDTH = ["--hidden", "2048", "--intermediate", "6144", "--head-dim", "128", "--kv-heads", "8"]
HY_MT_LAYERS, VERIFY_ROWS = 32, 32


def one_pass(python: str, model: Path, mode: str, out: str, cap: str | None, *extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_MAX_CPU_ISA"}
    if cap:
        env["ONEDNN_MAX_CPU_ISA"] = cap
    done = subprocess.run(
        [python, "-m", "bench.lib.arithmetic_pass", str(model), mode, out, *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise SystemExit(f"bench: arithmetic pass {mode} ({cap}) failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(python: str, a: Path, b: Path) -> dict:
    done = subprocess.run(
        [python, "-m", "bench.lib.arithmetic_pass", "compare", str(a), str(b)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def speed(python: str) -> tuple[str, dict]:
    model = make_model(
        python, CACHE / "hy-mt-width-2l", "--layers", "2", *HY_MT_WIDTH, "--model-vocab", "120818"
    )
    figures, rows = {}, []
    for label, cap in CAPS.items():
        for mode in MODES:
            found = one_pass(python, model, mode, "-", cap)
            figures[f"{mode} / {label}"] = found
            rows.append([mode, label, min(found["seconds"])])
    return table(["arithmetic", "oneDNN", "forward s (best of 3)"], rows), figures


def accuracy(python: str) -> tuple[str, dict]:
    models = {
        "tiny test model (hidden 256)": make_model(python, CACHE / "tiny-hunyuan-arith"),
        "gemma-3-270m": gemma_folder(python),
    }
    figures, rows = {}, []
    for name, model in models.items():
        kept = {}
        for mode, cap in (("fp32", None), ("native", None), ("native", "AVX2"), ("fp32-matmul", None)):
            out = CACHE / f"logits-{model.name}-{mode}-{cap or 'default'}.pt"
            one_pass(python, model, mode, str(out), cap, "--batch", "2", "--tokens", "128", "--repeat", "1")
            kept[(mode, cap)] = out
        pairs = {
            "native vs fp32-matmul": (("native", None), ("fp32-matmul", None)),
            "native vs native capped at AVX2 (two bf16 kernels)": (("native", None), ("native", "AVX2")),
            "native vs fp32": (("native", None), ("fp32", None)),
        }
        for pair, (a, b) in pairs.items():
            found = compare(python, kept[a], kept[b])
            figures[f"{name}: {pair}"] = found
            rows.append([name, pair, f"{found['kl']:.2e}", f"{found['top1']:.3f}"])
        for path in kept.values():
            path.unlink(missing_ok=True)
    return table(["model", "compared", "KL per token", "top-1 agreement"], rows), figures


def verify_time(python: str, rows: int) -> tuple[str, dict]:
    """verify --emulate ax650 at 1 and 2 layers per arithmetic, extrapolated to the 1.8B model."""
    timings: dict = {}
    for layers in (1, 2):
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
            subprocess.run(
                ["nox", "-s", "quantize", "--", "--model", str(fp), "--output", str(q4)],
                cwd=ROOT,
                check=True,
                stdin=subprocess.DEVNULL,
                capture_output=True,
            )
        for mode in ("native", "fp32-matmul"):
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
                "--emulate",
                "ax650",
                "--limit",
                str(rows),
                "--bf16-arithmetic",
                mode,
                "--force",
                "--threshold",
                "kl_divergence<=1000",
                "--threshold",
                "top1_agreement>=0",
                "--threshold",
                "chrf_vs_reference_model>=0",
                "--threshold",
                "logits_cosine>=-1",
                "--threshold",
                "last_hidden_cosine>=-1",
                "--threshold",
                "perplexity_ratio<=1000000",
            ]
            started = time.monotonic()
            subprocess.run(command, cwd=ROOT, check=True, stdin=subprocess.DEVNULL, capture_output=True)
            timings[(layers, mode)] = time.monotonic() - started
    figures, table_rows = {}, []
    for mode in ("native", "fp32-matmul"):
        one, two = timings[(1, mode)], timings[(2, mode)]
        per_layer, fixed = two - one, 2 * one - two
        estimate = (fixed + per_layer * HY_MT_LAYERS) * VERIFY_ROWS / rows
        figures[mode] = {
            "1 layer s": round(one, 1),
            "2 layers s": round(two, 1),
            "1.8B estimate min": round(estimate / 60),
        }
        table_rows.append([mode, round(one, 1), round(two, 1), f"~{estimate / 60:.0f} (extrapolated)"])
    md = table(
        [
            "arithmetic",
            f"verify, 1 layer, {rows} rows (s)",
            "2 layers (s)",
            f"HY-MT1.5-1.8B, {VERIFY_ROWS} rows (min)",
        ],
        table_rows,
    )
    return md, figures


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=8, help="verify rows at 1 and 2 layers (%(default)s)")
    p.add_argument("--skip-verify", action="store_true", help="only the forward passes and the KL")
    args = p.parse_args()
    python = bench_python()
    parts, figures = [], {}
    md, figures["speed"] = speed(python)
    parts += ["Speed, one HY-MT-width forward (2 layers, 4 x 256 tokens):", "", md, ""]
    md, figures["accuracy"] = accuracy(python)
    parts += [
        "Accuracy (2 x 128 tokens; target: native vs fp32-matmul within two native kernels' KL):",
        "",
        md,
        "",
    ]
    if not args.skip_verify:
        md, figures["verify"] = verify_time(python, args.rows)
        parts += ["verify's time (`--emulate ax650`), measured at 1 and 2 layers, extrapolated:", "", md, ""]
    report("arithmetic", "nox -s bench -- arithmetic", "\n".join(parts).strip(), figures, python)


if __name__ == "__main__":
    main()
