"""`nox -s preflight`: will this model build with pulsar2 and fit on the board? One line a check, in seconds.

Judged from the model's config.json and tokenizer files (never its weights), the chip profiles and
data/: pulsar2's model types, axllm's chat template for this model, the board's memory, pulsar2's RAM
on this machine, and how long quantizing takes here. `make all` and `make build-*` run it before
quantizing; a model pulsar2 refuses, or one that does not fit the board named with --board, stops there.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from axera_pipeline.common import (
    chat_format,
    chat_templates,
    checkpoint,
    defaults,
    hub_files,
    matmul_rate,
    model_shape,
    quantize_time,
)
from axera_pipeline.common import resources as ram
from axera_pipeline.common.cli import Parser, UserError, run
from axera_pipeline.common.gptq_call import run_json
from axera_pipeline.toolchain import backends, model_types, npu_memory, profiles
from axera_pipeline.toolchain.package import id_check

PROG = "preflight"
DEFAULT_CHIPS = ("ax650", "ax620e")
GIB = 2**30


@dataclass(frozen=True)
class Check:
    status: str  # "ok", "warn", "fail" or "note"
    what: str
    detail: str

    def line(self) -> str:
        return f"{self.status:<8}{self.what:<22}{self.detail}"


def parse_args(argv: list[str] | None = None):
    p = Parser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("--model", default=defaults.DEFAULT_MODEL, help="hub id or local folder (%(default)s)")
    p.add_argument(
        "--chip",
        action="append",
        metavar="PROFILE",
        help=f"chip profile to judge, repeatable: {', '.join(profiles.available())} (default: ax650, ax620e)",
    )
    p.add_argument(
        "--board", choices=sorted(npu_memory.boards()), help="the board it must fit (data/boards.yaml)"
    )
    p.add_argument("--bits", type=int, choices=(4, 8), default=4, help="quantize bits (%(default)s)")
    p.add_argument("--group-size", type=int, default=128, help="quantize group size (%(default)s)")
    p.add_argument("--parallel", type=int, help="pulsar2 --parallel planned (default: each profile's)")
    p.add_argument("--model-type", help="pulsar2 --model_type the build will pass, if any")
    p.add_argument("--axllm-tokenizer-type", help="axllm's tokenizer_type the build will pass, if any")
    p.add_argument("--limit", type=int, default=0, help="held-out rows for the template check (0 = all)")
    p.add_argument(
        "--before", metavar="STEP", help="say that STEP (e.g. quantizing) is not started on a failure"
    )
    return p.parse_args(argv)


def read_config(folder: Path) -> dict[str, Any]:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{folder}/config.json does not parse ({str(exc).splitlines()[0]})") from None
    try:
        model_shape.layer_weights(config)
        model_shape.vocab_and_hidden(config)
        model_shape.layers(config)
    except (KeyError, TypeError, ValueError):
        raise UserError(
            f"{folder}/config.json lacks a causal LM's sizes (hidden_size, intermediate_size, "
            "num_hidden_layers, vocab_size)"
        ) from None
    return config


def describe_model(folder: Path, config: dict[str, Any]) -> Check:
    vocab, hidden = model_shape.vocab_and_hidden(config)
    count = model_shape.parameters(config)
    size = f"{count / 1e9:.2f}B" if count >= 1e8 else f"{count / 1e6:.1f}M"
    types = "/".join(chat_format.model_types(config))
    return Check(
        "ok",
        "model",
        f"{folder} ({types}, {model_shape.layers(config)} layers, hidden {hidden}, vocab {vocab}, "
        f"~{size} parameters)",
    )


def group_size_check(folder: Path, config: dict[str, Any], group_size: int) -> Check:
    model = checkpoint.Checkpoint(folder, config)
    try:
        checkpoint.check_group_size(model, group_size)
    except UserError as exc:
        return Check("fail", "group size", str(exc))
    widths = ", ".join(f"{k} {v}" for k, v in model.linear_widths().items())
    return Check("ok", "group size", f"{group_size} divides every layer width ({widths})")


def pulsar2_version(environ) -> str:
    """The toolchain's version when it answers without loading or unpacking anything; '' otherwise."""
    try:
        return backends.resolve(environ, prepare=False).version
    except (backends.NotPrepared, UserError, OSError):
        return ""


def model_type_check(config: dict[str, Any], args, environ) -> Check:
    version = pulsar2_version(environ)
    found = model_types.verdict(chat_format.model_types(config), config, version, args.model_type or "")
    return Check(found.status, "pulsar2 model type", found.detail)


def token_id_checks(folder: Path, name: str, limit: int, gptq_python: str | None) -> list[Check]:
    """Every tokenizer.txt form the board could get, its markers judged and, with the GPTQ environment,
    its ids measured against verify's on the held-out rows: the one the build will write."""
    try:
        measured = id_check.measure(folder, name, gptq_python, limit=limit)
        chosen = id_check.choose(measured, name)
    except UserError as exc:
        return [Check("fail", "token ids", str(exc))]
    form = Check("ok", "tokenizer.txt", f"{chosen.describe}, {chosen.txt.entries} tokens")
    if chosen.agree is None:
        return [form, Check("note", "token ids", f"markers kept; {chosen.figure()}")]
    status = "ok" if chosen.agree == chosen.rows else "warn"
    return [form, Check(status, "token ids", f"{chosen.figure()} (every marker one token)")]


def text_agreement(folder: Path, name: str, limit: int, gptq_python: str | None) -> Check:
    """A folder with only its configs: axllm's prompt text against the model's own template's."""
    if not gptq_python:
        return Check(
            "note",
            "template agreement",
            "not checked: the GPTQ environment is not built yet (the first `make quantize` builds it)",
        )
    try:
        found = run_json(gptq_python, "template_check", str(folder), "--name", name, "--limit", str(limit))
    except UserError as exc:
        return Check("warn", "template agreement", f"not checked: {exc}")
    if not found["checked"]:
        return Check("note", "template agreement", f"not checked: {found['why']}")
    what = "prompt text (no tokenizer files here)"
    if found["agree"] == found["rows"]:
        return Check(
            "ok", "template agreement", f"{found['rows']}/{found['rows']} held-out rows: same {what}"
        )
    return Check(
        "warn",
        "template agreement",
        f"{found['rows'] - found['agree']} of {found['rows']} held-out rows differ in their {what}: the "
        f"board prompts the model otherwise than verify did; {found['first']['where']}",
    )


def template_checks(folder: Path, config: dict[str, Any], args, gptq_python: str | None) -> list[Check]:
    choice = chat_format.for_model(folder, chat_format.model_types(config), args.axllm_tokenizer_type or "")
    if choice.exact:
        first = Check(
            "ok", "chat template", f"{choice.name}: the model's own {choice.describe} ({choice.reason})"
        )
    else:
        first = Check("warn", "chat template", f"{choice.name}: {choice.warning()}")
    checks = [first]
    specials = chat_format.special_tokens(folder)
    missing = [m for m in chat_templates.markers(choice.name) if specials and m not in specials]
    if missing:
        checks.append(
            Check(
                "warn",
                "template markers",
                f"{', '.join(missing)} not among the tokenizer's special tokens: the board's encoder will "
                "split them into pieces",
            )
        )
    if checkpoint.has_tokenizer(folder):
        return checks + token_id_checks(folder, choice.name, args.limit, gptq_python)
    return [*checks, text_agreement(folder, choice.name, args.limit, gptq_python)]


def memory_checks(config: dict[str, Any], chips: list[profiles.Profile], args) -> list[Check]:
    checks = []
    if args.board:
        chip = npu_memory.boards()[args.board]["chip"]
        judged = [p for p in chips if p.chip == chip]
        if not judged:
            names = ", ".join(p.name for p in chips)
            return [
                Check(
                    "fail", "board memory", f"{args.board} runs {chip} packages; none of {names} builds one"
                )
            ]
        chips = judged
    for profile in chips:
        need = npu_memory.estimate(config, profile, args.bits, args.group_size)
        what = f"board memory {profile.name}"
        if args.board:
            fit = npu_memory.fit(need, args.board)
            status = {"fits": "ok", "tight": "warn", "does not fit": "fail"}[fit.verdict]
            checks.append(Check(status, what, f"{fit.verdict}: {fit.detail}; needs {need.describe()}"))
            continue
        fits = npu_memory.fits_on(need, profile.chip)
        by = {v: [f.board for f in fits if f.verdict == v] for v in ("fits", "tight", "does not fit")}
        listed = "; ".join(f"{v}: {', '.join(b)}" for v, b in by.items() if b)
        status = "ok" if by["fits"] else "warn"
        checks.append(
            Check(status, what, f"{listed}; needs {need.describe()} (--board NAME for one verdict)")
        )
    return checks


def pulsar2_ram_checks(config: dict[str, Any], chips: list[profiles.Profile], args) -> list[Check]:
    size = model_shape.parameters(config) * 2  # pulsar2 loads the model in bf16
    total = ram.meminfo("MemTotal")
    checks = []
    for profile in chips:
        parallel = args.parallel or profile.parallel
        need = ram.pulsar2_ram(size, parallel)
        what = f"pulsar2 RAM {profile.name}"
        here = f"~{need / GIB:.1f} GiB at --parallel {parallel}; this machine has {total / GIB:.1f} GiB"
        if need <= 0.9 * total:
            checks.append(Check("ok", what, here))
            continue
        best = ram.largest_parallel(size, total)
        hint = (
            f'try --parallel {best} (make build-{profile.name} ARGS="--parallel {best}")'
            if best >= 1
            else "even --parallel 1 will not fit: build on a machine with more RAM"
        )
        checks.append(
            Check("warn", what, f"{here}: pulsar2 is killed without a word when short (ax-llm #62); {hint}")
        )
    return checks


def quantize_time_check(config: dict[str, Any], gptq_python: str | None) -> Check:
    rates = matmul_rate.rates(gptq_python)
    try:
        found = quantize_time.cpu_seconds(config, rates)
    except (OSError, ValueError, KeyError, TypeError):
        return Check("note", "quantize time", "not measured yet (`nox -s bench -- profile`)")
    hours = found["seconds"] / 3600
    took = f"~{hours:.0f} h" if hours >= 2 else f"~{found['seconds'] / 60:.0f} min"
    detail = (
        f"{took} on this machine's CPU for {found['layers']} layers and {found['tokens']} calibration "
        f"tokens ({found['rates_from']})"
    )
    if rates and rates["bf16"] * 4 < rates["fp32"]:
        detail += (
            "; this CPU multiplies bf16 far slower than fp32 (no AVX512-BF16), and the forward passes run in "
            "the model's bf16: a machine with AVX512-BF16 or a GPU is much faster"
        )
    return Check("warn" if hours >= 2 else "note", "quantize time", detail)


def run_checks(folder: Path, args, environ) -> list[Check]:
    config = read_config(folder)
    gptq_python = environ.get("GPTQ_ENV_PYTHON") or None
    chips = [profiles.load(name) for name in (args.chip or DEFAULT_CHIPS)]
    return [
        describe_model(folder, config),
        model_type_check(config, args, environ),
        group_size_check(folder, config, args.group_size),
        *template_checks(folder, config, args, gptq_python),
        *memory_checks(config, chips, args),
        *pulsar2_ram_checks(config, chips, args),
        quantize_time_check(config, gptq_python),
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        folder = hub_files.locate(args.model)
    except hub_files.Unreachable as exc:
        print(
            f"{'note':<8}{'model files':<22}{exc}; nothing cached for {args.model}: preflight skipped",
            flush=True,
        )
        return 0
    checks = run_checks(folder, args, os.environ)
    for check in checks:
        print(check.line(), flush=True)
    failed = [c for c in checks if c.status == "fail"]
    if failed:
        stop = f"; not {args.before}" if args.before else ""
        raise UserError(f"{failed[0].what}: {failed[0].detail}{stop}")
    return 0


if __name__ == "__main__":
    run(main, PROG)
