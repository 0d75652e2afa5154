"""`nox -s toolchain`: prepare the pulsar2 environment a build will use and say what it is, one line each.

The same facts feed `nox -s doctor` (which never prepares anything) and the fail-fast check that
`make all` runs before quantizing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from axera_pipeline.common.cli import Parser, UserError, run
from axera_pipeline.toolchain import backends
from axera_pipeline.toolchain.backends import NotPrepared, Toolchain, licence

PROG = "toolchain"

Fact = tuple[str, str, str]  # status ("ok", "warn" or "missing"), what, detail


def backend_line(chain: Toolchain) -> str:
    if chain.kind == "docker":
        return f"docker, image {chain.image} ({chain.image_id[:19]})"
    if chain.kind == "archive":
        return f"archive (PULSAR2_PACKAGE) {chain.where} -> {chain.program}"
    return f"local {chain.program}"


def commands_line(chain: Toolchain, requested: str) -> Fact:
    try:
        used = backends.choose(chain.commands, requested)
    except UserError as exc:
        return ("missing", "build command", str(exc))
    how = "PULSAR2_COMMAND" if requested.strip() else "the newest-compatible default"
    return ("ok", "build command", f"{', '.join(chain.commands)} listed; builds use {used} ({how})")


def licence_line(chain: Toolchain) -> Fact:
    needed = licence.needs_licence(chain.version)
    if chain.kind == "docker":
        if chain.licences:
            names = ", ".join(p.name for p in chain.licences)
            return ("ok", "licence", f"{names} mounted read-only at {licence.IN_CONTAINER_DIR}/")
        if needed:
            return (
                "missing",
                "licence",
                f"pulsar2 {chain.version} needs a Sentinel licence: set PULSAR2_LICENSE=/path/to/licence.v2c",
            )
        return ("ok", "licence", f"none needed by pulsar2 {chain.version}")
    if not needed:
        return ("ok", "licence", f"none needed by pulsar2 {chain.version}")
    installed = sorted(Path(licence.IN_CONTAINER_DIR).glob("*.v2c"))
    if installed:
        return (
            "ok",
            "licence",
            f"{len(installed)} .v2c file(s) in {licence.IN_CONTAINER_DIR}/ on this machine",
        )
    return (
        "warn",
        "licence",
        f"pulsar2 {chain.version} reads its licence from {licence.IN_CONTAINER_DIR}/ on this machine, "
        "which holds no .v2c file (PULSAR2_LICENSE is mounted for Docker runs only)",
    )


def facts(environ: Mapping[str, str] = os.environ, *, prepare: bool = True) -> list[Fact]:
    try:
        chain = backends.resolve(environ, prepare=prepare)
    except NotPrepared as exc:
        return [("warn", "pulsar2", str(exc))]
    except UserError as exc:
        return [("missing", "pulsar2", str(exc))]
    return [
        ("ok", "pulsar2", backend_line(chain)),
        ("ok", "pulsar2 version", f"{chain.version} (commit {chain.commit or 'unknown'})"),
        commands_line(chain, environ.get("PULSAR2_COMMAND", "")),
        licence_line(chain),
    ]


def line(fact: Fact) -> str:
    status, what, detail = fact
    return f"{status:<8}{what:<22}{detail}"


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="toolchain", description=__doc__.splitlines()[0])
    p.add_argument(
        "--before",
        metavar="STEP",
        help="fail-fast mode: say that STEP (e.g. quantizing) is not started when the toolchain is missing",
    )
    args = p.parse_args(argv)
    found = facts()
    for fact in found:
        print(line(fact), flush=True)
    missing = [what for status, what, _ in found if status == "missing"]
    if missing:
        first = next(detail for status, _, detail in found if status == "missing")
        stop = f"; not {args.before}" if args.before else ""
        raise UserError(f"the pulsar2 toolchain is not usable ({first}){stop}")
    return 0


if __name__ == "__main__":
    run(main, PROG)
