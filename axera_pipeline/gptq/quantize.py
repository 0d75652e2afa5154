"""Quantize a Hugging Face causal LM to a GPTQ INT4/INT8 checkpoint with GPTQModel.

Runs inside the GPTQ environment (`nox -s quantize -- ...`). Only the language model is quantized.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from argparse import BooleanOptionalAction, Namespace
from pathlib import Path
from typing import Any

from axera_pipeline.common import atomic, checkpoint, defaults, faults, manifest
from axera_pipeline.common.basics import sayer
from axera_pipeline.common.cli import Parser, UserError, run
from axera_pipeline.common.teelog import tee_output
from axera_pipeline.gptq import datasets_io, equalize, hessian
from axera_pipeline.gptq.model_source import resolve_model
from axera_pipeline.gptq.runtime import PACKAGES, device_arg, prepare_environment, resolve_device

PROG = "quantize"
# What pulsar2 reads: symmetric, plain GPTQ (desc_act off, so g_idx stays trivial), layer by layer.
GPTQ_SETTINGS = {"sym": True, "desc_act": False}
DEFAULT_DAMP = 0.01  # the original notes' value
# Measured on gemma-3-270m, 400 held-out sentences (BENCHMARKS.md, accuracy sweep): MSE clipping at
# norm 2.4 gained 2.2 chrF [0.6, 4.0] over the notes' settings, with lower KL and perplexity. bf16
# Hessians are faster and scored the same without clipping (+0.2 [-1.4, 2.0]) but not with it
# (-1.85 [-3.4, -0.2]), so fp32 stays the default and bf16 is the fast option.
DEFAULT_MSE = 2.4
DEFAULT_HESSIAN = "fp32"
DEFAULT_EQUALIZE = 0.0
DEFAULT_GPTAQ = 0.0
# Bump when the script's own processing changes what it writes (e.g. how rows are tokenized),
# so that outputs made by an older version are not taken as up to date.
QUANTIZE_FORMAT = 3


def parse_args(argv: list[str] | None = None) -> Namespace:
    p = Parser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("--model", default=defaults.DEFAULT_MODEL, help="hub id or local folder (%(default)s)")
    p.add_argument("--output", type=Path, help="default: $BUILD_DIR (build)/<model name>/gptq-int<bits>")
    p.add_argument("--bits", type=int, choices=(4, 8), default=4, help="4 or 8 (%(default)s)")
    p.add_argument("--group-size", type=int, default=128, help="-1 = per channel (%(default)s)")
    p.add_argument(
        "--calib",
        default=str(datasets_io.DEFAULT_CALIB),
        help="jsonl/txt file or hub dataset name (default: the bundled set)",
    )
    p.add_argument("--calib-split", default="train", help="split of a hub dataset (%(default)s)")
    p.add_argument("--calib-size", type=int, default=0, help="rows to use (0 = all)")
    p.add_argument("--max-length", type=int, default=512, help="tokens per row (%(default)s)")
    p.add_argument(
        "--calib-concat-size",
        type=int,
        default=512,
        help="join rows into blocks of this many tokens; 0 = one row per sample (%(default)s)",
    )
    p.add_argument("--batch-size", type=int, help="calibration batch (4; 1 with --gptaq)")
    p.add_argument(
        "--damp",
        type=float,
        default=DEFAULT_DAMP,
        help="GPTQ dampening, share of the Hessian diagonal (%(default)s)",
    )
    p.add_argument(
        "--act-group-aware",
        action=BooleanOptionalAction,
        help="GPTQModel's activation-group-aware ordering; undone before saving, g_idx stays trivial "
        "(on; off with --gptaq, which has its own)",
    )
    p.add_argument(
        "--true-sequential",
        action=BooleanOptionalAction,
        default=True,
        help="quantize a layer's modules in order, each on inputs after the previous ones (on)",
    )
    p.add_argument(
        "--mse",
        type=float,
        default=DEFAULT_MSE,
        help="clipping search norm; 0 turns it off, as in the original notes (%(default)s)",
    )
    p.add_argument(
        "--hessian",
        choices=hessian.HESSIAN_DTYPES,
        default=DEFAULT_HESSIAN,
        help="X^T X products in fp32 as GPTQModel does, or in bf16 accumulated in fp32 (about 3x the "
        "fp32 rate on the CPU) (%(default)s)",
    )
    p.add_argument(
        "--equalize",
        type=float,
        default=DEFAULT_EQUALIZE,
        metavar="ALPHA",
        help="fold per-channel scales mean|x|^ALPHA into the model before GPTQ (exact in full precision, "
        "plain GPTQ output); 0 = off (%(default)s)",
    )
    p.add_argument(
        "--gptaq",
        type=float,
        default=DEFAULT_GPTAQ,
        metavar="ALPHA",
        help="GPTQModel's GPTAQ: also fit each layer to the full-precision model's inputs, weighting "
        "that term by ALPHA (its authors use 0.25); replaces activation-group-aware ordering; plain "
        "GPTQ output; 0 = off (%(default)s)",
    )
    p.add_argument(
        "--calib-sort",
        choices=("desc", "asc", "shuffle", "none"),
        default="desc",
        help="order of calibration samples, by length (%(default)s)",
    )
    p.add_argument("--device", type=device_arg, default="auto", help="auto, cpu, cuda[:N]")
    p.add_argument("--force", action="store_true", help="redo even if the output is up to date")
    p.add_argument(
        "--no-wait", action="store_true", help="fail at once if another run is writing the same output"
    )
    args = p.parse_args(argv)
    if not 0 < args.damp < 1:
        p.error("--damp must be between 0 and 1")
    if not 0 <= args.equalize <= 1:
        p.error("--equalize must be between 0 (off) and 1, such as 0.2")
    if not 0 <= args.gptaq <= 1:
        p.error("--gptaq must be between 0 (off) and 1, such as 0.25")
    resolve_gptaq_defaults(p, args)
    if args.mse < 0:
        p.error("--mse must be 0 (off) or a positive norm such as 2.4")
    for name in ("calib_size", "max_length", "batch_size", "calib_concat_size"):
        if getattr(args, name) < (0 if name in ("calib_size", "calib_concat_size") else 1):
            p.error(f"--{name.replace('_', '-')} must be positive")
    return args


def resolve_gptaq_defaults(p: Parser, args: Namespace) -> None:
    """Options whose default depends on --gptaq: GPTQModel's GPTAQ ignores GAR and fails on batches."""
    if args.gptaq and args.act_group_aware:
        p.error("--act-group-aware does not apply with --gptaq (GPTAQ quantizes in column order): drop one")
    if args.gptaq and args.batch_size not in (None, 1):
        p.error("--gptaq needs --batch-size 1: GPTQModel's GPTAQ pairs inputs one sample at a time")
    if args.gptaq and args.hessian != "fp32":
        p.error("--hessian bf16 does not apply with --gptaq (GPTAQ makes its own fp32 products): drop one")
    if args.act_group_aware is None:
        args.act_group_aware = not args.gptaq
    if args.batch_size is None:
        args.batch_size = 1 if args.gptaq else 4


def gptq_settings(args: Namespace) -> dict[str, Any]:
    """GPTQModel's QuantizeConfig fields this run uses (recorded in the manifest as they are)."""
    return {
        **GPTQ_SETTINGS,
        "damp_percent": args.damp,
        "act_group_aware": args.act_group_aware,
        "true_sequential": args.true_sequential,
        "mse": args.mse,
    }


def gptaq_settings(args: Namespace, device: str) -> dict[str, Any]:
    """QuantizeConfig's GPTAQ field, imported only when asked for (GPTQModel marks it experimental)."""
    if not args.gptaq:
        return {}
    from gptqmodel.quantization.config import GPTAQConfig

    return {"gptaq": GPTAQConfig(alpha=args.gptaq, device=device)}


def select_rows(rows: list[dict], size: int) -> list[dict]:
    if size and size > len(rows):
        raise UserError(f"--calib-size {size} is larger than the calibration set ({len(rows)} rows)")
    return rows[:size] if size else rows


def build_inputs(args: Namespace, ckpt: checkpoint.Checkpoint, rows: list[dict]) -> dict[str, Any]:
    """Everything that determines the output; equal inputs mean an identical checkpoint."""
    return {
        "format": QUANTIZE_FORMAT,
        "model": {
            "source": args.model,
            "files": manifest.hash_files(ckpt.files, ckpt.path),
        },
        "options": {
            "bits": args.bits,
            "group_size": args.group_size,
            "max_length": args.max_length,
            "calib_concat_size": args.calib_concat_size,
            "batch_size": args.batch_size,
            **gptq_settings(args),
            "calib_sort": args.calib_sort,
            "hessian": args.hessian,
            # Recorded only when on, so that outputs made before the option existed stay up to date.
            **({"equalize": args.equalize} if args.equalize else {}),
            **({"gptaq": args.gptaq} if args.gptaq else {}),
        },
        "calibration": {
            "source": str(args.calib),
            "rows": len(rows),
            "sha256": datasets_io.fingerprint(rows),
        },
        "packages": manifest.package_versions(PACKAGES),
    }


def needed_bytes(ckpt: checkpoint.Checkpoint, bits: int, equalized: bool = False) -> int:
    """Disk for GPTQModel's offload copy of the input plus the output (and the equalised copy), with a
    margin."""
    copies = 1.0 + bits / 16 + 0.2 + (1.0 if equalized else 0.0)
    return int(ckpt.weight_bytes * copies) + 64 * 2**20


def tokenize_rows(tokenizer: Any, rows: list[dict], max_length: int) -> tuple[list[dict], int]:
    from axera_pipeline.gptq.model_prompts import encode_row

    samples, tokens = [], 0
    for row in rows:
        ids = encode_row(tokenizer, row, max_length)
        samples.append({"input_ids": ids, "attention_mask": [1] * len(ids)})
        tokens += len(ids)
    return samples, tokens


def loss_summary(log: dict) -> dict[str, Any]:
    """Per-module GPTQ loss (what each layer's reconstruction cost), summarised for the manifest."""
    entries = []
    for item in log.get("gptq", []) if isinstance(log, dict) else []:
        try:
            entries.append(
                {
                    "layer": int(item["layer"]),
                    "module": str(item["module"]),
                    "loss": float(item["loss"]),
                    "samples": int(item.get("samples", 0)),
                }
            )
        except (KeyError, TypeError, ValueError):
            continue
    by_module: dict[str, list[float]] = {}
    for e in entries:
        by_module.setdefault(e["module"], []).append(e["loss"])
    losses = [e["loss"] for e in entries]
    return {
        "modules": len(entries),
        "mean": sum(losses) / len(losses) if losses else None,
        "max": max(losses) if losses else None,
        "by_module": {m: {"mean": sum(v) / len(v), "max": max(v)} for m, v in sorted(by_module.items())},
        "per_module": entries,
    }


def copy_missing_files(src: Path, dst: Path) -> None:
    """Tokenizer and generation files the board and loaders need, if the saver left any out."""
    for name in checkpoint.TOKENIZER_FILES:
        if (src / name).is_file() and not (dst / name).exists():
            shutil.copy2(src / name, dst / name)


def load_tokenizer(auto_tokenizer: Any, path: Path) -> Any:
    """The tokenizer, or one line naming the folder whose tokenizer files do not load."""
    try:
        return auto_tokenizer.from_pretrained(path)
    except Exception as exc:  # noqa: BLE001 - tokenizers raise many types; the user needs one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"the tokenizer files in {path} do not load: {first}") from None


def quantize(args: Namespace, ckpt: checkpoint.Checkpoint, rows: list[dict], stage: Path) -> dict:
    say(f"importing GPTQModel (about 10 s) for {ckpt.model_type}")
    from gptqmodel import GPTQModel, QuantizeConfig
    from gptqmodel.models.auto import SUPPORTED_MODELS
    from transformers import AutoTokenizer

    hessian.install(args.hessian)
    if ckpt.model_type not in SUPPORTED_MODELS:
        raise UserError(
            f"model_type {ckpt.model_type!r} is not supported by GPTQModel; supported: "
            + ", ".join(sorted(SUPPORTED_MODELS))
        )
    device = resolve_device(args.device)
    tokenizer = load_tokenizer(AutoTokenizer, ckpt.path)
    samples, tokens = tokenize_rows(tokenizer, rows, args.max_length)
    say(f"calibration: {len(samples)} rows, {tokens} tokens (mean {tokens / len(samples):.0f})")
    config = QuantizeConfig(
        bits=args.bits,
        group_size=args.group_size,
        device=device,
        offload_to_disk_path=str(stage / ".offload"),
        **gptq_settings(args),
        **gptaq_settings(args, device),
    )
    source = ckpt.path
    if args.equalize:
        source = stage / ".equalized"
        ids = [sample["input_ids"] for sample in samples]
        equalize.equalize_checkpoint(ckpt.path, source, ids, args.equalize, say)
    # GPTQModel writes logs/gptq_log_*.log into the working directory: keep them with the output.
    os.chdir(stage)
    say(f"loading {source} on {device}")
    faults.at("loading", ckpt.path)
    model = GPTQModel.load(str(source), config)
    layers = ckpt.text_config.get("num_hidden_layers", "?")
    method = f"GPTAQ alpha {args.gptaq}, one sample per batch" if args.gptaq else "GPTQ"
    say(
        f"quantizing {layers} layers to int{args.bits}, group size {args.group_size}, {method} "
        "(the first run also compiles a packing kernel)"
    )
    faults.at("quantizing", stage)
    # Short rows joined into longer blocks give GPTQ more realistic activations: on gemma-3-270m this
    # cut the int4 chrF loss from 7.1 to 2.1 points (bench/results/gemma.md).
    log = model.quantize(
        samples,
        batch_size=args.batch_size,
        tokenizer=tokenizer,
        calibration_concat_size=args.calib_concat_size or None,
        calibration_sort=None if args.calib_sort == "none" else args.calib_sort,
    )
    say(f"saving to {stage}")
    faults.at("saving", stage / "model.safetensors")
    model.save(str(stage))
    shutil.rmtree(stage / ".offload", ignore_errors=True)
    shutil.rmtree(stage / ".equalized", ignore_errors=True)
    copy_missing_files(ckpt.path, stage)
    return {"device": device, "calibration_tokens": tokens, "gptq_loss": loss_summary(log)}


say = sayer(PROG)


def main(argv: list[str] | None = None) -> int:
    started = time.monotonic()
    args = parse_args(argv)
    prepare_environment(args.model, args.calib)
    ckpt = checkpoint.load_checkpoint(resolve_model(args.model))
    checkpoint.check_group_size(ckpt, args.group_size)
    output = (args.output or defaults.checkpoint(args.model, args.bits)).expanduser().absolute()
    atomic.check_destination(output)
    rows = select_rows(datasets_io.load_rows(args.calib, split=args.calib_split), args.calib_size)

    with atomic.owned_output(output, "quantize", wait=not args.no_wait, say=say):
        say(f"hashing {len(ckpt.files)} input files")
        inputs = build_inputs(args, ckpt, rows)
        if not args.force and manifest.is_up_to_date(output, inputs):
            say(f"{output} is up to date (inputs match its manifest.json); nothing to do, --force redoes it")
            return 0
        atomic.check_free_space(
            output.parent, needed_bytes(ckpt, args.bits, args.equalize > 0), "the quantized model"
        )
        log_path = output.with_name(output.name + ".log")
        with tee_output(log_path), atomic.staged_folder(output) as stage:
            say(f"{args.model} -> {output} (log: {log_path})")
            result = quantize(args, ckpt, rows, stage)
            manifest.write(
                stage,
                {
                    "inputs": inputs,
                    "result": result,
                    "wall_time_s": round(time.monotonic() - started, 1),
                    "peak_rss_mib": round(manifest.peak_rss_mib(), 1),
                    "command": [sys.executable, *sys.argv],
                },
            )
    say(f"done: {output}")
    return 0


if __name__ == "__main__":
    run(main, PROG)
