"""Benchmark 10: how verify's bf16 passes multiply, on this CPU and with oneDNN capped, and what it costs
in accuracy (verify's time on HY-MT1.5-1.8B for both: verify_time_bench.py, §10b).

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
from pathlib import Path

from bench.lib.gemma_model import gemma_folder
from bench.lib.harness import CACHE, ROOT, bench_python, make_model, report, table

CAPS = {"as it comes": None, "AVX512_CORE (no BF16)": "AVX512_CORE", "AVX2": "AVX2"}
MODES = ("fp32", "native", "fp32-matmul")
HY_MT_WIDTH = ["--hidden", "2048", "--intermediate", "6144", "--head-dim", "128", "--kv-heads", "8"]


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


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
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
    report("arithmetic", "nox -s bench -- arithmetic", "\n".join(parts).strip(), figures, python)


if __name__ == "__main__":
    main()
