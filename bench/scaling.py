"""Benchmark 3: quantize time and peak memory on the CPU against depth, at HY-MT1.5-1.8B's width.

Random-weight hunyuan_v1_dense models with hidden 2048, intermediate 6144, 16 heads (head_dim 128),
4 KV heads and vocab 120818, at several depths, quantized through `nox -s quantize` with a realistic
calibration set (rows of >= 256 tokens made by joining bundled sentences). A straight line through
(layers, seconds) and (layers, MiB) gives the full 32-layer model's cost.
"""

import argparse
import json
from pathlib import Path

from bench.lib.harness import CACHE, gptq_python, make_model, measure, report, table

WIDTH = [
    "--hidden",
    "2048",
    "--intermediate",
    "6144",
    "--head-dim",
    "128",
    "--kv-heads",
    "4",
    "--model-vocab",
    "120818",
]

# No clipping search, bf16 Hessians: as accurate as the original notes' settings, and the quickest.
FAST = ["--mse", "0", "--hessian", "bf16"]


def calibration(rows: int, min_words: int) -> Path:
    """Rows of joined bundled sentences, each long enough to pass `min_words` words."""

    from axera_pipeline.gptq.datasets_io import DEFAULT_CALIB, load_rows

    source = [r["source"] + " " + r["target"] for r in load_rows(DEFAULT_CALIB)]
    path = CACHE / f"calib-{rows}x{min_words}.jsonl"
    lines, i = [], 0
    while len(lines) < rows:
        words: list[str] = []
        while len(words) < min_words:
            words += source[i % len(source)].split()
            i += 7  # stride through the set so rows differ
        lines.append(json.dumps({"text": " ".join(words)}, ensure_ascii=False))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    return slope, my - slope * mx


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layers", type=int, nargs="+", default=[2, 4, 8])
    p.add_argument("--rows", type=int, default=256)
    p.add_argument("--min-words", type=int, default=70, help="words per row (~270 tokens here)")
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument(
        "--fast",
        action="store_true",
        help="quantize with --mse 0 --hessian bf16 (the fast settings) instead of the defaults",
    )
    args = p.parse_args()
    name, options = ("scaling-fast", FAST) if args.fast else ("scaling", [])

    python = gptq_python()
    calib = calibration(args.rows, args.min_words)
    results = []
    for layers in args.layers:
        model = make_model(python, CACHE / f"hymt-width-l{layers}", "--layers", str(layers), *WIDTH)
        out = CACHE / f"hymt-width-l{layers}-q4{name.removeprefix('scaling')}"
        run = measure(
            [
                "nox",
                "-s",
                "quantize",
                "--",
                "--model",
                str(model),
                "--output",
                str(out),
                "--calib",
                str(calib),
                "--max-length",
                str(args.max_length),
                "--force",
                *options,
            ]
        )
        tokens = json.loads((out / "manifest.json").read_text())["result"]["calibration_tokens"]
        if tokens < 256 * args.rows:
            raise SystemExit(
                f"bench: calibration rows average {tokens / args.rows:.0f} tokens; raise --min-words"
            )
        results.append(
            {
                "layers": layers,
                "wall_s": run["wall_s"],
                "peak_rss_mib": run["peak_rss_mib"],
                "calibration_tokens": tokens,
            }
        )
        print(results[-1], flush=True)
    xs = [r["layers"] for r in results]
    t_slope, t_icpt = fit(xs, [r["wall_s"] for r in results])
    m_slope, m_icpt = fit(xs, [r["peak_rss_mib"] for r in results])
    full_s, full_mib = t_icpt + 32 * t_slope, m_icpt + 32 * m_slope
    figures = {
        "runs": results,
        "seconds_per_layer": round(t_slope, 1),
        "fixed_seconds": round(t_icpt, 1),
        "mib_per_layer": round(m_slope, 1),
        "fixed_mib": round(m_icpt, 1),
        "full_model_min": round(full_s / 60, 1),
        "full_model_gib": round(full_mib / 1024, 2),
        "targets": {"full_model_min": 15, "full_model_gib": 6},
        "sizes": vars(args),
    }
    rows = [[r["layers"], r["calibration_tokens"], r["wall_s"], r["peak_rss_mib"]] for r in results]
    rows.append(["32 (fit)", "", round(full_s, 0), round(full_mib, 0)])
    md = (
        f"{args.rows} calibration rows of >= {args.min_words} words, "
        f"{results[0]['calibration_tokens'] / args.rows:.0f} tokens each on average (max {args.max_length}), "
        f"bits 4, group 128, {' '.join(options) or 'the pipeline defaults'}, CPU. "
        "Depth 32 is extrapolated: measuring it takes over an hour here.\n\n"
        + table(["layers", "calibration tokens", "wall s", "peak RSS MiB"], rows)
        + f"\n\nFit: {t_slope:.1f} s and {m_slope:.0f} MiB per layer on top of {t_icpt:.0f} s and "
        f"{m_icpt:.0f} MiB. Full 32-layer model: ~{full_s / 60:.1f} min and ~{full_mib / 1024:.1f} GiB "
        "(targets: <= 15 min, <= 6 GB)."
    )
    command = "nox -s bench -- scaling" + (" --fast" if args.fast else "")
    report(name, command, md, figures, python)


if __name__ == "__main__":
    main()
