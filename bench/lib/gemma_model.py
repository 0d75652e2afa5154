"""google/gemma-3-270m as a Hugging Face folder in the bench cache, and how the tables print intervals."""

import subprocess

from bench.lib.harness import CACHE


def gemma_folder(python: str):
    fp = CACHE / "gemma-3-270m"
    if not (fp / "config.json").exists():
        subprocess.run([python, "-m", "bench.lib.gemma_convert", str(fp)], check=True)
    return fp


def interval(pair: list[float], digits: int = 1) -> str:
    return f"[{pair[0]:.{digits}f}, {pair[1]:.{digits}f}]"
