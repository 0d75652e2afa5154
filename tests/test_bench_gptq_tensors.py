"""The accuracy benchmarks read GPTQ checkpoints back by hand (bench/lib/gptq_tensors.py): the
weights they see must be the ones GPTQModel itself computes with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cmd

pytestmark = pytest.mark.e2e  # needs a checkpoint quantized through `make quantize`

COMPARE = """
import json, os, sys
os.environ.setdefault("TORCH_COMPILE_DISABLE", "1")  # a one-off dequantize: compiling it costs a minute
import torch
from gptqmodel import BACKEND, GPTQModel
from safetensors.torch import load_file
from bench.lib.gptq_tensors import dequantized

folder = sys.argv[1]
bits = json.load(open(folder + "/quantize_config.json"))["bits"]
tensors = load_file(folder + "/model.safetensors")
model = GPTQModel.load(folder, device="cpu", backend=BACKEND.TORCH, dtype=torch.float16).model
worst, compared = 0.0, 0
for name, module in model.named_modules():
    if name + ".qweight" not in tensors:
        continue
    theirs = module.dequantize_weight().float().t()  # GPTQModel's is [in, out]
    ours = dequantized(tensors, name, bits)
    assert ours.shape == (module.out_features, module.in_features), (name, ours.shape)
    worst = max(worst, float((ours - theirs).abs().max() / theirs.abs().max()))
    compared += 1
print(json.dumps({"compared": compared, "worst": worst}))
"""


def test_dequantized_weights_are_gptqmodels(gptq_python: str, quantized_hunyuan: Path) -> None:
    done = run_cmd([gptq_python, "-c", COMPARE, str(quantized_hunyuan)])
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["compared"] > 0
    assert figures["worst"] < 1e-3, figures


SCALE = """
import json, os, sys
os.environ.setdefault("TORCH_COMPILE_DISABLE", "1")  # a one-off dequantize: compiling it costs a minute
from pathlib import Path
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM
from bench.lib.gptq_tensors import dequantized, scale_error

fp_dir, folder = sys.argv[1], Path(sys.argv[2])
bits = json.load(open(folder / "quantize_config.json"))["bits"]
tensors = load_file(str(folder / "model.safetensors"))
fp = dict(AutoModelForCausalLM.from_pretrained(fp_dir, dtype=torch.float32).named_modules())
figures = {}
for t in (0.0, 0.5, 1.0):
    model = AutoModelForCausalLM.from_pretrained(fp_dir, dtype=torch.float32)
    count = scale_error(model, folder, t)
    worst = moved = 0.0
    for name, module in model.named_modules():
        if name + ".qweight" in tensors:
            want = fp[name].weight + t * (dequantized(tensors, name, bits) - fp[name].weight)
            worst = max(worst, float((module.weight - want).abs().max()))
            moved = max(moved, float((module.weight - fp[name].weight).abs().max()))
    figures[str(t)] = {"count": count, "worst": worst, "moved": moved}
print(json.dumps(figures))
"""


def test_scaled_error_runs_from_fp_to_the_checkpoint(
    gptq_python: str, tiny_hunyuan: Path, quantized_hunyuan: Path
) -> None:
    done = run_cmd([gptq_python, "-c", SCALE, str(tiny_hunyuan), str(quantized_hunyuan)])
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert all(f["count"] > 0 and f["worst"] < 1e-6 for f in figures.values()), figures
    assert figures["0.0"]["moved"] == 0.0
    assert 0.0 < figures["0.5"]["moved"] < figures["1.0"]["moved"]
