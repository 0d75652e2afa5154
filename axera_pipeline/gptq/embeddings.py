"""Write the token embedding tables a board package needs, from a GPTQ checkpoint (GPTQ environment).

The table stays unquantized in a GPTQ checkpoint; axllm reads it as raw bf16, Axera's Python demo as a
float32 .npy. The build (toolchain side) runs this as its own process and writes everything else.
"""

from __future__ import annotations

from pathlib import Path

from axera_pipeline.common import checkpoint
from axera_pipeline.common.cli import Parser, UserError, run
from axera_pipeline.common.package_layout import EMBED_BF16, EMBED_NPY

PROG = "embeddings"


def find_embeddings(ckpt: checkpoint.Checkpoint):
    """The token embedding table as a torch tensor."""
    from safetensors import safe_open

    for weights in ckpt.weights:
        if weights.suffix != ".safetensors":
            continue
        with safe_open(str(weights), framework="pt") as handle:
            names = sorted((k for k in handle.keys() if k.endswith("embed_tokens.weight")), key=len)
            if names:
                return handle.get_tensor(names[0])
    raise UserError(f"no embed_tokens.weight tensor in the safetensors files of {ckpt.path}")


def write_embeddings(ckpt: checkpoint.Checkpoint, out: Path, npy: bool) -> list[int]:
    import numpy as np
    import torch

    table = find_embeddings(ckpt)
    text = ckpt.text_config
    want = [int(text.get("vocab_size", 0)), int(text.get("hidden_size", 0))]
    if list(table.shape) != want:
        raise UserError(
            f"embedding table is {list(table.shape)} but config.json says vocab_size x hidden_size = {want}"
        )
    # Raw bfloat16, no header: what the C++ runtime memory-maps.
    table.to(torch.bfloat16).view(torch.int16).numpy().tofile(out / EMBED_BF16)
    if npy:
        np.save(out / EMBED_NPY, table.to(torch.float32).numpy())
    return want


def main() -> int:
    p = Parser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, required=True, help="the GPTQ checkpoint built from")
    p.add_argument("--output", type=Path, required=True, help="the package folder")
    p.add_argument("--no-npy", action="store_true", help="leave out the float32 .npy (axllm-only packages)")
    args = p.parse_args()
    vocab, hidden = write_embeddings(
        checkpoint.load_checkpoint(args.checkpoint), args.output, not args.no_npy
    )
    print(
        f"[{PROG}] embeddings {vocab} x {hidden}" + ("" if args.no_npy else " (bf16 .bin and float32 .npy)")
    )
    return 0


if __name__ == "__main__":
    run(main, PROG)
