"""A real OpenSSH server on 127.0.0.1 for the board tests: throwaway host and user keys, its own
sshd_config in a temporary folder, never the machine's. One sshd listens on several ports; each
port is a different "board" (Match LocalPort) with its own PATH: a full one with rsync and the
stand-in axllm, one without rsync (the scp fallback), one without axllm, one whose `df` says the
disk is nearly full."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
# What the board step runs remotely besides axllm and the copy tools.
TOOLS = (
    "sh",
    "bash",
    "mkdir",
    "df",
    "sha256sum",
    "cat",
    "kill",
    "nohup",
    "mv",
    "rm",
    "tail",
    "head",
    "sleep",
    "pwd",
)
BOARDS = ("full", "no-rsync", "no-axllm", "tiny-disk")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class SshBoards:
    folder: Path
    config: Path  # the client's ssh config (ssh -F)
    process: subprocess.Popen
    ports: dict[str, int]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def bin_folder(folder: Path, tools: tuple[str, ...], axllm: Path | None, small_df: bool) -> Path:
    """A PATH folder holding links to exactly these tools."""
    folder.mkdir(parents=True)
    for tool in tools:
        found = shutil.which(tool)
        if found:
            (folder / tool).symlink_to(found)
    if axllm is not None:
        (folder / "axllm").symlink_to(axllm)
    if small_df:
        (folder / "df").unlink(missing_ok=True)
        (folder / "df").write_text(
            "#!/bin/sh\necho 'Filesystem 1024-blocks Used Available Capacity Mounted on'\n"
            "echo '/dev/board 1000 999 1 100% /'\n"
        )
        (folder / "df").chmod(0o755)
    return folder


def start(folder: Path, axllm: Path) -> SshBoards:
    """sshd on one port per board kind, and a client config naming each as `board-<kind>`."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("host_key", "user_key", "stranger_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)], check=True)
    (folder / "authorized_keys").write_text((folder / "user_key.pub").read_text())
    os.chmod(folder / "authorized_keys", 0o600)
    ports = {kind: free_port() for kind in BOARDS}
    paths = {
        "full": f"{bin_folder(folder / 'bin-full', TOOLS + ('rsync',), axllm, False)}",
        "no-rsync": f"{bin_folder(folder / 'bin-no-rsync', TOOLS, axllm, False)}",
        "no-axllm": f"{bin_folder(folder / 'bin-no-axllm', TOOLS + ('rsync',), None, False)}",
        "tiny-disk": f"{bin_folder(folder / 'bin-tiny-disk', TOOLS + ('rsync',), axllm, True)}",
    }
    lines = [
        *(f"Port {port}" for port in ports.values()),
        "ListenAddress 127.0.0.1",
        f"HostKey {folder / 'host_key'}",
        f"PidFile {folder / 'sshd.pid'}",
        f"AuthorizedKeysFile {folder / 'authorized_keys'}",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",
        "PermitRootLogin prohibit-password",
        "Subsystem sftp internal-sftp",
        "LogLevel ERROR",
        *(f"Match LocalPort {ports[kind]}\n  SetEnv PATH={paths[kind]}" for kind in BOARDS),
    ]
    (folder / "sshd_config").write_text("\n".join(lines) + "\n")
    if os.getuid() == 0:
        # sshd run by root insists on its privilege separation folder, which Debian's service makes at boot.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    process = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(folder / "sshd_config")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    user = pwd.getpwuid(os.getuid()).pw_name
    known = " ".join((folder / "host_key.pub").read_text().split()[:2])
    (folder / "known_hosts").write_text("".join(f"[127.0.0.1]:{p} {known}\n" for p in ports.values()))
    client = []
    for kind, port in ports.items():
        client += [f"Host board-{kind}", "  HostName 127.0.0.1", f"  Port {port}", f"  User {user}"]
        client += [f"  IdentityFile {folder / 'user_key'}", "  IdentitiesOnly yes"]
        client += [f"  UserKnownHostsFile {folder / 'known_hosts'}", "  StrictHostKeyChecking yes"]
    closed = free_port()
    client += ["Host board-off", "  HostName 127.0.0.1", f"  Port {closed}", "  ConnectTimeout 5"]
    client += [f"  UserKnownHostsFile {folder / 'known_hosts'}"]
    client += ["Host board-stranger", "  HostName 127.0.0.1", f"  Port {ports['full']}", f"  User {user}"]
    client += [f"  IdentityFile {folder / 'stranger_key'}", "  IdentitiesOnly yes"]
    client += [f"  UserKnownHostsFile {folder / 'known_hosts'}", "  StrictHostKeyChecking yes"]
    (folder / "ssh_config").write_text("\n".join(client) + "\n")
    boards = SshBoards(folder, folder / "ssh_config", process, ports)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd did not start: {process.stderr.read().decode()[-2000:]}")
        with socket.socket() as probe:
            if all(probe.connect_ex(("127.0.0.1", p)) == 0 for p in list(ports.values())[:1]):
                return boards
        time.sleep(0.1)
    boards.stop()
    raise RuntimeError("sshd did not listen within 20 s")
