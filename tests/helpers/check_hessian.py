"""The quantize step's Hessian patch against GPTQModel's own (GPTQ environment); prints one JSON object.

Three modules read one input (as q/k/v do): the shared product must equal GPTQModel's per-module one
exactly; a new input of the same shape must not reuse it; bf16 products must stay close.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def hessians(gptq_cls, qcfg, modules, inputs) -> list:
    import torch

    out = []
    for module in modules:
        g = gptq_cls(module, qcfg)
        for x in inputs:
            g.add_batch(x, None)
        out.append(g._device_hessian_partials[torch.device("cpu")].clone())
    return out


def main() -> None:
    import torch
    from gptqmodel import QuantizeConfig
    from gptqmodel.quantization.gptq import GPTQ

    from axera_pipeline.gptq import hessian

    torch.manual_seed(0)
    qcfg = QuantizeConfig(bits=4, group_size=16)
    modules = [torch.nn.Linear(64, 32).to(torch.bfloat16) for _ in range(3)]
    first = torch.randn(2, 700, 64, dtype=torch.bfloat16)
    second = torch.randn(2, 700, 64, dtype=torch.bfloat16)
    # Each module sees the same two batches, batch by batch, as forward hooks do.
    reference = hessians(GPTQ, qcfg, modules, [first, second])
    hessian.install("fp32")
    shared = []
    gptqs = [GPTQ(m, qcfg) for m in modules]
    for x in (first, second):
        for g in gptqs:
            g.add_batch(x, None)
    shared = [g._device_hessian_partials[torch.device("cpu")] for g in gptqs]
    hessian.install("bf16")
    fast = hessians(GPTQ, qcfg, modules, [first, second])
    print(
        json.dumps(
            {
                "shared_equal": all(torch.equal(a, b) for a, b in zip(reference, shared, strict=True)),
                "bf16_relative_error": max(
                    float((a - b).norm() / b.norm()) for a, b in zip(fast, reference, strict=True)
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
