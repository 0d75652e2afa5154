"""Pass/fail limits for the verify report: defaults from data/, overrides from the command line."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from axera_pipeline.common.cli import UserError
from axera_pipeline.common.paths import DATA

DEFAULTS = DATA / "verify_thresholds.json"
_RULE = re.compile(r"^\s*([a-z_0-9]+)\s*(>=|<=)\s*([-+0-9.eE]+)\s*$")
Rules = dict[str, tuple[str, float]]


def _from_mapping(data: dict, where: str) -> Rules:
    rules: Rules = {}
    for name, rule in data.items():
        if name.startswith("_"):
            continue
        ok = isinstance(rule, list) and len(rule) == 2 and rule[0] in (">=", "<=")
        if not ok or not isinstance(rule[1], (int, float)):
            raise UserError(f'{where}: threshold {name} must look like [">=", 0.9], not {rule!r}')
        rules[name] = (rule[0], float(rule[1]))
    return rules


def load(path: Path | None = None, overrides: list[str] | None = None) -> Rules:
    source = path or DEFAULTS
    try:
        data = json.loads(Path(source).read_text(encoding="utf-8"))
    except OSError:
        raise UserError(f"thresholds file {source} cannot be read") from None
    except ValueError as exc:
        raise UserError(f"thresholds file {source} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UserError(f"thresholds file {source} must hold a JSON object")
    rules = _from_mapping(data, str(source))
    for text in overrides or []:
        m = _RULE.match(text)
        if not m:
            raise UserError(f"--threshold {text!r} does not parse; write it like kl_divergence<=0.3")
        try:
            value = float(m.group(3))
        except ValueError:
            raise UserError(f"--threshold {text!r}: {m.group(3)!r} is not a number") from None
        rules[m.group(1)] = (m.group(2), value)
    return rules


def check(figures: dict[str, float], rules: Rules) -> list[dict]:
    """One row per rule: the figure, the limit and whether it passed (a missing figure fails)."""
    rows = []
    for name, (op, limit) in rules.items():
        value = figures.get(name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            passed = False
        else:
            passed = value >= limit if op == ">=" else value <= limit
        rows.append({"figure": name, "value": value, "op": op, "limit": limit, "passed": passed})
    return rows


def unknown(rules: Rules, known: set[str]) -> list[str]:
    return sorted(set(rules) - known)
