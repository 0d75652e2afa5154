"""Will pulsar2 take this model_type? A verdict from the evidence in data/pulsar2/model_types.json.

pulsar2 checks the model_type only after the user has quantized (`AssertionError: model_type error
<x>`), so the preflight judges it first: built before (by whom, on which pulsar2), refused before
(with pulsar2's message), built under another `--model_type`, or unknown (a warning; the run goes on).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from axera_pipeline.common.model_shape import text_config
from axera_pipeline.common.paths import DATA

MODEL_TYPES = DATA / "pulsar2" / "model_types.json"


@cache
def evidence() -> dict[str, Any]:
    return json.loads(MODEL_TYPES.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Verdict:
    status: str  # "ok", "warn" or "fail"
    detail: str


def _condition(entry: dict[str, Any], config: dict[str, Any], pulsar2: str) -> Verdict | None:
    value = text_config(config).get(entry["field"], config.get(entry["field"]))
    if not isinstance(value, (int, float)) or value >= entry["below"]:
        return None
    on = f"{entry['what']} ({entry['source']})"
    if pulsar2 and pulsar2.startswith(entry["pulsar2"]):
        return Verdict("fail", f"{entry['field']} {value}: {on}; this toolchain is pulsar2 {pulsar2}")
    return Verdict("warn", f"{entry['field']} {value}: {on}; untried on other versions")


def verdict(model_types: list[str], config: dict[str, Any], pulsar2: str = "", override: str = "") -> Verdict:
    """The first model type in `model_types` (the config's, then its text model's) with evidence."""
    data = evidence()
    types = [override] if override else model_types
    for model_type in types:
        if model_type in data["refused"]:
            refused = data["refused"][model_type]
            return Verdict(
                "fail",
                f"{model_type}: pulsar2 refuses it ({refused['message']}; {refused['source']}); it "
                "would fail after quantizing",
            )
        if model_type in data["instead"]:
            other = data["instead"][model_type]
            return Verdict(
                "fail",
                f"{model_type}: pulsar2 does not know it; Axera builds it as {other['model_type']} "
                f"({other['source']}): pass --model-type {other['model_type']} to the build",
            )
    for model_type in types:
        built = data["built"].get(model_type)
        if not built:
            continue
        for entry in data["conditions"]:
            if entry["model_type"] == model_type and (found := _condition(entry, config, pulsar2)):
                return found
        first = built[0]
        return Verdict(
            "ok",
            f"{model_type}: built by {first['by']} ({first['model']}) with pulsar2 {first['pulsar2']} "
            f"({first['source']})",
        )
    return Verdict(
        "warn",
        f"{'/'.join(types)}: no evidence that pulsar2 builds it (known: {', '.join(sorted(data['built']))}); "
        "the run goes on, and pulsar2 itself decides after quantizing",
    )
