"""Put what the board needs next to freshly built axmodels: embeddings, tokenizer, runtime configs.

Runs inside the GPTQ environment (it reads the bf16 embedding table with torch); build.py calls it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from axera_pipeline.common import checkpoint
from axera_pipeline.common.cli import Parser, UserError

PROG = "package"
EMBED_NPY = "model.embed_tokens.weight.npy"
EMBED_BF16 = "model.embed_tokens.weight.bfloat16.bin"
RUNTIME_CONFIG = "axllm_config.json"
POST_CONFIG = "post_config.json"


def find_embeddings(ckpt: checkpoint.Checkpoint):
    """The token embedding table, unquantized in a GPTQ checkpoint, as a torch tensor."""
    from safetensors import safe_open

    for weights in ckpt.weights:
        if weights.suffix != ".safetensors":
            continue
        with safe_open(str(weights), framework="pt") as handle:
            names = sorted((k for k in handle.keys() if k.endswith("embed_tokens.weight")), key=len)
            if names:
                return handle.get_tensor(names[0])
    raise UserError(f"no embed_tokens.weight tensor in the safetensors files of {ckpt.path}")


def write_embeddings(ckpt: checkpoint.Checkpoint, out: Path) -> list[int]:
    import numpy as np
    import torch

    table = find_embeddings(ckpt)
    text = ckpt.text_config
    want = [int(text.get("vocab_size", 0)), int(text.get("hidden_size", 0))]
    if list(table.shape) != want:
        raise UserError(
            f"embedding table is {list(table.shape)} but config.json says vocab_size x hidden_size = {want}"
        )
    np.save(out / EMBED_NPY, table.to(torch.float32).numpy())
    # Raw bfloat16, no header: what the C++ runtime memory-maps.
    table.to(torch.bfloat16).view(torch.int16).numpy().tofile(out / EMBED_BF16)
    return want


def post_config(generation: dict) -> dict:
    """ax-llm sampling settings, taken from the model's generation_config.json where it has them."""
    return {
        "enable_temperature": "temperature" in generation,
        "temperature": generation.get("temperature", 0.7),
        "enable_repetition_penalty": "repetition_penalty" in generation,
        "repetition_penalty": generation.get("repetition_penalty", 1.0),
        "penalty_window": 20,
        "enable_top_p_sampling": "top_p" in generation,
        "top_p": generation.get("top_p", 0.8),
        "enable_top_k_sampling": "top_k" in generation,
        "top_k": generation.get("top_k", 1),
    }


def main() -> int:
    p = Parser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, required=True, help="the GPTQ checkpoint built from")
    p.add_argument("--output", type=Path, required=True, help="folder holding the axmodels")
    p.add_argument("--prefix", required=True, help="axmodel file prefix (the model_type)")
    p.add_argument("--prefill-len", type=int, required=True)
    p.add_argument("--kv-cache-len", type=int, required=True)
    p.add_argument("--max-prefill-len", type=int, required=True)
    args = p.parse_args()

    ckpt = checkpoint.load_checkpoint(args.checkpoint)
    layers = int(ckpt.text_config["num_hidden_layers"])
    vocab, hidden = write_embeddings(ckpt, args.output)
    for name in ("config.json", *checkpoint.TOKENIZER_FILES):
        if (ckpt.path / name).is_file():
            shutil.copy2(ckpt.path / name, args.output / name)
    runtime = {
        "template_filename_axmodel": f"{args.prefix}_p{args.prefill_len}_l%d_together.axmodel",
        "axmodel_num": layers,
        "filename_post_axmodel": f"{args.prefix}_post.axmodel",
        "filename_tokens_embed": EMBED_BF16,
        "tokens_embed_num": vocab,
        "tokens_embed_size": hidden,
        "use_mmap_load_embed": 1,
        "prefill_token_num": args.prefill_len,
        "prefill_max_token_num": args.max_prefill_len,
        "kv_cache_len": args.kv_cache_len,
    }
    (args.output / RUNTIME_CONFIG).write_text(json.dumps(runtime, indent=2) + "\n")
    gen_file = ckpt.path / "generation_config.json"
    generation = json.loads(gen_file.read_text()) if gen_file.is_file() else {}
    (args.output / POST_CONFIG).write_text(json.dumps(post_config(generation), indent=2) + "\n")
    print(f"[{PROG}] embeddings {vocab} x {hidden}, {layers} layers, runtime config {RUNTIME_CONFIG}")
    return 0
