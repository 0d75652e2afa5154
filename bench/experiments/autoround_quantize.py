"""Quantize fp with AutoRound instead of GPTQ, into the defaults' checkpoint layout (bench env).

An experiment for the accuracy benchmark, not a pipeline step. AutoRound (Intel's `auto-round`,
SignRound) learns each weight's rounding and each group's clipping by sign gradient descent on the
output of one decoder block at a time, against fp. It runs on the same calibration tokens as GPTQ:
the bundled rows in the chat template, joined into one stream and cut into blocks of `--seqlen`.
Settings stay within what pulsar2 reads: int4, symmetric, the defaults' group size, no act order.

The output is the defaults' GPTQ checkpoint (config, tokenizer, non-linear tensors) with only the
`qweight`, `qzeros` and `scales` of its linears replaced by AutoRound's, converted to the same packing
(checked: each linear's dequantized weight must stay near fp), and its manifest gets an `autoround`
block (gptq_tensors.write_derived).

Usage: python autoround_quantize.py FP_DIR DEFAULTS_DIR OUT_DIR [--iters N] [--dtype fp32|bf16] ...
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from axera_pipeline.gptq.datasets_io import DEFAULT_CALIB, read_jsonl
from axera_pipeline.gptq.model_prompts import encode_row
from bench.lib.gptq_tensors import dequantized, write_derived

PACKED = (".qweight", ".qzeros", ".scales")


def calibration_samples(tok, seqlen: int) -> list[torch.Tensor]:
    """All calibration rows' tokens as one stream, cut into full blocks of seqlen (AutoRound skips
    shorter ones); the tail shorter than a block is dropped."""
    stream = [t for row in read_jsonl(DEFAULT_CALIB) for t in encode_row(tok, row, 512)]
    return [torch.tensor([stream[i : i + seqlen]]) for i in range(0, len(stream) - seqlen + 1, seqlen)]


def autoround(fp_dir: Path, out: Path, group_size: int, args: argparse.Namespace) -> tuple[dict, int]:
    from auto_round import AutoRound

    tok = AutoTokenizer.from_pretrained(fp_dir)
    model = AutoModelForCausalLM.from_pretrained(fp_dir, dtype=torch.float32)
    samples = calibration_samples(tok, args.seqlen)
    quantizer = AutoRound(
        model,
        tokenizer=tok,
        bits=4,
        group_size=group_size,
        sym=True,
        iters=args.iters,
        nsamples=len(samples),
        seqlen=args.seqlen,
        batch_size=args.batch_size,
        dataset=samples,
        device_map="cpu",
        seed=args.seed,
        enable_torch_compile=False,
        # On a CPU with bf16 AutoRound casts the block, its weights and fp's targets to bf16 unless told.
        amp=args.dtype == "bf16",
    )
    quantizer.quantize_and_save(str(out), format="auto_gptq")
    tensors = {}
    for f in sorted(out.rglob("*.safetensors")):  # AutoRound saves into a subfolder
        tensors.update(load_file(str(f)))
    return tensors, sum(s.numel() for s in samples)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("fp_dir", type=Path)
    p.add_argument("defaults_dir", type=Path)
    p.add_argument("out_dir", type=Path)
    p.add_argument("--iters", type=int, default=200)
    p.add_argument("--seqlen", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32", help="precision of the tuning")
    args = p.parse_args()

    # The defaults' layout fixes the packing, so AutoRound works at their bits' and group size's grid.
    layout = json.loads((args.defaults_dir / "quantize_config.json").read_text())
    if layout["bits"] != 4:
        raise SystemExit(f"{args.defaults_dir} is int{layout['bits']}; AutoRound here writes int4")
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        theirs, tokens = autoround(args.fp_dir, Path(scratch) / "autoround", layout["group_size"], args)
    seconds = round(time.monotonic() - started, 1)

    ours = load_file(str(args.defaults_dir / "model.safetensors"))
    fp = AutoModelForCausalLM.from_pretrained(args.fp_dir, dtype=torch.float32).state_dict()
    prefixes = sorted({k[: -len(".qweight")] for k in ours if k.endswith(".qweight")})
    worst = 0.0
    for prefix in prefixes:
        for suffix in PACKED:
            written = theirs.get(prefix + suffix)
            if written is None or written.shape != ours[prefix + suffix].shape:
                shape = "nothing" if written is None else tuple(written.shape)
                raise SystemExit(f"{prefix}{suffix}: AutoRound wrote {shape}, not the defaults' layout")
            ours[prefix + suffix] = written.to(ours[prefix + suffix].dtype).contiguous()
        weight = fp[prefix + ".weight"]
        error = (dequantized(ours, prefix, 4) - weight).norm() / weight.norm()
        worst = max(worst, float(error))
    # A packing mismatch (zero-point offset, bit order) shows as an error near or above 1.
    if worst > 0.3:
        raise SystemExit(f"AutoRound's tensors do not decode to fp's weights (worst error {worst:.2f})")

    record = {
        "dtype": args.dtype,
        "iters": args.iters,
        "seqlen": args.seqlen,
        "batch_size": args.batch_size,
        "group_size": layout["group_size"],
        "calibration_tokens": tokens,
        "seconds": seconds,
        "worst_relative_weight_error": round(worst, 4),
        "packages": {name: version(name) for name in ("auto-round", "torch", "transformers")},
    }
    write_derived(args.defaults_dir, args.out_dir, ours, "autoround", record)
    print(f"AutoRound: {len(prefixes)} linears in {seconds} s, worst relative weight error {worst:.3f}")


if __name__ == "__main__":
    main()
