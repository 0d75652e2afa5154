"""Benchmark 8 without a board: `make all` then `make board` on the tiny test model, against a real sshd on
127.0.0.1 and the stand-in axllm (`nox -s bench -- board`).

It shows the report a board run writes, with the agreement measured end to end; its speeds are this
CPU's. A run on a real board (`make board HOST=...`, then `nox -s bench -- report`) replaces it.
"""

import argparse
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.benchmarks_md import keep_board_report
from bench.lib.harness import CACHE, ROOT, gptq_python, make_model

FAKES = ROOT / "tests" / "fakes"
# The tiny model's random weights translate nothing: verify's limits for it, as the tests use.
TINY_LIMITS = "--threshold 'chrf_vs_reference_model>=5' --threshold 'top1_agreement>=0.5'"


def make(*args: str, env: dict) -> None:
    print(f"[bench] make {' '.join(args)}", flush=True)
    done = subprocess.run(["make", *args], cwd=ROOT, env={**os.environ, **env})
    if done.returncode != 0:
        raise SystemExit(f"bench: make {args[0]} failed ({done.returncode})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sentences", type=int, default=0, help="the first N held-out rows (0 = all)")
    args = p.parse_args()
    python = gptq_python()
    model = make_model(python, CACHE / "tiny-hunyuan-board")
    work = Path(tempfile.mkdtemp(prefix="board-", dir=CACHE))
    from tests.helpers import sshd

    boards = None
    try:
        env = {"BUILD_DIR": str(work / "build"), "PULSAR2_BIN": str(FAKES / "pulsar2")}
        make("all", f"MODEL={model}", f"VERIFY_ARGS={TINY_LIMITS}", env=env)
        wrapper = work / "axllm"
        wrapper.write_text(f'#!/bin/sh\nexec "{python}" "{FAKES / "axllm"}" "$@"\n')
        wrapper.chmod(0o755)
        boards = sshd.start(work / "sshd", wrapper)
        package = work / "build" / model.name / "ax650"
        options = f"--ssh-config {boards.config} --remote-dir {work / 'board-home' / 'tiny'}"
        if args.sentences:
            options += f" --sentences {args.sentences}"
        make("board", "HOST=board-full", f"DIR={package}", f"ARGS={options}", env=env)
        kept = keep_board_report(package.with_name("ax650-board") / "board.json")
        print(kept.read_text(encoding="utf-8"))
    finally:
        if boards is not None:
            boards.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
