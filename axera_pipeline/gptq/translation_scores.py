"""Scores of a board run (GPTQ environment): token counts with the package's own tokenizer, chrF and
BLEU against the human references, and agreement with `verify --emulate`'s translations, each with a
95% bootstrap interval over sentences. Reads one JSON file, prints one JSON object."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from axera_pipeline.common import axllm_prompts, axllm_tokenizer, chat_templates
from axera_pipeline.common.cli import Parser, UserError, run
from axera_pipeline.common.messages import question_messages

PROG = "translation-scores"
RESAMPLES = 1000


def parse_args(argv: list[str] | None = None):
    p = Parser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("request", type=Path, help="JSON: hf_folder, name, tokenizer_txt, rows, board, emulated")
    return p.parse_args(argv)


def scorer(metric: str):
    import sacrebleu

    return sacrebleu.CHRF() if metric == "chrf" else sacrebleu.BLEU()


def corpus(metric: str, hyps: list[str], refs: list[str]) -> float:
    return float(scorer(metric).corpus_score(hyps, [refs]).score)


def with_interval(metric: str, hyps: list[str], refs: list[str], seed: int = 0) -> dict[str, Any]:
    """The corpus score and its 95% percentile-bootstrap interval over sentences.

    Each sentence's statistics are extracted once and summed per resample (as sacrebleu's own
    bootstrap does), so a thousand resamples cost milliseconds rather than a thousand re-scorings."""
    import numpy as np

    score = scorer(metric)
    stats = np.asarray(score._extract_corpus_statistics(hyps, [refs]), dtype=np.float64)
    rng = random.Random(seed)
    n = len(hyps)
    draws = sorted(
        float(score._compute_score_from_stats(stats[[rng.randrange(n) for _ in range(n)]].sum(0)).score)
        for _ in range(RESAMPLES)
    )
    low, high = draws[int(0.025 * RESAMPLES)], draws[int(0.975 * RESAMPLES) - 1]
    return {"score": round(corpus(metric, hyps, refs), 2), "ci95": [round(low, 2), round(high, 2)]}


def load_tokenizer(folder: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def token_counts(tokenizer, request: dict[str, Any]) -> tuple[list[int], list[int]]:
    """Each prompt as the board encodes it (axllm's template through the package's tokenizer.txt),
    and each answer's tokens by the model's tokenizer (the board streams text, not ids)."""
    name = request["name"]
    board = axllm_tokenizer.read(Path(request["tokenizer_txt"]))
    prompts = [
        len(axllm_prompts.encode_chat(board, name, question_messages(row)))
        if chat_templates.can_render(name)
        else 0
        for row in request["rows"]
    ]
    answers = [len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in request["board"]]
    return prompts, answers


def comparable_text(tokenizer, text: str) -> str:
    """The text as both sides can agree on it. The board may stream a control token's text where
    verify's decoding skips it, and drops bytes that are not UTF-8 (tokenizer.axera's UTF8Filter) where
    Hugging Face's decoding writes U+FFFD: compare without either."""
    for token in sorted(
        set(tokenizer.all_special_tokens) | set(tokenizer.get_added_vocab()), key=len, reverse=True
    ):
        text = text.replace(token, "")
    return text.replace("\ufffd", "").strip()


def scores(request: dict[str, Any]) -> dict[str, Any]:
    tokenizer = load_tokenizer(request["hf_folder"])
    prompts, answers = token_counts(tokenizer, request)
    board = [comparable_text(tokenizer, t) for t in request["board"]]
    humans = [row.get("target") or "" for row in request["rows"]]
    out: dict[str, Any] = {"prompt_tokens": prompts, "generated_tokens": answers}
    if all(humans):
        out["chrf"] = with_interval("chrf", board, humans)
        out["bleu"] = with_interval("bleu", board, humans)
    emulated = request.get("emulated")
    if emulated and any(e is not None for e in emulated):
        kept = [i for i, e in enumerate(emulated) if e is not None]
        ours = [board[i] for i in kept]
        theirs = [comparable_text(tokenizer, emulated[i]) for i in kept]
        out["agreement"] = {
            "rows": len(kept),
            "exact": round(sum(a == b for a, b in zip(ours, theirs, strict=True)) / len(kept), 4),
            "chrf_vs_emulated": with_interval("chrf", ours, theirs),
            "differing_rows": [i for i, a, b in zip(kept, ours, theirs, strict=True) if a != b],
        }
        if all(humans):
            out["emulated_chrf"] = round(corpus("chrf", theirs, [humans[i] for i in kept]), 2)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        request = json.loads(args.request.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{args.request} does not parse: {exc}") from None
    print(json.dumps(scores(request), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    run(main, PROG)
