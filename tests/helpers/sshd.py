"""Real SSH servers on 127.0.0.1 for the board tests: throwaway host and user keys, their own
configuration in a temporary folder, never the machine's.

One OpenSSH sshd listens on several ports; each port is a different "board" (Match LocalPort) with
its own PATH: a full one with rsync and the stand-in axllm, one without rsync (the scp fallback), one
without axllm, one whose `df` says the disk is nearly full, and a BusyBox one: every command run by
BusyBox's ash with only BusyBox's applets (no GNU tools, no rsync).

Beside it, where it can run, Dropbear (Debian's dropbear-bin), the SSH server of many boards: no SFTP
server, so OpenSSH 9's scp must fall back to its legacy protocol. Dropbear reads the login user's
~/.ssh/authorized_keys from the password database, so it runs in a private mount namespace (root and
`unshare`) where /etc/passwd gives the user a throwaway home, and where sftp-server is missing as on
such a board. Nothing outside that namespace changes.
"""

from __future__ import annotations

import os
import pwd
import shlex
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
    "mv",
    "rm",
    "tail",
    "head",
    "sleep",
    "pwd",
)
BOARDS = ("full", "no-rsync", "no-axllm", "tiny-disk", "busybox")
BUSYBOX = shutil.which("busybox")
BUSYBOX_APPLETS = (*(t for t in TOOLS if t != "bash"), "ls", "env", "grep", "sed", "wc", "true")
SFTP_SERVER = next(
    (
        p
        for p in ("/usr/lib/openssh/sftp-server", "/usr/lib/sftp-server", "/usr/libexec/sftp-server")
        if Path(p).exists()
    ),
    None,
)
DROPBEAR = shutil.which("dropbear") or ("/usr/sbin/dropbear" if Path("/usr/sbin/dropbear").exists() else None)


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
    dropbear: subprocess.Popen | None = None
    no_dropbear: str = ""  # why board-dropbear is not there

    def stop(self) -> None:
        for process in (self.process, self.dropbear):
            if process is None:
                continue
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


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


def busybox_folder(folder: Path, axllm: Path) -> Path:
    """A PATH of BusyBox applets only, and the stand-in axllm."""
    folder.mkdir(parents=True)
    if BUSYBOX:
        for applet in BUSYBOX_APPLETS:
            (folder / applet).symlink_to(BUSYBOX)
    (folder / "axllm").symlink_to(axllm)
    return folder


def start_dropbear(folder: Path, port: int, path: str) -> tuple[subprocess.Popen | None, str]:
    """Dropbear in a mount namespace where the user's home is `folder/home` and sftp-server is absent."""
    if DROPBEAR is None:
        return None, "dropbear is not installed (Debian: apt install dropbear-bin)"
    if os.getuid() != 0 or not shutil.which("unshare"):
        return None, "Dropbear needs root and unshare here (it reads ~/.ssh from the password database)"
    home = folder / "dropbear-home"
    (home / ".ssh").mkdir(parents=True)
    shutil.copy(folder / "authorized_keys", home / ".ssh" / "authorized_keys")
    os.chmod(home / ".ssh" / "authorized_keys", 0o600)
    subprocess.run(
        ["dropbearkey", "-t", "ed25519", "-f", str(folder / "dropbear_key")], check=True, capture_output=True
    )
    # The user's login shell on this board sets its PATH: Dropbear gives each session its default one.
    shell = folder / "dropbear-shell"
    shell.write_text(f'#!/bin/sh\nPATH={shlex.quote(path)}\nexport PATH\nexec /bin/sh "$@"\n')
    shell.chmod(0o755)
    user = pwd.getpwuid(os.getuid())
    passwd = folder / "passwd"
    passwd.write_text(
        "".join(
            f"{e.pw_name}:x:{e.pw_uid}:{e.pw_gid}:{e.pw_gecos}:"
            + (f"{home}:{shell}" if e.pw_uid == user.pw_uid else f"{e.pw_dir}:{e.pw_shell}")
            + "\n"
            for e in pwd.getpwall()
        )
    )
    shells = folder / "shells"  # Dropbear refuses a login shell that /etc/shells does not list
    listed = Path("/etc/shells").read_text() if Path("/etc/shells").is_file() else ""
    shells.write_text(listed + f"{shell}\n")
    hidden = [
        p
        for p in ("/usr/lib/openssh/sftp-server", "/usr/lib/sftp-server", "/usr/libexec/sftp-server")
        if Path(p).exists()
    ]
    mounts = [f"mount --bind {shlex.quote(str(passwd))} /etc/passwd"]
    if Path("/etc/shells").is_file():
        mounts.append(f"mount --bind {shlex.quote(str(shells))} /etc/shells")
    mounts += [f"mount --bind /dev/null {p}" for p in hidden]  # exec of /dev/null fails: no SFTP
    server = shlex.join(
        [DROPBEAR, "-F", "-E", "-s", "-m", "-p", f"127.0.0.1:{port}", "-r", str(folder / "dropbear_key")]
        + ["-P", str(folder / "dropbear.pid")]
    )
    command = " && ".join([*mounts, f"exec {server}"])
    process = subprocess.Popen(
        [shutil.which("unshare"), "--mount", "--propagation", "private", "sh", "-c", f"exec 2>&1; {command}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return None, f"dropbear did not start: {process.stdout.read().decode()[-500:]}"
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return process, ""
        time.sleep(0.1)
    process.kill()
    return None, "dropbear did not listen within 20 s"


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
        "busybox": f"{busybox_folder(folder / 'bin-busybox', axllm)}",
    }
    # Every command of the BusyBox board runs in BusyBox's ash, whatever the user's login shell is;
    # SFTP (an external sftp-server, so that a forced command can hand it on) works as on such a board.
    sftp = SFTP_SERVER or "internal-sftp"
    forced = {}
    if BUSYBOX:
        login = folder / "busybox-login"
        login.write_text(
            f'#!{BUSYBOX} sh\ncase "$SSH_ORIGINAL_COMMAND" in\n'
            f"  {sftp}*) exec $SSH_ORIGINAL_COMMAND ;;\n"
            f'  *) exec {BUSYBOX} sh -c "$SSH_ORIGINAL_COMMAND" ;;\nesac\n'
        )
        login.chmod(0o755)
        forced["busybox"] = f"  ForceCommand {login}"
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
        f"Subsystem sftp {sftp}",
        "LogLevel ERROR",
        *(
            f"Match LocalPort {ports[kind]}\n  SetEnv PATH={paths[kind]}"
            + (f"\n{forced[kind]}" if kind in forced else "")
            for kind in BOARDS
        ),
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
    # Dropbear's board: a PATH with scp (the legacy protocol's sink) and no rsync.
    dropbear_port = free_port()
    dropbear_path = bin_folder(folder / "bin-dropbear", TOOLS + ("scp",), axllm, False)
    dropbear, no_dropbear = start_dropbear(folder, dropbear_port, str(dropbear_path))
    if dropbear is not None:
        key = subprocess.run(
            ["dropbearkey", "-y", "-f", str(folder / "dropbear_key")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        line = next(ln for ln in key.splitlines() if ln.startswith("ssh-ed25519 "))
        with open(folder / "known_hosts", "a") as hosts:
            hosts.write(f"[127.0.0.1]:{dropbear_port} {' '.join(line.split()[:2])}\n")
        ports = {**ports, "dropbear": dropbear_port}
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
    boards = SshBoards(folder, folder / "ssh_config", process, ports, dropbear, no_dropbear)
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
