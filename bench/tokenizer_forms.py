"""Benchmark 9: what the board feeds the model, per real vocabulary and tokenizer.txt form.

For each vocabulary (llama-cpp-python's sdist, tests/helpers/real_vocab.py, each checked against the
real tokenizers' ids; HunYuan's markers and HY-MT's template added) and the HY-MT-like tiny test model,
every form the package writer can make is measured as the build measures it (toolchain/package/
id_check.py): HY-MT's 32 held-out prompts through axllm's HunYuan template and the board's encoder,
against the ids verify gives the model. Plain text (tests/fixtures/axera_tok/texts.json, 13 groups)
is compared too, on the vocabulary as it is: the board's ids for the text against the tokenizer's.
The board's encoder is the Python one, which gives Axera's compiled code's ids on every recorded
vector (tests/test_axllm_tokenizer.py).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

from axera_pipeline.common import axllm_tokenizer
from axera_pipeline.common.cli import UserError
from axera_pipeline.toolchain.package import id_check, tokenizer_txt
from bench.lib.harness import CACHE, ROOT, gptq_python, make_model, report, table
from tests.helpers import real_vocab

TEXTS = ROOT / "tests" / "fixtures" / "axera_tok" / "texts.json"
HF_IDS = """
import json, sys
from transformers import AutoTokenizer
texts = json.load(open(sys.argv[2], encoding="utf-8"))
tok = AutoTokenizer.from_pretrained(sys.argv[1])
print(json.dumps([tok.encode(t, add_special_tokens=False) for t in texts]))
"""


def plain_texts() -> list[str]:
    groups = json.loads(TEXTS.read_text(encoding="utf-8"))
    return [text for name, texts in groups.items() if name != "hy-mt prompts" for text in texts]


def hf_ids(python: str, folder: Path, texts: list[str]) -> list[list[int]]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8") as handle:
        json.dump(texts, handle, ensure_ascii=False)
        handle.flush()
        done = subprocess.run(
            [python, "-c", HF_IDS, str(folder), handle.name],
            capture_output=True,
            text=True,
            check=True,
            stdin=subprocess.DEVNULL,
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def text_agreement(python: str, folder: Path, joins: dict[str, list[int]]) -> dict[str, float]:
    """Per form of the vocabulary as it is (and each `+joins` variant measured on its HY-MT-like copy,
    with the same joined ids): the share of plain texts the board encodes as the tokenizer does."""
    texts = plain_texts()
    expected = hf_ids(python, folder, texts)
    shares = {}
    for txt in tokenizer_txt.forms(folder):
        variants = {txt.form: txt}
        if joins.get(txt.form):
            variants[f"{txt.form}+joins"] = txt.with_joins(joins[txt.form])
        for key, variant in variants.items():
            board = axllm_tokenizer.parse(variant.text().encode("utf-8"))
            same = sum(
                board.encode(text)[len(board.prefix) :] == ids
                for text, ids in zip(texts, expected, strict=True)
            )
            shares[key] = same / len(texts)
    return shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0, help="held-out rows (0: all)")
    args = parser.parse_args()
    python = gptq_python()
    plain = real_vocab.folders(python)
    folders = {
        "tiny HY-MT-like (test model)": make_model(python, CACHE / "tiny-hy-mt", "--hy-mt"),
        **{f"{name} + HunYuan markers": path for name, path in real_vocab.hy_mt_folders(python).items()},
    }
    figures: dict[str, dict] = {}
    rows = []
    for label, folder in folders.items():
        measured = id_check.measure(folder, "HunYuan", python, limit=args.limit)
        try:
            chosen = id_check.choose(measured, "HunYuan").key
        except UserError:
            chosen = None
        source = label.split(" + ")[0]
        joins = {m.key.removesuffix("+joins"): m.txt.joined for m in measured if m.txt and m.txt.joined}
        texts = text_agreement(python, plain[source], joins) if source in plain else {}
        figures[label] = {"chosen": chosen, "forms": [m.record() for m in measured], "plain_texts": texts}
        for m in measured:
            share = f"{m.token_share:.1%}" if m.token_share is not None else "-"
            lost = ", ".join(m.lost) if m.lost else (m.problems[0][:60] if m.problems else "none")
            plain_share = texts.get(m.key.removesuffix("+bos"))
            rows.append(
                [
                    label,
                    m.key + (" **(chosen)**" if m.key == chosen else ""),
                    f"{m.agree}/{m.rows}" if m.agree is not None else "-",
                    share,
                    lost,
                    f"{plain_share:.1%}" if plain_share is not None and "+bos" not in m.key else "",
                ]
            )
        if chosen is None:
            rows.append([label, "(none chosen)", "", "", "the build refuses this model in one line", ""])
    headers = [
        "vocabulary",
        "form",
        "HY-MT rows identical",
        "verify's tokens kept",
        "markers lost / problem",
        "plain texts identical",
    ]
    markdown = table(headers, rows)
    markdown += (
        "\n\nForms: `3-bytelevel` type 3 with every token in byte-level form; `3` type 3 with special "
        "tokens as raw text (Axera's converter); `1` type 1 (greedy longest match); `0` SentencePiece "
        "scores; `3-spaces` type 3 in `▁` mode; `+bos` with the BOS as the file's prefix (HunYuan's "
        "template writes its own: two BOS). Rows and tokens: HY-MT's held-out prompts through axllm's "
        "HunYuan template on the board's encoder against verify's ids. Plain texts: "
        f"{len(plain_texts())} texts of 12 groups on the vocabulary without HunYuan's markers, board "
        "ids (prefix removed) against the tokenizer's own."
    )
    report("tokenizer_forms", "nox -s bench -- tokenizer_forms", markdown, figures, python)


if __name__ == "__main__":
    main()
