"""Measure how close a GPTQ checkpoint stays to its reference model, and pass or fail it.

Runs inside the GPTQ environment (`nox -s verify -- ...`). Same prompts, same device, one model in
memory at a time: the reference first (then turned into a round-to-nearest baseline in place),
then the quantized checkpoint.
"""

from __future__ import annotations

import json
import os
import time
from argparse import Namespace
from pathlib import Path
from typing import Any

from axera_pipeline.common import atomic, checkpoint, defaults, manifest
from axera_pipeline.common.basics import sayer
from axera_pipeline.common.cli import Parser, UserError, run
from axera_pipeline.common.paths import DATA
from axera_pipeline.common.teelog import tee_output
from axera_pipeline.gptq import bf16_arithmetic, chip_numerics, datasets_io, thresholds
from axera_pipeline.gptq.model_source import resolve_model
from axera_pipeline.gptq.quantize import load_tokenizer
from axera_pipeline.gptq.runtime import PACKAGES, device_arg, prepare_environment, resolve_device

PROG = "verify"
PASSED = "PASSED"
# Bump when the measurements change, so older reports are not reused (4: translations.jsonl).
VERIFY_FORMAT = 4
EVAL_DIR = DATA / "eval"
DEFAULT_EVAL = EVAL_DIR / "heldout_translation.jsonl"
DEFAULT_TEXT = EVAL_DIR / "heldout_text.txt"
FIGURES = {
    "logits_cosine",
    "kl_divergence",
    "top1_agreement",
    "last_hidden_cosine",
    "perplexity_ratio",
    "chrf_vs_reference_model",
    "chrf_vs_human",
    "kl_divergence_vs_gptq",
    "top1_agreement_vs_gptq",
}


def parse_args(argv: list[str] | None = None) -> Namespace:
    p = Parser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument(
        "--reference", default=defaults.DEFAULT_MODEL, help="fp model: hub id or folder (%(default)s)"
    )
    p.add_argument("--quantized", type=Path, help="GPTQ checkpoint (default: $BUILD_DIR/<name>/gptq-int4)")
    p.add_argument("--output", type=Path, help="report folder (default: <quantized>-verify beside it)")
    p.add_argument("--eval-set", default=str(DEFAULT_EVAL), help="translation jsonl or hub dataset name")
    p.add_argument("--eval-split", default="test", help="split of a hub dataset (%(default)s)")
    p.add_argument("--text", type=Path, default=DEFAULT_TEXT, help="held-out text for perplexity")
    p.add_argument("--limit", type=int, default=0, help="use the first N eval rows (0 = all)")
    p.add_argument("--max-new-tokens", type=int, default=64, help="per translation (%(default)s)")
    p.add_argument("--max-length", type=int, default=512, help="tokens per prompt (%(default)s)")
    p.add_argument("--batch-size", type=int, default=8, help="translations per batch (%(default)s)")
    p.add_argument("--device", type=device_arg, default="auto", help="auto, cpu, cuda[:N]")
    p.add_argument(
        "--thresholds", type=Path, help="JSON file of limits (default: data/verify_thresholds.json)"
    )
    p.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="NAME<=VALUE",
        help="override one limit, e.g. kl_divergence<=0.5 (repeatable)",
    )
    p.add_argument(
        "--emulate",
        action="append",
        default=[],
        metavar="PROFILE",
        help="also measure the GPTQ model on this chip profile's numerics (name or .yaml; repeatable); "
        "the thresholds then judge the emulated variant",
    )
    p.add_argument(
        "--bf16-arithmetic",
        choices=bf16_arithmetic.CHOICES,
        help="how bf16 passes multiply: native bf16, or fp32 matrix products on bf16 tensors (auto: "
        f"native where the device has bf16 instructions; env {bf16_arithmetic.ENV})",
    )
    p.add_argument("--force", action="store_true", help="measure again even if the report is up to date")
    p.add_argument(
        "--no-wait", action="store_true", help="fail at once if another run is writing the same report"
    )
    args = p.parse_args(argv)
    for name in ("max_new_tokens", "max_length", "batch_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be positive")
    if args.limit < 0:
        p.error("--limit must be positive")
    return args


def load_quantized(path: Path) -> checkpoint.Checkpoint:
    if not path.is_dir():
        raise UserError(f"quantized model {path} does not exist; run `make quantize` first")
    ckpt = checkpoint.load_checkpoint(path.resolve())
    qc = ckpt.config.get("quantization_config") or {}
    if qc.get("quant_method") != "gptq":
        raise UserError(
            f"{path} is not a GPTQ checkpoint (config.json has no quantization_config with quant_method gptq)"
        )
    return ckpt


def check_match(ref: checkpoint.Checkpoint, quant: checkpoint.Checkpoint) -> None:
    differences = []
    if ref.model_type != quant.model_type:
        differences.append(f"model_type {ref.model_type} vs {quant.model_type}")
    for key in ("vocab_size", "num_hidden_layers", "hidden_size"):
        a, b = ref.text_config.get(key), quant.text_config.get(key)
        if a != b:
            differences.append(f"{key} {a} vs {b}")
    if differences:
        raise UserError(
            f"reference {ref.path} and quantized {quant.path} do not match: " + ", ".join(differences)
        )


def eval_rows(args: Namespace) -> list[dict]:
    rows = datasets_io.load_rows(args.eval_set, split=args.eval_split, what="eval set")
    bad = [i for i, r in enumerate(rows, 1) if not {"src", "tgt", "source"} <= r.keys()]
    if bad:
        raise UserError(
            f"eval set {args.eval_set}: row {bad[0]} is not a translation row "
            "(needs src, tgt, source and ideally target)"
        )
    return rows[: args.limit] if args.limit else rows


def text_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise UserError(f"perplexity text {path} does not exist")
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not lines:
        raise UserError(f"perplexity text {path} is empty")
    return lines


say = sayer(PROG)


def translate(
    model: Any, tokenizer: Any, rows: list[dict], args: Namespace, device: str, label: str
) -> list[str]:
    """Greedy translations, batched with left padding."""
    import torch

    from axera_pipeline.gptq.model_prompts import adds_own_bos, render

    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    outputs: list[str] = []
    for start in range(0, len(rows), args.batch_size):
        batch = rows[start : start + args.batch_size]
        prompts = [
            render(tokenizer, {k: v for k, v in r.items() if k != "target"}, generation_prompt=True)
            for r in batch
        ]
        enc = tokenizer(
            prompts,
            return_tensors="pt",
            padding=True,
            add_special_tokens=not adds_own_bos(tokenizer, batch[0]),
            truncation=True,
            max_length=args.max_length,
        ).to(device)
        with torch.no_grad():
            out = model.generate(
                **enc,
                max_new_tokens=args.max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )
        for row in out[:, enc["input_ids"].shape[1] :]:
            outputs.append(tokenizer.decode(row, skip_special_tokens=True).strip())
        say(f"{label}: translated {len(outputs)}/{len(rows)}")
    return outputs


def measure(model: Any, tokenizer: Any, data: dict, args: Namespace, device: str, label: str) -> dict:
    """Logits, perplexity and translations; a bf16 model's matrix products as args.arithmetic says."""
    from axera_pipeline.gptq import compare

    with args.arithmetic.context():
        say(f"{label}: logits on {len(data['prompts'])} held-out prompts")
        outputs = compare.run_prompts(model, data["prompts"], device)
        say(f"{label}: perplexity on {len(data['text'])} lines")
        ppl = compare.perplexity(model, data["text"], device)
        translations = translate(model, tokenizer, data["rows"], args, device, label)
    return {"outputs": outputs, "perplexity": ppl, "translations": translations}


def chrf(hyps: list[str], refs: list[str]) -> float:
    import sacrebleu

    return round(sacrebleu.corpus_chrf(hyps, [refs]).score, 2)


def summarise(ref: dict, test: dict, rows: list[dict]) -> dict[str, float]:
    from axera_pipeline.gptq import compare

    figures = compare.logit_metrics(ref["outputs"], test["outputs"])
    figures["perplexity"] = test["perplexity"]
    figures["perplexity_ratio"] = test["perplexity"] / ref["perplexity"]
    figures["chrf_vs_reference_model"] = chrf(test["translations"], ref["translations"])
    humans = [r.get("target") for r in rows]
    if all(humans):
        figures["chrf_vs_human"] = chrf(test["translations"], humans)
    return figures


def gptq_losses(quant: checkpoint.Checkpoint) -> list[dict]:
    record = manifest.read(quant.path) or {}
    return (record.get("result", {}).get("gptq_loss") or {}).get("per_module", [])


def emulate_boards(dense_model: Any, emulations: dict, gptq: dict, tokenizer, data, args, device) -> dict:
    """One pass per distinct numeric setting of the chips asked for, on the dequantized GPTQ model."""
    from axera_pipeline.gptq import compare

    results = {}
    for numerics, names in emulations.items():
        label = "+".join(names)
        say(f"emulating {label} on the board's numerics: {numerics.label}")
        model = chip_numerics.emulate(dense_model, numerics, args.group_size)
        results[label] = measure(model, tokenizer, data, args, device, label)
        vs_gptq = compare.logit_metrics(gptq["outputs"], results[label]["outputs"])
        results[label]["vs_gptq"] = {
            "kl_divergence_vs_gptq": vs_gptq["kl_divergence"],
            "top1_agreement_vs_gptq": vs_gptq["top1_agreement"],
        }
        del model
    return results


def run_models(
    args: Namespace, ref_ckpt, quant_ckpt, rows: list[dict], text: list[str], emulations: dict
) -> dict:
    import torch
    from gptqmodel import BACKEND, GPTQModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from axera_pipeline.gptq import compare

    device = resolve_device(args.device)
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    args.arithmetic = bf16_arithmetic.choose(device, args.bf16_arithmetic)
    say(f"bf16 arithmetic: {args.arithmetic.mode} ({args.arithmetic.why})")
    tokenizer = load_tokenizer(AutoTokenizer, quant_ckpt.path)
    data = {
        "rows": rows,
        "prompts": compare.encode_rows(tokenizer, rows, args.max_length),
        "text": compare.encode_text(tokenizer, text, args.max_length),
    }
    say(f"loading reference {ref_ckpt.path} on {device} ({str(dtype).removeprefix('torch.')})")
    model = AutoModelForCausalLM.from_pretrained(ref_ckpt.path, dtype=dtype).to(device).eval()
    reference = measure(model, tokenizer, data, args, device, "reference")
    qc = quant_ckpt.config["quantization_config"]
    say(f"round-to-nearest baseline: int{qc['bits']}, group {qc['group_size']}, from the reference weights")
    compare.apply_rtn(model, int(qc["bits"]), int(qc["group_size"]))
    rtn = measure(model, tokenizer, data, args, device, "rtn")
    del model
    say(f"loading quantized {quant_ckpt.path}")
    # The torch backend on every device: its packed weights are the checkpoint's, which the emulation
    # dequantizes (an automatic choice on CUDA may repack them for Marlin, and dequantize_weight lies).
    qmodel = GPTQModel.load(str(quant_ckpt.path), device=device, backend=BACKEND.TORCH)
    gptq = measure(qmodel.model.eval(), tokenizer, data, args, device, "gptq")
    boards = {}
    if emulations:
        chip_numerics.dequantize_in_place(qmodel.model)
        boards = emulate_boards(qmodel.model, emulations, gptq, tokenizer, data, args, device)
    del qmodel
    translations = [
        {
            **{k: r[k] for k in ("src", "tgt", "source", "target") if k in r},
            "reference_model": reference["translations"][i],
            "gptq": gptq["translations"][i],
            **{f"emulated {label}": board["translations"][i] for label, board in boards.items()},
            "rtn": rtn["translations"][i],
        }
        for i, r in enumerate(rows)
    ]
    examples = [
        {
            "source": r["source"],
            "reference_model": reference["translations"][i],
            "gptq": gptq["translations"][i],
            **{label: board["translations"][i] for label, board in boards.items()},
            "rtn": rtn["translations"][i],
        }
        for i, r in enumerate(rows[:5])
    ]
    return {
        "device": device,
        "bf16_arithmetic": args.arithmetic.record(),
        "reference_perplexity": reference["perplexity"],
        "gptq": summarise(reference, gptq, rows),
        "rtn": summarise(reference, rtn, rows),
        "emulated": {
            label: {**summarise(reference, board, rows), **board["vs_gptq"]}
            for label, board in boards.items()
        },
        "emulation": {
            "+".join(names): {"profiles": names, **numerics.__dict__}
            for numerics, names in emulations.items()
        },
        "reference_chrf_vs_human": chrf(reference["translations"], [r["target"] for r in rows])
        if all(r.get("target") for r in rows)
        else None,
        "examples": examples,
        "translations": translations,
    }


def judge(results: dict, rules: thresholds.Rules) -> list[dict]:
    """The limits judge what will run: the emulated chips when asked for, else the GPTQ checkpoint."""
    judged = results["emulated"] or {"gptq": results["gptq"]}
    return [
        {**row, "variant": label}
        for label, figures in judged.items()
        for row in thresholds.check(figures, rules)
    ]


def measure_and_report(
    args, ref_ckpt, quant_ckpt, rows, text, rules, inputs, output, started, emulations
) -> list[dict]:
    from axera_pipeline.gptq import verify_report

    with tee_output(output.with_name(output.name + ".log")), atomic.staged_folder(output) as stage:
        say(f"{quant_ckpt.path} against {args.reference}: {len(rows)} prompts, {len(text)} text lines")
        results = run_models(args, ref_ckpt, quant_ckpt, rows, text, emulations)
        # Every row's translation by every variant: what the board step compares the board with.
        with open(stage / "translations.jsonl", "w", encoding="utf-8") as out:
            for row in results.pop("translations"):
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        checks = judge(results, rules)
        report = {
            "inputs": inputs,
            "results": results,
            "checks": checks,
            "passed": all(c["passed"] for c in checks),
            "gptq_loss": gptq_losses(quant_ckpt),
            "wall_time_s": round(time.monotonic() - started, 1),
            "peak_rss_mib": round(manifest.peak_rss_mib(), 1),
        }
        (stage / "verify.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        (stage / "verify.md").write_text(verify_report.markdown(report), encoding="utf-8")
        verify_report.plot(report, stage / "verify.png")
        manifest.write(stage, {"inputs": inputs, "checks": checks})
        if report["passed"]:
            # What `make all` waits for: present only when every check passed.
            (stage / PASSED).write_text("all verify checks passed; see verify.md\n")
    return checks


def main(argv: list[str] | None = None) -> int:
    started = time.monotonic()
    args = parse_args(argv)
    rules = thresholds.load(args.thresholds, args.threshold)
    if extra := thresholds.unknown(rules, FIGURES):
        raise UserError(
            f"unknown threshold figure(s) {', '.join(extra)}; known: {', '.join(sorted(FIGURES))}"
        )
    prepare_environment(args.reference, args.eval_set)
    # GPTQModel's torch kernel compiles its dequantizer per layer shape: minutes of inductor builds
    # for a few forward passes (and a recompile limit on models with many shapes). Eager is faster here.
    os.environ.setdefault("TORCH_COMPILE_DISABLE", "1")
    quant_path = args.quantized or defaults.checkpoint(args.reference)
    quant_ckpt = load_quantized(quant_path)
    ref_ckpt = checkpoint.load_checkpoint(resolve_model(args.reference))
    check_match(ref_ckpt, quant_ckpt)
    rows, text = eval_rows(args), text_lines(args.text)
    quantization = quant_ckpt.config["quantization_config"]
    bits, args.group_size = int(quantization["bits"]), int(quantization.get("group_size", 128))
    emulations = chip_numerics.distinct(args.emulate, bits)
    output = (args.output or quant_ckpt.path.with_name(quant_ckpt.path.name + "-verify")).expanduser()
    atomic.check_destination(output)

    inputs = {
        "format": VERIFY_FORMAT,
        "reference": manifest.hash_files(ref_ckpt.files, ref_ckpt.path),
        "quantized": manifest.hash_files(quant_ckpt.files, quant_ckpt.path),
        "eval_set": {"source": args.eval_set, "rows": len(rows), "sha256": datasets_io.fingerprint(rows)},
        "text_sha256": manifest.sha256_file(args.text),
        "options": {"max_new_tokens": args.max_new_tokens, "max_length": args.max_length},
        "thresholds": {k: list(v) for k, v in rules.items()},
        "bits": bits,
        "emulate": [{"profiles": names, **n.__dict__} for n, names in emulations.items()],
        "bf16_arithmetic": bf16_arithmetic.choose(resolve_device(args.device), args.bf16_arithmetic).mode,
        "packages": manifest.package_versions(PACKAGES),
    }
    with atomic.owned_output(output, "verify", wait=not args.no_wait, say=say):
        if not args.force and manifest.is_up_to_date(output, inputs):
            say(f"{output} is up to date (inputs match); reusing it, --force measures again")
            return verdict(manifest.read(output)["checks"], output)
        checks = measure_and_report(
            args, ref_ckpt, quant_ckpt, rows, text, rules, inputs, output, started, emulations
        )
    return verdict(checks, output)


def verdict(checks: list[dict], output: Path) -> int:
    failed = [c for c in checks if not c["passed"]]
    if failed:
        what = ", ".join(
            f"{c.get('variant', 'gptq')} {c['figure']} {c['value'] if c['value'] is not None else 'missing'} "
            f"(needs {c['op']} {c['limit']})"
            for c in failed
        )
        raise UserError(f"FAILED: {what}; report: {output}/verify.md")
    say(f"passed all {len(checks)} checks; report: {output}/verify.md")
    return 0


if __name__ == "__main__":
    run(main, PROG)
