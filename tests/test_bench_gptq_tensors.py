"""The accuracy benchmarks read GPTQ checkpoints back by hand (bench/gptq_tensors.py): the weights they
see must be the ones GPTQModel itself computes with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT, run_cmd

pytestmark = pytest.mark.e2e  # needs a checkpoint quantized through `make quantize`

COMPARE = """
import json, sys
import torch
from gptqmodel import BACKEND, GPTQModel
from safetensors.torch import load_file
sys.path.insert(0, sys.argv[2])
from gptq_tensors import dequantized

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
    done = run_cmd([gptq_python, "-c", COMPARE, str(quantized_hunyuan), str(ROOT / "bench")])
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["compared"] > 0
    assert figures["worst"] < 1e-3, figures
