"""Commands on the board through the user's own OpenSSH, or on this machine for `--host local`.

`ssh`, `rsync` and `scp` come from PATH, so the user's ~/.ssh/config, agent and jump hosts work as
they do for them; `--ssh-config FILE` is ssh's `-F`. One connection is shared by every command of a
run (ssh's ControlMaster, in a private folder) and closed at the end.

None of them reads this process's standard input (it comes from /dev/null): what the user types
during a run never reaches the board, and a run without a terminal (CI) behaves as one with. The
tunnel to axllm's port opens no session on the board: it is a forward the shared connection adds
(`ssh -O forward`) and cancels, or, without a shared connection, an `ssh -N` of its own.
"""

from __future__ import annotations

import contextlib
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from axera_pipeline.common.basics import last_line
from axera_pipeline.common.cli import UserError

UNREACHABLE = (
    "Could not resolve hostname",
    "Connection refused",
    "Connection timed out",
    "No route to host",
    "Network is unreachable",
    "Connection closed by",
    "Connection reset",
    "Name or service not known",
)
REFUSED = ("Permission denied", "Too many authentication failures", "Authentication failed")
# A socket's path must fit sun_path (108 bytes on Linux, 104 on macOS); ssh's %C is 40 characters.
SOCKET_PATH_MAX = 100
CONTROL_PREFIX = "axera-board-ssh-"


def quote(path: str) -> str:
    """A remote path for the shell: `~/x` stays relative to the home folder, everything else is quoted."""
    if path.startswith("~/"):
        return "~/" + shlex.quote(path[2:])
    return shlex.quote(path)


class Tunnel:
    """A local port forwarded to the board: added to the shared connection, or an ssh -N process."""

    def __init__(self, local_port: int, *, cancel: list[str] | None = None, process=None):
        self.local_port = local_port
        self.cancel = cancel
        self.process: subprocess.Popen | None = process

    def wait_open(self, where: str, within: float = 30) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise UserError(f"the SSH tunnel to {where} failed: {last_line(self.process.stderr.read())}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.local_port)) == 0:
                    return
            time.sleep(0.1)
        raise UserError(f"the SSH tunnel to {where} did not open within {within:.0f} s")

    def close(self) -> None:
        if self.cancel is not None:
            subprocess.run(self.cancel, capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
            self.cancel = None
        if self.process is not None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
            self.process = None


class Host:
    """A place to run shell scripts: the board over SSH, or this machine."""

    name: str
    local = False

    def run(self, script: str, *, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        raise NotImplementedError

    def close(self) -> None:
        pass


class LocalHost(Host):
    name = "local"
    local = True

    def run(self, script: str, *, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(
            ["sh", "-c", script], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
        if check and done.returncode != 0:
            raise UserError(f"`{script.split(';')[0][:80]}` failed here: {last_line(done.stderr)}")
        return done


class SshHost(Host):
    def __init__(self, host: str, ssh_config: Path | None = None, ssh: str | None = None):
        self.name = host
        self.ssh = ssh or shutil.which("ssh")
        if not self.ssh:
            raise UserError("no ssh on PATH: install OpenSSH's client (Debian: apt install openssh-client)")
        self.options = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=15", "-o", "ServerAliveInterval=15"]
        if ssh_config:
            if not ssh_config.is_file():
                raise UserError(f"--ssh-config {ssh_config} does not exist")
            self.options = ["-F", str(ssh_config), *self.options]
        self.control = control_folder()
        self.shared = (
            []  # no folder short enough for a socket: every command opens its own connection
            if self.control is None
            else [
                "-o",
                "ControlMaster=auto",
                "-o",
                f"ControlPath={self.control}/%C",
                "-o",
                "ControlPersist=60",
            ]
        )

    def ssh_command(self, *extra: str) -> list[str]:
        return [self.ssh, *self.options, *self.shared, *extra]

    def transport(self) -> str:
        """ssh as rsync's -e wants it: one string, the same options and shared connection."""
        return shlex.join(self.ssh_command())

    def run(self, script: str, *, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        try:
            done = subprocess.run(
                [*self.ssh_command(), self.name, script],
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise UserError(f"{self.name} did not answer within {timeout:.0f} s") from None
        if done.returncode == 255:
            raise connection_error(self.name, done.stderr)
        if check and done.returncode != 0:
            raise UserError(f"`{script.split(';')[0][:80]}` failed on {self.name}: {last_line(done.stderr)}")
        return done

    def tunnel(self, remote_port: int) -> Tunnel:
        """The board's port on a free local one, so no port has to be open on the board."""
        local_port = free_port()
        forward = ["-L", f"127.0.0.1:{local_port}:127.0.0.1:{remote_port}"]
        if self.control is not None:
            # The shared connection adds the forward itself: no client stays, no session opens.
            self.control_command("forward", *forward)
            tunnel = Tunnel(local_port, cancel=[*self.ssh_command("-O", "cancel", *forward), self.name])
        else:
            process = subprocess.Popen(
                [*self.ssh_command("-N", "-o", "ExitOnForwardFailure=yes", *forward), self.name],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            tunnel = Tunnel(local_port, process=process)
        try:
            tunnel.wait_open(f"{self.name}:{remote_port}")
        except BaseException:
            tunnel.close()
            raise
        return tunnel

    def control_command(self, command: str, *extra: str) -> None:
        """`ssh -O <command>` to the shared connection (opened first if it is not up yet)."""
        self.run("true", timeout=60)
        done = subprocess.run(
            [*self.ssh_command("-O", command, *extra), self.name],
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
        if done.returncode != 0:
            raise UserError(f"the SSH tunnel to {self.name} failed: {last_line(done.stderr)}")

    def close(self) -> None:
        if self.control is None:
            return
        subprocess.run(
            [*self.ssh_command("-O", "exit"), self.name],
            capture_output=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
        shutil.rmtree(self.control, ignore_errors=True)


def control_folder() -> Path | None:
    """A private folder for the shared connection's socket: under TMPDIR when its path is short
    enough for a socket, else under /tmp; None when neither is."""
    for base in dict.fromkeys((tempfile.gettempdir(), "/tmp")):
        if len(base) + len(CONTROL_PREFIX) + 8 + 2 + 40 <= SOCKET_PATH_MAX and Path(base).is_dir():
            try:
                return Path(tempfile.mkdtemp(prefix=CONTROL_PREFIX, dir=base))
            except OSError:
                continue
    return None


def connection_error(host: str, stderr: str) -> UserError:
    line = last_line(stderr)
    if any(marker in stderr for marker in REFUSED):
        return UserError(
            f"{host} refused the login ({line}): check the user, the key (ssh-add) and ~/.ssh/config"
        )
    if "Host key verification failed" in stderr:
        return UserError(
            f"{host}'s host key is unknown or changed ({line}): connect once with ssh to accept it"
        )
    if any(marker in stderr for marker in UNREACHABLE):
        return UserError(f"cannot reach {host} ({line}): is the board on and the address right?")
    return UserError(f"ssh to {host} failed: {line}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
