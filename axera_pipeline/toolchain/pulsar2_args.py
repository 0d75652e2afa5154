"""One function per pulsar2 command: a profile in, that command's flags out, checked in its own words.

`llm_build` reproduces the original notes flag for flag; `llm_build2` (pulsar2 6.x/7.x) says the same
build in its vocabulary: --max_context (total), --prefill_step_size (chunk), --prefill_len (longest).
"""

from __future__ import annotations

from axera_pipeline.common.cli import UserError
from axera_pipeline.toolchain.profiles import Profile


def _bad(p: Profile, message: str) -> UserError:
    return UserError(f"profile {p.name}: {message}")


def _types(p: Profile) -> list[str]:
    args = ["--hidden_state_type", p.hidden_state_type]
    if p.weight_type:
        args += ["-w", p.weight_type]
    if p.post_weight_type:
        args += ["--post_weight_type", p.post_weight_type]
    return args


def llm_build(p: Profile, input_path: str, output_path: str) -> list[str]:
    """`pulsar2 llm_build` arguments in the original notes' order."""
    series = p.history_lengths if p.max_prefill_len % p.prefill_chunk == 0 else (p.max_prefill_len,)
    for value in series:
        if value % p.prefill_chunk:
            raise _bad(
                p, f"last_kv_cache_len {value} is not a positive multiple of prefill_len {p.prefill_chunk}"
            )
        if value >= p.kv_cache_len:
            raise _bad(p, f"last_kv_cache_len {value} must be below kv_cache_len {p.kv_cache_len}")
    if len(set(series)) != len(series):
        raise _bad(p, "last_kv_cache_len has repeated values")
    args = ["llm_build", "--input_path", input_path, "--output_path", output_path]
    if p.model_type:
        args += ["--model_type", p.model_type]
    args += [*_types(p), "--prefill_len", str(p.prefill_chunk), "--kv_cache_len", str(p.kv_cache_len)]
    for value in series:
        args += ["--last_kv_cache_len", str(value)]
    return [*args, "--chip", p.chip, "-c", str(p.check_level), "--parallel", str(p.parallel)]


def llm_build2(p: Profile, input_path: str, output_path: str) -> list[str]:
    """`pulsar2 llm_build2` arguments, in the order of Axera's published examples."""
    longest = p.longest_prefill
    if longest % p.prefill_chunk:
        raise _bad(p, f"prefill_len {longest} is not a multiple of prefill_step_size {p.prefill_chunk}")
    if longest >= p.context_len:
        raise _bad(p, f"prefill_len {longest} must be below max_context {p.context_len}")
    args = ["llm_build2", "--input_path", input_path, "--output_path", output_path]
    if p.model_type:
        args += ["--model_type", p.model_type]
    args += [*_types(p), "--prefill_len", str(longest), "--prefill_step_size", str(p.prefill_chunk)]
    args += ["--max_context", str(p.context_len), "--chip", p.chip]
    return [*args, "-c", str(p.check_level), "--parallel", str(p.parallel)]


RENDER = {"llm_build": llm_build, "llm_build2": llm_build2}


def render(command: str, p: Profile, input_path: str, output_path: str) -> list[str]:
    return RENDER[command](p, input_path, output_path)
