"""Write a folder next to its destination and swap it in only when complete."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from axera_pipeline.common.cli import UserError


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


@contextmanager
def staged_folder(output: Path) -> Iterator[Path]:
    """Yield a temporary folder beside `output`; on success it replaces `output` atomically.

    On any exception (Ctrl-C included) the temporary folder is removed and `output` is untouched.
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{output.name}.tmp-", dir=output.parent))
    umask = os.umask(0)
    os.umask(umask)
    stage.chmod(0o777 & ~umask)  # mkdtemp's 0700 would otherwise become the output's mode
    try:
        yield stage
        replace_folder(stage, output)
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


def write_text(path: Path, text: str) -> None:
    """Write a file so that readers see the old or the new content, never half of it."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
