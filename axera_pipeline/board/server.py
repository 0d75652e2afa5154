"""`axllm serve` on the board: started in the background with its log in a file there, waited for on
/health through an SSH tunnel, and stopped with SIGTERM (never SIGKILL: axllm does not always give the
CMM back after one, ax-llm issue #60), also on Ctrl-C."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from axera_pipeline.board import axllm_log
from axera_pipeline.board.remote import Host, SshHost, Tunnel, quote
from axera_pipeline.common.cli import UserError

LOG = ".axllm.log"
PID = ".axllm.pid"
STOP_WAIT_S = 20


@dataclass
class Server:
    host: Host
    run_dir: str  # where the log and the pid file live
    pid: int
    port: int  # on the board
    url: str  # as this machine reaches it
    tunnel: Tunnel | None = None

    def log_text(self) -> str:
        return self.host.run(f"cat {quote(self.run_dir)}/{LOG} 2>/dev/null", check=False).stdout

    def alive(self) -> bool:
        return self.host.run(f"kill -0 {self.pid} 2>/dev/null", check=False).returncode == 0

    def stop(self) -> bool:
        """SIGTERM, then wait for it to exit; False when it is still running after STOP_WAIT_S."""
        if self.tunnel is not None:
            self.tunnel.close()
        tries = STOP_WAIT_S * 5
        script = (
            f"kill -TERM {self.pid} 2>/dev/null || exit 0; i=0; while [ $i -lt {tries} ]; do "
            f"kill -0 {self.pid} 2>/dev/null || exit 0; sleep 0.2; i=$((i+1)); done; exit 1"
        )
        stopped = self.host.run(script, check=False, timeout=STOP_WAIT_S + 30).returncode == 0
        if stopped:
            self.host.run(f"rm -f {quote(self.run_dir)}/{PID}", check=False)
        return stopped


def stop_leftover(host: Host, run_dir: str) -> None:
    """A server an earlier run left (--keep-serving, or a crash) would hold the port and the CMM."""
    script = (
        f"p=$(cat {quote(run_dir)}/{PID} 2>/dev/null) && kill -0 $p 2>/dev/null && kill -TERM $p && "
        f"i=0 && while kill -0 $p 2>/dev/null && [ $i -lt {STOP_WAIT_S * 5} ]; do sleep 0.2; i=$((i+1)); done"
    )
    host.run(script, check=False, timeout=STOP_WAIT_S + 30)


def start(host: Host, model_dir: str, run_dir: str, port: int, say) -> Server:
    stop_leftover(host, run_dir)
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
    # Only axllm goes to the background, with every stream redirected: ssh returns at once.
    script = (
        f"mkdir -p {quote(run_dir)} && cd {quote(run_dir)} || exit 1; NO_COLOR=1 AXLLM_NO_COLOR=1 "
        f"nohup axllm serve {quote(model_dir)} --port {port} > {LOG} 2>&1 < /dev/null & "
        f"echo $! > {PID}; echo $!"
    )
    try:
        pid = int(host.run(script).stdout.strip().splitlines()[-1])
    except BaseException:
        if tunnel is not None:
            tunnel.close()
        stop_leftover(host, run_dir)
        raise
    say(f"axllm serve {model_dir} --port {port} started on {host.name} (pid {pid}, log {run_dir}/{LOG})")
    return Server(host, run_dir, pid, port, url, tunnel)


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
    server.stop()
    raise UserError(f"axllm did not answer /health within {timeout:.0f} s (--load-timeout); it was stopped")


def died(server: Server, package_mib: float) -> UserError:
    log = axllm_log.parse(server.log_text())
    cause = log.cause() or "no ERR line in its log"
    if "AX_ENGINE_CreateHandle" in cause:
        cause += f"; the package's .axmodel files are {package_mib:.0f} MiB"
    server.stop()
    return UserError(f"axllm died while loading on {server.host.name}: {cause} (log: {server.run_dir}/{LOG})")
