"""Which tokenizer.txt makes the board give the model verify's token ids: every form measured.

For each form the model's tokenizer allows (tokenizer_txt.forms), with and without the tokenizer's
BOS as the file's prefix where axllm's template writes none: verify's held-out prompts rendered by
axllm's template and encoded as the board encodes them, against the ids verify gave the model (the
GPTQ environment's template check). The package gets the form that agrees on most rows among those
whose template markers all stay one token; a form that loses a marker is never chosen. Without the
GPTQ environment only the markers are judged (standard library), and the first such form is taken.

"Agrees best" is the share of verify's tokens the board's ids keep (in order), then the rows whose ids
are identical: a form that splits one token per row (type 3 cutting `：\\n\\n` where the model has one
token for it) is closer to the model than one whose greedy matches go wrong all along (type 1), though
the latter may hit a few more rows exactly.

Where the board's ASCII-only pre-split cuts a token that ends in whitespace in most prompts (`：\\n\\n`,
one token for Qwen's and Llama-3's tokenizers, in every HY-MT prompt), a `+joins` variant lists those
tokens as special: the board matches special tokens in the text before it splits, so they stay one
id. They are found on the calibration prompts and measured, like every form, on the held-out ones.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from axera_pipeline.common import axllm_prompts, axllm_tokenizer, chat_templates
from axera_pipeline.common.checkpoint import has_tokenizer
from axera_pipeline.common.cli import UserError
from axera_pipeline.common.gptq_call import run_json
from axera_pipeline.common.paths import DATA
from axera_pipeline.toolchain.package import tokenizer_txt
from axera_pipeline.toolchain.package.tokenizer_txt import TokenizerTxt

CALIBRATION = DATA / "calibration" / "hy_mt_calibration.jsonl"


@dataclass(frozen=True)
class Measured:
    """One candidate tokenizer.txt: how the board's ids compare with verify's."""

    key: str
    txt: TokenizerTxt | None  # None for a tokenizer.txt read from a folder as it is
    rows: int = 0
    agree: int | None = None  # rows whose ids are verify's; None when not measured
    token_share: float | None = None  # of verify's tokens, the share the board's ids keep in order
    first: str = ""  # the first difference, in words
    lost: tuple[str, ...] = ()  # template markers that become pieces
    problems: tuple[str, ...] = ()

    @property
    def usable(self) -> bool:
        return not self.lost and not self.problems

    @property
    def describe(self) -> str:
        if self.txt is None:
            return self.key
        bos = f", prefix {self.txt.prefix}" if self.txt.prefix else ""
        return f"{self.txt.describe}{bos}"

    def figure(self) -> str:
        """`32/32 held-out rows give verify's ids` or what went wrong, in one phrase."""
        if self.problems:
            return self.problems[0]
        if self.agree is None:
            return "agreement with verify's ids not measured (the GPTQ environment is not built)"
        said = f"{self.agree}/{self.rows} held-out rows give the model verify's token ids"
        if self.agree == self.rows:
            return said
        return f"{said} ({self.token_share:.1%} of its tokens kept); {self.first}"

    @classmethod
    def from_record(cls, record: dict) -> Measured:
        """A figure as manifest.json keeps it (the form itself is not kept)."""
        return cls(
            str(record.get("form", "")),
            None,
            rows=int(record.get("rows") or 0),
            agree=record.get("agree"),
            token_share=record.get("token_share"),
            first=str(record.get("first") or ""),
            lost=tuple(record.get("lost_markers") or ()),
            problems=tuple(record.get("problems") or ()),
        )

    def record(self) -> dict[str, object]:
        return {
            "form": self.key,
            "describe": self.describe,
            "rows": self.rows,
            "agree": self.agree,
            "token_share": self.token_share,
            "first": self.first,
            "lost_markers": list(self.lost),
            "problems": list(self.problems),
        }


def candidates(folder: Path, name: str) -> list[tuple[str, TokenizerTxt]]:
    """Every form, with the BOS as prefix where the template writes none (two when both would)."""
    found = []
    writes_bos = chat_templates.writes_bos(name)
    for txt in tokenizer_txt.forms(folder):
        found.append((txt.form, replace(txt, prefix=[])))
        if txt.bos and not writes_bos:
            found.append((f"{txt.form}+bos", replace(txt, prefix=list(txt.bos))))
    return found


def judged(key: str, txt: TokenizerTxt, name: str) -> Measured:
    """What the standard library can tell: the markers and the problems, no agreement figure."""
    board = axllm_tokenizer.parse(txt.text().encode("utf-8"))
    return Measured(
        key,
        txt,
        lost=tuple(axllm_prompts.lost_markers(board, name)),
        problems=tuple(axllm_prompts.problems(board, name)),
    )


def run_check(
    folder: Path, name: str, gptq_python: str, paths: dict[str, Path], rows_file: Path | None, limit: int
) -> dict[str, dict] | None:
    """The GPTQ environment's template check on labelled tokenizer.txt files; None when the folder has
    no tokenizer to give verify's ids (a config-only folder is compared as text)."""
    args = [str(folder), "--name", name, "--limit", str(limit)]
    if rows_file is not None:
        args += ["--eval-set", str(rows_file)]
    for key, path in paths.items():
        args += ["--tokenizer-txt", f"{key}={path}"]
    result = run_json(gptq_python, "template_check", *args, timeout=1800)
    return {form["form"]: form for form in result["forms"]} if result.get("level") == "ids" else None


def from_check(key: str, txt: TokenizerTxt | None, form: dict) -> Measured:
    return Measured(
        key,
        txt,
        rows=form["rows"],
        agree=form["agree"],
        token_share=form["token_share"],
        first=(form["first"] or {}).get("where", ""),
        lost=tuple(form["lost"]),
        problems=tuple(form["problems"]),
    )


JOIN_ROWS = 64  # calibration prompts the joins are found on


def written(scratch: str, found: list[tuple[str, TokenizerTxt]]) -> dict[str, Path]:
    paths = {}
    for key, txt in found:
        paths[key] = Path(scratch) / f"{key}.txt"
        paths[key].write_text(txt.text(), encoding="utf-8")
    return paths


def with_joins(
    folder: Path, name: str, gptq_python: str, found: list[tuple[str, TokenizerTxt]], scratch: str
) -> list[tuple[str, TokenizerTxt]]:
    """A `+joins` variant of each form whose markers survive but whose calibration prompts lose
    whitespace-ending tokens to the board's pre-split."""
    checked = run_check(folder, name, gptq_python, written(scratch, found), CALIBRATION, JOIN_ROWS)
    if checked is None:
        return []
    return [
        (f"{key}+joins", txt.with_joins(checked[key]["joins"]))
        for key, txt in found
        if checked[key].get("joins") and not checked[key]["lost"] and not checked[key]["problems"]
    ]


def measure(
    folder: Path,
    name: str,
    gptq_python: str | None,
    *,
    rows_file: Path | None = None,
    limit: int = 0,
) -> list[Measured]:
    """Every form of the folder's tokenizer judged, and measured where the GPTQ environment is there
    to give verify's ids."""
    found = candidates(folder, name)
    if not gptq_python or not chat_templates.can_render(name):
        return [judged(key, txt, name) for key, txt in found]
    with tempfile.TemporaryDirectory(prefix="tokenizer-forms-") as scratch:
        if has_tokenizer(folder):  # a config-only folder is compared as text: nothing to join
            found += with_joins(folder, name, gptq_python, found, scratch)
        checked = run_check(folder, name, gptq_python, written(scratch, found), rows_file, limit)
    if checked is None:
        return [judged(key, txt, name) for key, txt in found]
    return [from_check(key, txt, checked[key]) for key, txt in found]


def measure_file(
    hf_folder: Path, name: str, path: Path, gptq_python: str, *, rows_file: Path | None = None, limit: int = 0
) -> Measured | None:
    """A package's own tokenizer.txt against verify's ids on its Hugging Face subfolder's tokenizer."""
    if not chat_templates.can_render(name):
        return None
    checked = run_check(hf_folder, name, gptq_python, {path.name: path}, rows_file, limit)
    return from_check(path.name, None, checked[path.name]) if checked else None


def choose(measured: list[Measured], name: str) -> Measured:
    """The usable form that keeps most of verify's tokens, then most rows (the earlier form on a tie);
    none usable is an error."""
    usable = [m for m in measured if m.usable]
    if not usable:
        worst = measured[0]
        raise UserError(
            f"no tokenizer.txt form this tokenizer allows keeps axllm's {name} prompt intact: "
            f"{worst.problems[0] if worst.problems else ', '.join(worst.lost)}"
        )
    return max(usable, key=lambda m: (m.token_share or 0, m.agree or 0, -usable.index(m)))
