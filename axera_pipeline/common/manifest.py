"""Manifests: what went into an output, so an identical re-run can be skipped and results traced."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import resource
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from axera_pipeline.common.atomic import write_text

MANIFEST = "manifest.json"


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            h.update(block)
    return h.hexdigest()


def hash_files(files: Iterable[Path], base: Path) -> dict[str, str]:
    return {str(p.relative_to(base)): sha256_file(p) for p in sorted(files)}


def package_versions(names: Iterable[str]) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def read(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write(folder: Path, manifest: dict[str, Any]) -> None:
    write_text(folder / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")


def is_up_to_date(folder: Path, inputs: dict[str, Any]) -> bool:
    """True when `folder` holds a complete result made from exactly these inputs."""
    existing = read(folder)
    return existing is not None and existing.get("inputs") == inputs


def peak_rss_mib() -> float:
    """Peak resident memory of this process and its finished children (Linux reports KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024
    return max(own, kids) * scale / 2**20
