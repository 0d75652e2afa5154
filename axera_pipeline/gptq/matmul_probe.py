"""This machine's fp32 and bf16 matmul rates, in a second or two (GPTQ environment).

The shape is a decoder projection's at HY-MT1.5-1.8B's width, the one `nox -s bench -- profile`
measured its phases against, so the two machines' rates compare directly.
"""

from __future__ import annotations

import json
import time

from axera_pipeline.common.cli import run

PROG = "matmul-probe"

SHAPE = (4096, 2048, 6144)  # (tokens, in, out): 4096x2048 @ 2048x6144
STEP_S = 0.15  # grow the token count while one product takes less than this


def rate(dtype, budget_s: float = 0.5) -> float:
    """GFLOP/s at the profile's shape, or at fewer tokens where this CPU is too slow for it (a CPU
    without AVX512-BF16 multiplies bf16 hundreds of times slower than fp32): never more than a few s."""
    import torch

    _, k, n = SHAPE
    b = torch.randn(k, n, dtype=dtype)
    m = 16
    while True:
        a = torch.randn(m, k, dtype=dtype)
        started = time.perf_counter()
        torch.matmul(a, b)
        if time.perf_counter() - started >= STEP_S or m >= SHAPE[0]:
            break
        m *= 4
    calls, started = 0, time.perf_counter()
    while calls == 0 or time.perf_counter() - started < budget_s:
        torch.matmul(a, b)
        calls += 1
    return 2 * m * k * n * calls / (time.perf_counter() - started) / 1e9


def main(argv: list[str] | None = None) -> int:
    import torch

    print(json.dumps({"fp32": round(rate(torch.float32), 1), "bf16": round(rate(torch.bfloat16), 1)}))
    return 0


if __name__ == "__main__":
    run(main, PROG)
