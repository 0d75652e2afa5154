"""A pulsar2 installed on this machine (PULSAR2_BIN): run directly, with its own interpreter."""

from __future__ import annotations

import os
import shutil

from axera_pipeline.common.basics import first_line
from axera_pipeline.common.cli import UserError
from axera_pipeline.toolchain.backends import QUERY_SEPARATOR, Toolchain, run_quiet


def check_executable(path: str, what: str) -> str:
    resolved = shutil.which(path) if os.sep not in path else path
    if not resolved or not os.path.isfile(resolved):
        raise UserError(f"{what}={path} does not exist; point it at the toolchain's bin/pulsar2")
    if not os.access(resolved, os.X_OK):
        raise UserError(f"{what}={path} is not executable (chmod +x it, or unset {what} for Docker)")
    return resolved


def find(path: str) -> Toolchain:
    return Toolchain("local", check_executable(path, "PULSAR2_BIN"), where=path)


def query(chain: Toolchain) -> str:
    """`pulsar2 version` and `pulsar2 -h`, joined as the Docker backend's single run prints them."""
    version = run_quiet([chain.program, "version"], timeout=120)
    if version.returncode != 0:
        raise UserError(f"`pulsar2 version` failed: {first_line(version.stderr + version.stdout)}")
    listing = run_quiet([chain.program, "-h"], timeout=120)
    return f"{version.stdout}\n{QUERY_SEPARATOR}\n{listing.stdout}{listing.stderr}"
