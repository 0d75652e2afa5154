"""A GPTQ checkpoint's packed tensors read back as integer codes and weights (bench env)."""

from __future__ import annotations

import torch


def unpack(packed: torch.Tensor, bits: int, along: int) -> torch.Tensor:
    """GPTQ's int32 packing undone: 32 / bits codes per word along dim 0 (qweight) or 1 (qzeros)."""
    shifts = torch.arange(0, 32, bits, dtype=torch.int32)
    mask = (1 << bits) - 1
    if along == 0:
        return ((packed.unsqueeze(1) >> shifts.view(1, -1, 1)) & mask).reshape(-1, packed.shape[1])
    return ((packed.unsqueeze(2) >> shifts.view(1, 1, -1)) & mask).reshape(packed.shape[0], -1)


def centered_codes(tensors: dict, prefix: str, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One linear's group of each input column and its codes minus their zero point, [out, in] int8."""
    codes = unpack(tensors[prefix + ".qweight"], bits, along=0)  # [in, out]
    # GPTQ's v1 checkpoint format stores zero - 1.
    zeros = unpack(tensors[prefix + ".qzeros"], bits, along=1)[:, : codes.shape[1]] + 1
    group_of = tensors[prefix + ".g_idx"].long()
    return group_of, (codes - zeros[group_of]).to(torch.int8).t().contiguous()


def dequantized(tensors: dict, prefix: str, bits: int) -> torch.Tensor:
    """One linear's weight as the checkpoint encodes it, [out, in] float32."""
    group_of, centered = centered_codes(tensors, prefix, bits)
    return centered.float() * tensors[prefix + ".scales"].float()[group_of].t()
