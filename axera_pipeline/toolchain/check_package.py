"""`nox -s check-package -- DIR`: check a folder as axllm and Axera's Python demo would read it."""

from __future__ import annotations

import os
from pathlib import Path

from axera_pipeline.common.cli import Parser, UserError, run
from axera_pipeline.toolchain.package.check import check

PROG = "check-package"


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("folder", type=Path, help="a chip build's folder, or one of Axera's releases")
    p.add_argument("--axllm-only", action="store_true", help="skip what only the Python demo reads")
    args = p.parse_args(argv)
    python = os.environ.get("GPTQ_ENV_PYTHON") or None  # nox passes it where the environment exists
    report = check(args.folder, python_demo=False if args.axllm_only else None, gptq_python=python)
    for problem in report.problems:
        print(f"problem  {problem}", flush=True)
    for warning in report.warnings:
        print(f"WARNING  {warning}", flush=True)
    for note in report.notes:
        print(f"note     {note}", flush=True)
    if not report.ok:
        raise UserError(f"{len(report.problems)} problem(s): {args.folder} would not load as it is")
    print(f"ok       {args.folder} loads as axllm and the Python demo read it", flush=True)
    return 0


if __name__ == "__main__":
    run(main, PROG)
