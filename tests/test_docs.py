"""The user docs say what the code does: every relative link resolves, every `nox -s` session and `make`
target they show exists, and every option table lists exactly the options of the command's --help."""

from __future__ import annotations

import re
import subprocess
import unicodedata
from pathlib import Path

import pytest
from conftest import ROOT, run_cmd

DOCS = sorted(
    [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "bench").rglob("README.md")],
)
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
INLINE = re.compile(r"`([^`\n]+)`")
NOX_SESSION = re.compile(r"\bnox -s ([a-z0-9-]+)")
MAKE_CALL = re.compile(r"(?:^|[\s;(])make((?: +[^\s`;|&)]+)+)")
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*(?!\w)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower()
    text = "".join(ch for ch in text if ch in " -_" or unicodedata.category(ch)[0] in "LN")
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    body = FENCE.sub("", markdown)
    return {slug(m) for m in re.findall(r"^#{1,6} +(.+?) *$", body, re.M)}


def code_text(markdown: str) -> list[str]:
    """What a reader would type: fenced blocks and inline code spans."""
    blocks = FENCE.findall(markdown)
    spans = INLINE.findall(FENCE.sub("", markdown))
    return blocks + spans


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(doc: Path) -> None:
    broken = []
    for target in LINK.findall(FENCE.sub("", doc.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        resolved = (doc.parent / path).resolve() if path else doc
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved.read_text("utf-8")):
            broken.append(f"{target}: no heading #{anchor} in {resolved.name}")
    assert not broken, broken


def shown_commands() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Sessions and make targets shown anywhere in the docs, with the files that show them."""
    sessions: dict[str, set[str]] = {}
    targets: dict[str, set[str]] = {}
    for doc in DOCS:
        for text in code_text(doc.read_text(encoding="utf-8")):
            for name in NOX_SESSION.findall(text):
                sessions.setdefault(name, set()).add(doc.name)
            for words in MAKE_CALL.findall(text):
                for word in words.split():
                    if "=" in word or not re.fullmatch(r"[a-z][a-z0-9-]*|-\w+", word):
                        break
                    if not word.startswith("-"):
                        targets.setdefault(word, set()).add(doc.name)
    return sessions, targets


def test_every_shown_command_exists() -> None:
    sessions, targets = shown_commands()
    assert {"quantize", "verify", "build"} <= sessions.keys() and {"all", "test"} <= targets.keys()
    listed = run_cmd(["nox", "-l"], timeout=300)
    assert listed.returncode == 0, listed.stderr[-2000:]
    known_sessions = set(re.findall(r"^[*-] (\S+)", listed.stdout, re.M))
    helped = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True)
    known_targets = {line.split("\t")[0] for line in helped.stdout.splitlines()}
    missing = [f"nox -s {s} ({', '.join(sorted(w))})" for s, w in sessions.items() if s not in known_sessions]
    missing += [f"make {t} ({', '.join(sorted(w))})" for t, w in targets.items() if t not in known_targets]
    assert not missing, missing


# The option tables in docs/, by the module whose --help they describe.
OPTION_TABLES = {
    "axera_pipeline.gptq.quantize": "quantize.md",
    "axera_pipeline.gptq.verify": "verify.md",
    "axera_pipeline.toolchain.build": "build.md",
    "axera_pipeline.toolchain.preflight": "preflight.md",
    "axera_pipeline.board.run": "board.md",
}


def table_options(doc: Path) -> set[str]:
    """Options in the first column of the page's `| option | ...` table."""
    text = doc.read_text(encoding="utf-8")
    table = text[text.index("| option |") :].split("\n\n", 1)[0]
    return {opt for row in table.splitlines()[2:] for opt in OPTION.findall(row.split("|")[1])}


def help_options(python: str, module: str) -> set[str]:
    done = run_cmd([python, "-m", module, "--help"], timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return set(OPTION.findall(done.stdout)) - {"--help"}


@pytest.mark.parametrize(("module", "page"), sorted(OPTION_TABLES.items()))
def test_option_tables_match_help(gptq_python: str, module: str, page: str) -> None:
    documented = table_options(ROOT / "docs" / page)
    actual = help_options(gptq_python, module)
    assert documented == actual, {"undocumented": actual - documented, "not an option": documented - actual}


def test_nothing_points_at_the_developers_shared_folder() -> None:
    pattern = "shared/(notes|seed)"
    tracked = subprocess.run(["git", "grep", "-l", "-E", pattern], cwd=ROOT, capture_output=True, text=True)
    assert tracked.stdout.strip() == "", tracked.stdout
