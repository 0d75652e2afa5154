"""Read calibration and evaluation rows from a bundled file, a user file or a Hugging Face dataset."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from axera_pipeline.common.cli import UserError
from axera_pipeline.common.paths import DATA

DEFAULT_CALIB = DATA / "calibration" / "hy_mt_calibration.jsonl"
_ROW_KEYS = ({"text"}, {"messages"}, {"src", "tgt", "source"})


def _check_row(row: Any, where: str) -> dict[str, Any]:
    if not isinstance(row, dict) or not any(keys <= row.keys() for keys in _ROW_KEYS):
        raise UserError(f"{where}: each row needs 'text', 'messages', or 'src'/'tgt'/'source' (translation)")
    return row


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise UserError(f"{path}:{number} is not valid JSON") from None
        rows.append(_check_row(row, f"{path}:{number}"))
    return rows


def read_text_lines(path: Path) -> list[dict[str, Any]]:
    return [{"text": line} for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _from_hub(name: str, split: str) -> list[dict[str, Any]]:
    """`name` or `name:config`; rows with text, messages or a {lang: text} translation pair."""
    try:
        from datasets import load_dataset

        repo, _, config = name.partition(":")
        data = load_dataset(repo, config or None, split=split)
    except Exception as exc:  # noqa: BLE001 - datasets raises many types; the user needs one line
        raise UserError(f"cannot load dataset {name!r} (split {split}): {exc}".splitlines()[0]) from None
    rows = []
    for item in data:
        pair = item.get("translation")
        if isinstance(pair, dict) and len(pair) == 2:
            (src, source), (tgt, target) = pair.items()
            item = {"src": src, "tgt": tgt, "source": source, "target": target}
        rows.append(_check_row(item, f"dataset {name}"))
    return rows


def load_rows(spec: str | Path, *, split: str = "train", what: str = "calibration set") -> list[dict]:
    """Rows from a .jsonl/.json/.txt file or a Hugging Face dataset name; never silently empty."""
    spec = str(spec)
    path = Path(spec).expanduser()
    if path.suffix in (".jsonl", ".json", ".txt") or path.exists() or spec.startswith((".", "/")):
        if not path.is_file():
            raise UserError(f"{what} {spec} does not exist")
        try:
            rows = read_text_lines(path) if path.suffix == ".txt" else read_jsonl(path)
        except UnicodeDecodeError:
            raise UserError(f"{what} {spec} is not UTF-8 text") from None
    else:
        rows = _from_hub(spec, split)
    if not rows:
        raise UserError(f"{what} {spec} is empty")
    return rows


def fingerprint(rows: list[dict[str, Any]]) -> str:
    """sha256 of the rows' content, so the same data from anywhere hashes the same."""
    h = hashlib.sha256()
    for row in rows:
        h.update(json.dumps(row, sort_keys=True, ensure_ascii=False).encode())
        h.update(b"\n")
    return h.hexdigest()
