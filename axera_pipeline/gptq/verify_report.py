"""The verify report a person reads: a Markdown table and a PNG plot."""

from __future__ import annotations

from pathlib import Path


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def variants(results: dict) -> dict[str, dict]:
    """Every measured variant, side by side: the checkpoint, the emulated chips, the RTN baseline."""
    emulated = {f"emulated {label}": figures for label, figures in results.get("emulated", {}).items()}
    return {"GPTQ": results["gptq"], **emulated, "round-to-nearest": results["rtn"]}


def markdown(report: dict) -> str:
    res = report["results"]
    shown = variants(res)
    judged = {c.get("variant", "gptq") for c in report["checks"]}
    limits: dict[str, dict] = {}
    for c in report["checks"]:
        limits.setdefault(c["figure"], {})[c.get("variant", "gptq")] = c
    lines = [
        f"# Verify: {'PASSED' if report['passed'] else 'FAILED'}",
        "",
        f"Device {res['device']}; reference perplexity {_fmt(res['reference_perplexity'])}; "
        f"reference chrF vs human {_fmt(res['reference_chrf_vs_human'])}. "
        f"The limits judge: {', '.join(sorted(judged))}.",
        "",
    ]
    arithmetic = res.get("bf16_arithmetic")
    if arithmetic:
        how = "native bf16" if arithmetic["mode"] == "native" else "bf16 tensors, matrix products in fp32"
        lines += [f"bf16 passes computed as {how}: {arithmetic['why']}.", ""]
    for label, setting in res.get("emulation", {}).items():
        weights = (
            f"decoder weights held as {setting['weight_type']} (the checkpoint's grid rounded to it)"
            if setting.get("weight_type")
            else "decoder weights from the GPTQ checkpoint"
        )
        lines.append(
            f"Emulated {label}: hidden states, attention and KV cache in {setting['hidden_state_type']}, "
            f"lm_head as {setting['post_weight_type']}, embeddings in {setting['hidden_state_type']}, "
            f"{weights}. This emulates the documented types, not pulsar2's kernels."
        )
    lines += [
        "",
        "| figure | " + " | ".join(shown) + " | limit | passes |",
        "|---|" + "---|" * (len(shown) + 2),
    ]
    names = sorted({k for figures in shown.values() for k in figures} - {"positions"})
    for name in names:
        checks = limits.get(name, {})
        any_check = next(iter(checks.values()), None)
        limit = f"{any_check['op']} {_fmt(any_check['limit'])}" if any_check else ""
        ok = ", ".join(("yes" if c["passed"] else "**no**") for c in checks.values())
        cells = " | ".join(_fmt(figures.get(name)) for figures in shown.values())
        lines.append(f"| {name} | {cells} | {limit} | {ok} |")
    lines += ["", f"{res['gptq'].get('positions', 0)} token positions compared.", "", "## Examples", ""]
    for ex in res["examples"]:
        lines.append(f"- source: {ex['source']}")
        lines += [f"  - {key}: {value}" for key, value in ex.items() if key != "source"]
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

    # Every variant against every limit, side by side: value / limit, passing on the right side of 1.
    rules = {c["figure"]: (c["op"], c["limit"]) for c in report["checks"]}
    shown = variants(report["results"])
    height = 0.8 / max(len(shown), 1)
    for slot, (label, figures) in enumerate(shown.items()):
        ys, ratios = [], []
        for row, (name, (_, limit)) in enumerate(rules.items()):
            value = figures.get(name)
            ys.append(row + slot * height)
            ratios.append((value or 0.0) / limit if limit else 0.0)
        right.barh(ys, ratios, height=height, label=label)
    right.set_yticks([row + 0.4 - height / 2 for row in range(len(rules))], list(rules))
    right.axvline(1.0, color="black", linestyle="--", linewidth=1)
    right.set_title("figure / limit per variant (dashed = limit)")
    right.set_xlabel("value / limit (>= limits pass right of the line, <= limits left of it)")
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
