"""Chip profiles (YAML data in profiles/): load, override from the command line, validate.

A profile describes a build in terms both pulsar2 commands share (total context, prefill chunk,
longest prefill, chip, types, parallel, environment); pulsar2_args.py turns it into one command's flags.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import yaml

from axera_pipeline.common.chip_types import (  # noqa: F401 (available: the profiles there are)
    CHIPS,
    HIDDEN_TYPES,
    POST_WEIGHT_TYPES,
    WEIGHT_TYPES,
    available,
    profile_path,
)
from axera_pipeline.common.cli import UserError

REQUIRED = ("chip", "context_len", "prefill_chunk", "max_prefill_len")


@dataclass(frozen=True)
class Profile:
    name: str
    chip: str
    context_len: int  # total tokens, prompt + output (llm_build: kv_cache_len + 1; llm_build2: max_context)
    prefill_chunk: int  # tokens per prefill graph (llm_build: prefill_len; llm_build2: prefill_step_size)
    max_prefill_len: int  # the longest prompt (llm_build: last last_kv_cache_len; llm_build2: prefill_len)
    # Axera's llm_build2 conversions disagree whether --prefill_len is the longest history or that
    # plus one chunk (1024 vs 1152, what llm_build's last group could take): true adds the chunk.
    extra_prefill_chunk: bool = False
    last_kv_cache_len: tuple[int, ...] | None = None  # llm_build only; default chunk, 2*chunk, ... max
    hidden_state_type: str = "bf16"
    weight_type: str | None = None
    post_weight_type: str | None = None
    parallel: int = 1
    check_level: int = 0
    model_type: str | None = None
    description: str = ""
    env: dict[str, str] = field(default_factory=dict)

    @property
    def kv_cache_len(self) -> int:
        return self.context_len - 1

    @property
    def history_lengths(self) -> tuple[int, ...]:
        """llm_build's --last_kv_cache_len series: prefill shape groups by history length."""
        if self.last_kv_cache_len:
            return self.last_kv_cache_len
        step = self.prefill_chunk
        return tuple(range(step, self.max_prefill_len + 1, step))

    @property
    def longest_prefill(self) -> int:
        """llm_build2's --prefill_len."""
        return self.max_prefill_len + (self.prefill_chunk if self.extra_prefill_chunk else 0)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.last_kv_cache_len is not None:
            data["last_kv_cache_len"] = list(self.last_kv_cache_len)
        return data


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
    missing = sorted(set(REQUIRED) - set(data))
    if missing:
        raise UserError(f"{path}: missing field(s) {', '.join(missing)}")
    lasts = data.get("last_kv_cache_len")
    if lasts is not None:
        data["last_kv_cache_len"] = tuple(lasts) if isinstance(lasts, list) else (lasts,)
    data["env"] = {str(k): str(v) for k, v in (data.get("env") or {}).items()}
    try:
        profile = Profile(name=path.stem, **data)
    except TypeError as exc:
        raise UserError(f"{path}: {exc}") from None
    return validate(profile, where=str(path))


def with_overrides(profile: Profile, **changes: Any) -> Profile:
    """Command-line values replace profile fields (None means not given).

    Accepts the original notes' vocabulary too: kv_cache_len (context - 1), prefill_len (the chunk)
    and last_kv_cache_len (the history series, whose largest value is the longest prefill).
    """
    changes = {k: v for k, v in changes.items() if v is not None}
    if "kv_cache_len" in changes:
        changes["context_len"] = changes.pop("kv_cache_len") + 1
    if "prefill_len" in changes:
        changes["prefill_chunk"] = changes.pop("prefill_len")
    if "last_kv_cache_len" in changes:
        series = tuple(changes["last_kv_cache_len"])
        changes["last_kv_cache_len"] = series
        changes.setdefault("max_prefill_len", max(series) if series else 0)
    elif "max_prefill_len" in changes or "prefill_chunk" in changes:
        changes["last_kv_cache_len"] = None  # an explicit series no longer matches: derive it again
        max_prefill = changes.get("max_prefill_len")
        step = changes.get("prefill_chunk", profile.prefill_chunk)
        if max_prefill is not None and (not isinstance(step, int) or step <= 0 or max_prefill % step):
            raise UserError(
                f"--max-prefill-len {max_prefill} must be a multiple of the prefill length {step}"
            )
    return validate(replace(profile, **changes), where="the options given")


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def validate(p: Profile, where: str) -> Profile:
    """What both commands need; each command's own limits are checked, in its words, in pulsar2_args.py."""

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
    for name in ("context_len", "prefill_chunk", "max_prefill_len", "parallel"):
        if not _positive_int(getattr(p, name)):
            raise bad(f"{name} must be a positive integer, not {getattr(p, name)!r}")
    if p.check_level not in (0, 1, 2):
        raise bad(f"check_level must be 0, 1 or 2, not {p.check_level!r}")
    if not isinstance(p.extra_prefill_chunk, bool):
        raise bad(f"extra_prefill_chunk must be true or false, not {p.extra_prefill_chunk!r}")
    return p
