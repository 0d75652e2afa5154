"""Write BENCHMARKS.md from the latest results under bench/results/ (each benchmark writes its own)."""

import argparse
import json
import os
import shutil
from pathlib import Path

from bench.lib.harness import RESULTS, ROOT

SECTIONS = [
    (
        "overhead",
        "1. Orchestration overhead",
        "`nox -s quantize` vs GPTQModel called directly. Target: <= 1.05.",
    ),
    (
        "warm_start",
        "2. Warm start and no-op",
        "Targets: <= 3 s to the script, <= 2 s for a no-op `make all`.",
    ),
    (
        "scaling",
        "3. Scaling on the CPU",
        "HY-MT1.5-1.8B's width at several depths. Targets: <= 15 min, <= 6 GB.",
    ),
    (
        "profile",
        "3a. Where a layer's quantize time goes",
        "One HY-MT1.5-1.8B-shaped layer, phases against this machine's matmul rates, and candidates. "
        "Target: the full model at or under 45 min on this CPU.",
    ),
    (
        "scaling-fast",
        "3b. Scaling at the original notes' accuracy (the fast settings)",
        "The same runs with `--mse 0 --hessian bf16`: the speed changes alone (bf16 Hessians, one per "
        "shared input), as accurate as the notes' settings. Target: the full model at or under 45 min.",
    ),
    (
        "gemma",
        "4. A real multilingual model through the pipeline, and on the chip's numerics (gemma-3-270m)",
        "Target: GPTQ loses at most 5 chrF points; the emulated AX650 says what the board will compute.",
    ),
    (
        "accuracy-sweep",
        "4a. The GPTQ settings sweep that chose the defaults",
        "Each cell against the previous defaults; a default changes only where the paired interval "
        "excludes zero (or, for speed, where the result is the same).",
    ),
    (
        "accuracy",
        "4b. Closer to full precision: the decisive accuracy benchmark at the current defaults",
        "Target: GPTQ int4 g128 within 1.0 chrF of fp on 400 sentences (upper end of the interval within "
        "1.5), perplexity ratio at or under 1.08.",
    ),
    (
        "accuracy-cells",
        "4c. Channel equalisation, scale tuning, GPTAQ, AutoRound, and how much one quantization's luck "
        "moves the figures",
        "Chosen cells (`--cells`) on the same 400 sentences. 'damp 0.011' changes nothing that matters: "
        "its distance from the defaults is the noise of a single quantization. 'scales tuned by KL' is "
        "the defaults' checkpoint with only its group scales trained afterwards against fp "
        "(`bench/experiments/tune_scales.py`), an experiment, not a pipeline option; 'scales and norms tuned "
        "in-domain' trains the norm gains too, on the 1024-row calibration, from that cell's checkpoint. "
        "'GAR off' is the baseline GPTAQ should be read against: GPTAQ quantizes in plain column order. "
        "'AutoRound' is another quantizer (`bench/experiments/autoround_quantize.py`, an experiment) "
        "written into the same GPTQ format.",
    ),
    (
        "kl_by_part",
        "4d. Where the loss sits: one part of the defaults' checkpoint at a time",
        "If a few layers or one kind of linear held most of the loss, a setting aimed at them could close "
        "the gap to the issue's targets; this says whether they do.",
    ),
    (
        "error_scale",
        "4e. What KL the chrF target needs: the defaults' error scaled down",
        "The same error as the defaults' checkpoint, T times smaller (not a quantization, a yardstick): "
        "where chrF comes within the target, and at what KL, against the best quantization measured.",
    ),
    (
        "accuracy-summary",
        "4f. What the accuracy sections mean for quantize's options",
        "A reading of §4 to §4e for someone choosing `nox -s quantize` options, written from the tables "
        "above (it has no run of its own).",
    ),
    ("environment", "5. GPTQ environment creation", "Cold (empty uv cache) vs warm, and its size."),
    (
        "faults",
        "6. Faults",
        "Every fault tried and what happened to the output. Target: earlier output intact every time, "
        "one line for the user, nothing left behind that the next run does not reclaim.",
    ),
    (
        "preflight",
        "7. Preflight: seconds per model, and the board-memory estimate against Axera's published files",
        "Target: each fixture's verdicts in under 5 s; the estimate's error against real layer files stated.",
    ),
    (
        "board",
        "8. On the board: the latest `make board` run",
        "The newest report under `$BUILD_DIR/*/*-board/`, copied here when `nox -s bench -- report` runs"
        " (or the stand-in's, `nox -s bench -- board`, until a board has run).",
    ),
    (
        "tokenizer_forms",
        "9. What the board feeds the model: tokenizer.txt forms on real vocabularies",
        "The build writes the form whose board ids keep most of verify's tokens with every template "
        "marker one id (docs/package.md). Target: on the HY-MT-like model and the byte-level "
        "vocabularies, at least 95% of the held-out rows identical; on SentencePiece ones, as many as "
        "the board's encoder allows, with the cause stated.",
    ),
    (
        "arithmetic",
        "10. verify's bf16 arithmetic: native where the CPU has bf16 instructions, fp32 matrix products "
        "elsewhere",
        "Target: fp32 products run at fp32 speed on every ISA and differ from native bf16 by no more "
        "than two native kernels differ from each other. The GPU check (tests/gpu/) has not run yet: no "
        "GPU machine was lent.",
    ),
    (
        "verify_time",
        "10b. verify's time on HY-MT1.5-1.8B, for both arithmetics",
        "Measured on 1- and 2-layer HY-MT-width models, extrapolated to 32 layers and 32 rows (README's "
        "table quotes it).",
    ),
]


EXPERIMENTS = ("kl_by_part", "error_scale")


STAND_IN = (
    "**Not a board.** No Axera board was reachable from the machine that made this run (`nox -s bench --\n"
    "board`): it is the project's stand-in axllm (tests/fakes/axllm) behind a real sshd on 127.0.0.1,\n"
    "computing the tiny test model on this CPU. It shows the report's shape and the agreement measured\n"
    "end to end; its speeds and CMM are the stand-in's, not an NPU's. A run on a board replaces it.\n\n"
)


def keep_board_report(board_json: Path) -> Path:
    """Copy one board run's report into results/ (board.json, and board.md without its title)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    shutil.copy2(board_json, RESULTS / "board.json")
    md = board_json.with_name("board.md").read_text(encoding="utf-8")
    md = md.split("\n", 2)[2] if md.startswith("# ") else md
    if "stand-in" in json.loads(board_json.read_text(encoding="utf-8")).get("axllm", ""):
        md = STAND_IN + md
    (RESULTS / "board.md").write_text(md, encoding="utf-8")
    return RESULTS / "board.md"


def latest_board_run() -> None:
    """Keep the newest board report under BUILD_DIR (build/) when it is newer than the one kept."""
    build = Path(os.environ.get("BUILD_DIR") or ROOT / "build")
    runs = sorted(build.glob("*/*-board/board.json"), key=lambda p: p.stat().st_mtime)
    kept = RESULTS / "board.json"
    if runs and not (kept.exists() and kept.stat().st_mtime >= runs[-1].stat().st_mtime):
        keep_board_report(runs[-1])


def command_for(name: str) -> str:
    if name == "board":
        return "make board HOST=USER@ADDR"
    session = "experiment" if name in EXPERIMENTS else "bench"
    return f"nox -s {session} -- {name}"


def run_line(record: dict) -> str:
    m = record["machine"]
    return (
        f"Run {record['date']} on {m['cores']} cores, {m['ram_gib']} GiB RAM, GPU: {m['gpu']}, "
        f"CPU {m['cpu']} ({', '.join(m['cpu_flags'])}); packages: "
        + ", ".join(f"{k} {v}" for k, v in record["packages"].items())
        + "."
    )


def main() -> None:
    latest_board_run()
    parts = [
        "# Benchmarks",
        "",
        "Each table is the latest run of the command above it; figures are also kept as JSON in "
        "`bench/results/`. Regenerate this page with `nox -s bench -- report`.",
        "",
    ]
    for name, title, target in SECTIONS:
        parts += [f"## {title}", "", target, ""]
        md, raw = RESULTS / f"{name}.md", RESULTS / f"{name}.json"
        if not md.exists():
            parts += [f"Not run yet: `{command_for(name)}`.", ""]
            continue
        parts += [md.read_text().strip(), ""]
        record = json.loads(raw.read_text()) if raw.exists() else {}
        if "machine" in record:  # a hand-written reading, or a board report, has no benchmark run line
            parts += [run_line(record), ""]
    (ROOT / "BENCHMARKS.md").write_text("\n".join(parts))
    print((ROOT / "BENCHMARKS.md").read_text())


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()  # --help, no options
    main()
