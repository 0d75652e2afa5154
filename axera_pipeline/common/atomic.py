"""Write a folder next to its destination and swap it in only when complete."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from axera_pipeline.common import faults, locks
from axera_pipeline.common.cli import UserError

# How a full disk shows: OSError from Python, or the text of an error from a library in Rust or C++.
DISK_FULL_TEXT = ("No space left on device", "os error 28", "Disk quota exceeded")


def check_destination(output: Path) -> None:
    """The output must be a folder (or not exist yet) in a writable parent."""
    if output.exists() and not output.is_dir():
        raise UserError(f"output {output} exists and is not a folder; choose another --output")
    parent = output.parent
    while not parent.exists():
        parent = parent.parent
    try:
        # A real write: access() says yes to root even where the filesystem refuses.
        Path(tempfile.mkdtemp(prefix=".write-probe-", dir=parent)).rmdir()
    except OSError as exc:
        raise UserError(f"cannot write under {parent} ({exc.strerror}); choose a writable --output") from None


def check_free_space(where: Path, needed: int, what: str) -> None:
    """Fail before starting rather than half way: `needed` bytes must be free where output goes."""
    probe = where
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < needed:
        raise UserError(
            f"not enough disk for {what}: {needed / 2**30:.1f} GiB needed, "
            f"{free / 2**30:.1f} GiB free under {probe}"
        )


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def size(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def reclaim_stale(output: Path, say: Callable[[str], None]) -> int:
    """Remove what runs that died (a kill, the OOM killer) left beside `output`; call it holding the lock.

    Only one run at a time writes an output, so under its lock every staging folder is a dead run's.
    """
    stale = sorted(
        p
        for pattern in (f".{output.name}.tmp-*", f".{output.name}.old-*")
        for p in output.parent.glob(pattern)
        if p.is_dir()
    )
    if not stale:
        return 0
    reclaimed = sum(folder_bytes(p) for p in stale)
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    say(
        f"removed {len(stale)} staging folder(s) left by interrupted runs of {output.name} "
        f"({size(reclaimed)} reclaimed)"
    )
    return reclaimed


@contextmanager
def owned_output(output: Path, what: str, *, wait: bool, say: Callable[[str], None]) -> Iterator[None]:
    """The one writer of `output` for the block, with what dead runs left behind cleared away."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with locks.exclusive(output, what, wait=wait, say=say):
        reclaim_stale(output, say)
        yield


def is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return any(text in str(exc) for text in DISK_FULL_TEXT)


def disk_full_error(exc: BaseException, output: Path) -> UserError:
    where = getattr(exc, "filename", None) or output
    probe = output.parent
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    return UserError(
        f"disk full while writing {where} ({free / 2**20:.0f} MiB free under {probe}); "
        "free some space and run again, the earlier output is unchanged"
    )


@contextmanager
def staged_folder(output: Path) -> Iterator[Path]:
    """Yield a temporary folder beside `output`; on success it replaces `output` atomically.

    On any exception (Ctrl-C included) the temporary folder is removed and `output` is untouched;
    a full disk becomes one line naming the path and the free space.
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{output.name}.tmp-", dir=output.parent))
    umask = os.umask(0)
    os.umask(umask)
    stage.chmod(0o777 & ~umask)  # mkdtemp's 0700 would otherwise become the output's mode
    try:
        yield stage
        faults.at("renaming", output)
        replace_folder(stage, output)
    except Exception as exc:
        if is_disk_full(exc):
            shutil.rmtree(stage, ignore_errors=True)  # first, so the free space reported is real
            raise disk_full_error(exc, output) from None
        raise
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)


def replace_folder(new: Path, output: Path) -> None:
    if not output.exists():
        new.rename(output)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{output.name}.old-", dir=output.parent))
    old.rmdir()
    output.rename(old)
    try:
        new.rename(output)
    except BaseException:
        old.rename(output)
        raise
    shutil.rmtree(old, ignore_errors=True)


def write_bytes(path: Path, data: bytes) -> None:
    """Write a file so that readers see the old or the new content, never half of it."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    tmp.replace(path)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))
