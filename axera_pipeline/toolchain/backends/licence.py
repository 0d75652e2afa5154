"""The Sentinel licence pulsar2 7.x images need (PULSAR2_LICENSE: a .v2c file or a folder of them)."""

from __future__ import annotations

from pathlib import Path

from axera_pipeline.common.cli import UserError

# Where the toolchain's Sentinel runtime looks for installed licences (vendor code 32434).
IN_CONTAINER_DIR = "/root/.hasplm/installed/32434"
MISSING_MARKER = "Sentinel key not found (H0007)"


def files(spec: str) -> tuple[Path, ...]:
    """The .v2c files PULSAR2_LICENSE names; an empty spec means none."""
    if not spec.strip():
        return ()
    path = Path(spec).expanduser()
    if path.is_file():
        if path.suffix != ".v2c":
            raise UserError(f"PULSAR2_LICENSE={spec} is not a .v2c licence file")
        return (path.resolve(),)
    if path.is_dir():
        found = tuple(sorted(p.resolve() for p in path.glob("*.v2c")))
        if not found:
            raise UserError(f"PULSAR2_LICENSE={spec} is a folder without .v2c files")
        return found
    raise UserError(f"PULSAR2_LICENSE={spec} does not exist; point it at your .v2c file or its folder")


def mounts(licences: tuple[Path, ...]) -> list[str]:
    """One read-only bind mount per licence file: nothing else of the folder enters the container."""
    args: list[str] = []
    for path in licences:
        args += ["-v", f"{path}:{IN_CONTAINER_DIR}/{path.name}:ro"]
    return args


def needs_licence(version: str) -> bool:
    major = version.split(".", 1)[0]
    return major.isdigit() and int(major) >= 7
