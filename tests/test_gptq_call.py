"""Running a module in another interpreter and reading its JSON: the result, or one line saying why not."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from axera_pipeline.common.cli import UserError
from axera_pipeline.common.gptq_call import run_json


def script(tmp_path: Path, body: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module `probes.probe` under tmp_path, which the child finds through PYTHONPATH."""
    (tmp_path / "probes").mkdir(exist_ok=True)
    (tmp_path / "probes" / "probe.py").write_text(body)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    return "probes.probe"  # dotted: run as it is, not looked up under axera_pipeline.gptq


def test_the_last_stdout_line_is_the_result(tmp_path, monkeypatch):
    body = "print('loading...')\nprint('{\"fp32\": 1.5}')\n"
    assert run_json(sys.executable, script(tmp_path, body, monkeypatch)) == {"fp32": 1.5}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "import sys\nprint('warming up', file=sys.stderr)\nsys.exit('error: no tokenizer in /x')\n",
            "error: no tokenizer in /x",
        ),
        ("print('done')\n", "printed no JSON result: 'done'"),
        ("print('[1, 2]')\n", "printed list, not a JSON object"),
        ("import time\ntime.sleep(30)\n", "did not finish within 1 s"),
    ],
)
def test_a_failure_is_one_line(tmp_path, monkeypatch, body, expected):
    with pytest.raises(UserError) as caught:
        run_json(sys.executable, script(tmp_path, body, monkeypatch), timeout=1)
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_a_missing_interpreter_is_named(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="cannot start the GPTQ environment's python /nowhere/python"):
        run_json("/nowhere/python", script(tmp_path, "print('{}')\n", monkeypatch))
