"""Where the defaults' quantization loss sits in gemma-3-270m: one part quantized at a time.

Runs kl_by_part_eval.py (beside it, bench env) on the accuracy benchmark's 'defaults' checkpoint, made
if missing. About 1 minute per part on 2 idle cores, 26 parts: under half an hour once the fp model and
the checkpoint exist. Usage: nox -s experiment -- kl_by_part [--sentences N]
"""

import argparse
import json
import subprocess

from bench.lib.cells import SWEEP, quantize
from bench.lib.gemma_model import gemma_folder, interval
from bench.lib.harness import bench_python, report, table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sentences", type=int, default=400)
    args = p.parse_args()
    python = bench_python()
    fp = gemma_folder(python)
    SWEEP.mkdir(parents=True, exist_ok=True)
    checkpoint = quantize("defaults", fp, python)
    out = SWEEP / f"kl-by-part-{args.sentences}.json"
    subprocess.run(
        [
            python,
            "-m",
            "bench.experiments.kl_by_part_eval",
            str(fp),
            checkpoint["dir"],
            str(out),
            "--sentences",
            str(args.sentences),
        ],
        check=True,
    )
    scores = json.loads(out.read_text())
    results = scores["results"]
    whole = results["all"]["ref_kl"]
    rows = [
        [
            part,
            r["linears"],
            round(r["weights"] / 1e6, 2),
            f"{r['ref_kl']:.4f} {interval(r['ref_kl_ci95'], 4)}",
            f"{r['ref_kl'] / whole:.0%}",
            round(r["ref_kl"] / (r["weights"] / 1e6), 4),
            f"{r['ref_ppl_ratio']:.3f} {interval(r['ref_ppl_ratio_ci95'], 3)}",
        ]
        for part, r in results.items()
    ]
    kinds = sum(r["ref_kl"] for part, r in results.items() if part != "all" and not part.startswith("layer "))
    layers = sum(r["ref_kl"] for part, r in results.items() if part.startswith("layer "))
    md = (
        f"gemma-3-270m, the 'defaults' checkpoint of the accuracy benchmark; fp with only the named part "
        f"taking the checkpoint's weights, teacher-forced on the reference translations of "
        f"{scores['sentences']} held-out HSK sentences ({scores['tokens']} tokens); KL(fp || variant) per "
        f"token and perplexity ratio with 95% bootstrap intervals over sentences. 'share': the part's KL "
        f"over the whole checkpoint's. The parts' KL adds up to {kinds:.4f} by kind and {layers:.4f} by "
        f"layer, against {whole:.4f} for all at once. {scores['seconds']:.0f} s.\n\n"
        + table(
            [
                "part",
                "linears",
                "weights (M)",
                "ref KL [95% CI]",
                "share",
                "KL per M weights",
                "ref ppl / fp",
            ],
            rows,
        )
    )
    command = "nox -s experiment -- kl_by_part" + (
        f" --sentences {args.sentences}" if args.sentences != 400 else ""
    )
    report("kl_by_part", command, md, {"scores": scores, "checkpoint": checkpoint}, python)


if __name__ == "__main__":
    main()
