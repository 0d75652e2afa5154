"""Where pulsar2 runs: a local install (PULSAR2_BIN), an unpacked package (PULSAR2_PACKAGE) or Docker.

Each backend module turns the environment into a `Toolchain`; `resolve` picks one in that order and asks
it what it is (version, commit, which LLM build commands its help lists). Standard library only: the
host's doctor reads the same facts from nox's own interpreter.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from axera_pipeline.common import locks
from axera_pipeline.common.basics import first_line, sayer
from axera_pipeline.common.cli import UserError

COMMANDS = ("llm_build", "llm_build2")
IN_CONTAINER_INPUT = "/data/input"
IN_CONTAINER_OUTPUT = "/data/output"
HOW_TO_GET = (
    "set PULSAR2_BIN to a local pulsar2, PULSAR2_PACKAGE to Axera's package (.tar.gz or folder), "
    "or use Docker with PULSAR2_IMAGE / PULSAR2_IMAGE_TAR"
)


class NotPrepared(UserError):
    """The toolchain is there but needs preparing first (an image to load, a package to unpack)."""


@dataclass
class Toolchain:
    kind: str  # "local", "archive" (PULSAR2_PACKAGE) or "docker"
    program: str  # the pulsar2 executable, or the docker CLI
    where: str = ""  # what the user named: the binary, the package, or the image
    image: str = ""
    image_id: str = ""
    version: str = ""
    commit: str = ""
    commands: tuple[str, ...] = ()
    licences: tuple[Path, ...] = ()
    notes: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, object]:
        info: dict[str, object] = {
            "kind": self.kind,
            "program": self.program,
            "version": self.version,
            "commit": self.commit,
            "commands": list(self.commands),
        }
        if self.kind == "archive":
            info["archive"] = self.where
        if self.kind == "docker":
            info |= {
                "image": self.image,
                "image_id": self.image_id,
                "licences": [p.name for p in self.licences],
            }
        return info

    def command(
        self, pulsar2_args: list[str], env: Mapping[str, str], mounts: tuple[Path, Path], name: str = ""
    ) -> list[str]:
        """The full command line that runs `pulsar2 <args>` on this backend."""
        if self.kind != "docker":
            return [self.program, *pulsar2_args]
        from axera_pipeline.toolchain.backends import docker

        return docker.run_command(self, pulsar2_args, env, mounts, name)


def parse_version(text: str) -> tuple[str, str]:
    version = re.search(r"^\s*version:\s*(\S+)", text, re.MULTILINE)
    commit = re.search(r"^\s*commit:\s*(\S+)", text, re.MULTILINE)
    return (version.group(1) if version else "", commit.group(1) if commit else "")


def parse_commands(help_text: str) -> tuple[str, ...]:
    """The LLM build commands an argparse help listing names (`{version,build,llm_build,...}`)."""
    listed: set[str] = set()
    for group in re.findall(r"\{([\w,\- ]+)\}", help_text):
        listed.update(part.strip() for part in group.split(","))
    return tuple(c for c in COMMANDS if c in listed)


def run_quiet(cmd: list[str], timeout: int = 600) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except OSError as exc:
        raise UserError(f"cannot run {cmd[0]}: {exc.strerror}") from None
    except subprocess.TimeoutExpired:
        raise UserError(f"`{' '.join(cmd[:3])}` did not answer within {timeout} s") from None


QUERY_SEPARATOR = "----8<----"


def identify(chain: Toolchain, version_and_help: str) -> Toolchain:
    """Fill in version, commit and commands from `pulsar2 version` and `pulsar2 -h` output."""
    version_text, _, help_text = version_and_help.partition(QUERY_SEPARATOR)
    chain.version, chain.commit = parse_version(version_text)
    if not chain.version:
        raise UserError(f"`pulsar2 version` printed no version line: {first_line(version_text)}")
    chain.commands = parse_commands(help_text)
    if not chain.commands:
        raise UserError(
            f"pulsar2 {chain.version} lists neither llm_build nor llm_build2 in `pulsar2 -h`; "
            "is it an LLM-capable toolchain (3.x or newer)?"
        )
    return chain


def choose(available: tuple[str, ...], requested: str = "") -> str:
    """The command a build uses: PULSAR2_COMMAND if given, else llm_build where it exists, else llm_build2."""
    requested = requested.strip()
    if requested:
        if requested not in COMMANDS:
            raise UserError(f"PULSAR2_COMMAND={requested} is not one of {', '.join(COMMANDS)}")
        if requested not in available:
            raise UserError(
                f"PULSAR2_COMMAND={requested}, but this pulsar2 only has "
                f"{', '.join(available) or 'no LLM build command'}"
            )
        return requested
    for command in COMMANDS:
        if command in available:
            return command
    raise UserError(
        "this pulsar2 lists neither llm_build nor llm_build2 in its help; is it an LLM toolchain?"
    )


say = sayer("toolchain")


def _find(environ: Mapping[str, str], *, prepare: bool) -> Toolchain:
    from axera_pipeline.toolchain.backends import archive, docker

    if environ.get("PULSAR2_PACKAGE"):
        return archive.find(environ["PULSAR2_PACKAGE"], prepare=prepare)
    return docker.find(environ, prepare=prepare)


def resolve(environ: Mapping[str, str] = os.environ, *, prepare: bool = True) -> Toolchain:
    """PULSAR2_BIN, else PULSAR2_PACKAGE, else Docker; identified by asking the toolchain itself.

    prepare=False (doctor) never loads an image or unpacks a package: it reports what would happen.
    """
    from axera_pipeline.toolchain.backends import archive, docker, local

    if environ.get("PULSAR2_BIN"):
        chain = local.find(environ["PULSAR2_BIN"])
    elif not prepare:
        chain = _find(environ, prepare=False)
    else:
        # Two builds at once (make -j2) must not load the same image or unpack the same package twice.
        with locks.exclusive(archive.cache_root() / "pulsar2-toolchain", "preparing pulsar2", say=say):
            chain = _find(environ, prepare=True)
    if chain.kind == "docker":
        output = docker.query(chain)
    else:
        output = local.query(chain)
    return identify(chain, output)
