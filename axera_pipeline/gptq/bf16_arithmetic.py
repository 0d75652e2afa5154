"""How verify's bf16 passes multiply: natively where the machine has bf16 matrix instructions, else
bf16 storage with the matrix products computed in fp32.

Measured (BENCHMARKS.md §10): one HY-MT-width forward in bf16 takes 0.56 s with AMX and 9.3 s, 40.8 s
with oneDNN capped at AVX-512 without BF16, at AVX2: most desktop CPUs have no bf16 instructions.
The same bf16 model with only its matrix products (`aten.mm`, `addmm`, `bmm`, `baddbmm`, the
attention kernel) computed in fp32 on the bf16 operands, the results stored back as bf16, runs at fp32
speed everywhere and differs from native bf16 about as much as two native bf16 kernels differ from
each other. Everything else (norms, activations, the KV cache, every stored tensor) stays bf16.

`AXERA_BF16_ARITHMETIC` (or verify's `--bf16-arithmetic`): auto (the default), native, fp32-matmul.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from axera_pipeline.common.cli import UserError

ENV = "AXERA_BF16_ARITHMETIC"
CHOICES = ("auto", "native", "fp32-matmul")
# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) that still allow its bf16 kernels.
BF16_ISAS = ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16", "AVX10_1_512")


@dataclass(frozen=True)
class Arithmetic:
    mode: str  # "native" or "fp32-matmul"
    why: str

    def context(self):
        """Where the model runs: nothing for native bf16, else the fp32 matrix products."""
        return contextlib.nullcontext() if self.mode == "native" else fp32_matmul()

    def record(self) -> dict[str, str]:
        return {"mode": self.mode, "why": self.why}


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_has_bf16(flags: set[str], isa_cap: str | None) -> tuple[bool, str]:
    found = sorted(flags & {"amx_bf16", "avx512_bf16"})
    if not found:
        return False, "this CPU has no bf16 matrix instructions (no AMX, no AVX512-BF16)"
    cap = (isa_cap or "").strip().upper()
    if cap and cap not in ("ALL", "DEFAULT") and cap not in BF16_ISAS:
        return False, f"oneDNN is capped at {cap} (ONEDNN_MAX_CPU_ISA), below its bf16 kernels"
    return True, f"this CPU multiplies bf16 natively ({', '.join(found)})"


def choose(device: str, requested: str | None = None) -> Arithmetic:
    """native where the device has bf16 matrix instructions (CUDA, AMX, AVX512-BF16), else fp32-matmul;
    requested (or AXERA_BF16_ARITHMETIC) forces one."""
    wanted = requested or os.environ.get(ENV) or "auto"
    if wanted not in CHOICES:
        raise UserError(f"{ENV}={wanted!r} is not one of {', '.join(CHOICES)}")
    if wanted != "auto":
        return Arithmetic(wanted, f"forced ({ENV} or --bf16-arithmetic {wanted})")
    if device.startswith("cuda"):
        return Arithmetic("native", "CUDA multiplies bf16 natively")
    native, why = cpu_has_bf16(cpu_flags(), os.environ.get("ONEDNN_MAX_CPU_ISA"))
    return Arithmetic("native" if native else "fp32-matmul", why)


def fp32_matmul():
    """A TorchDispatchMode: bf16 matrix products computed in fp32, their results stored as bf16."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    aten = torch.ops.aten
    products = {aten.mm.default, aten.addmm.default, aten.bmm.default, aten.baddbmm.default}
    attention = {
        op
        for name in (
            "_scaled_dot_product_flash_attention_for_cpu",
            "_scaled_dot_product_attention_math",
            "_scaled_dot_product_efficient_attention",
        )
        if (op := getattr(getattr(aten, name, None), "default", None)) is not None
    }

    def widen(value):
        if isinstance(value, torch.Tensor) and value.dtype == torch.bfloat16:
            return value.float()
        return value

    class Fp32Matmul(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func not in products and func not in attention:
                return func(*args, **kwargs)
            if not any(isinstance(a, torch.Tensor) and a.dtype == torch.bfloat16 for a in args):
                return func(*args, **kwargs)
            out = func(*[widen(a) for a in args], **{k: widen(v) for k, v in kwargs.items()})
            if func in products:
                return out.to(torch.bfloat16)
            # Attention kernels return (output, logsumexp, ...): the output as bf16, the rest as they are.
            first, *rest = out if isinstance(out, tuple) else (out,)
            return (first.to(torch.bfloat16), *rest) if isinstance(out, tuple) else first.to(torch.bfloat16)

    return Fp32Matmul()
