"""The benchmarks' teacher-forced statistics (bench/lib/translation_eval.py) run two models side by side;
scoring must leave gradients as they were, since scale tuning trains right after it."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_cmd

SCORE = """
import json, sys
import torch
from transformers import AutoModelForCausalLM
from bench.lib.translation_eval import reference_stats

model = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32).eval()
items = [([1, 5, 9, 12, 7, 3], 3), ([1, 4, 4, 8, 2], 2), ([1, 6, 11], 1)]
stats = reference_stats(model, model, items, batch=2)
print(json.dumps({"grad": torch.is_grad_enabled(), "kl": sum(s[2] for s in stats),
                  "tokens": [s[4] for s in stats]}))
"""


def test_reference_stats_leaves_gradients_on(gptq_python: str, tiny_hunyuan: Path) -> None:
    done = run_cmd([gptq_python, "-c", SCORE, str(tiny_hunyuan)])
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["grad"] is True
    assert abs(figures["kl"]) < 1e-4  # a model against itself
    assert figures["tokens"] == [3, 3, 2]
