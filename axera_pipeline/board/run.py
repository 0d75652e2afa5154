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
from axera_pipeline.board.remote import Host, LocalHost, SshHost
from axera_pipeline.common import atomic, manifest
from axera_pipeline.common.basics import sayer
from axera_pipeline.common.checkpoint import has_tokenizer
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
    args = p.parse_args(argv)
    if args.sentences < 0 or args.max_new_tokens < 1:
        p.error("--sentences must be 0 or more and --max-new-tokens positive")
    if not 1 <= args.port <= 65535:
        p.error(f"--port {args.port} is not a TCP port (1-65535)")
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


def verify_translations(package: Package, given: Path | None) -> tuple[list[dict] | None, str, Path | None]:
    """verify's translations.jsonl, and the variant that ran this package's numerics."""
    folder = given
    if folder is None:
        source = (package.record.get("result") or {}).get("checkpoint") or ""
        candidates = [Path(source + "-verify")] if source else []
        candidates.append(package.folder.parent / "gptq-int4-verify")
        folder = next((c for c in candidates if (c / "translations.jsonl").is_file()), None)
    if folder is None or not (folder / "translations.jsonl").is_file():
        return None, "", folder
    rows = [json.loads(ln) for ln in (folder / "translations.jsonl").read_text("utf-8").splitlines() if ln]
    profile = package.profile.get("name", "")
    keys = [k for k in (rows[0] if rows else {}) if k.startswith("emulated ")]
    chosen = next((k for k in keys if profile in k.removeprefix("emulated ").split("+")), "gptq")
    return rows, chosen, folder


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


def measure(server_: server.Server, package: Package, rows: list[dict], args: Namespace) -> list[dict]:
    model = client.model_id(server_.url) or package.config["model_name"]
    replies = []
    for number, row in enumerate(rows, 1):
        messages = question_messages(row)
        reply = client.chat(server_.url, model, messages, args.max_new_tokens, args.request_timeout)
        replies.append({"text": reply.text.strip(), "ttft_s": reply.ttft_s, "decode_s": reply.decode_s})
        if number % 8 == 0 or number == len(rows):
            say(f"translated {number}/{len(rows)} on the board")
    return replies


def axllm_version(host: Host) -> str:
    done = host.run("axllm --version 2>/dev/null | head -n 1", check=False)
    return done.stdout.strip() or "unknown (axllm --version printed nothing)"


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
    output = (args.output or package.folder.with_name(package.folder.name + "-board")).resolve()
    atomic.check_destination(output)
    host = connect(args)
    running: server.Server | None = None
    run_dir = ""
    try:
        if host.run("command -v axllm", check=False).returncode != 0:
            raise UserError(f"no axllm on {host.name}'s PATH: {INSTALL}")
        version = axllm_version(host)
        template = template_agreement(package, args.eval_set, args.sentences)
        if host.local:
            model_dir, copied = str(package.folder), deploy.Deployed(str(package.folder), [], 0, "none")
            run_dir = tempfile.mkdtemp(prefix=".axllm-run-", dir=output.parent)
        else:
            name = package.folder.parent.name
            copied = deploy.deploy(
                host, package.folder, args.remote_dir or f"~/axera-pipeline/{name}/{package.folder.name}", say
            )
            model_dir = run_dir = copied.folder
        started = time.monotonic()
        running = server.start(host, model_dir, run_dir, args.port, say)
        load_s = server.wait_until_loaded(running, args.load_timeout, package.axmodel_mib)
        say(f"loaded in {load_s:.1f} s; measuring {len(rows)} translations")
        replies = measure(running, package, rows, args)
        log_text = running.log_text()
        log = axllm_log.parse(log_text)
        measured_s = time.monotonic() - started
        if args.keep_serving:
            keep(running, host)
        elif not running.stop():
            raise UserError(
                f"axllm (pid {running.pid}) on {host.name} did not stop within {server.STOP_WAIT_S} s of "
                f"SIGTERM: it may still hold the CMM; stop it there (kill {running.pid})"
            )
        running = None
    except BaseException:
        if running is not None and not args.keep_serving:
            running.stop()
        raise
    finally:
        host.close()
        if host.local and run_dir and not args.keep_serving:
            shutil.rmtree(run_dir, ignore_errors=True)
    verified, variant, verify_folder = verify_translations(package, args.verify_report)
    emulated = align(rows, verified, variant)
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
            "variant": variant,
            "report": str(verify_folder) if verify_folder else None,
            "comparable": exact,
            "why": why,
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
    if host.local:
        say(
            f"axllm keeps serving here (pid {running.pid}) at http://127.0.0.1:{port}; "
            f"stop it: kill {running.pid}"
        )
        return
    say(
        f"axllm keeps serving on {host.name} (pid {running.pid}): reach it with "
        f"`ssh -N -L {port}:127.0.0.1:{port} {host.name}` and http://127.0.0.1:{port}; "
        f"stop it with `ssh {host.name} kill {running.pid}`"
    )


if __name__ == "__main__":
    run(main, PROG)
