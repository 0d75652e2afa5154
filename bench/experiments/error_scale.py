"""What KL the issue's chrF target needs: the defaults' quantization error scaled down, on gemma-3-270m.

Every GPTQ-quantized linear of fp takes fp's weight plus T times the defaults' error on it (T = 1 is the
checkpoint, T = 0 is fp): the same error, smaller. Not a quantization, and no format pulsar2 reads; a
yardstick for how chrF follows KL on the accuracy benchmark's 400 sentences, so the distance between
the best quantization measured and the chrF target can be put in KL. Each T costs one evaluation
(about 5 minutes on 2 idle cores, cached while the checkpoint is unchanged).
Usage: nox -s experiment -- error_scale [--scales T ...] [--quick]
"""

import argparse
import json

from bench.lib.cells import SWEEP, evaluate, quantize
from bench.lib.gemma_model import gemma_folder, interval
from bench.lib.harness import bench_python, report, table

# The issue's chrF target: within 1.0 of fp, the interval's far end within 1.5.
TARGET, TARGET_FAR = -1.0, -1.5


def meets(vs_fp: dict) -> str:
    return "yes" if vs_fp["delta"] >= TARGET and vs_fp["ci95"][0] >= TARGET_FAR else "no"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scales", nargs="+", type=float, default=[0.25, 0.5, 0.6, 0.75, 1.0], metavar="T")
    p.add_argument("--quick", action="store_true", help="100 sentences, for iterating")
    args = p.parse_args()
    if not all(0 <= t <= 1 for t in args.scales):
        raise SystemExit(f"--scales: each T must lie in [0, 1], got {args.scales}")
    python = bench_python()
    fp = gemma_folder(python)
    SWEEP.mkdir(parents=True, exist_ok=True)
    checkpoint = quantize("defaults", fp, python)
    out = SWEEP / ("error-scale-quick.json" if args.quick else "error-scale.json")
    variants = [
        a for t in args.scales for a in ("--variant", f"error x{t:g}=scaled:{t:g}:{checkpoint['dir']}")
    ]
    eval_s = evaluate(
        python, fp, out, args.quick, ["--variant", f"defaults=gptq:{checkpoint['dir']}", *variants]
    )
    scores = json.loads(out.read_text())
    rows = [
        [
            name,
            f"{r['chrf']:.1f} {interval(r['chrf_ci95'])}",
            f"{r['chrf_vs_fp']['delta']:+.2f} {interval(r['chrf_vs_fp']['ci95'])}",
            meets(r["chrf_vs_fp"]),
            f"{r['ref_kl']:.3f} {interval(r['ref_kl_ci95'], 3)}",
            f"{r['ref_ppl_ratio']:.3f} {interval(r['ref_ppl_ratio_ci95'], 3)}",
            f"{r['bleu']:.1f} {interval(r['bleu_ci95'])}",
        ]
        for name, r in scores["results"].items()
        if name != "fp"
    ]
    fp_chrf = scores["results"]["fp"]["chrf"]
    md = (
        f"gemma-3-270m, zh->en, the accuracy benchmark's {scores['sentences']} held-out HSK sentences "
        f"(fp chrF {fp_chrf:.1f}); 'error xT': fp's weights plus T times the 'defaults' checkpoint's error "
        "on every quantized linear (dequantized in fp32; T = 1 is the checkpoint itself, evaluated the "
        "same way, beside the checkpoint run through GPTQModel's kernel). 'target': chrF within 1.0 of fp "
        "and the interval's far end within 1.5 (issue 14). KL(fp || variant) per token and perplexity ratio "
        "teacher-forced on the reference translations; 95% bootstrap intervals, paired against fp. "
        f"Evaluation: {eval_s} s (fp and cached variants reused).\n\n"
        + table(
            [
                "variant",
                "chrF [95% CI]",
                "vs fp [95% CI]",
                "target",
                "ref KL [95% CI]",
                "ref ppl / fp [95% CI]",
                "BLEU [95% CI]",
            ],
            rows,
        )
    )
    default_scales = p.get_default("scales")
    command = (
        "nox -s experiment -- error_scale"
        + (" --scales " + " ".join(f"{t:g}" for t in args.scales) if args.scales != default_scales else "")
        + (" --quick" if args.quick else "")
    )
    report("error_scale", command, md, {"scores": scores, "checkpoint": checkpoint, "eval_s": eval_s}, python)


if __name__ == "__main__":
    main()
