"""Reload a GPTQ checkpoint with both loaders, generate, and compare it with fp and RTN baselines.

Runs inside the GPTQ environment; prints one JSON object. Used by the end-to-end tests.
Usage: python check_quantized.py REFERENCE QUANTIZED
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GPTQMODEL_CPU_WORKERS", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TORCH_COMPILE_DISABLE", "1")


def main() -> None:
    reference, quantized = Path(sys.argv[1]), Path(sys.argv[2])
    import torch
    from gptqmodel import BACKEND, GPTQModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from axera_pipeline.gptq import compare, datasets_io

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(quantized)
    rows = datasets_io.load_rows(ROOT / "data" / "eval" / "heldout_translation.jsonl")
    prompts = compare.encode_rows(tokenizer, rows, 256)

    fp = AutoModelForCausalLM.from_pretrained(reference, dtype=torch.float32)
    ref = compare.run_prompts(fp, prompts, "cpu")
    bits = json.loads((quantized / "config.json").read_text())["quantization_config"]["bits"]
    group = json.loads((quantized / "config.json").read_text())["quantization_config"]["group_size"]
    compare.apply_rtn(fp, bits, group)
    rtn = compare.logit_metrics(ref, compare.run_prompts(fp, prompts, "cpu"))
    del fp

    gm = GPTQModel.load(str(quantized), device="cpu", backend=BACKEND.TORCH)
    gptq_out = compare.run_prompts(gm.model, prompts, "cpu")
    gptq = compare.logit_metrics(ref, gptq_out)
    chat = tokenizer.apply_chat_template(
        [{"role": "user", "content": rows[0]["source"]}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    generated = gm.model.generate(**chat, max_new_tokens=8, do_sample=False)
    new_tokens = int(generated.shape[1] - chat["input_ids"].shape[1])
    del gm

    hf = AutoModelForCausalLM.from_pretrained(quantized, device_map="cpu")
    hf_out = compare.run_prompts(hf, prompts, "cpu")
    loaders = compare.logit_metrics(gptq_out, hf_out)
    print(
        json.dumps(
            {
                "gptq": gptq,
                "rtn": rtn,
                "loaders_agree": loaders,
                "generated_tokens": new_tokens,
                "hf_class": type(hf).__name__,
            }
        )
    )


if __name__ == "__main__":
    main()
