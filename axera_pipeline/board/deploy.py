"""Copy a package to the board, every file checked against its sha256 from the package's manifest.

Only what the board's runtime reads goes: axllm's files, the Hugging Face subfolder (axllm reads layer
types from it) and the manifest (it says which build the folder holds); the float32 `.npy` only
Axera's Python demo reads (about 1 GB for HY-MT) on request, never build.log or README.md.

Files the board already holds (same sha256) are not copied again, so a second run copies nothing and
an interrupted one resumes: rsync keeps a partial file in `.rsync-partial/` and continues it; without
rsync on the board, scp writes `<file>.part` and renames it once its sha256 is right. Every remote
path lies under the remote folder, which may hold spaces, quotes or any UTF-8: rsync gets it as a
protected argument (`-s`, no remote shell splitting), scp raw over SFTP and quoted for the remote
shell in its legacy protocol (`-O`), which it falls back to where the board has no SFTP server
(Dropbear). The board needs only POSIX tools as BusyBox has them: `sha256sum FILE` (no `-c`), `df -Pk`,
`mkdir -p`, `mv -f`.
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
from axera_pipeline.common.package_layout import BUILD_LOG, EMBED_NPY, MANIFEST, README

MIB = 2**20
MARGIN = 1.05  # filesystems round up; never fill the disk to its last block


@dataclass(frozen=True)
class PackageFile:
    name: str  # relative to the package, "/" separated
    sha256: str
    size: int


NOT_READ_ON_THE_BOARD = (BUILD_LOG, README)


def package_files(package: Path, python_demo: bool = False) -> list[PackageFile]:
    """The files the manifest names that the board's runtime reads, with the manifest itself (hashed
    now: it names the others); the Python demo's .npy when asked for."""
    record = manifest.read(package) or {}
    hashes = dict((record.get("result") or {}).get("files") or {})
    if not hashes:
        raise UserError(f"{package}/{MANIFEST} lists no files: is it a package `make build-ax650` wrote?")
    hashes[MANIFEST] = manifest.sha256_file(package / MANIFEST)
    skipped = set(NOT_READ_ON_THE_BOARD) | (set() if python_demo else {EMBED_NPY})
    return [
        PackageFile(name, sha, (package / name).stat().st_size)
        for name, sha in sorted(hashes.items())
        if name not in skipped
    ]


def remote_folder(host: Host, folder: str) -> str:
    """The remote folder's absolute path, created if needed."""
    done = host.run(f"mkdir -p {quote(folder)} && cd {quote(folder)} && pwd")
    return done.stdout.strip().splitlines()[-1]


def remote_hashes(host: Host, folder: str, names: list[str]) -> dict[str, str]:
    """sha256 of the files the board holds; absent ones are left out (sha256sum goes on past them)."""
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


def rsync_version() -> tuple[int, int]:
    done = subprocess.run(["rsync", "--version"], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    found = re.search(r"version\s+(\d+)\.(\d+)", done.stdout)
    return (int(found[1]), int(found[2])) if found else (0, 0)


def rsync_options() -> list[str]:
    """The remote folder as a protected argument (rsync 3.0: before 3.2.4 the remote shell splits it
    otherwise), and the whole copy's one-line progress (--info=progress2, rsync 3.1)."""
    version = rsync_version()
    return (["--protect-args"] if version >= (3, 0) else []) + (
        ["--info=progress2"] if version >= (3, 1) else []
    )


def copy_with_rsync(host: SshHost, package: Path, folder: str, names: list[str]) -> None:
    listed = "".join(f"{n}\n" for n in names)
    command = [
        "rsync",
        "--archive",
        "--partial",
        "--partial-dir=.rsync-partial",
        *rsync_options(),
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


def scp_modes(scp: str) -> list[str]:
    """How this scp can talk to the board: OpenSSH 9's SFTP first, then the legacy protocol (-O) for
    boards without an SFTP server (Dropbear); an scp without -O has the legacy protocol only."""
    done = subprocess.run([scp], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    flags = re.search(r"usage: scp \[-([0-9A-Za-z]+)\]", done.stdout + done.stderr)
    return ["sftp", "legacy"] if flags and "O" in flags[1] else ["legacy-only"]


def scp_target(host: SshHost, path: str, mode: str) -> str:
    """SFTP takes the path as it is; the legacy protocol hands it to the board's shell."""
    return f"{host.name}:{path}" if mode == "sftp" else f"{host.name}:{shlex.quote(path)}"


SFTP_MISSING = ("subsystem request failed", "sftp-server", "Connection closed", "Received message too long")


def copy_with_scp(
    host: SshHost, package: Path, folder: str, files: list[PackageFile], say: Callable[[str], None]
) -> str:
    """Each file as `<name>.part`, renamed once its sha256 on the board is right; the protocol used."""
    scp = shutil.which("scp")
    if not scp:
        raise UserError("neither rsync (on both sides) nor scp is there to copy with: install rsync or scp")
    subfolders = sorted({str(Path(f.name).parent) for f in files} - {"."})
    if subfolders:
        host.run(f"cd {shlex.quote(folder)} && mkdir -p -- {' '.join(shlex.quote(s) for s in subfolders)}")
    modes = scp_modes(scp)
    for number, item in enumerate(files, 1):
        say(f"scp {number}/{len(files)}: {item.name} ({item.size / MIB:.1f} MiB)")
        part = f"{folder}/{item.name}.part"
        while True:
            mode = modes[0]
            flag = ["-O"] if mode == "legacy" else []
            done = subprocess.run(
                [
                    scp,
                    "-q",
                    *flag,
                    *host.options,
                    *host.shared,
                    str(package / item.name),
                    scp_target(host, part, mode),
                ],
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
            )
            if done.returncode == 0:
                break
            if mode == "sftp" and any(marker in done.stderr for marker in SFTP_MISSING):
                say(f"{host.name} has no SFTP server (Dropbear?): scp's legacy protocol (-O) from here on")
                modes = modes[1:]
                continue
            raise UserError(f"scp of {item.name} to {host.name} failed: {last_line(done.stderr)}")
        got = remote_hashes(host, folder, [f"{item.name}.part"]).get(f"{item.name}.part")
        if got != item.sha256:
            raise UserError(
                f"{item.name} arrived on {host.name} with another sha256: run again to copy it anew"
            )
        moved = f"mv -f -- {shlex.quote(item.name + '.part')} {shlex.quote(item.name)}"
        host.run(f"cd {shlex.quote(folder)} && {moved}")
    return "scp" if modes[0] == "sftp" else "scp -O"


@dataclass
class Deployed:
    folder: str  # absolute, on the board
    copied: list[str]
    copied_bytes: int
    method: str


def deploy(
    host: Host, package: Path, folder: str, say: Callable[[str], None], *, python_demo: bool = False
) -> Deployed:
    files = package_files(package, python_demo)
    folder = remote_folder(host, folder)
    if "%" in folder:
        raise UserError(
            f"the remote folder {folder!r} holds a %: axllm expands the layer file's path with sprintf; "
            "pass another --remote-dir"
        )
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
        method = copy_with_scp(host, package, folder, missing, say)
    after = remote_hashes(host, folder, [f.name for f in files])
    wrong = [f.name for f in files if after.get(f.name) != f.sha256]
    if wrong:
        raise UserError(
            f"after copying, {wrong[0]} differs on {host.name} (sha256): run again to copy it anew"
        )
    return Deployed(folder, [f.name for f in missing], need, method)
