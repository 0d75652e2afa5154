"""The verify report a person reads: a Markdown table and a PNG plot."""

from __future__ import annotations

from pathlib import Path


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def markdown(report: dict) -> str:
    res = report["results"]
    gptq, rtn = res["gptq"], res["rtn"]
    limits = {c["figure"]: c for c in report["checks"]}
    lines = [
        f"# Verify: {'PASSED' if report['passed'] else 'FAILED'}",
        "",
        f"Device {res['device']}; reference perplexity {_fmt(res['reference_perplexity'])}; "
        f"reference chrF vs human {_fmt(res['reference_chrf_vs_human'])}.",
        "",
        "| figure | GPTQ | round-to-nearest | limit | GPTQ passes |",
        "|---|---|---|---|---|",
    ]
    names = sorted(set(gptq) - {"positions"})
    for name in names:
        check = limits.get(name)
        limit = f"{check['op']} {_fmt(check['limit'])}" if check else ""
        ok = ("yes" if check["passed"] else "**no**") if check else ""
        lines.append(f"| {name} | {_fmt(gptq.get(name))} | {_fmt(rtn.get(name))} | {limit} | {ok} |")
    lines += ["", f"{gptq.get('positions', 0)} token positions compared.", "", "## Examples", ""]
    for ex in res["examples"]:
        lines += [
            f"- source: {ex['source']}",
            f"  - reference model: {ex['reference_model']}",
            f"  - GPTQ: {ex['gptq']}",
            f"  - RTN: {ex['rtn']}",
        ]
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    by_module: dict[str, list[tuple[int, float]]] = {}
    for entry in report["gptq_loss"]:
        by_module.setdefault(entry["module"], []).append((entry["layer"], entry["loss"]))
    for module, points in sorted(by_module.items()):
        points.sort()
        left.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=module)
    left.set_title("GPTQ loss per layer (from the quantize manifest)")
    left.set_xlabel("layer")
    left.xaxis.get_major_locator().set_params(integer=True)
    left.set_ylabel("loss")
    if by_module:
        left.set_yscale("log")
        left.legend(fontsize=7)
    else:
        left.text(0.5, 0.5, "no per-layer loss recorded", ha="center", transform=left.transAxes)

    checks = report["checks"]
    names = [c["figure"] for c in checks]
    # Each bar is the figure as a share of its limit; passing means crossing the line the right way.
    ratios = [(c["value"] or 0.0) / c["limit"] if c["limit"] else 0.0 for c in checks]
    colours = ["tab:green" if c["passed"] else "tab:red" for c in checks]
    right.barh(names, ratios, color=colours)
    right.axvline(1.0, color="black", linestyle="--", linewidth=1)
    right.set_title("GPTQ figure / limit (green passes; dashed = limit)")
    right.set_xlabel("value / limit")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
