"""Benchmark 1: what the pipeline adds around GPTQModel (`nox -s quantize` vs a direct call).

Both quantize the same random-weight HunYuan model with the same calibration rows in the same warm
GPTQ environment; runs alternate (direct, nox, direct, nox, ...) and medians are compared, because
this machine is shared and absolute times drift.
"""

import argparse
import statistics
import tempfile

from bench.lib.harness import CACHE, gptq_python, make_model, measure, report, table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--calib-size", type=int, default=128)
    args = p.parse_args()

    python = gptq_python()
    model = make_model(
        python,
        CACHE / f"hunyuan-h{args.hidden}-l{args.layers}",
        "--layers",
        str(args.layers),
        "--hidden",
        str(args.hidden),
        "--intermediate",
        str(3 * args.hidden),
    )
    runs: dict[str, list[dict]] = {"direct": [], "nox": []}
    with tempfile.TemporaryDirectory() as tmp:
        measure([python, "-m", "bench.lib.direct_quantize", str(model), f"{tmp}/warm", "8"])
        for i in range(args.repeats):
            runs["direct"].append(
                measure(
                    [
                        python,
                        "-m",
                        "bench.lib.direct_quantize",
                        str(model),
                        f"{tmp}/direct{i}",
                        str(args.calib_size),
                    ]
                )
            )
            runs["nox"].append(
                measure(
                    [
                        "nox",
                        "-s",
                        "quantize",
                        "--",
                        "--model",
                        str(model),
                        "--output",
                        f"{tmp}/nox{i}",
                        "--calib-size",
                        str(args.calib_size),
                        "--force",
                    ]
                )
            )
    med = {
        k: {m: statistics.median(r[m] for r in v) for m in ("wall_s", "peak_rss_mib")}
        for k, v in runs.items()
    }
    figures = {
        "direct": med["direct"],
        "nox": med["nox"],
        "wall_ratio": round(med["nox"]["wall_s"] / med["direct"]["wall_s"], 3),
        "peak_rss_ratio": round(med["nox"]["peak_rss_mib"] / med["direct"]["peak_rss_mib"], 3),
        "target": "ratio <= 1.05",
        "sizes": vars(args),
    }
    rows = [[k, med[k]["wall_s"], med[k]["peak_rss_mib"]] for k in ("direct", "nox")]
    rows.append(["ratio nox/direct", figures["wall_ratio"], figures["peak_rss_ratio"]])
    md = (
        f"Model: random hunyuan_v1_dense, {args.layers} layers, hidden {args.hidden}; "
        f"{args.calib_size} bundled calibration rows; median of {args.repeats} alternating runs.\n\n"
        + table(["run", "wall s", "peak RSS MiB"], rows)
    )
    report("overhead", "nox -s bench -- overhead", md, figures, python)


if __name__ == "__main__":
    main()
