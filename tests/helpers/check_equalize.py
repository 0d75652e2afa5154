"""Channel equalisation keeps each supported family's full-precision function (GPTQ environment).

Builds tiny fp32 models in memory with random norms (so the fold's norm arithmetic is exercised), folds
scales from real statistics and prints one JSON object: per family, the largest logit change relative
to the logits' size and how far the weights moved; and the one-line errors for an unknown layout
and for a model that is not a causal LM.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

FAMILIES = {
    "hunyuan_v1_dense": {"use_qk_norm": True},
    "gemma3_text": {"sliding_window": 16, "layer_types": ["sliding_attention", "full_attention"]},
    "qwen3": {},
    "llama": {},
}


def tiny(model_type: str, extra: dict):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    config = AutoConfig.for_model(
        model_type,
        vocab_size=128,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        **extra,
    )
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5) if not model_type.startswith("gemma") else p.uniform_(-0.5, 0.5)
            elif p.dim() == 2:
                p.normal_(0.0, 1.0 / p.shape[1] ** 0.5)
        # A few outlier channels, the case equalisation is for.
        for layer in model.model.layers:
            layer.input_layernorm.weight[:3] *= 8
    return model


def main() -> None:
    import torch

    from axera_pipeline.common.cli import UserError
    from axera_pipeline.gptq import equalize

    report = {}
    samples = [list(range(i, i + 24)) for i in range(0, 96, 24)]
    probe = torch.tensor([list(range(100, 124))])
    for model_type, extra in FAMILIES.items():
        model = tiny(model_type, extra)
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        with torch.no_grad():
            reference = model(input_ids=probe).logits
        means = equalize.input_means(model, samples, say=lambda _m: None)
        equalize.fold(model, means, 0.5)
        with torch.no_grad():
            after = model(input_ids=probe).logits
        moved = max(
            float((p.detach() - before[n]).abs().max() / before[n].abs().max())
            for n, p in model.named_parameters()
        )
        report[model_type] = {
            "places": len(means),
            "logit_change": float((after - reference).abs().max() / reference.abs().max()),
            "weights_moved": moved,
        }
    broken = tiny("llama", {})
    del broken.model.layers[0].mlp.up_proj
    try:
        equalize.input_means(broken, samples, say=lambda _m: None)
        report["unknown_layout"] = None
    except UserError as exc:
        report["unknown_layout"] = str(exc)
    with tempfile.TemporaryDirectory() as folder:
        # A configuration transformers knows, but not as a causal LM.
        (Path(folder) / "config.json").write_text(json.dumps({"model_type": "t5"}))
        try:
            equalize.equalize_checkpoint(Path(folder), Path(folder) / "out", samples, 0.2, lambda _m: None)
            report["not_causal"] = None
        except UserError as exc:
            report["not_causal"] = str(exc)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
