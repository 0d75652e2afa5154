"""Axera's package form (PULSAR2_PACKAGE): a folder holding bin/pulsar2, or an archive of one.

An archive is unpacked once into .nox/, atomically and keyed by its sha256, and reused afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from axera_pipeline.common.cli import UserError
from axera_pipeline.common.paths import REPO
from axera_pipeline.toolchain.backends import NotPrepared, Toolchain
from axera_pipeline.toolchain.backends.local import check_executable

ARCHIVES = (".tar.gz", ".tgz", ".tar")


def cache_root() -> Path:
    return Path(os.environ.get("PULSAR2_CACHE") or REPO / ".nox")


def find_binary(folder: Path) -> Path | None:
    """bin/pulsar2 in the folder or one level down (archives usually hold one top folder)."""
    for candidate in (folder / "bin" / "pulsar2", *sorted(folder.glob("*/bin/pulsar2"))):
        if candidate.is_file():
            return candidate
    return None


def archive_hash(archive: Path) -> str:
    """sha256 of the archive, remembered by path, size and mtime so a multi-GB file is read once."""
    index_file = cache_root() / "pulsar2-archives.json"
    stat = archive.stat()
    key = f"{archive.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    try:
        index = json.loads(index_file.read_text())
    except (OSError, ValueError):
        index = {}
    if key not in index:
        h = hashlib.sha256()
        with open(archive, "rb") as handle:
            while block := handle.read(1 << 22):
                h.update(block)
        index[key] = h.hexdigest()
        index_file.parent.mkdir(parents=True, exist_ok=True)
        partial = index_file.with_name(f".{index_file.name}.{os.getpid()}")
        partial.write_text(json.dumps(index, indent=1))
        partial.replace(index_file)
    return index[key]


def unpack(archive: Path, target: Path) -> None:
    print(f"[toolchain] unpacking {archive} into {target} (once)", flush=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(stage, filter="tar")
        stage.rename(target)
    except (OSError, tarfile.TarError) as exc:
        raise UserError(f"PULSAR2_PACKAGE={archive} cannot be unpacked: {exc}") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def find(spec: str, *, prepare: bool = True) -> Toolchain:
    path = Path(spec).expanduser()
    if path.is_dir():
        binary = find_binary(path)
        if binary is None:
            raise UserError(f"PULSAR2_PACKAGE={spec} holds no bin/pulsar2; point it at the unpacked package")
        return Toolchain("archive", check_executable(str(binary), "PULSAR2_PACKAGE"), where=spec)
    if not path.is_file():
        raise UserError(f"PULSAR2_PACKAGE={spec} does not exist")
    if not path.name.endswith(ARCHIVES):
        raise UserError(f"PULSAR2_PACKAGE={spec} is neither a folder nor a .tar.gz archive")
    target = cache_root() / f"pulsar2-archive-{archive_hash(path)[:16]}"
    if not target.is_dir():
        if not prepare:
            raise NotPrepared(f"{spec} is not unpacked yet; `nox -s toolchain` or the first build unpacks it")
        target.parent.mkdir(parents=True, exist_ok=True)
        unpack(path, target)
    binary = find_binary(target)
    if binary is None:
        raise UserError(f"PULSAR2_PACKAGE={spec} holds no bin/pulsar2 (looked in {target})")
    return Toolchain("archive", check_executable(str(binary), "PULSAR2_PACKAGE"), where=spec)
