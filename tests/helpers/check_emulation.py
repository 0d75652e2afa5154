"""The chip emulation's device placement and arithmetic, through the real code path, on a GPTQ checkpoint.

Runs inside the GPTQ environment; prints one JSON object. Used by tests/test_verify_e2e.py.
Usage: python check_emulation.py QUANTIZED

- placement: the quantized model moved to the `meta` device (torch's device without storage: what a
  GPU run would do to devices, without a GPU), dequantized and emulated: every tensor's device;
- arithmetic: the emulated bf16 model's logits with native bf16 and with fp32 matrix products (the
  TorchDispatchMode verify uses where the CPU has no bf16 instructions), and the fp32 model's;
- held weights: the decoder's linears rounded onto an s4 grid (a profile's `-w s4` on an 8-bit
  checkpoint): the distinct values per group.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("GPTQMODEL_CPU_WORKERS", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TORCH_COMPILE_DISABLE", "1")
ROOT = Path(__file__).resolve().parents[2]


def devices(model) -> list[str]:
    return sorted({t.device.type for t in [*model.parameters(), *model.buffers()]})


def main() -> None:
    quantized = Path(sys.argv[1])
    import torch
    import torch.nn.functional as F
    from gptqmodel import BACKEND, GPTQModel
    from transformers import AutoTokenizer

    from axera_pipeline.gptq import bf16_arithmetic, chip_numerics, compare, datasets_io

    numerics = chip_numerics.Numerics("bf16", "s8")
    found: dict = {}

    on_meta = GPTQModel.load(str(quantized), device="cpu", backend=BACKEND.TORCH).model.eval().to("meta")
    chip_numerics.dequantize_in_place(on_meta)
    found["dequantized_devices"] = devices(on_meta)
    found["emulated_devices"] = devices(chip_numerics.emulate(on_meta, numerics))
    del on_meta

    dense = GPTQModel.load(str(quantized), device="cpu", backend=BACKEND.TORCH).model.eval()
    chip_numerics.dequantize_in_place(dense)
    dense = dense.float()  # GPTQModel loads the rest of the model in bf16; the fp32 baseline is all fp32
    tokenizer = AutoTokenizer.from_pretrained(quantized)
    rows = datasets_io.load_rows(ROOT / "data" / "eval" / "heldout_translation.jsonl")[:4]
    prompts = compare.encode_rows(tokenizer, rows, 128)
    with torch.no_grad():
        fp32 = compare.run_prompts(dense, prompts, "cpu")
        emulated = chip_numerics.emulate(dense, numerics)
        native = compare.run_prompts(emulated, prompts, "cpu")
        with bf16_arithmetic.fp32_matmul():
            widened = compare.run_prompts(emulated, prompts, "cpu")
            sample = emulated(input_ids=prompts[0][None]).logits

    def kl(a, b) -> float:
        return sum(
            F.kl_div(F.log_softmax(y, -1), F.log_softmax(x, -1), log_target=True, reduction="sum").item()
            for x, y in zip(a.logits, b.logits, strict=True)
        ) / sum(x.shape[0] for x in a.logits)

    found["logits_dtype_fp32_matmul"] = str(sample.dtype).removeprefix("torch.")
    found["kl_native_vs_fp32_matmul"] = kl(native, widened)
    found["kl_fp32_vs_native"] = kl(fp32, native)
    found["kl_fp32_vs_fp32_matmul"] = kl(fp32, widened)
    found["top1_native_vs_fp32_matmul"] = compare.logit_metrics(native, widened)["top1_agreement"]

    group = json.loads((quantized / "config.json").read_text())["quantization_config"]["group_size"]
    held = chip_numerics.emulate(dense, chip_numerics.Numerics("bf16", "s8", "s4"), group)
    layer = next(m for n, m in held.named_modules() if isinstance(m, torch.nn.Linear) and ".layers." in n)
    weight = layer.weight.float()
    groups = weight.reshape(weight.shape[0], -1, group)
    found["s4_levels_max"] = max(len(torch.unique(g)) for g in groups.reshape(-1, group)[:64])
    print(json.dumps(found))


if __name__ == "__main__":
    main()
