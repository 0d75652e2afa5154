"""What a package needs on the board, from the model's config and the chip profile, and which boards fit it.

On the chip's memory pool (CMM): the decoder layers at the profile's weight type and the checkpoint's
bits with their group scales, the post layer (final norm + lm_head) at `post_weight_type`, the KV
cache at the profile's context, and axllm's runtime buffers. In the board's ordinary RAM: the bf16
embedding table. An .axmodel holds more than its weights (each prefill shape group's graph, constant
tables): FILE_OVERHEAD is fitted to the two real Axera layer files whose sizes are public (BENCHMARKS.md
§7 gives them and the estimate's error). When CMM runs out, layers fail to load with
`AX_ENGINE_CreateHandle` (ax-llm issue #21).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import yaml

from axera_pipeline.common.chip_types import DEFAULT_POST_WEIGHT_TYPE
from axera_pipeline.common.model_shape import kv_cache_bytes, layer_weights, layers, vocab_and_hidden
from axera_pipeline.common.paths import DATA
from axera_pipeline.toolchain.profiles import Profile

BOARDS = DATA / "boards.yaml"
MIB = 2**20
FILE_OVERHEAD = 1.136  # .axmodel bytes per byte of weights and scales (fitted, BENCHMARKS.md §7)
RUNTIME_SHARE = 0.15  # axllm's I/O and scratch buffers, as a share of the .axmodel files
TIGHT = 0.85  # above this share of a board's memory a package "fits" only tightly
SCALE_BYTES = 2  # one bf16/fp16 scale per group (or per output channel)
TYPE_BYTES = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "s8": 1.0, "s4": 0.5, "fp8_e5m2": 1.0, "fp8_e4m3": 1.0}


@cache
def boards() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(BOARDS.read_text(encoding="utf-8"))["boards"]


def bytes_per_weight(weight_type: str | None, bits: int, group_size: int) -> float:
    """Stored bytes per decoder weight: pulsar2's -w type, or (unset) the GPTQ checkpoint's own bits."""
    width = TYPE_BYTES[weight_type] if weight_type else bits / 8
    if width >= 2:  # a float type carries no scales
        return width
    per_group = SCALE_BYTES / group_size if group_size > 0 else 0.0
    return width + per_group


@dataclass(frozen=True)
class Need:
    layer_files: int
    post_file: int
    kv_cache: int
    runtime: int
    embedding: int  # bf16 table, in the board's RAM

    @property
    def axmodel_files(self) -> int:
        return self.layer_files + self.post_file

    @property
    def cmm(self) -> int:
        return self.layer_files + self.post_file + self.kv_cache + self.runtime

    def describe(self) -> str:
        return (
            f"CMM ~{self.cmm / MIB:.0f} MiB (layers {self.layer_files / MIB:.0f}, "
            f"post {self.post_file / MIB:.0f}, KV cache {self.kv_cache / MIB:.0f}, "
            f"runtime {self.runtime / MIB:.0f}), RAM ~{self.embedding / MIB:.0f} MiB (bf16 embedding table)"
        )


def estimate(config: dict[str, Any], profile: Profile, bits: int = 4, group_size: int = 128) -> Need:
    vocab, hidden = vocab_and_hidden(config)
    per_weight = bytes_per_weight(profile.weight_type, bits, group_size)
    layer_files = int(layers(config) * layer_weights(config) * per_weight * FILE_OVERHEAD)
    post_type = profile.post_weight_type or DEFAULT_POST_WEIGHT_TYPE
    post_per_weight = TYPE_BYTES[post_type] + (SCALE_BYTES / hidden if TYPE_BYTES[post_type] < 2 else 0.0)
    post_file = int(vocab * hidden * post_per_weight * FILE_OVERHEAD)
    runtime = int(RUNTIME_SHARE * (layer_files + post_file))
    return Need(
        layer_files, post_file, kv_cache_bytes(config, profile.context_len), runtime, vocab * hidden * 2
    )


@dataclass(frozen=True)
class Fit:
    board: str
    verdict: str  # "fits", "tight" or "does not fit"
    detail: str


def _share(need: int, have_mib: float) -> float:
    return need / (have_mib * MIB) if have_mib else float("inf")


def fit(need: Need, board: str) -> Fit:
    spec = boards()[board]
    shares = {"CMM": _share(need.cmm, spec["cmm_mib"])}
    if spec.get("ram_mib"):
        shares["RAM"] = _share(need.embedding, spec["ram_mib"])
    worst = max(shares.values())
    verdict = "fits" if worst <= TIGHT else "tight" if worst <= 1.0 else "does not fit"
    parts = [f"CMM {need.cmm / MIB:.0f} of {spec['cmm_mib']} MiB ({shares['CMM']:.0%})"]
    if "RAM" in shares:
        parts.append(f"RAM {need.embedding / MIB:.0f} of {spec['ram_mib']} MiB ({shares['RAM']:.0%})")
    else:
        parts.append(f"the {need.embedding / MIB:.0f} MiB embedding table on the card's host")
    return Fit(board, verdict, f"{spec['name']}: {', '.join(parts)}")


def boards_for(chip: str) -> list[str]:
    return [name for name, spec in boards().items() if spec["chip"] == chip]


def fits_on(need: Need, chip: str) -> list[Fit]:
    return [fit(need, board) for board in boards_for(chip)]
