"""Axera's Docker image (PULSAR2_IMAGE, loaded from PULSAR2_IMAGE_TAR when missing; DOCKER names the CLI).

A run gets the input read-only, the output read-write, the licence files read-only, no network and
a name, so an interrupted build can stop its container.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from collections.abc import Mapping
from pathlib import Path

from axera_pipeline.common.basics import first_line
from axera_pipeline.common.cli import UserError
from axera_pipeline.toolchain.backends import (
    HOW_TO_GET,
    IN_CONTAINER_INPUT,
    IN_CONTAINER_OUTPUT,
    QUERY_SEPARATOR,
    NotPrepared,
    Toolchain,
    licence,
    run_quiet,
)

DEFAULT_IMAGE = "pulsar2:5.1"


def _inspect(program: str, image: str):
    return run_quiet([program, "image", "inspect", "--format", "{{.Id}}", image])


def find(environ: Mapping[str, str], *, prepare: bool = True) -> Toolchain:
    cli = environ.get("DOCKER") or "docker"
    image = environ.get("PULSAR2_IMAGE") or DEFAULT_IMAGE
    archive = environ.get("PULSAR2_IMAGE_TAR", "")
    licences = licence.files(environ.get("PULSAR2_LICENSE", ""))
    program = shutil.which(cli)
    if not program:
        raise UserError(f"no pulsar2 toolchain: Docker CLI `{cli}` not found; {HOW_TO_GET}")
    found = _inspect(program, image)
    if found.returncode != 0 and "No such image" not in found.stderr + found.stdout:
        raise UserError(f"Docker is not usable: {first_line(found.stderr + found.stdout)}; or {HOW_TO_GET}")
    if found.returncode != 0:
        if not archive:
            raise UserError(
                f"Docker image {image} is not loaded; get Axera's ax_pulsar2_<version>.tar.gz and "
                "set PULSAR2_IMAGE_TAR to it (it is loaded for you), or `docker load -i` it yourself"
            )
        if not os.path.isfile(archive):
            raise UserError(f"PULSAR2_IMAGE_TAR={archive} does not exist")
        if not prepare:
            raise NotPrepared(
                f"{image} not loaded; {archive} is loaded by `nox -s toolchain` or the first build"
            )
        print(f"[toolchain] loading {archive} into Docker (once)", flush=True)
        loaded = run_quiet([program, "load", "-i", archive], timeout=3600)
        if loaded.returncode != 0:
            raise UserError(f"docker load -i {archive} failed: {first_line(loaded.stderr + loaded.stdout)}")
        found = _inspect(program, image)
        if found.returncode != 0:
            tags = re.findall(r"Loaded image: (\S+)", loaded.stdout)
            raise UserError(
                f"{archive} did not provide {image} (it has {', '.join(tags) or 'no tags'}); "
                "set PULSAR2_IMAGE to one of those"
            )
    return Toolchain(
        "docker", program, where=image, image=image, image_id=found.stdout.strip(), licences=licences
    )


def run_command(
    chain: Toolchain, pulsar2_args: list[str], env: Mapping[str, str], mounts: tuple[Path, Path], name: str
) -> list[str]:
    """`docker run` for one build: input read-only, output read-write, licences read-only, nothing else."""
    src, out = mounts
    script = shlex.join(["pulsar2", *pulsar2_args])
    # pulsar2 must run as root in its image; give the files back to the caller afterwards.
    script += f"; rc=$?; chown -R {os.getuid()}:{os.getgid()} {IN_CONTAINER_OUTPUT}; exit $rc"
    cmd = [chain.program, "run", "--rm"]
    if name:
        cmd += ["--name", name]
    cmd += ["--network", "none", "-v", f"{src}:{IN_CONTAINER_INPUT}:ro", "-v", f"{out}:{IN_CONTAINER_OUTPUT}"]
    cmd += [*licence.mounts(chain.licences), "-w", "/data"]
    for key, value in sorted(env.items()):
        cmd += ["-e", f"{key}={value}"]
    # Recent images have /bin/bash as entrypoint, older ones may not: say it explicitly.
    return [*cmd, "--entrypoint", "/bin/bash", chain.image, "-c", script]


def query(chain: Toolchain) -> str:
    """`pulsar2 version` and `pulsar2 -h` in one short-lived container."""
    script = f"pulsar2 version && echo '{QUERY_SEPARATOR}' && pulsar2 -h"
    done = run_quiet(
        [
            chain.program,
            "run",
            "--rm",
            "--network",
            "none",
            *licence.mounts(chain.licences),
            "--entrypoint",
            "/bin/bash",
            chain.image,
            "-c",
            script,
        ],
        timeout=300,
    )
    if done.returncode != 0 or QUERY_SEPARATOR not in done.stdout:
        raise UserError(f"`pulsar2 version` failed in {chain.image}: {first_line(done.stderr + done.stdout)}")
    return done.stdout


def stop(chain: Toolchain, name: str) -> None:
    """Stop (and so remove, it runs with --rm) a named build container; quiet if it is already gone."""
    try:
        run_quiet([chain.program, "stop", "--time", "5", name], timeout=60)
    except UserError:
        pass
