"""Compare a quantized model with its reference: logits, hidden states, perplexity, RTN baseline.

Runs inside the GPTQ environment. Reference outputs are computed first and kept on the CPU, so the
two models never need to be in memory at the same time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F


@dataclass
class Outputs:
    """What a model produced on the prompts: per-prompt logits over the prompt and last hidden state."""

    logits: list[torch.Tensor]  # [tokens, vocab], float32, on the CPU
    last_hidden: list[torch.Tensor]  # [hidden], float32


def encode_text(tokenizer: Any, texts: list[str], max_length: int) -> list[torch.Tensor]:
    """Plain text with the tokenizer's special tokens (BOS), as a model reads a document."""
    return [torch.tensor(tokenizer(t, truncation=True, max_length=max_length)["input_ids"]) for t in texts]


def encode_rows(tokenizer: Any, rows: list[dict], max_length: int) -> list[torch.Tensor]:
    """Data rows (translation, chat or text) as the model sees them: see prompts.encode_row."""
    from axera_pipeline.gptq.model_prompts import encode_row

    return [torch.tensor(encode_row(tokenizer, row, max_length)) for row in rows]


@torch.no_grad()
def run_prompts(model: Any, prompts: list[torch.Tensor], device: str, progress=None) -> Outputs:
    logits, hidden = [], []
    for i, ids in enumerate(prompts):
        out = model(input_ids=ids[None].to(device), output_hidden_states=True)
        logits.append(out.logits[0].float().cpu())
        hidden.append(out.hidden_states[-1][0, -1].float().cpu())
        if progress:
            progress(i + 1, len(prompts))
    return Outputs(logits, hidden)


def logit_metrics(ref: Outputs, test: Outputs) -> dict[str, float]:
    """Mean over all prompt positions: logits cosine, KL(ref || test), top-1 agreement;
    and the mean cosine of the last token's final hidden state (the original script's figure)."""
    cos, kl, agree, n = 0.0, 0.0, 0.0, 0
    for a, b in zip(ref.logits, test.logits, strict=True):
        cos += F.cosine_similarity(a, b, dim=-1).sum().item()
        kl += F.kl_div(F.log_softmax(b, -1), F.log_softmax(a, -1), log_target=True, reduction="sum").item()
        agree += (a.argmax(-1) == b.argmax(-1)).sum().item()
        n += a.shape[0]
    hidden = [
        F.cosine_similarity(a, b, dim=0).item()
        for a, b in zip(ref.last_hidden, test.last_hidden, strict=True)
    ]
    return {
        "logits_cosine": cos / n,
        "kl_divergence": kl / n,
        "top1_agreement": agree / n,
        "last_hidden_cosine": sum(hidden) / len(hidden),
        "positions": n,
    }


@torch.no_grad()
def perplexity(model: Any, texts: list[torch.Tensor], device: str) -> float:
    nll, count = 0.0, 0
    for ids in texts:
        if len(ids) < 2:
            continue
        logits = model(input_ids=ids[None].to(device)).logits[0, :-1].float()
        nll += F.cross_entropy(logits, ids[1:].to(device), reduction="sum").item()
        count += len(ids) - 1
    return math.exp(nll / count) if count else float("nan")


def rtn_weight(weight: torch.Tensor, bits: int, group_size: int) -> torch.Tensor:
    """Symmetric round-to-nearest with GPTQ's grid (maxq = 2^bits - 1, zero at the middle)."""
    w = weight.float()
    rows, cols = w.shape
    g = cols if group_size == -1 else group_size
    grouped = w.reshape(rows, cols // g, g)
    maxq = 2**bits - 1
    xmax = grouped.abs().amax(dim=-1, keepdim=True).clamp(min=1e-8)
    scale = 2 * xmax / maxq
    zero = (maxq + 1) / 2
    q = torch.clamp(torch.round(grouped / scale) + zero, 0, maxq)
    return (scale * (q - zero)).reshape(rows, cols).to(weight.dtype)


@torch.no_grad()
def apply_rtn(model: Any, bits: int, group_size: int) -> int:
    """Round-to-nearest every linear layer inside the decoder blocks (what GPTQ quantizes)."""
    count = 0
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and ".layers." in name:
            module.weight.copy_(rtn_weight(module.weight, bits, group_size))
            count += 1
    return count
