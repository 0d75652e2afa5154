"""`nox -s board`: deploy a package to a board over SSH, serve it with axllm, and measure it there.

Before any request: the package passes check-package, and axllm's chat template for its
`tokenizer_type` must give the model the token ids verify gave it (the rows that differ are named).
Then, through axllm's OpenAI API: load time and CMM left, time to first token and decode rate per
request, and the held-out translations: chrF and BLEU against the human references, and agreement
with `verify --emulate`'s translations for the same chip. The report goes to `<package>-board/`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from argparse import Namespace
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from axera_pipeline.board import axllm_log, client, deploy, report, server
from axera_pipeline.board.remote import Host, LocalHost, SshHost, quote
from axera_pipeline.common import atomic, axllm_prompts, axllm_tokenizer, manifest
from axera_pipeline.common.basics import sayer
from axera_pipeline.common.checkpoint import has_tokenizer
from axera_pipeline.common.chip_types import DEFAULT_POST_WEIGHT_TYPE, held_weight_type
from axera_pipeline.common.cli import Parser, UserError, run
from axera_pipeline.common.gptq_call import run_json
from axera_pipeline.common.messages import question_messages
from axera_pipeline.common.paths import DATA
from axera_pipeline.toolchain.package import check as package_check
from axera_pipeline.toolchain.package import id_check

PROG = "board"
DEFAULT_EVAL = DATA / "eval" / "heldout_translation.jsonl"
INSTALL = "install it with Axera's script (AXERA-TECH/ax-llm, axllm branch: install.sh) and put it on PATH"


def parse_args(argv: list[str] | None = None) -> Namespace:
    p = Parser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument(
        "--package", type=Path, required=True, help="a chip build's folder, e.g. build/<name>/ax650"
    )
    p.add_argument(
        "--host", required=True, help="USER@ADDR or an ~/.ssh/config alias; `local` for a card here"
    )
    p.add_argument("--port", type=int, default=8000, help="axllm serve's port on the board (%(default)s)")
    p.add_argument("--remote-dir", help="the package's folder on the board (~/axera-pipeline/<name>/<chip>)")
    p.add_argument(
        "--eval-set", type=Path, default=DEFAULT_EVAL, help="translation rows (verify's by default)"
    )
    p.add_argument("--sentences", type=int, default=0, help="the first N rows (0 = all)")
    p.add_argument("--max-new-tokens", type=int, default=64, help="per translation, as verify (%(default)s)")
    p.add_argument("--verify-report", type=Path, help="verify's report folder (<checkpoint>-verify)")
    p.add_argument("--output", type=Path, help="the report folder (<package>-board beside the package)")
    p.add_argument("--ssh-config", type=Path, help="an ssh config file (ssh -F)")
    p.add_argument("--load-timeout", type=float, default=600, help="seconds for axllm to load (%(default)s)")
    p.add_argument("--request-timeout", type=float, default=300, help="seconds per request (%(default)s)")
    p.add_argument("--keep-serving", action="store_true", help="leave axllm serving and say how to reach it")
    p.add_argument(
        "--stop-timeout",
        type=float,
        default=server.STOP_WAIT_S,
        help="seconds axllm gets to exit on SIGINT before SIGTERM, which may leak its CMM (%(default)s)",
    )
    p.add_argument(
        "--python-demo",
        action="store_true",
        help="also copy what only Axera's Python demo reads (the float32 embedding .npy)",
    )
    args = p.parse_args(argv)
    if args.sentences < 0 or args.max_new_tokens < 1:
        p.error("--sentences must be 0 or more and --max-new-tokens positive")
    if not 1 <= args.port <= 65535:
        p.error(f"--port {args.port} is not a TCP port (1-65535)")
    if args.remote_dir is not None and "%" in args.remote_dir:
        p.error(
            f"--remote-dir {args.remote_dir!r} holds a %: axllm expands the layer file's path with sprintf"
        )
    return args


say = sayer(PROG)


@dataclass
class Package:
    folder: Path
    config: dict[str, Any]
    record: dict[str, Any]

    @property
    def profile(self) -> dict[str, Any]:
        return (self.record.get("inputs") or {}).get("profile") or {}

    @property
    def axmodel_mib(self) -> float:
        return sum(p.stat().st_size for p in self.folder.glob("*.axmodel")) / 2**20


def load_package(folder: Path) -> Package:
    if not folder.is_dir():
        raise UserError(f"package {folder} does not exist; build it first (make build-ax650)")
    found = package_check.check(folder, python_demo=False, ids=False)  # measured before any request
    if not found.ok:
        raise UserError(f"{folder} would not load on the board, so nothing is copied: {found.problems[0]}")
    for warning in found.warnings:
        say(f"WARNING: {warning}")
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    return Package(folder, config, manifest.read(folder) or {})


def load_rows(path: Path, limit: int) -> list[dict]:
    try:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        raise UserError(f"eval set {path} cannot be read: {exc}") from None
    bad = [i for i, r in enumerate(rows, 1) if not {"src", "tgt", "source"} <= r.keys()]
    if bad or not rows:
        raise UserError(
            f"eval set {path}: row {bad[0] if bad else 1} is not a translation row (src, tgt, source)"
        )
    return rows[:limit] if limit else rows


def gptq_python() -> str:
    python = os.environ.get("GPTQ_ENV_PYTHON")
    if not python:
        raise UserError(
            "the board step needs the GPTQ environment; run it through `nox -s board` or `make board`"
        )
    return python


def template_agreement(package: Package, rows_file: Path, limit: int) -> dict:
    """Before any request: does the board give the model verify's token ids, row by row? axllm's
    template encoded as tokenizer.axera encodes it with the package's own tokenizer.txt."""
    hf = package_check.hf_subfolder(package.folder)
    if hf is None or not has_tokenizer(hf):
        return {"checked": False, "why": "the package has no Hugging Face subfolder with a tokenizer"}
    name = package.config["tokenizer_type"]
    path = package.folder / package.config["url_tokenizer_model"]
    found = id_check.measure_file(hf, name, path, gptq_python(), rows_file=rows_file, limit=limit)
    if found is None:
        return {"checked": False, "why": f"axllm's {name} format is not reproduced here"}
    if found.agree < found.rows:
        differ = found.rows - found.agree
        say(
            f"WARNING: {differ} of {found.rows} rows reach the model as ids other than verify's: "
            f"{found.first}"
        )
    else:
        say(f"the board gives the model verify's token ids on all {found.rows} rows ({name} template)")
    return {"checked": True, "level": "ids", **found.record()}


@dataclass
class Verified:
    """verify's translations of the rows, made with this package's checkpoint on its chip's numerics."""

    rows: list[dict] | None
    variant: str  # the translations.jsonl key: "emulated <profiles>", or "gptq" (not emulated)
    folder: Path | None
    why: str = ""  # why none fits, or what the chosen one lacks


def profile_numerics(profile: dict, bits: int | None) -> dict[str, str | None]:
    """What verify --emulate computes a profile with (chip_numerics' defaults and weight rule)."""
    return {
        "hidden_state_type": profile.get("hidden_state_type") or "bf16",
        "post_weight_type": profile.get("post_weight_type") or DEFAULT_POST_WEIGHT_TYPE,
        "weight_type": held_weight_type(profile.get("weight_type"), bits),
    }


def emulation_for(record: dict, profile: dict) -> str | None:
    """The emulation in a verify report whose numerics are the profile's (each one it records)."""
    inputs = record.get("inputs") or {}
    wanted = profile_numerics(profile, inputs.get("bits"))
    for entry in inputs.get("emulate") or []:
        if all(entry[k] == v for k, v in wanted.items() if k in entry):
            return "emulated " + "+".join(entry.get("profiles") or [])
    return None


def verify_folders(package: Package, given: Path | None) -> list[Path]:
    if given is not None:
        return [given]
    source = (package.record.get("result") or {}).get("checkpoint") or ""
    if not source:
        return []
    checkpoint_dir = Path(source)
    found = [checkpoint_dir.with_name(checkpoint_dir.name + "-verify")]
    found += sorted(p for p in checkpoint_dir.parent.glob(f"{checkpoint_dir.name}-verify*") if p not in found)
    return found


def verify_translations(package: Package, given: Path | None, rows: list[dict]) -> Verified:
    """verify's report made with this package's checkpoint (so its bits), on its chip's numerics, with
    these rows; else the closest one, saying what it lacks, or none."""
    checkpoint_files = (package.record.get("inputs") or {}).get("checkpoint")
    profile = package.profile
    wanted = {(r["src"], r["tgt"], r["source"]) for r in rows}
    fallback: Verified | None = None
    reasons = []
    for folder in verify_folders(package, given):
        record = manifest.read(folder) or {}
        if not (folder / "translations.jsonl").is_file():
            continue
        quantized = (record.get("inputs") or {}).get("quantized")
        if checkpoint_files and quantized and quantized != checkpoint_files:
            reasons.append(f"{folder.name} measured another checkpoint")
            continue
        text = (folder / "translations.jsonl").read_text("utf-8")
        found = [json.loads(line) for line in text.splitlines() if line.strip()]
        if not wanted <= {(v["src"], v["tgt"], v["source"]) for v in found}:
            reasons.append(f"{folder.name} translated other rows")
            continue
        variant = emulation_for(record, profile)
        if variant is not None and variant in (found[0] if found else {}):
            return Verified(found, variant, folder)
        fallback = fallback or Verified(
            found,
            "gptq",
            folder,
            f"{folder.name} did not emulate {profile.get('name', 'this chip')}'s numerics "
            f"(make verify ARGS='--emulate {profile.get('name', 'ax650')}')",
        )
    if fallback is not None:
        return fallback
    why = "; ".join(reasons) or "no verify report with translations (make verify, with --emulate)"
    return Verified(None, "", None, why)


def align(rows: list[dict], verified: list[dict] | None, variant: str) -> list[str | None] | None:
    if not verified:
        return None
    by_source = {(v["src"], v["tgt"], v["source"]): v.get(variant) for v in verified}
    return [by_source.get((r["src"], r["tgt"], r["source"])) for r in rows]


def comparable(package: Package, log: axllm_log.Log) -> tuple[bool, str]:
    """Greedy on the board as in verify? An enabled repetition penalty applies even to greedy requests."""
    path = package.folder / package.config.get("post_config_path", "post_config.json")
    post = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    if post.get("enable_repetition_penalty"):
        return (
            False,
            "post_config.json enables a repetition penalty, which axllm applies even to greedy requests",
        )
    samples = any(
        post.get(k) for k in ("enable_temperature", "enable_top_p_sampling", "enable_top_k_sampling")
    )
    if samples and not log.request_override:
        return (
            False,
            "post_config.json samples, and this axllm build does not log per-request (greedy) overrides",
        )
    return True, "greedy: the requests name neither temperature nor top_p"


def prompt_lengths(package: Package, rows: list[dict], max_new_tokens: int) -> list[int]:
    """Each row's prompt as the board encodes it; a row longer than the package prefills is refused
    before anything is copied (axllm would answer it with its context-limit text)."""
    path = package.folder / package.config["url_tokenizer_model"]
    board = axllm_tokenizer.read(path)
    name = package.config["tokenizer_type"]
    lengths = [len(axllm_prompts.encode_chat(board, name, question_messages(row))) for row in rows]
    limit = int(package.config.get("prefill_max_token_num") or 0)
    over = [(i, n) for i, n in enumerate(lengths, 1) if limit and n > limit]
    if over:
        row, tokens = over[0]
        raise UserError(
            f"row {row} of the eval set is {tokens} tokens on the board, longer than the {limit} the "
            f"package prefills (prefill_max_token_num; {len(over)} such rows): shorten those rows or "
            "build with a longer prefill"
        )
    context = int(package.config.get("max_token_len") or 0)
    cut = sum(1 for n in lengths if context and n + max_new_tokens > context)
    if cut:
        say(f"WARNING: {cut} rows cannot get {max_new_tokens} new tokens within the {context}-token context")
    return lengths


def measure(server_: server.Server, package: Package, rows: list[dict], args: Namespace) -> list[dict]:
    model = client.model_id(server_.url) or package.config["model_name"]
    replies = []
    for number, row in enumerate(rows, 1):
        messages = question_messages(row)
        reply = client.chat(server_.url, model, messages, args.max_new_tokens, args.request_timeout)
        error = reply.axllm_error()
        if error is not None:
            raise UserError(
                f"axllm answered row {number} with its error text, not a translation: {error!r} "
                f"(log: {server_.run_dir}/{server.LOG})"
            )
        replies.append(
            {
                "text": reply.text.strip(),
                "first_chunk_s": reply.first_chunk_s,
                "stream_ttft_s": reply.stream_ttft_s,
                "decode_s": reply.decode_s,
                "usage": reply.usage,
            }
        )
        if number % 8 == 0 or number == len(rows):
            say(f"translated {number}/{len(rows)} on the board")
    return replies


def axllm_identity(host: Host) -> str:
    """`axllm version` where the build answers it; else the binary's path and sha256 (axllm has no
    --version: with one argument it prints its usage)."""
    done = host.run("axllm version 2>/dev/null | head -n 3", check=False)
    answer = done.stdout.strip()
    if done.returncode == 0 and answer and not answer.lower().startswith("usage"):
        return answer.splitlines()[0]
    where = host.run("command -v axllm", check=False).stdout.strip()
    digest = host.run(f"sha256sum {quote(where)} 2>/dev/null", check=False).stdout.split()
    sha = digest[0] if digest else "unreadable"
    return f"{where} (sha256 {sha}; this axllm has no version command)"


def connect(args: Namespace) -> Host:
    if args.host == "local":
        return LocalHost()
    host = SshHost(args.host, args.ssh_config)
    try:
        host.run("true", timeout=60)
    except BaseException:
        host.close()
        raise
    return host


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    package = load_package(args.package.resolve())
    rows = load_rows(args.eval_set, args.sentences)
    prompt_lengths(package, rows, args.max_new_tokens)
    output = (args.output or package.folder.with_name(package.folder.name + "-board")).resolve()
    atomic.check_destination(output)
    host = connect(args)
    running: server.Server | None = None
    run_dir = ""
    try:
        if host.run("command -v axllm", check=False).returncode != 0:
            raise UserError(f"no axllm on {host.name}'s PATH: {INSTALL}")
        version = axllm_identity(host)
        template = template_agreement(package, args.eval_set, args.sentences)
        if host.local:
            if "%" in str(package.folder):
                raise UserError(
                    f"{package.folder} holds a %: axllm expands the layer file's path with sprintf; move it"
                )
            model_dir, copied = str(package.folder), deploy.Deployed(str(package.folder), [], 0, "none")
            run_dir = tempfile.mkdtemp(prefix=".axllm-run-", dir=output.parent)
        else:
            name = package.folder.parent.name
            copied = deploy.deploy(
                host,
                package.folder,
                args.remote_dir or f"~/axera-pipeline/{name}/{package.folder.name}",
                say,
                python_demo=args.python_demo,
            )
            model_dir = run_dir = copied.folder
        started = time.monotonic()
        running = server.start(host, model_dir, run_dir, args.port, say, args.stop_timeout)
        load_s = server.wait_until_loaded(running, args.load_timeout, package.axmodel_mib)
        say(f"loaded in {load_s:.1f} s; measuring {len(rows)} translations")
        replies = measure(running, package, rows, args)
        log_text = running.log_text()
        log = axllm_log.parse(log_text)
        measured_s = time.monotonic() - started
        if args.keep_serving:
            keep(running, host)
        else:
            stopped = running.stop()
            if stopped.how == "not stopped":
                raise UserError(f"axllm on {host.name} {stopped.warning}: stop it there")
            if stopped.warning:
                say(f"WARNING: axllm {stopped.warning}")
        running = None
    except BaseException:
        if running is not None and not args.keep_serving:
            say(f"stopping axllm on {host.name} (SIGINT)")
            stopped = running.stop()
            if stopped.warning:
                say(f"WARNING: axllm {stopped.warning}")
        raise
    finally:
        host.close()
        if host.local and run_dir and not args.keep_serving:
            shutil.rmtree(run_dir, ignore_errors=True)
    verified = verify_translations(package, args.verify_report, rows)
    if verified.why:
        say(f"WARNING: the board is compared with no emulation of its numerics: {verified.why}")
    emulated = align(rows, verified.rows, verified.variant)
    exact, why = comparable(package, log)
    request = {
        "hf_folder": str(package_check.hf_subfolder(package.folder) or ""),
        "name": package.config["tokenizer_type"],
        "tokenizer_txt": str(package.folder / package.config["url_tokenizer_model"]),
        "rows": rows,
        "board": [r["text"] for r in replies],
        "emulated": emulated,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as handle:
        json.dump(request, handle, ensure_ascii=False)
    try:
        scores = run_json(gptq_python(), "translation_scores", handle.name)
    finally:
        Path(handle.name).unlink(missing_ok=True)
    figures = report.figures(
        host=host.name,
        version=version,
        package=package,
        rows=rows,
        replies=replies,
        log=log,
        load_s=load_s,
        scores=scores,
        template=template,
        emulation={
            "variant": verified.variant,
            "report": str(verified.folder) if verified.folder else None,
            "comparable": exact and verified.variant.startswith("emulated"),
            "why": why if not verified.why else verified.why,
        },
        deployed=copied,
        seconds=measured_s,
    )
    report.write(output, figures, rows, replies, emulated, log_text)
    say(f"report: {output}/board.md")
    return 0


def keep(running: server.Server, host: Host) -> None:
    if running.tunnel is not None:
        running.tunnel.close()
    port = running.port
    why = "SIGINT: axllm gives its CMM back only then; SIGTERM or SIGKILL leave it held, ax-llm #60"
    if host.local:
        say(
            f"axllm keeps serving here (pid {running.pid}) at http://127.0.0.1:{port}; "
            f"stop it with `{running.stop_command()}` ({why})"
        )
        return
    say(
        f"axllm keeps serving on {host.name} (pid {running.pid}): reach it with "
        f"`ssh -N -L {port}:127.0.0.1:{port} {host.name}` and http://127.0.0.1:{port}; "
        f"stop it with `ssh {host.name} {running.stop_command()}` ({why}); the next `make board` "
        "stops it too"
    )


if __name__ == "__main__":
    run(main, PROG)
