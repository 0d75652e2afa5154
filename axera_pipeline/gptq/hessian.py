"""Faster GPTQ Hessians on the CPU: one X^T X per shared input, and optionally bf16 products.

GPTQModel 7.x computes X^T X in float32 for every module, even for modules that read the same input
(q/k/v, gate/up): on a 2-core CPU that fp32 matmul is the largest share of a layer's time
(`nox -s bench -- profile`). Here, a product is computed once per input tensor and copied to the
modules sharing it (the same numbers), and with `bf16` the activations (already bf16 on the CPU) are
multiplied in bf16 in 512-row chunks, each partial product accumulated in float32 (about 3x the
matmul rate; each partial is rounded to bf16 once).
"""

from __future__ import annotations

from typing import Any

CHUNK_ROWS = 512
HESSIAN_DTYPES = ("fp32", "bf16")


def install(dtype: str) -> None:
    """Replace GPTQModel's GPTQ.compute_hessian_xtx for this process."""
    import torch
    from gptqmodel.quantization.gptq import GPTQ

    if getattr(GPTQ.compute_hessian_xtx, "axera_pipeline", None) == dtype:
        return
    original = getattr(GPTQ.compute_hessian_xtx, "original", GPTQ.compute_hessian_xtx)
    # The last input and its product; holding the tensor keeps its memory from being reused by another.
    last: dict[str, Any] = {"input": None, "mark": None, "xtx": None}

    def mark(matrix) -> tuple:
        """Identity and a content check (inference tensors have no version counter to compare)."""
        return (
            matrix.data_ptr(),
            tuple(matrix.shape),
            matrix.dtype,
            float(matrix[0].sum()),
            float(matrix[-1].sum()),
        )

    def bf16_product(matrix):
        cols = matrix.shape[1]
        xtx = torch.zeros((cols, cols), dtype=torch.float32, device=matrix.device)
        for start in range(0, matrix.shape[0], CHUNK_ROWS):
            chunk = matrix[start : start + CHUNK_ROWS]
            xtx.add_(torch.matmul(chunk.T, chunk).float())
        return xtx

    def compute_hessian_xtx(self, matrix):
        if matrix.shape[0] == 0:
            return original(self, matrix)
        current = mark(matrix)
        if last["input"] is not None and last["mark"] == current:
            return last["xtx"].clone()  # its receiver accumulates into it in place
        use_bf16 = dtype == "bf16" and matrix.dtype == torch.bfloat16 and matrix.device.type == "cpu"
        xtx = bf16_product(matrix) if use_bf16 else original(self, matrix)
        last.update(input=matrix, mark=current, xtx=xtx.clone())
        return xtx

    compute_hessian_xtx.axera_pipeline = dtype
    compute_hessian_xtx.original = original
    GPTQ.compute_hessian_xtx = compute_hessian_xtx
