"""Running a script in another interpreter and reading its JSON: the result, or one line saying why not."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from axera_pipeline.common.cli import UserError
from axera_pipeline.common.gptq_script import run_json


def script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "probe.py"
    path.write_text(body)
    return str(path)  # absolute: scripts/ joined with it is the path itself


def test_the_last_stdout_line_is_the_result(tmp_path):
    body = "print('loading...')\nprint('{\"fp32\": 1.5}')\n"
    assert run_json(sys.executable, script(tmp_path, body)) == {"fp32": 1.5}


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
def test_a_failure_is_one_line(tmp_path, body, expected):
    with pytest.raises(UserError) as caught:
        run_json(sys.executable, script(tmp_path, body), timeout=1)
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_a_missing_interpreter_is_named(tmp_path):
    with pytest.raises(UserError, match="cannot start the GPTQ environment's python /nowhere/python"):
        run_json("/nowhere/python", script(tmp_path, "print('{}')\n"))
