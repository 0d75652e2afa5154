"""One bf16-emulation forward pass in one arithmetic, timed, its logits kept: run by arithmetic_bench.py
in the bench environment, one process per setting (ONEDNN_MAX_CPU_ISA must be set before torch loads).

Usage: python -m bench.lib.arithmetic_pass MODEL MODE OUT [--batch 4 --tokens 256 --repeat 3]
MODE: fp32 (the float32 model), native (the bf16 model as torch multiplies it here), fp32-matmul
(the bf16 model with verify's fp32 matrix products). Prints {"seconds": [...]} as JSON; OUT "-"
keeps no logits. `python -m bench.lib.arithmetic_pass compare A B` prints KL(A || B) per token and
the top-1 agreement of two kept logit files.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TORCH_COMPILE_DISABLE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def compare(a: str, b: str) -> None:
    import torch
    import torch.nn.functional as F

    x, y = torch.load(a).flatten(0, -2), torch.load(b).flatten(0, -2)
    kl = F.kl_div(F.log_softmax(y, -1), F.log_softmax(x, -1), log_target=True, reduction="batchmean")
    top1 = (x.argmax(-1) == y.argmax(-1)).float().mean()
    print(json.dumps({"kl": kl.item(), "top1": top1.item()}))


def main() -> None:
    import sys

    if sys.argv[1:2] == ["compare"]:
        compare(sys.argv[2], sys.argv[3])
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("mode", choices=("fp32", "native", "fp32-matmul"))
    p.add_argument("out")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--tokens", type=int, default=256)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    import torch
    from transformers import AutoModelForCausalLM

    from axera_pipeline.gptq import bf16_arithmetic

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    if args.mode != "fp32":
        model = model.to(torch.bfloat16)
    vocab = min(model.config.vocab_size, 32000)
    ids = torch.randint(0, vocab, (args.batch, args.tokens), generator=torch.Generator().manual_seed(1))
    mode = bf16_arithmetic.Arithmetic("fp32-matmul" if args.mode == "fp32-matmul" else "native", "bench")
    seconds = []
    with torch.no_grad(), mode.context():
        model(input_ids=ids[:1, :16])  # warm: oneDNN's kernel choice, first allocations
        for _ in range(args.repeat):
            started = time.perf_counter()
            logits = model(input_ids=ids).logits
            seconds.append(round(time.perf_counter() - started, 3))
    if args.out != "-":
        torch.save(logits.float(), args.out)
    print(json.dumps({"seconds": seconds}))


if __name__ == "__main__":
    main()
