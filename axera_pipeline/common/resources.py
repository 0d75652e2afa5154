"""This machine's memory, and what pulsar2 needs of it: over 32 GB for 1-3B models at a high `--parallel`,
killed by the kernel without a word below that (ax-llm issue #62). Qwen3-0.6B at `--parallel 8` built in
about 5 minutes on a 32 GB host; Qwen2.5-7B took 2 h 5 min on 128 GB (ax-llm issue #10)."""

from __future__ import annotations

from pathlib import Path

GIB = 2**30
PULSAR2_BASE = 4 * GIB  # the toolchain itself, before any layer


def meminfo(key: str) -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0.0


def pulsar2_ram(model_bytes: float, parallel: int) -> float:
    """pulsar2's peak RAM: the bf16 model once, plus a quarter of it per layer compiled at once."""
    return PULSAR2_BASE + model_bytes * (1 + parallel / 4)


def largest_parallel(model_bytes: float, ram: float, headroom: float = 0.9) -> int:
    """The largest --parallel whose estimate fits in `headroom` of `ram` (0 when even 1 does not)."""
    if model_bytes <= 0:
        return 0
    return max(0, int(4 * ((ram * headroom - PULSAR2_BASE) / model_bytes - 1)))
