"""`axllm serve` on the board: started in the background with its log in a file there, waited for on
/health through an SSH tunnel, and stopped as axllm wants to be stopped.

axllm handles SIGINT only (src/main.cpp: `signal(SIGINT, __sigExit)` stops generation and the server
loop, then the model is de-initialised and the CMM given back). SIGTERM and SIGKILL take the default
action: the process dies without de-initialising, which is the CMM leak of ax-llm issue #60 (layers
fail to load until a reboot). So: SIGINT, wait STOP_WAIT_S; only then SIGTERM, then SIGKILL, with a
warning that the CMM may be lost. A pid is signalled only while /proc/PID/cmdline is this package's
`axllm serve` (a pid file outlives a reboot; the number may be anyone's by then).
"""

from __future__ import annotations

import shlex
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from axera_pipeline.board import axllm_log
from axera_pipeline.board.remote import Host, SshHost, Tunnel, quote
from axera_pipeline.common.cli import UserError

LOG = ".axllm.log"
PID = ".axllm.pid"
STOP_WAIT_S = 20  # SIGINT: the model de-initialises layer by layer
ESCALATE_WAIT_S = 5
CMM_WARNING = (
    "did not stop on SIGINT within {wait:g} s and was killed with {signal}: it then exits without "
    "de-initialising, and the board may keep its CMM until a reboot (ax-llm issue #60)"
)


def is_axllm_serve(cmdline: bytes, model_dir: str) -> bool:
    """/proc/PID/cmdline (NUL-separated) is `axllm serve MODEL_DIR ...`, run directly or as a script
    by its interpreter (`python3 /path/axllm serve ...`)."""
    argv = [part.decode("utf-8", "surrogateescape") for part in cmdline.split(b"\0")]
    for i in range(len(argv) - 2):
        if argv[i].rsplit("/", 1)[-1] == "axllm" and argv[i + 1] == "serve" and argv[i + 2] == model_dir:
            return True
    return False


def cmdline(host: Host, pid: int) -> bytes:
    """The process's argument vector as the kernel keeps it (NUL-separated; cat is on every board)."""
    done = host.run(f"cat /proc/{pid}/cmdline 2>/dev/null", check=False)
    return done.stdout.encode("utf-8", "surrogateescape")


def ours(host: Host, pid: int, model_dir: str) -> bool:
    return pid > 0 and is_axllm_serve(cmdline(host, pid), model_dir)


def wait_gone(host: Host, pid: int, seconds: float) -> bool:
    tries = max(1, round(seconds * 5))
    script = (
        f"i=0; while [ $i -lt {tries} ]; do kill -0 {pid} 2>/dev/null || exit 0; sleep 0.2; "
        "i=$((i+1)); done; exit 1"
    )
    return host.run(script, check=False, timeout=seconds + 30).returncode == 0


@dataclass(frozen=True)
class Stopped:
    clean: bool  # exited on SIGINT, as axllm de-initialises
    how: str  # "SIGINT", "SIGTERM", "SIGKILL", "gone" (already exited), "not ours"
    warning: str = ""


def stop_pid(host: Host, pid: int, model_dir: str, wait: float = STOP_WAIT_S) -> Stopped:
    """SIGINT, then SIGTERM, then SIGKILL, each only while the pid is still this package's axllm."""
    if not ours(host, pid, model_dir):
        return Stopped(True, "gone")
    host.run(f"kill -INT {pid}", check=False)
    if wait_gone(host, pid, wait):
        return Stopped(True, "SIGINT")
    for signal, seconds in (("TERM", ESCALATE_WAIT_S), ("KILL", ESCALATE_WAIT_S)):
        if not ours(host, pid, model_dir):
            return Stopped(True, "gone")
        host.run(f"kill -{signal} {pid}", check=False)
        if wait_gone(host, pid, seconds):
            return Stopped(False, f"SIG{signal}", CMM_WARNING.format(wait=wait, signal=f"SIG{signal}"))
    return Stopped(False, "not stopped", f"did not exit on SIGINT, SIGTERM or SIGKILL (pid {pid})")


@dataclass
class Server:
    host: Host
    run_dir: str  # where the log and the pid file live
    model_dir: str  # as axllm serve was given it
    pid: int
    port: int  # on the board
    url: str  # as this machine reaches it
    tunnel: Tunnel | None = None
    stop_wait: float = STOP_WAIT_S  # seconds for SIGINT to end it before escalating

    def log_text(self) -> str:
        return self.host.run(f"cat {quote(self.run_dir)}/{LOG} 2>/dev/null", check=False).stdout

    def alive(self) -> bool:
        return self.host.run(f"kill -0 {self.pid} 2>/dev/null", check=False).returncode == 0

    def stop(self) -> Stopped:
        """SIGINT and wait; escalate (with a CMM warning) only when it does not exit."""
        if self.tunnel is not None:
            self.tunnel.close()
        stopped = stop_pid(self.host, self.pid, self.model_dir, self.stop_wait)
        if stopped.how != "not stopped":
            self.host.run(f"rm -f {quote(self.run_dir)}/{PID}", check=False)
        return stopped

    def stop_command(self) -> str:
        """What the user runs on the board to stop a server --keep-serving left."""
        return f"kill -INT {self.pid}"


def stop_leftover(host: Host, run_dir: str, model_dir: str, say, wait: float = STOP_WAIT_S) -> None:
    """A server an earlier run left (--keep-serving, or a crash) would hold the port and the CMM."""
    text = host.run(f"cat {quote(run_dir)}/{PID} 2>/dev/null", check=False).stdout.strip()
    if not text.isdigit():
        return
    stopped = stop_pid(host, int(text), model_dir, wait)
    if stopped.how == "gone":
        host.run(f"rm -f {quote(run_dir)}/{PID}", check=False)
        return
    say(f"stopped the axllm an earlier run left serving (pid {text}) with {stopped.how}")
    if stopped.warning:
        say(f"WARNING: that axllm {stopped.warning}")
    if stopped.how == "not stopped":
        raise UserError(f"the axllm an earlier run left on {host.name} does not stop: it {stopped.warning}")
    host.run(f"rm -f {quote(run_dir)}/{PID}", check=False)


def start(host: Host, model_dir: str, run_dir: str, port: int, say, stop_wait: float = STOP_WAIT_S) -> Server:
    stop_leftover(host, run_dir, model_dir, say, stop_wait)
    tunnel, url = None, f"http://127.0.0.1:{port}"
    if isinstance(host, SshHost):
        tunnel = host.tunnel(port)
        url = f"http://127.0.0.1:{tunnel.local_port}"
    if healthy(url):  # an answer before we start anything: someone else's server holds the port
        if tunnel is not None:
            tunnel.close()
        raise UserError(
            f"port {port} on {host.name} already answers /health (another axllm?): pass another --port"
        )
    # Only axllm goes to the background, with every stream redirected: ssh returns at once. SIGHUP is
    # ignored as nohup would (BusyBox builds often lack nohup), and exec keeps $! axllm's own pid (its
    # cmdline is what stop_pid checks).
    script = (
        f"mkdir -p {quote(run_dir)} && cd {quote(run_dir)} || exit 1; (trap '' HUP; export NO_COLOR=1 "
        f"AXLLM_NO_COLOR=1; exec axllm serve {shlex.quote(model_dir)} --port {port}) > {LOG} 2>&1 "
        f"< /dev/null & echo $! > {PID}; echo $!"
    )
    try:
        pid = int(host.run(script).stdout.strip().splitlines()[-1])
    except BaseException:
        if tunnel is not None:
            tunnel.close()
        stop_leftover(host, run_dir, model_dir, say, stop_wait)
        raise
    say(f"axllm serve {model_dir} --port {port} started on {host.name} (pid {pid}, log {run_dir}/{LOG})")
    return Server(host, run_dir, model_dir, pid, port, url, tunnel, stop_wait)


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def wait_until_loaded(server: Server, timeout: float, package_mib: float) -> float:
    """Seconds until /health answers; one line naming the cause when axllm dies or never answers."""
    started = time.monotonic()
    checked = started
    while time.monotonic() - started < timeout:
        if healthy(server.url):
            return time.monotonic() - started
        if time.monotonic() - checked > 1.0:
            checked = time.monotonic()
            if not server.alive():
                raise died(server, package_mib)
        time.sleep(0.2)
    stopped = server.stop()
    warning = f" ({stopped.warning})" if stopped.warning else ""
    raise UserError(
        f"axllm did not answer /health within {timeout:.0f} s (--load-timeout); it was stopped{warning}"
    )


def died(server: Server, package_mib: float) -> UserError:
    log = axllm_log.parse(server.log_text())
    cause = log.cause() or "no ERR line in its log"
    if "AX_ENGINE_CreateHandle" in cause:
        cause += f"; the package's .axmodel files are {package_mib:.0f} MiB"
    server.stop()
    return UserError(f"axllm died while loading on {server.host.name}: {cause} (log: {server.run_dir}/{LOG})")
