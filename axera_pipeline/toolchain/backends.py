"""Where pulsar2 runs: a local install (PULSAR2_BIN) or Axera's Docker image (the default).

The toolchain keeps its own interpreter; nothing here needs torch or gptqmodel, and pulsar2
never sees them.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from axera_pipeline.common.cli import UserError

DEFAULT_IMAGE = "pulsar2:5.1"
IN_CONTAINER_INPUT = "/data/input"
IN_CONTAINER_OUTPUT = "/data/output"
# `llm_build` with these flags exists up to 6.x; 7.x documents a different command (llm_build2).
NEWEST_SUPPORTED_MAJOR = 6


@dataclass
class Toolchain:
    kind: str  # "local" or "docker"
    program: str  # pulsar2 executable, or the docker CLI
    image: str = ""
    image_id: str = ""
    version: str = ""
    commit: str = ""
    notes: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, str]:
        info = {"kind": self.kind, "program": self.program, "version": self.version, "commit": self.commit}
        if self.kind == "docker":
            info |= {"image": self.image, "image_id": self.image_id}
        return info

    def command(self, pulsar2_args: list[str], env: dict[str, str], mounts: tuple[Path, Path]) -> list[str]:
        """The full command line; for Docker, input read-only, output read-write, nothing else."""
        if self.kind == "local":
            return [self.program, *pulsar2_args]
        src, out = mounts
        script = shlex.join(["pulsar2", *pulsar2_args])
        # pulsar2 must run as root in its image; give the files back to the caller afterwards.
        script += f"; rc=$?; chown -R {os.getuid()}:{os.getgid()} {IN_CONTAINER_OUTPUT}; exit $rc"
        cmd = [
            self.program,
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            f"{src}:{IN_CONTAINER_INPUT}:ro",
            "-v",
            f"{out}:{IN_CONTAINER_OUTPUT}",
            "-w",
            "/data",
        ]
        for key, value in sorted(env.items()):
            cmd += ["-e", f"{key}={value}"]
        return [*cmd, "--entrypoint", "/bin/bash", self.image, "-c", script]


def _run(cmd: list[str], timeout: int = 600) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except OSError as exc:
        raise UserError(f"cannot run {cmd[0]}: {exc.strerror}") from None
    except subprocess.TimeoutExpired:
        raise UserError(f"`{' '.join(cmd[:3])}` did not answer within {timeout} s") from None


def _first_line(text: str) -> str:
    return next((ln.strip() for ln in text.splitlines() if ln.strip()), "no output")


def local(path: str) -> Toolchain:
    resolved = shutil.which(path) if os.sep not in path else path
    if not resolved or not os.path.isfile(resolved):
        raise UserError(f"PULSAR2_BIN={path} does not exist; point it at the toolchain's bin/pulsar2")
    if not os.access(resolved, os.X_OK):
        raise UserError(
            f"PULSAR2_BIN={path} is not executable (chmod +x it, or unset PULSAR2_BIN for Docker)"
        )
    return Toolchain("local", resolved)


def docker(cli: str, image: str, archive: str) -> Toolchain:
    program = shutil.which(cli)
    if not program:
        raise UserError(
            f"Docker CLI `{cli}` not found; install Docker, set DOCKER=/path/to/docker, "
            "or set PULSAR2_BIN to a local pulsar2"
        )
    found = _run([program, "image", "inspect", "--format", "{{.Id}}", image])
    if found.returncode != 0 and "No such image" not in found.stderr + found.stdout:
        raise UserError(f"Docker is not usable: {_first_line(found.stderr + found.stdout)}")
    if found.returncode != 0:
        if not archive:
            raise UserError(
                f"Docker image {image} is not loaded; get Axera's ax_pulsar2_<version>.tar.gz and "
                "set PULSAR2_IMAGE_TAR to it (it is loaded for you), or `docker load -i` it yourself"
            )
        if not os.path.isfile(archive):
            raise UserError(f"PULSAR2_IMAGE_TAR={archive} does not exist")
        print(f"[build] loading {archive} into Docker (once)", flush=True)
        loaded = _run([program, "load", "-i", archive], timeout=3600)
        if loaded.returncode != 0:
            raise UserError(f"docker load -i {archive} failed: {_first_line(loaded.stderr + loaded.stdout)}")
        found = _run([program, "image", "inspect", "--format", "{{.Id}}", image])
        if found.returncode != 0:
            tags = re.findall(r"Loaded image: (\S+)", loaded.stdout)
            raise UserError(
                f"{archive} did not provide {image} (it has {', '.join(tags) or 'no tags'}); "
                "set PULSAR2_IMAGE to one of those"
            )
    return Toolchain("docker", program, image=image, image_id=found.stdout.strip())


def resolve(environ: dict[str, str] | os._Environ = os.environ) -> Toolchain:
    """PULSAR2_BIN if set, else Docker (DOCKER, PULSAR2_IMAGE, PULSAR2_IMAGE_TAR); with its version."""
    if environ.get("PULSAR2_BIN"):
        chain = local(environ["PULSAR2_BIN"])
    else:
        chain = docker(
            environ.get("DOCKER") or "docker",
            environ.get("PULSAR2_IMAGE") or DEFAULT_IMAGE,
            environ.get("PULSAR2_IMAGE_TAR", ""),
        )
    chain.version, chain.commit = query_version(chain)
    return chain


def parse_version(text: str) -> tuple[str, str]:
    version = re.search(r"^\s*version:\s*(\S+)", text, re.MULTILINE)
    commit = re.search(r"^\s*commit:\s*(\S+)", text, re.MULTILINE)
    return (version.group(1) if version else "", commit.group(1) if commit else "")


def check_supported(version: str) -> None:
    major = re.match(r"(\d+)", version)
    if major and int(major.group(1)) > NEWEST_SUPPORTED_MAJOR:
        raise UserError(
            f"pulsar2 {version} documents `llm_build2` instead of `llm_build`; this pipeline drives "
            f"pulsar2 3.x-{NEWEST_SUPPORTED_MAJOR}.x (tested with 5.1): use such an image or install"
        )


def query_version(chain: Toolchain) -> tuple[str, str]:
    if chain.kind == "local":
        done = _run([chain.program, "version"], timeout=120)
    else:
        done = _run(
            [
                chain.program,
                "run",
                "--rm",
                "--network",
                "none",
                "--entrypoint",
                "/bin/bash",
                chain.image,
                "-c",
                "pulsar2 version",
            ],
            timeout=300,
        )
    if done.returncode != 0:
        raise UserError(f"`pulsar2 version` failed: {_first_line(done.stderr + done.stdout)}")
    version, commit = parse_version(done.stdout)
    if not version:
        raise UserError(f"`pulsar2 version` printed no version line: {_first_line(done.stdout)}")
    check_supported(version)
    return version, commit
