"""What pulsar2 accepts for chips and numeric types, and where chip profiles live: shared by the
toolchain side (which builds with them) and the GPTQ side (which emulates the board's numerics)."""

from __future__ import annotations

from pathlib import Path

from axera_pipeline.common.cli import UserError
from axera_pipeline.common.paths import PROFILES

CHIPS = ("AX650", "AX620E", "LAMBERT")
HIDDEN_TYPES = ("fp16", "bf16", "fp32")
WEIGHT_TYPES = ("fp16", "bf16", "fp32", "s8", "s4", "fp8_e5m2", "fp8_e4m3")
POST_WEIGHT_TYPES = ("bf16", "s8", "fp8_e5m2", "fp8_e4m3")
DEFAULT_POST_WEIGHT_TYPE = "s8"  # pulsar2's default when a profile does not set one


def held_weight_type(weight_type: str | None, bits: int | None) -> str | None:
    """How the chip holds a GPTQ checkpoint's decoder weights under a profile's weight_type (pulsar2's
    -w): None where it keeps the checkpoint's grid (no -w, fp32, or an integer type at least as wide),
    else the type it requantizes or rounds them to (s4 on an 8-bit checkpoint, bf16, fp16, fp8)."""
    if weight_type in (None, "fp32") or bits is None:
        return None
    if weight_type in ("s4", "s8"):
        return None if int(weight_type[1:]) >= bits else weight_type
    return weight_type


def available() -> list[str]:
    return sorted(p.stem for p in PROFILES.glob("*.yaml"))


def profile_path(name_or_path: str) -> Path:
    """A profile name (profiles/<name>.yaml) or a .yaml file of one's own."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise UserError(f"profile file {name_or_path} does not exist")
        return path
    path = PROFILES / f"{name_or_path.lower()}.yaml"
    if not path.is_file():
        raise UserError(f"unknown chip profile {name_or_path!r}; available: {', '.join(available())}")
    return path
