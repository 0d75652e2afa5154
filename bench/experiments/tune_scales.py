"""After GPTQ, tune the group scales (and optionally the norm gains) against fp by KL (bench env).

An experiment for the accuracy benchmark, not a pipeline step. GPTQ's integer codes stay as they are;
each group's fp16 scale becomes s0 * exp(t) and t is trained with Adam (cosine decay to zero) on
KL(fp || quantized) over the next-token distributions of the calibration rows (the pipeline's bundled
set unless --calib names another), joined into blocks of up to 512 tokens. `--params scales+norms`
also trains the RMSNorm gains, which stay unquantized on the chip ("norm tweaking"). Only `scales`
and norm tensors change, so the output stays plain GPTQ, exactly what pulsar2 reads. Its manifest is
the source's plus a `scale_tuning` block, so cached evaluations of the source are never reused for it.

Usage: python tune_scales.py FP_DIR GPTQ_DIR OUT_DIR [--epochs N] [--lr LR]
           [--params scales|scales+norms] [--norm-lr LR] [--calib JSONL]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from axera_pipeline.common.cli import UserError
from axera_pipeline.gptq.datasets_io import DEFAULT_CALIB, read_jsonl
from axera_pipeline.gptq.model_prompts import encode_row
from bench.lib.gptq_tensors import centered_codes, write_derived

BLOCK_TOKENS = 512


class TunableScales(torch.nn.Module):
    """A GPTQ linear as (code - zero) * scale, with the codes fixed and log-offsets on the scales."""

    def __init__(self, tensors: dict, prefix: str, bits: int) -> None:
        super().__init__()
        group_of, centered = centered_codes(tensors, prefix, bits)
        self.register_buffer("group_of", group_of)
        self.register_buffer("centered", centered)
        self.register_buffer("base", tensors[prefix + ".scales"].float())  # [groups, out]
        self.log_offset = torch.nn.Parameter(torch.zeros_like(self.base))

    def scales(self) -> torch.Tensor:
        return self.base * self.log_offset.exp()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.centered.to(x.dtype) * self.scales()[self.group_of].t())


def calibration_blocks(tok, calib: Path = DEFAULT_CALIB, seed: int = 0) -> list[list[int]]:
    """Calibration rows in the chat template, joined into blocks of up to 512 tokens as quantize's
    --calib-concat-size joins them (shuffled once, so blocks mix languages)."""
    rows = [encode_row(tok, row, BLOCK_TOKENS) for row in read_jsonl(calib)]
    random.Random(seed).shuffle(rows)
    blocks, current = [], []
    for ids in rows:
        if current and len(current) + len(ids) > BLOCK_TOKENS:
            blocks.append(current)
            current = []
        current.extend(ids)
    return blocks + [current]


def student_model(fp_dir: Path, gptq_dir: Path, bits: int) -> tuple[torch.nn.Module, dict, dict]:
    """fp's architecture with the checkpoint's tensors: quantized linears become TunableScales."""
    tensors = load_file(str(gptq_dir / "model.safetensors"))
    model = AutoModelForCausalLM.from_pretrained(fp_dir, dtype=torch.float32).eval()
    plain = {
        k: v.float()
        for k, v in tensors.items()
        if not k.endswith((".qweight", ".qzeros", ".scales", ".g_idx"))
    }
    model.load_state_dict(plain, strict=False)
    tuned = {}
    for name, _ in list(model.named_modules()):
        if name + ".qweight" in tensors:
            parent, _, leaf = name.rpartition(".")
            tuned[name] = TunableScales(tensors, name, bits)
            setattr(model.get_submodule(parent), leaf, tuned[name])
    for p in model.parameters():
        p.requires_grad_(False)
    for module in tuned.values():
        module.log_offset.requires_grad_(True)
    return model, tuned, tensors


def kl_to_fp(student: torch.nn.Module, fp: torch.nn.Module, ids: list[int]) -> torch.Tensor:
    x = torch.tensor([ids])
    with torch.no_grad():
        ref = F.log_softmax(fp(x).logits.float(), -1)
    test = F.log_softmax(student(x).logits.float(), -1)
    return F.kl_div(test, ref, log_target=True, reduction="sum") / len(ids)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("fp_dir", type=Path)
    p.add_argument("gptq_dir", type=Path)
    p.add_argument("out_dir", type=Path)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--params", choices=["scales", "scales+norms"], default="scales")
    p.add_argument("--norm-lr", type=float, default=1e-3)
    p.add_argument("--calib", type=Path, default=DEFAULT_CALIB)
    args = p.parse_args()
    if not args.calib.is_file():
        p.error(f"--calib {args.calib}: no such file (a JSONL of calibration rows, as quantize's --calib)")
    torch.manual_seed(0)
    started = time.monotonic()
    bits = json.loads((args.gptq_dir / "quantize_config.json").read_text())["bits"]
    try:
        blocks = calibration_blocks(AutoTokenizer.from_pretrained(args.fp_dir), args.calib)
    except UserError as error:
        raise SystemExit(f"error: {error}") from None
    fp = AutoModelForCausalLM.from_pretrained(args.fp_dir, dtype=torch.float32).eval()
    student, tuned, tensors = student_model(args.fp_dir, args.gptq_dir, bits)
    groups = [{"params": [m.log_offset for m in tuned.values()], "lr": args.lr, "peak": args.lr}]
    # The stored norm weight is the gain (Gemma's RMSNorm adds 1 to it), so training it trains the gain.
    norms = {n: p for n, p in student.named_parameters() if "norm" in n} if "norms" in args.params else {}
    if norms:
        for param in norms.values():
            param.requires_grad_(True)
        groups.append({"params": list(norms.values()), "lr": args.norm_lr, "peak": args.norm_lr})
    optimizer = torch.optim.Adam(groups)
    steps, step = args.epochs * len(blocks), 0
    print(
        f"{len(tuned)} quantized linears, {len(norms)} norm gains, {len(blocks)} blocks, {steps} steps",
        flush=True,
    )
    order = random.Random(1)
    for epoch in range(args.epochs):
        total = 0.0
        for i in order.sample(range(len(blocks)), len(blocks)):
            for group in optimizer.param_groups:
                group["lr"] = group["peak"] * 0.5 * (1 + math.cos(math.pi * step / steps))
            loss = kl_to_fp(student, fp, blocks[i])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, step = total + loss.item(), step + 1
        print(
            f"epoch {epoch + 1}/{args.epochs}: calibration KL {total / len(blocks):.4f} "
            f"({time.monotonic() - started:.0f} s)",
            flush=True,
        )

    with torch.no_grad():
        for name, module in tuned.items():
            tensors[name + ".scales"] = module.scales().to(tensors[name + ".scales"].dtype).contiguous()
        moved = rounded = 0.0
        for name, param in norms.items():
            stored = param.detach().to(tensors[name].dtype)
            moved += float((param - tensors[name].float()).abs().sum())
            rounded += float((param - stored.float()).abs().sum())
            tensors[name] = stored.contiguous()
    if norms:
        # The norm gains stay in the checkpoint's dtype (bf16 here, as the chip computes them).
        print(f"norm gains: moved {moved:.3g} in all (sum of |change|); rounding on saving: {rounded:.3g}")
    record = {
        "epochs": args.epochs,
        "lr": args.lr,
        "params": args.params,
        **({"norm_lr": args.norm_lr} if norms else {}),
        "calib": str(args.calib),
        "blocks": len(blocks),
        "tokens": sum(map(len, blocks)),
        "seconds": round(time.monotonic() - started, 1),
    }
    write_derived(args.gptq_dir, args.out_dir, tensors, "scale_tuning", record)
    print(f"done: {args.out_dir}", flush=True)


if __name__ == "__main__":
    main()
