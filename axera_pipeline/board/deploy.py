"""Copy a package to the board, every file checked against its sha256 from the package's manifest.

Files the board already holds (same sha256) are not copied again, so a second run copies nothing and
an interrupted one resumes: rsync keeps a partial file in `.rsync-partial/` and continues it; without
rsync on the board, scp writes `<file>.part` and renames it once its sha256 is right. Every remote
path lies under the remote folder. A board without the space is told in one line, before copying.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from axera_pipeline.board.remote import Host, SshHost, quote
from axera_pipeline.common import manifest
from axera_pipeline.common.basics import last_line
from axera_pipeline.common.cli import UserError
from axera_pipeline.common.package_layout import MANIFEST

MIB = 2**20
MARGIN = 1.05  # filesystems round up; never fill the disk to its last block


@dataclass(frozen=True)
class PackageFile:
    name: str  # relative to the package, "/" separated
    sha256: str
    size: int


def package_files(package: Path) -> list[PackageFile]:
    """Every file the manifest names, with the manifest itself (hashed now: it names the others)."""
    record = manifest.read(package) or {}
    hashes = dict((record.get("result") or {}).get("files") or {})
    if not hashes:
        raise UserError(f"{package}/{MANIFEST} lists no files: is it a package `make build-ax650` wrote?")
    hashes[MANIFEST] = manifest.sha256_file(package / MANIFEST)
    return [PackageFile(name, sha, (package / name).stat().st_size) for name, sha in sorted(hashes.items())]


def remote_folder(host: Host, folder: str) -> str:
    """The remote folder's absolute path, created if needed."""
    done = host.run(f"mkdir -p {quote(folder)} && cd {quote(folder)} && pwd")
    return done.stdout.strip().splitlines()[-1]


def remote_hashes(host: Host, folder: str, names: list[str]) -> dict[str, str]:
    script = f"cd {shlex.quote(folder)} && sha256sum -- {' '.join(shlex.quote(n) for n in names)} 2>/dev/null"
    done = host.run(script, check=False, timeout=600)
    found = {}
    for line in done.stdout.splitlines():
        digest, _, name = line.partition("  ")
        if name:
            found[name.lstrip("*")] = digest
    return found


def free_bytes(host: Host, folder: str) -> int:
    done = host.run(f"df -Pk {shlex.quote(folder)} | tail -n 1")
    try:
        return int(done.stdout.split()[3]) * 1024
    except (IndexError, ValueError):
        raise UserError(
            f"cannot read the free space under {folder} on {host.name}: {done.stdout.strip()}"
        ) from None


def has_rsync(host: Host) -> bool:
    return bool(shutil.which("rsync")) and host.run("command -v rsync", check=False).returncode == 0


def shows_progress() -> list[str]:
    """rsync's one-line progress of the whole copy (its --info=progress2 came with rsync 3.1)."""
    done = subprocess.run(["rsync", "--version"], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    found = re.search(r"version\s+(\d+)\.(\d+)", done.stdout)
    return ["--info=progress2"] if found and (int(found[1]), int(found[2])) >= (3, 1) else []


def copy_with_rsync(host: SshHost, package: Path, folder: str, names: list[str]) -> None:
    listed = "".join(f"{n}\n" for n in names)
    command = [
        "rsync",
        "--archive",
        "--partial",
        "--partial-dir=.rsync-partial",
        *shows_progress(),
        "--files-from=-",
        "--rsh",
        host.transport(),
        f"{package}/",
        f"{host.name}:{folder}/",
    ]
    # Its progress goes to the user's terminal; its errors are kept for the one-line message.
    done = subprocess.run(command, input=listed, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise UserError(f"rsync to {host.name} failed: {last_line(done.stderr)}")


def copy_with_scp(
    host: SshHost, package: Path, folder: str, files: list[PackageFile], say: Callable[[str], None]
) -> None:
    scp = shutil.which("scp")
    if not scp:
        raise UserError("neither rsync (on both sides) nor scp is there to copy with: install rsync or scp")
    subfolders = sorted({str(Path(f.name).parent) for f in files} - {"."})
    if subfolders:
        host.run(f"cd {shlex.quote(folder)} && mkdir -p -- {' '.join(shlex.quote(s) for s in subfolders)}")
    for number, item in enumerate(files, 1):
        say(f"scp {number}/{len(files)}: {item.name} ({item.size / MIB:.1f} MiB)")
        part = f"{folder}/{item.name}.part"
        done = subprocess.run(
            [scp, "-q", *host.options, *host.shared, str(package / item.name), f"{host.name}:{part}"],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        if done.returncode != 0:
            raise UserError(f"scp of {item.name} to {host.name} failed: {last_line(done.stderr)}")
        check = (
            f"echo '{item.sha256}  {shlex.quote(part)}' | sha256sum -c --status && mv -f {shlex.quote(part)}"
        )
        host.run(f"{check} {shlex.quote(folder + '/' + item.name)}")


@dataclass
class Deployed:
    folder: str  # absolute, on the board
    copied: list[str]
    copied_bytes: int
    method: str


def deploy(host: Host, package: Path, folder: str, say: Callable[[str], None]) -> Deployed:
    files = package_files(package)
    folder = remote_folder(host, folder)
    present = remote_hashes(host, folder, [f.name for f in files])
    missing = [f for f in files if present.get(f.name) != f.sha256]
    need = sum(f.size for f in missing)
    if not missing:
        say(f"{folder} on {host.name} already holds all {len(files)} files (sha256 checked): nothing to copy")
        return Deployed(folder, [], 0, "none")
    free = free_bytes(host, folder)
    if need * MARGIN > free:
        raise UserError(
            f"{host.name} has {free / MIB:.0f} MiB free under {folder}; the package needs "
            f"{need / MIB:.0f} MiB "
            "more: free some space there or pass another --remote-dir"
        )
    method = "rsync" if isinstance(host, SshHost) and has_rsync(host) else "scp"
    say(
        f"copying {len(missing)} of {len(files)} files ({need / MIB:.1f} MiB) to {host.name}:{folder} "
        f"with {method}"
    )
    if method == "rsync":
        copy_with_rsync(host, package, folder, [f.name for f in missing])
    else:
        copy_with_scp(host, package, folder, missing, say)
    after = remote_hashes(host, folder, [f.name for f in files])
    wrong = [f.name for f in files if after.get(f.name) != f.sha256]
    if wrong:
        raise UserError(
            f"after copying, {wrong[0]} differs on {host.name} (sha256): run again to copy it anew"
        )
    return Deployed(folder, [f.name for f in missing], need, method)
