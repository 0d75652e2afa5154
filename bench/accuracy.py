"""Benchmark 8: how close GPTQ int4 stays to full precision on gemma-3-270m, and which settings help.

The decisive set: 400 held-out HSK zh->en sentences (fixed selection, see translation_eval.py), chrF
and BLEU with 95% bootstrap intervals, paired differences against fp and against the pipeline's
defaults, perplexity and KL against fp on held-out text; fp's outputs are cached. Every cell stays
within what pulsar2 reads: symmetric, plain GPTQ format, desc_act off (activation-group-aware
ordering is undone before saving, so g_idx stays trivial).

`nox -s bench -- accuracy` measures fp, the pipeline's defaults, what they replaced and the closest
alternatives, and round-to-nearest; `--sweep` adds every cell below; `--cells NAME ...` picks some
(fp, the defaults and round-to-nearest always run); `--quick` uses 100 sentences. Sizes on this
machine's 2 idle cores: each variant takes about 5 minutes to evaluate on 400 sentences (fp too, once)
plus its quantize (2 to 4 minutes; the scale-tuning cell 12 more, the in-domain one with norms 25,
the AutoRound cell about 15 in all), so `--cells defaults` takes about 20 minutes from cold, the
default run about 1.5 hours and `--sweep` several. A variant's outputs are cached while its
checkpoint is unchanged, so a rerun costs minutes.
"""

import argparse
import json
import subprocess
import time
from pathlib import Path

from common import CACHE, ROOT, bench_python, report, table
from gemma import gemma_folder, interval

SWEEP = CACHE / "gemma-sweep"
# name -> quantize options on top of the pipeline's defaults
CELLS = {
    "defaults": [],
    "the notes' settings (MSE off)": ["--mse", "0"],
    "hessian bf16": ["--hessian", "bf16"],
    "fast (MSE off, hessian bf16)": ["--mse", "0", "--hessian", "bf16"],
    "damp 0.05": ["--damp", "0.05"],
    "damp 0.1": ["--damp", "0.1"],
    "GAR off": ["--no-act-group-aware"],
    "true-sequential off": ["--no-true-sequential"],
    "calib 96 rows": ["--calib-size", "96"],
    "calib + 256 HSK rows": ["calib:256"],
    "calib + 1024 HSK rows": ["calib:1024"],
    "calib + 2048 HSK rows": ["calib:2048"],
    "calib + 3800 HSK rows": ["calib:3800"],
    "group 64": ["--group-size", "64"],
    "group 64, calib + 1024 HSK rows": ["--group-size", "64", "calib:1024"],
    "equalize 0.1": ["--equalize", "0.1"],
    "equalize 0.2": ["--equalize", "0.2"],
    "equalize 0.3": ["--equalize", "0.3"],
    "equalize 0.5": ["--equalize", "0.5"],
    "GPTAQ 0.25": ["--gptaq", "0.25"],
    # Not a quantize option: the defaults' checkpoint with its scales tuned afterwards (tune_scales.py).
    "scales tuned by KL (4 epochs)": ["tune", "--epochs", "4"],
    # The same with the norm gains trained too, on the in-domain calibration, from that cell's GPTQ.
    "scales and norms tuned in-domain (calib + 1024 HSK rows, 2 epochs)": [
        "tune",
        "--epochs",
        "2",
        "--params",
        "scales+norms",
        "calib:1024",
    ],
    # Not a quantize option: another quantizer, AutoRound, in the defaults' layout (autoround_quantize.py).
    "AutoRound (200 iters)": ["autoround", "--iters", "200", "--dtype", "fp32"],
    "AutoRound (200 iters, bf16)": ["autoround", "--iters", "200", "--dtype", "bf16"],
    # A change far below any real effect: how far one quantization's luck moves the figures.
    "damp 0.011 (noise)": ["--damp", "0.011"],
}
# What `nox -s bench -- accuracy` measures without --sweep: the defaults against what they replaced.
CONFIRM = [
    "defaults",
    "the notes' settings (MSE off)",
    "hessian bf16",
    "fast (MSE off, hessian bf16)",
    "damp 0.1",
    "group 64",
    "calib + 1024 HSK rows",  # the one calibration cell outside the noise: does it add to MSE's gain?
    "equalize 0.2",
    "damp 0.011 (noise)",
    "scales tuned by KL (4 epochs)",
]


def options_for(cell: str, python: str) -> list[str]:
    options = []
    for option in CELLS[cell]:
        if option.startswith("calib:"):
            extra = int(option.split(":")[1])
            calib = SWEEP / f"calib-plus-{extra}-hsk.jsonl"
            if not calib.exists():
                subprocess.run(
                    [
                        python,
                        str(ROOT / "bench" / "translation_eval.py"),
                        "--write-calibration",
                        str(extra),
                        str(calib),
                    ],
                    check=True,
                )
            options += ["--calib", str(calib)]
        else:
            options.append(option)
    return options


def cell_folder(cell: str) -> Path:
    return SWEEP / "".join(ch if ch.isalnum() or ch in "-." else "-" for ch in cell.replace("+", "plus"))


# Cells a bench script makes from a GPTQ cell's checkpoint: name -> (script, its manifest block).
DERIVED = {"tune": ("tune_scales.py", "scale_tuning"), "autoround": ("autoround_quantize.py", "autoround")}
# The GPTQ cell a derived cell starts from, where it is not the defaults.
SOURCE = {"scales and norms tuned in-domain (calib + 1024 HSK rows, 2 epochs)": "calib + 1024 HSK rows"}


def derived(cell: str, fp: Path, python: str) -> dict:
    """A cell its script makes from a GPTQ cell's checkpoint; redone only when that checkpoint or the
    script's options change (each `--flag value` is checked against the block the script records)."""
    kind, *flags = options_for(cell, python)
    script, block = DERIVED[kind]
    source = quantize(SOURCE.get(cell, "defaults"), fp, python)
    out = cell_folder(cell)
    made = json.loads((out / "manifest.json").read_text()) if (out / "manifest.json").is_file() else {}
    extra = made.pop(block, {})
    pairs = zip(flags[::2], flags[1::2], strict=True)
    wanted = {flag.lstrip("-").replace("-", "_"): value for flag, value in pairs}
    stale = made != json.loads((Path(source["dir"]) / "manifest.json").read_text())
    if stale or any(str(extra.get(key)) != value for key, value in wanted.items()):
        command = [python, str(ROOT / "bench" / script), str(fp), source["dir"], str(out), *flags]
        subprocess.run(command, check=True)
        extra = json.loads((out / "manifest.json").read_text())[block]
    # Scale tuning starts from GPTQ's result, so its time adds to GPTQ's; AutoRound replaces it.
    seconds = extra["seconds"] + (source["quantize_wall_s"] if kind == "tune" else 0)
    return {
        **source,
        "dir": str(out),
        "quantize_wall_s": round(seconds, 1),
        "calibration_tokens": extra.get("calibration_tokens", source["calibration_tokens"]),
    }


def quantize(cell: str, fp: Path, python: str) -> dict:
    if CELLS[cell][:1] and CELLS[cell][0] in DERIVED:
        return derived(cell, fp, python)
    out = cell_folder(cell)
    started = time.monotonic()
    subprocess.run(
        ["nox", "-s", "quantize", "--", "--model", str(fp), "--output", str(out), *options_for(cell, python)],
        check=True,
        cwd=ROOT,
    )
    manifest = json.loads((out / "manifest.json").read_text())
    return {
        "dir": str(out),
        "seconds": round(time.monotonic() - started, 1),
        "quantize_wall_s": manifest["wall_time_s"],
        "calibration_tokens": manifest["result"]["calibration_tokens"],
        "size_mib": round(sum(p.stat().st_size for p in out.glob("*.safetensors")) / 2**20, 1),
        "options": manifest["inputs"]["options"],
    }


def evaluate(python: str, fp: Path, out: Path, quick: bool, options: list[str]) -> float:
    """translation_eval.py on fp and the variants in `options` into `out`; its wall time in seconds."""
    started = time.monotonic()
    quick_option = ["--quick"] if quick else []
    script = str(ROOT / "bench" / "translation_eval.py")
    subprocess.run([python, script, str(fp), str(out), *quick_option, *options], check=True)
    return round(time.monotonic() - started, 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sweep", action="store_true", help="every cell (hours)")
    p.add_argument("--cells", nargs="*", help=f"cells to run: {', '.join(CELLS)}")
    p.add_argument("--quick", action="store_true", help="100 sentences, for iterating")
    args = p.parse_args()
    cells = args.cells or (list(CELLS) if args.sweep else CONFIRM)
    if "defaults" not in cells:
        cells = ["defaults", *cells]
    unknown = [c for c in cells if c not in CELLS]
    if unknown:
        raise SystemExit(f"unknown cell(s) {unknown}; cells: {', '.join(CELLS)}")
    python = bench_python()
    fp = gemma_folder(python)
    SWEEP.mkdir(parents=True, exist_ok=True)
    quantized = {cell: quantize(cell, fp, python) for cell in cells}
    evaluation = SWEEP / ("eval-quick.json" if args.quick else "eval.json")
    variants = [arg for cell, q in quantized.items() for arg in ("--variant", f"{cell}=gptq:{q['dir']}")]
    variants += ["--baseline", "defaults", "--variant", "RTN int4 g128=rtn:4:128"]
    eval_s = evaluate(python, fp, evaluation, args.quick, variants)
    scores = json.loads(evaluation.read_text())
    fp_ppl = scores["results"]["fp"]["perplexity"]
    ref_tokens = next(r["ref_tokens"] for r in scores["results"].values() if "ref_tokens" in r)
    rows = []
    for name, r in scores["results"].items():
        vs_fp, vs_base, kl_base = r.get("chrf_vs_fp"), r.get("chrf_vs_baseline"), r.get("ref_kl_vs_baseline")
        q = quantized.get(name, {})
        rows.append(
            [
                name,
                f"{r['chrf']:.1f} {interval(r['chrf_ci95'])}",
                f"{vs_fp['delta']:+.2f} {interval(vs_fp['ci95'])}" if vs_fp else "-",
                f"{vs_base['delta']:+.2f} {interval(vs_base['ci95'])}" if vs_base else "-",
                f"{r['bleu']:.1f} {interval(r['bleu_ci95'])}",
                f"{r['ref_ppl_ratio']:.3f} {interval(r['ref_ppl_ratio_ci95'], 3)}" if "ref_kl" in r else "1",
                f"{r['ref_kl']:.3f} {interval(r['ref_kl_ci95'], 3)}" if "ref_kl" in r else "0",
                f"{kl_base['delta']:+.3f} {interval(kl_base['ci95'], 3)}" if kl_base else "-",
                round(r["perplexity"] / fp_ppl, 3),
                f"{r['kl_vs_fp']:.4f}",
                q.get("calibration_tokens", "-"),
                q.get("size_mib", "-"),
                q.get("quantize_wall_s", "-"),
            ]
        )
    md = (
        f"gemma-3-270m, zh->en, {scores['sentences']} held-out HSK sentences ({scores['selection']}), "
        f"{scores['shots']}-shot, greedy; 95% intervals from {scores['bootstrap']} bootstrap resamples, "
        "paired for the differences. 'ref': teacher-forced on the reference translations "
        f"({ref_tokens} tokens), perplexity ratio and KL(fp || variant) per token against fp, intervals "
        "over sentences. 'text': the same on data/eval/heldout_text.txt (12 lines, a few hundred "
        "tokens, no interval). Sizes are the checkpoint's safetensors (embeddings included). Cells "
        "differ from the pipeline's defaults "
        f"only in what their name says. Evaluation: {eval_s} s for {len(scores['results'])} variants "
        "(fp cached).\n\n"
        + table(
            [
                "variant",
                "chrF [95% CI]",
                "vs fp [95% CI]",
                "vs defaults [95% CI]",
                "BLEU [95% CI]",
                "ref ppl / fp [95% CI]",
                "ref KL [95% CI]",
                "ref KL vs defaults [95% CI]",
                "text ppl / fp",
                "text KL",
                "calib tokens",
                "size MiB",
                "quantize s",
            ],
            rows,
        )
    )
    picked = " --cells " + " ".join(f"'{c}'" for c in args.cells) if args.cells else ""
    command = (
        "nox -s bench -- accuracy"
        + (" --sweep" if args.sweep else picked)
        + (" --quick" if args.quick else "")
    )
    # A run of chosen cells is kept apart from the confirm run and the sweep it would otherwise replace.
    name = "accuracy-sweep" if args.sweep else "accuracy-cells" if args.cells else "accuracy"
    report(name, command, md, {"scores": scores, "quantized": quantized, "eval_s": eval_s}, python)


if __name__ == "__main__":
    main()
