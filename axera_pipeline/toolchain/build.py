"""Build a GPTQ checkpoint for an Axera chip with pulsar2 (llm_build or llm_build2), judge it, package it.

Runs in a small host environment (pyyaml only); pulsar2 runs in its own toolchain (PULSAR2_BIN,
PULSAR2_PACKAGE or a Docker image) and the embedding step in the GPTQ environment (GPTQ_ENV_PYTHON),
each in its own process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import time
import uuid
from argparse import BooleanOptionalAction, Namespace
from dataclasses import dataclass
from pathlib import Path

from axera_pipeline.common import atomic, chat_format, checkpoint, defaults, faults, manifest, package_layout
from axera_pipeline.common.basics import sayer
from axera_pipeline.common.cli import Parser, UserError, run
from axera_pipeline.toolchain import backends, model_types, profiles, pulsar2_args, pulsar2_log
from axera_pipeline.toolchain.backends import docker
from axera_pipeline.toolchain.package import check as package_check
from axera_pipeline.toolchain.package import write as package_write
from axera_pipeline.toolchain.pulsar2_run import stream

PROG = "build"
PACKAGE_FORMAT = 4  # 4: tokenizer.txt's form measured against verify's ids (3: template-chosen type)


def parse_args(argv: list[str] | None = None) -> Namespace:
    p = Parser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument(
        "--profile", required=True, help=f"chip profile: {', '.join(profiles.available())}, or a .yaml"
    )
    p.add_argument("--input", type=Path, help="GPTQ checkpoint (default: $BUILD_DIR/HY-MT1.5-1.8B/gptq-int4)")
    p.add_argument("--output", type=Path, help="default: <input's parent>/<profile>")
    p.add_argument("--parallel", type=int, help="layers compiled at once (more RAM)")
    p.add_argument("--context", type=int, help="total context in tokens, prompt + output (2048 = 2k)")
    p.add_argument(
        "--prefill-len", type=int, help="tokens per prefill chunk (llm_build2: --prefill_step_size)"
    )
    p.add_argument("--kv-cache-len", type=int, help="context minus one (2047 = 2k), the notes' vocabulary")
    p.add_argument(
        "--max-prefill-len",
        type=int,
        help="longest prompt: llm_build's --last_kv_cache_len up to this, llm_build2's --prefill_len",
    )
    p.add_argument(
        "--extra-prefill-chunk",
        action=BooleanOptionalAction,
        help="llm_build2: --prefill_len one chunk longer (1152, not 1024), as some Axera builds pass",
    )
    p.add_argument(
        "--last-kv-cache-len", type=int, action="append", help="llm_build, repeatable; replaces the series"
    )
    p.add_argument("--check-level", type=int, choices=(0, 1, 2), help="pulsar2 -c (profile default 0)")
    p.add_argument("--hidden-state-type", help="pulsar2 -t")
    p.add_argument("--weight-type", help="pulsar2 -w")
    p.add_argument("--post-weight-type", help="pulsar2 --post_weight_type")
    p.add_argument("--model-type", help="pulsar2 --model_type (also the file prefix)")
    p.add_argument(
        "--bundle", action="store_true", help="also write <output>.tar.gz, ready to copy to the board"
    )
    p.add_argument(
        "--no-python-demo",
        action="store_true",
        help="axllm only: leave out the float32 .npy embedding table Axera's Python demo reads",
    )
    p.add_argument("--model-name", help="axllm's model_name (default: the model's name, lower case)")
    p.add_argument(
        "--axllm-tokenizer-type",
        help="axllm's tokenizer_type (default: from the model's own chat template)",
    )
    p.add_argument("--force", action="store_true", help="rebuild even if the output is up to date")
    p.add_argument(
        "--no-wait", action="store_true", help="fail at once if another run is writing the same output"
    )
    return p.parse_args(argv)


def settings(args: Namespace) -> profiles.Profile:
    return profiles.with_overrides(
        profiles.load(args.profile),
        parallel=args.parallel,
        context_len=args.context,
        prefill_len=args.prefill_len,
        kv_cache_len=args.kv_cache_len,
        extra_prefill_chunk=args.extra_prefill_chunk,
        last_kv_cache_len=args.last_kv_cache_len,
        check_level=args.check_level,
        hidden_state_type=args.hidden_state_type,
        weight_type=args.weight_type,
        post_weight_type=args.post_weight_type,
        model_type=args.model_type,
        max_prefill_len=args.max_prefill_len,
    )


def load_input(path: Path) -> checkpoint.Checkpoint:
    if not path.is_dir():
        raise UserError(f"input {path} does not exist; run `make quantize` first or pass --input")
    ckpt = checkpoint.load_checkpoint(path.resolve())
    if "num_hidden_layers" not in ckpt.text_config:
        raise UserError(f"{path}/config.json has no num_hidden_layers; is it a causal LM checkpoint?")
    return ckpt


def gptq_python() -> str:
    python = os.environ.get("GPTQ_ENV_PYTHON")
    if not python:
        raise UserError("packaging needs the GPTQ environment; run through `nox -s build-<chip>` or `make`")
    return python


def measure_token_ids(job: Plan) -> None:
    """Every tokenizer.txt form against verify's ids, before pulsar2 starts: the package gets the best."""
    job.package = package_write.measured(job.package, gptq_python())
    chosen = job.package.chosen
    others = [m for m in job.package.measured if m is not chosen]
    tried = "; ".join(f"{m.key} {m.agree}/{m.rows}" + (" (loses markers)" if m.lost else "") for m in others)
    also = f" (also tried: {tried})" if tried else ""
    say(f"tokenizer.txt as {chosen.describe}: {chosen.figure()}{also}")
    if chosen.agree is not None and chosen.agree < chosen.rows:
        differ = chosen.rows - chosen.agree
        say(f"WARNING: on {differ} held-out rows the board prompts the model otherwise than verify did")


def write_embeddings(ckpt: checkpoint.Checkpoint, stage: Path, python_demo: bool) -> None:
    """The one packaging step that needs torch, run in the GPTQ environment as its own process."""
    python = gptq_python()
    cmd = [
        python,
        "-m",
        "axera_pipeline.gptq.embeddings",
        "--checkpoint",
        str(ckpt.path),
        "--output",
        str(stage),
    ]
    done = subprocess.run([*cmd, *([] if python_demo else ["--no-npy"])], capture_output=True, text=True)
    sys.stdout.write(done.stdout)
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
        raise UserError(f"packaging failed: {lines[-1] if lines else f'exit status {done.returncode}'}")


def check_package(stage: Path, python_demo: bool) -> None:
    """The same check as `nox -s check-package`: a package that would not load is a failed build."""
    report = package_check.check(stage, python_demo=python_demo, ids=False)  # measured before pulsar2
    for warning in report.warnings:
        say(f"WARNING: {warning}")
    for note in report.notes:
        say(f"note: {note}")
    if not report.ok:
        raise UserError("the package would not load on the board: " + "; ".join(report.problems))


def write_bundle(folder: Path) -> Path:
    target = folder.with_name(folder.name + ".tar.gz")
    partial = folder.with_name(f".{folder.name}.tar.gz.tmp-{os.getpid()}")
    try:
        with tarfile.open(partial, "w:gz") as tar:
            tar.add(folder, arcname=folder.name)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target


say = sayer(PROG)


@dataclass
class Plan:
    """Everything decided before pulsar2 starts."""

    profile: profiles.Profile
    ckpt: checkpoint.Checkpoint
    output: Path
    chain: backends.Toolchain
    command: str
    prefix: str
    layers: int
    package: package_write.Prepared
    inputs: dict


def plan(args: Namespace) -> Plan:
    p = settings(args)
    source = args.input or defaults.checkpoint()
    ckpt = load_input(source)
    output = (args.output or ckpt.path.parent / p.name).expanduser()
    atomic.check_destination(output)
    chain = backends.resolve()
    command = backends.choose(chain.commands, os.environ.get("PULSAR2_COMMAND", ""))
    pulsar2_args.render(command, p, "IN", "OUT")  # its limits, in its words, before anything starts
    known = model_types.verdict(
        chat_format.model_types(ckpt.config), ckpt.config, chain.version, p.model_type or ""
    )
    if known.status == "fail":
        raise UserError(known.detail)
    if known.status == "warn":
        say(f"warning: {known.detail}")
    options = package_write.PackageOptions(
        python_demo=not args.no_python_demo,
        model_name=args.model_name or "",
        tokenizer_type=args.axllm_tokenizer_type or "",
    )
    package = package_write.prepare(ckpt, options)  # tokenizer and axllm names: fail now, not after pulsar2
    if package.template.warning():
        say(f"WARNING: {package.template.warning()}")
    inputs = {
        "checkpoint": manifest.hash_files(ckpt.files, ckpt.path),
        "profile": p.as_dict(),
        "toolchain": {"version": chain.version, "commit": chain.commit, "image_id": chain.image_id},
        "command": command,
        "package": {"format": PACKAGE_FORMAT, **options.__dict__},
    }
    prefix = p.model_type or ckpt.model_type
    return Plan(
        p, ckpt, output, chain, command, prefix, int(ckpt.text_config["num_hidden_layers"]), package, inputs
    )


def run_pulsar2(job: Plan, stage: Path) -> tuple[int, list[str], list[str], pulsar2_log.Verdict]:
    """pulsar2 into the staging folder, judged by its marker, its files and how it ended."""
    chain, p = job.chain, job.profile
    docker_run = chain.kind == "docker"
    in_src, in_out = (
        (backends.IN_CONTAINER_INPUT, backends.IN_CONTAINER_OUTPUT)
        if docker_run
        else (str(job.ckpt.path), str(stage))
    )
    pulsar2_argv = pulsar2_args.render(job.command, p, in_src, in_out)
    container = f"axera-pipeline-{os.getpid()}-{uuid.uuid4().hex[:8]}" if docker_run else ""
    cmd = chain.command(pulsar2_argv, p.env, (job.ckpt.path, stage), container)
    say(f"{job.ckpt.path} -> {job.output}: {job.layers} layers, {p.parallel} at a time (log: build.log)")
    stop_container = (lambda: docker.stop(chain, container)) if container else None
    code, facts = stream(cmd, {**os.environ, **p.env}, stage / "build.log", stop_container)
    expected = [
        *package_layout.layer_files(job.prefix, p.prefill_chunk, job.layers),
        package_layout.post_model(job.prefix),
    ]
    missing = [n for n in expected if not (stage / n).is_file()]
    return code, pulsar2_argv, cmd, pulsar2_log.judge(code, facts, missing, p.parallel)


def build_into(job: Plan, stage: Path) -> None:
    started = time.monotonic()
    code, pulsar2_argv, cmd, verdict = run_pulsar2(job, stage)
    if not verdict.ok:
        failed_log = job.output.with_name(job.output.name + ".failed.log")
        shutil.copy2(stage / "build.log", failed_log)
        raise UserError(f"{verdict.message} (full log: {failed_log})")
    say(verdict.message)
    built = time.monotonic()
    faults.at("packaging", stage)
    write_embeddings(job.ckpt, stage, job.package.options.python_demo)
    summary = package_write.write(
        stage,
        job.package,
        folder_name=job.output.name,
        prefix=job.prefix,
        profile=job.profile,
        pulsar2=job.chain.version,
        command=job.command,
    )
    say(
        f"package: {package_layout.TOKENIZER_TXT} ({summary['tokenizer_txt_type']}, {summary['tokens']} "
        f"tokens), tokenizer_type {summary['tokenizer_type']}, model_name {summary['model_name']}"
    )
    check_package(stage, job.package.options.python_demo)
    files = sorted(f for f in stage.rglob("*") if f.is_file())
    manifest.write(
        stage,
        {
            "inputs": job.inputs,
            "result": {
                "verdict": verdict.message,
                "checkpoint": str(job.ckpt.path),
                "pulsar2_exit_status": code,
                "build_command": job.command,
                "pulsar2_command": pulsar2_argv,
                "command": cmd,
                "environment": job.profile.env,
                "toolchain": job.chain.describe(),
                "files": manifest.hash_files(files, stage),
                "package": summary,
                "timings_s": {
                    "build": round(built - started, 1),
                    "package": round(time.monotonic() - built, 1),
                },
            },
        },
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    job = plan(args)
    p, output = job.profile, job.output
    say(f"{p.name}: {p.description or p.chip}; pulsar2 {job.chain.version} ({job.chain.kind}), {job.command}")
    with atomic.owned_output(output, f"build {p.name}", wait=not args.no_wait, say=say):
        if not args.force and manifest.is_up_to_date(output, job.inputs):
            say(f"{output} is up to date (inputs match its manifest.json); nothing to do, --force redoes it")
            return 0
        measure_token_ids(job)
        text = job.ckpt.text_config
        embed_bytes = 6 * int(text.get("vocab_size", 0)) * int(text.get("hidden_size", 0))
        atomic.check_free_space(
            output.parent, 2 * job.ckpt.weight_bytes + embed_bytes + 64 * 2**20, "the build"
        )
        with atomic.staged_folder(output) as stage:
            build_into(job, stage)
        output.with_name(output.name + ".failed.log").unlink(missing_ok=True)
        if args.bundle:
            say(f"bundle: {write_bundle(output)}")
    say(f"done: {output}")
    return 0


if __name__ == "__main__":
    run(main, PROG)
