"""A board run's report: board.json (every figure), board.md (the table a person reads), translations.jsonl
and axllm's log, written into a staging folder and renamed into place whole."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

from axera_pipeline.common import atomic
from axera_pipeline.common.basics import sayer

FORMAT = 2  # 2: time to first token and decode rate say where they came from


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def speeds(replies: list[dict], log, generated: list[int]) -> tuple[dict, dict]:
    """Time to first token and decode rate from axllm's own figures: the final chunk's usage (ax-llm
    PR #69), else its log lines (one per request), else the stream's timing, corrected for the piece
    serve holds back (the first chunk leaves one decode step after the first token)."""
    usage_ttft = [r["usage"]["ttft_ms"] / 1000 for r in replies if "ttft_ms" in (r.get("usage") or {})]
    usage_rate = [r["usage"]["decode_tps"] for r in replies if "decode_tps" in (r.get("usage") or {})]
    if replies and len(usage_ttft) == len(replies):
        ttft, ttft_source = usage_ttft, "axllm's usage.ttft_ms"
    elif replies and len(log.ttft_ms) == len(replies):
        ttft, ttft_source = [ms / 1000 for ms in log.ttft_ms], "axllm's log (ttft lines)"
    else:
        ttft = [r["stream_ttft_s"] for r in replies if r.get("stream_ttft_s") is not None]
        ttft_source = "stream timing: first chunk minus one decode step (axllm holds one piece back)"
    stream_rates = [
        (tokens - 1) / reply["decode_s"]
        for reply, tokens in zip(replies, generated, strict=False)
        if tokens > 1 and reply["decode_s"] > 0
    ]
    if replies and len(usage_rate) == len(replies):
        rates, rate_source = usage_rate, "axllm's usage.decode_tps"
    elif replies and len(log.decode_tps) == len(replies):
        rates, rate_source = log.decode_tps, "axllm's log (hit eos lines)"
    else:
        rates, rate_source = stream_rates, "stream timing: tokens after the first over their chunks' span"
    first_chunk = [r["first_chunk_s"] for r in replies if r.get("first_chunk_s") is not None]
    return (
        {
            "p50": rounded(percentile(ttft, 0.5)),
            "p95": rounded(percentile(ttft, 0.95)),
            "source": ttft_source,
            "first_chunk_p50": rounded(percentile(first_chunk, 0.5)),
        },
        {"p50": rounded(percentile([r for r in rates if r > 0], 0.5), 2), "source": rate_source},
    )


def figures(
    *, host, version, package, rows, replies, log, load_s, scores, template, emulation, deployed, seconds
):
    generated = scores.get("generated_tokens") or []
    ttft, decode = speeds(replies, log, generated)
    prompts = scores.get("prompt_tokens") or []
    agreement = scores.get("agreement")
    if agreement is not None:
        agreement = {**agreement, "variant": emulation["variant"], "verify_report": emulation["report"]}
        agreement.update(comparable=emulation["comparable"], why=emulation["why"])
    return {
        "format": FORMAT,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "board": host,
        "axllm": version,
        "model": package.config["model_name"],
        "tokenizer_type": package.config["tokenizer_type"],
        "chip_profile": {k: package.profile.get(k) for k in ("name", "chip", "context_len", "weight_type")},
        "package": str(package.folder),
        "deploy": {
            "remote_dir": deployed.folder,
            "method": deployed.method,
            "copied_files": len(deployed.copied),
            "copied_mib": round(deployed.copied_bytes / 2**20, 1),
        },
        "load_s": round(load_s, 2),
        "cmm_used_mb": log.cmm_used_mb,
        "cmm_left_mb": log.cmm_left_mb,
        "requests": len(replies),
        "ttft_s": ttft,
        "decode_tok_s": decode,
        "axllm_log": {
            "ttft_ms_p50": rounded(percentile(log.ttft_ms, 0.5), 2),
            "decode_tok_s_p50": rounded(percentile(log.decode_tps, 0.5), 2),
            "requests_logged": len(log.ttft_ms),
        },
        "prompt_tokens": {
            "mean": rounded(statistics.fmean(prompts), 1) if prompts else None,
            "max": max(prompts, default=None),
        },
        "generated_tokens": {"mean": rounded(statistics.fmean(generated), 1) if generated else None},
        "chrf": scores.get("chrf"),
        "bleu": scores.get("bleu"),
        "emulated_chrf": scores.get("emulated_chrf"),
        "agreement": agreement,
        "template": template,
        "rows": len(rows),
        "wall_s": round(seconds, 1),
    }


def interval(block: dict | None) -> str:
    return "-" if not block else f"{block['score']:.1f} [{block['ci95'][0]:.1f}, {block['ci95'][1]:.1f}]"


def markdown(f: dict[str, Any]) -> str:
    agree, template, profile, deploy = f["agreement"], f["template"], f["chip_profile"], f["deploy"]
    if template.get("checked"):
        what = "token ids" if template["level"] == "ids" else "prompt text"
        prompt = f"{template['agree']}/{template['rows']} rows give verify's {what}"
    else:
        prompt = f"not checked: {template.get('why', '')}"
    if agree:
        agreement = (
            f"{agree['exact']:.0%} of {agree['rows']} translations identical; chrF board vs emulation "
            f"{interval(agree['chrf_vs_emulated'])} ({agree['variant']})"
        )
        if not agree["comparable"]:
            agreement += f"; not comparable: {agree['why']}"
    else:
        agreement = "not measured: no verify report with translations (make verify, with --emulate)"
    ttft, logged = f["ttft_s"], f["axllm_log"]
    copied = f"{deploy['copied_files']} files, {deploy['copied_mib']} MiB ({deploy['method']})"
    rows = [
        ("board", f["board"]),
        ("axllm", f["axllm"]),
        ("model", f"{f['model']} (tokenizer_type {f['tokenizer_type']})"),
        ("chip profile", f"{profile['name']} ({profile['chip']}, {profile['context_len']}-token context)"),
        ("deploy", f"{copied} copied to {deploy['remote_dir']}"),
        ("load", f"{f['load_s']} s"),
        ("CMM used / left", f"{f['cmm_used_mb']} / {f['cmm_left_mb']} MB (axllm's remain_cmm lines)"),
        (
            "time to first token",
            f"p50 {ttft['p50']} s, p95 {ttft['p95']} s ({ttft['source']}; first chunk p50 "
            f"{ttft['first_chunk_p50']} s; axllm's log: p50 {logged['ttft_ms_p50']} ms)",
        ),
        (
            "decode",
            f"p50 {f['decode_tok_s']['p50']} tokens/s ({f['decode_tok_s']['source']}; axllm's log: p50 "
            f"{logged['decode_tok_s_p50']})",
        ),
        ("prompt tokens", f"mean {f['prompt_tokens']['mean']}, max {f['prompt_tokens']['max']}"),
        ("generated tokens", f"mean {f['generated_tokens']['mean']}"),
        ("chrF vs human [95% CI]", f"{interval(f['chrf'])} (verify's emulation: {f['emulated_chrf']})"),
        ("BLEU vs human [95% CI]", interval(f["bleu"])),
        ("agreement with verify --emulate", agreement),
        ("prompt on the board", prompt),
    ]
    lines = [
        f"# On the board: {f['model']}",
        "",
        f"{f['rows']} held-out translations through `axllm serve`'s OpenAI API, greedy, run {f['date']}.",
        "",
        "| figure | value |",
        "|---|---|",
        *[f"| {name} | {value} |" for name, value in rows],
    ]
    return "\n".join(lines) + "\n"


def write(
    folder: Path, f: dict, rows: list[dict], replies: list[dict], emulated: list | None, log_text: str
) -> None:
    with atomic.owned_output(folder, "board report", wait=True, say=sayer("board")):
        with atomic.staged_folder(folder) as stage:
            (stage / "board.json").write_text(
                json.dumps(f, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
            )
            (stage / "board.md").write_text(markdown(f), encoding="utf-8")
            with open(stage / "translations.jsonl", "w", encoding="utf-8") as out:
                for i, (row, reply) in enumerate(zip(rows, replies, strict=True)):
                    line = {**row, "board": reply["text"], "emulated": emulated[i] if emulated else None}
                    out.write(json.dumps(line, ensure_ascii=False) + "\n")
            (stage / "axllm.log").write_text(log_text, encoding="utf-8")
