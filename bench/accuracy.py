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

from bench.lib.cells import CELLS, SWEEP, evaluate, quantize
from bench.lib.gemma_model import gemma_folder, interval
from bench.lib.harness import bench_python, report, table

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
