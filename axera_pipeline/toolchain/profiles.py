"""Chip profiles (YAML data in profiles/): load, override from the command line, validate, render argv."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from axera_pipeline.common.cli import UserError
from axera_pipeline.common.paths import PROFILES

CHIPS = ("AX650", "AX620E", "LAMBERT")
HIDDEN_TYPES = ("fp16", "bf16", "fp32")
WEIGHT_TYPES = ("fp16", "bf16", "fp32", "s8", "s4", "fp8_e5m2", "fp8_e4m3")
POST_WEIGHT_TYPES = ("bf16", "s8", "fp8_e5m2", "fp8_e4m3")


@dataclass(frozen=True)
class Profile:
    name: str
    chip: str
    prefill_len: int
    kv_cache_len: int
    last_kv_cache_len: tuple[int, ...]
    hidden_state_type: str = "bf16"
    weight_type: str | None = None
    post_weight_type: str | None = None
    parallel: int = 1
    check_level: int = 0
    model_type: str | None = None
    description: str = ""
    env: dict[str, str] = field(default_factory=dict)

    @property
    def context_len(self) -> int:
        return self.kv_cache_len + 1

    @property
    def max_prefill_len(self) -> int:
        return max(self.last_kv_cache_len)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["last_kv_cache_len"] = list(self.last_kv_cache_len)
        return data


def available() -> list[str]:
    return sorted(p.stem for p in PROFILES.glob("*.yaml"))


def profile_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise UserError(f"profile file {name_or_path} does not exist")
        return path
    path = PROFILES / f"{name_or_path.lower()}.yaml"
    if not path.is_file():
        raise UserError(f"unknown chip profile {name_or_path!r}; available: {', '.join(available())}")
    return path


def load(name_or_path: str) -> Profile:
    path = profile_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} must be a YAML mapping of profile fields")
    known = set(Profile.__dataclass_fields__) - {"name"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UserError(f"{path}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    missing = sorted({"chip", "prefill_len", "kv_cache_len", "last_kv_cache_len"} - set(data))
    if missing:
        raise UserError(f"{path}: missing field(s) {', '.join(missing)}")
    lasts = data["last_kv_cache_len"]
    data["last_kv_cache_len"] = tuple(lasts) if isinstance(lasts, list) else (lasts,)
    data["env"] = {str(k): str(v) for k, v in (data.get("env") or {}).items()}
    try:
        profile = Profile(name=path.stem, **data)
    except TypeError as exc:
        raise UserError(f"{path}: {exc}") from None
    return validate(profile, where=str(path))


def with_overrides(profile: Profile, **changes: Any) -> Profile:
    """Command-line values replace profile fields; --max-prefill-len rebuilds the prefill series."""
    max_prefill = changes.pop("max_prefill_len", None)
    changes = {k: v for k, v in changes.items() if v is not None}
    if "last_kv_cache_len" in changes:
        changes["last_kv_cache_len"] = tuple(changes["last_kv_cache_len"])
    updated = replace(profile, **changes)
    if max_prefill is not None:
        step = updated.prefill_len
        if step <= 0 or max_prefill % step:
            raise UserError(
                f"--max-prefill-len {max_prefill} must be a multiple of the prefill length {step}"
            )
        updated = replace(updated, last_kv_cache_len=tuple(range(step, max_prefill + 1, step)))
    return validate(updated, where="the options given")


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def validate(p: Profile, where: str) -> Profile:
    def bad(message: str) -> UserError:
        return UserError(f"profile {p.name} ({where}): {message}")

    if p.chip not in CHIPS:
        raise bad(f"unknown chip {p.chip!r}; pulsar2 knows {', '.join(CHIPS)}")
    if p.hidden_state_type not in HIDDEN_TYPES:
        raise bad(f"hidden_state_type {p.hidden_state_type!r} is not one of {', '.join(HIDDEN_TYPES)}")
    if p.weight_type is not None and p.weight_type not in WEIGHT_TYPES:
        raise bad(f"weight_type {p.weight_type!r} is not one of {', '.join(WEIGHT_TYPES)}")
    if p.post_weight_type is not None and p.post_weight_type not in POST_WEIGHT_TYPES:
        raise bad(f"post_weight_type {p.post_weight_type!r} is not one of {', '.join(POST_WEIGHT_TYPES)}")
    for name in ("prefill_len", "kv_cache_len", "parallel"):
        if not _positive_int(getattr(p, name)):
            raise bad(f"{name} must be a positive integer, not {getattr(p, name)!r}")
    if p.check_level not in (0, 1, 2):
        raise bad(f"check_level must be 0, 1 or 2, not {p.check_level!r}")
    if not p.last_kv_cache_len:
        raise bad("last_kv_cache_len needs at least one value")
    for value in p.last_kv_cache_len:
        if not _positive_int(value) or value % p.prefill_len:
            raise bad(
                f"last_kv_cache_len {value!r} is not a positive multiple of prefill_len {p.prefill_len}"
            )
        if value >= p.kv_cache_len:
            raise bad(f"last_kv_cache_len {value} must be below kv_cache_len {p.kv_cache_len}")
    if len(set(p.last_kv_cache_len)) != len(p.last_kv_cache_len):
        raise bad("last_kv_cache_len has repeated values")
    return p


def pulsar2_args(p: Profile, input_path: str, output_path: str) -> list[str]:
    """The `pulsar2 llm_build` arguments for this profile, in the original notes' order."""
    args = ["llm_build", "--input_path", input_path, "--output_path", output_path]
    if p.model_type:
        args += ["--model_type", p.model_type]
    args += ["--hidden_state_type", p.hidden_state_type]
    if p.weight_type:
        args += ["-w", p.weight_type]
    if p.post_weight_type:
        args += ["--post_weight_type", p.post_weight_type]
    args += ["--prefill_len", str(p.prefill_len), "--kv_cache_len", str(p.kv_cache_len)]
    for value in p.last_kv_cache_len:
        args += ["--last_kv_cache_len", str(value)]
    args += ["--chip", p.chip, "-c", str(p.check_level), "--parallel", str(p.parallel)]
    return args
