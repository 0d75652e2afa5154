"""Where a GPTQ checkpoint's loss comes from: fp with one part of it quantized at a time (bench env).

Each part (one kind of linear across all layers, or all of one layer's linears) takes the checkpoint's
dequantized weights while the rest stays fp; teacher-forced on the evaluation's reference translations
(translation_eval's held-out HSK sentences), its KL(fp || part) per token and perplexity ratio have 95%
bootstrap intervals over sentences. fp's log-probabilities are computed once and kept in memory
(about 2.8 GB for 400 sentences), so each part costs one forward pass.

Usage: python kl_by_part_eval.py FP_DIR GPTQ_DIR OUT_JSON [--sentences N]
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from bench.lib.gptq_tensors import dequantized, quantized_linears
from bench.lib.translation_eval import (
    hsk,
    reference_ids,
    reference_logprobs,
    reference_summary,
    sentence_stats,
)

LAYER = re.compile(r"\.layers\.(\d+)\.")


def parts(names: list[str]) -> dict[str, list[str]]:
    """'all', each kind of linear ('q_proj', ...) across the layers, then each layer ('layer 0', ...)."""
    kinds = dict.fromkeys(n.rsplit(".", 1)[1] for n in names)  # in the model's order
    layers = dict.fromkeys(int(m.group(1)) for n in names if (m := LAYER.search(n)))
    return {
        "all": names,
        **{kind: [n for n in names if n.endswith("." + kind)] for kind in kinds},
        **{f"layer {i}": [n for n in names if f".layers.{i}." in n] for i in layers},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("fp_dir")
    p.add_argument("gptq_dir", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--sentences", type=int, default=400)
    args = p.parse_args()
    started = time.monotonic()
    shots, rows, _ = hsk(args.sentences)
    items = reference_ids(AutoTokenizer.from_pretrained(args.fp_dir), shots, rows)
    model = AutoModelForCausalLM.from_pretrained(args.fp_dir, dtype=torch.float32).eval()
    print("fp: log-probabilities on the reference translations", flush=True)
    fp_logprobs = list(reference_logprobs(model, items))

    bits, tensors, linears = quantized_linears(model, args.gptq_dir)
    original = {name: module.weight.detach().clone() for name, module in linears.items()}
    quantized = {name: dequantized(tensors, name, bits) for name in linears}

    results = {}
    for part, names in parts(list(linears)).items():
        with torch.no_grad():
            for name in names:
                linears[name].weight.copy_(quantized[name])
            stats = [
                sentence_stats(test, ref, target)
                for (test, target), (ref, _) in zip(
                    reference_logprobs(model, items), fp_logprobs, strict=True
                )
            ]
            for name in names:
                linears[name].weight.copy_(original[name])
        summary = reference_summary(stats)
        results[part] = {
            "linears": len(names),
            "weights": sum(quantized[n].numel() for n in names),
            **{k: v for k, v in summary.items() if k.startswith(("ref_kl", "ref_ppl_ratio"))},
        }
        print(
            f"{part}: KL {summary['ref_kl']:.4f}, perplexity ratio {summary['ref_ppl_ratio']:.3f} "
            f"({time.monotonic() - started:.0f} s)",
            flush=True,
        )
    args.out.write_text(
        json.dumps(
            {
                "sentences": len(rows),
                "tokens": sum(len(ids) - start for ids, start in items),
                "seconds": round(time.monotonic() - started, 1),
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
