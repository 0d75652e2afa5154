"""Verify thresholds: defaults, overrides, parsing errors and the pass/fail table."""

from __future__ import annotations

import math

import pytest

from axera_pipeline.common.cli import UserError
from axera_pipeline.gptq import thresholds


def test_defaults_cover_the_main_figures():
    rules = thresholds.load()
    assert rules["kl_divergence"][0] == "<=" and rules["logits_cosine"][0] == ">="
    assert {"top1_agreement", "perplexity_ratio", "chrf_vs_reference_model"} <= set(rules)


def test_overrides_and_errors(tmp_path):
    rules = thresholds.load(overrides=["kl_divergence<=0.5", "top1_agreement >= 0.1"])
    assert rules["kl_divergence"] == ("<=", 0.5) and rules["top1_agreement"] == (">=", 0.1)
    with pytest.raises(UserError, match="does not parse"):
        thresholds.load(overrides=["kl_divergence=0.5"])
    with pytest.raises(UserError, match="is not a number"):
        thresholds.load(overrides=["kl_divergence<=1.2.3"])
    bad = tmp_path / "t.json"
    bad.write_text('{"kl_divergence": 0.3}')
    with pytest.raises(UserError, match=r'must look like \[">=", 0.9\]'):
        thresholds.load(bad)
    with pytest.raises(UserError, match="cannot be read"):
        thresholds.load(tmp_path / "missing.json")


def test_check_rows():
    rows = thresholds.check(
        {"a": 0.5, "b": 2.0, "c": math.nan},
        {"a": (">=", 0.4), "b": ("<=", 1.0), "c": ("<=", 1.0), "d": (">=", 0.0)},
    )
    assert [r["passed"] for r in rows] == [True, False, False, False]
