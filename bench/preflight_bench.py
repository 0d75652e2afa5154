"""Benchmark 7: `nox -s preflight` on ten real model families in seconds, and the board-memory estimate
against the sizes of real Axera layer files.

The fixtures (tests/fixtures/models/) hold config.json and tokenizer_config.json only. Each is run once
to warm nox's venv and the matmul-rate cache, then timed. The estimate is checked against the layer
files whose sizes Axera published (their Hugging Face commits carry the Git LFS size): an .axmodel
holds more than its weights, and FILE_OVERHEAD (toolchain/npu_memory.py) is fitted to these two
files, so this states how well one factor fits both, not an independent validation.
"""

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

from axera_pipeline.common import model_shape
from axera_pipeline.toolchain import npu_memory
from bench.lib.harness import ROOT, report, table

FIXTURES = ROOT / "tests" / "fixtures" / "models"
FAKE_PULSAR2 = str(ROOT / "tests" / "fakes" / "pulsar2")

QWEN25_05B = {
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
}
QWEN25_7B = {
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
}
# (release, file, bytes, where the size is published, the config, weight type and bits the build used)
REAL_LAYERS = [
    (
        "AXERA-TECH/Qwen2.5-0.5B-Instruct-GPTQ-Int4 (AX650)",
        "qwen2.5-0.5b-gptq-int4-ax650/qwen2_p128_l7_together.axmodel",
        9_061_930,
        "Hugging Face commit 14156eb (Git LFS size)",
        {**QWEN25_05B, "num_hidden_layers": 24, "vocab_size": 151936},
        None,
        4,
    ),
    (
        "AXERA-TECH/DeepSeek-R1-Distill-Qwen-7B (AX650, w8a16)",
        "deepseek-r1-7b-ax650/qwen2_p128_l1_together.axmodel",
        259_184_356,
        "Hugging Face commit e41a2ec (Git LFS size; l0: 259,184,164 bytes, commit 26ff039)",
        {**QWEN25_7B, "num_hidden_layers": 28, "vocab_size": 152064},
        "s8",
        8,
    ),
]


def preflight(model: Path) -> subprocess.CompletedProcess:
    cmd = ["nox", "-s", "preflight", "--", "--model", str(model)]
    env = {**os.environ, "PULSAR2_BIN": FAKE_PULSAR2}
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)


def time_preflight(model: Path) -> dict:
    preflight(model)  # warm: nox's venv, the matmul-rate cache
    started = time.monotonic()
    done = preflight(model)
    seconds = time.monotonic() - started
    verdicts = {}
    for line in done.stdout.splitlines():
        status, what = line[:8].strip(), line[8:30].strip()
        if status in ("ok", "warn", "fail", "note"):
            verdicts[what] = status
    return {"seconds": round(seconds, 2), "exit": done.returncode, "verdicts": verdicts}


def layer_estimate(config: dict, weight_type: str | None, bits: int) -> int:
    per_weight = npu_memory.bytes_per_weight(weight_type, bits, 128)
    return int(model_shape.layer_weights(config) * per_weight * npu_memory.FILE_OVERHEAD)


def main() -> None:
    runs = {model.name: time_preflight(model) for model in sorted(FIXTURES.iterdir()) if model.is_dir()}
    keys = ("pulsar2 model type", "chat template", "template agreement", "board memory ax650")
    timing = table(
        ["model", "seconds", "exit", *keys],
        [
            [name, r["seconds"], r["exit"], *(r["verdicts"].get(k, "-") for k in keys)]
            for name, r in runs.items()
        ],
    )
    rows, layers, errors = [], [], []
    for release, name, real, source, config, weight_type, bits in REAL_LAYERS:
        estimate = layer_estimate(config, weight_type, bits)
        errors.append(estimate / real - 1)
        layers.append({"release": release, "file": name, "real": real, "estimate": estimate})
        rows.append([release, name, f"{real:,}", f"{estimate:,}", f"{errors[-1]:+.1%}", source])
    sizes = table(["release", "layer file", "real bytes", "estimated", "error", "source"], rows)
    slowest = max(r["seconds"] for r in runs.values())
    md = (
        "`nox -s preflight` on the ten fixtures (config and tokenizer config only; warm venv and rate "
        f"cache), with the stand-in pulsar2 as the toolchain: slowest {slowest:.1f} s.\n\n{timing}\n\n"
        "Board-memory estimate of one decoder layer's .axmodel against Axera's published files "
        f"(FILE_OVERHEAD {npu_memory.FILE_OVERHEAD}, fitted to these two: worst error "
        f"{max(abs(e) for e in errors):.1%}). HY-MT1.5-1.8B's own release "
        "(AXERA-TECH/HY-MT1.5-1.8B_GPTQ_INT4) publishes no file sizes that can be read offline here, so it "
        "is not in the table.\n\n" + sizes
    )
    report("preflight", "nox -s bench -- preflight", md, {"runs": runs, "layers": layers})
    print(json.dumps({"slowest_s": slowest}))


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()  # --help, no options
    main()
