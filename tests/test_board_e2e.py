"""End-to-end on the board: `make all` then `make board` against a real sshd on 127.0.0.1 and the stand-in
axllm (tests/fakes/axllm), which computes with the tiny checkpoint on the chip's numerics. Then the
deploy's guarantees through the real ssh, rsync and scp, and every error, each one line with nothing
left running on the board."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from conftest import ROOT, run_cmd

from axera_pipeline.common import manifest
from axera_pipeline.common.basics import load_json

pytestmark = pytest.mark.e2e


def fake_servers() -> list[str]:
    """Stand-in axllm servers still running anywhere on this machine (the boards are this machine)."""
    done = subprocess.run(["pgrep", "-f", "fakes/axllm serve"], capture_output=True, text=True)
    return done.stdout.split()


def board(package: Path, host: str, config: Path, remote: Path, *extra: str, env: dict | None = None):
    args = [
        "--package",
        str(package),
        "--host",
        host,
        "--ssh-config",
        str(config),
        "--remote-dir",
        str(remote),
    ]
    local_tmp = Path(tempfile.mkdtemp(prefix="bt-"))  # where the shared connection's socket goes
    try:
        env = {**(env or {}), "TMPDIR": str(local_tmp)}
        done = run_cmd(["nox", "-s", "board", "--", *args, *extra], env=env, timeout=900)
        # Only the socket folder counts: uv, which the nox session runs, keeps its own lock files here.
        left = list(local_tmp.glob("axera-board-ssh-*"))
        assert left == [], f"the run left its ssh control folder behind: {left}"
    finally:
        shutil.rmtree(local_tmp, ignore_errors=True)
    return done


def one_error(done) -> str:
    lines = [ln for ln in (done.stdout + done.stderr).splitlines() if ln.startswith("board: error:")]
    assert len(lines) == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stdout + done.stderr
    return lines[0]


def test_make_board_reports_every_figure(made_all, tiny_hunyuan, ssh_boards, tmp_path, board_env):
    remote = tmp_path / "board-home" / "tiny"
    # 16 of verify's 32 rows: each is 64 greedy tokens through the emulation in the stand-in.
    args = f"--ssh-config {ssh_boards.config} --remote-dir {remote} --sentences 16"
    done = run_cmd(["make", "board", "HOST=board-full", f"DIR={made_all}", f"ARGS={args}"], timeout=900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
    said = done.stdout + done.stderr
    assert "the board gives the model verify's token ids on all 16 rows (HunYuan template)" in said
    assert "with rsync" in said and "loaded in" in said
    report = made_all.with_name("ax650-board")
    f = load_json(report / "board.json")
    # axllm has no --version: the binary is named by its path and sha256.
    assert (
        f["board"] == "board-full" and "/axllm (sha256 " in f["axllm"] and "no version command" in f["axllm"]
    )
    assert f["model"] == "tiny-hunyuan" and f["chip_profile"]["name"] == "ax650"
    assert f["load_s"] > 0 and f["cmm_left_mb"] is not None and f["cmm_used_mb"] is not None
    assert f["requests"] == 16 and f["ttft_s"]["p50"] > 0 and f["ttft_s"]["p95"] >= f["ttft_s"]["p50"]
    assert f["decode_tok_s"]["p50"] > 0 and f["axllm_log"]["requests_logged"] == 16
    # axllm's own figures (the final chunk's usage), not the stream's first chunk, a decode step late.
    assert (
        f["ttft_s"]["source"] == "axllm's usage.ttft_ms"
        and f["decode_tok_s"]["source"] == "axllm's usage.decode_tps"
    )
    assert f["ttft_s"]["first_chunk_p50"] > f["ttft_s"]["p50"]
    assert f["prompt_tokens"]["mean"] > 10
    for metric in ("chrf", "bleu"):
        low, high = f[metric]["ci95"]
        assert low <= f[metric]["score"] <= high
    agreement = f["agreement"]
    assert agreement["variant"] == "emulated ax650+ax620e" and agreement["comparable"] is True
    # The board computes what verify measured: the same model on the same numerics, prompted alike.
    # On this random-weight model the next token is often a near tie (logit gaps of one bf16 step), so
    # batched and unbatched bf16 arithmetic part some 64-token outputs half way; most text agrees.
    assert agreement["chrf_vs_emulated"]["score"] >= 60 and agreement["exact"] >= 0.25, agreement
    assert f["template"]["agree"] == f["template"]["rows"] == 16
    md = (report / "board.md").read_text(encoding="utf-8")
    for figure in (
        "time to first token",
        "decode",
        "CMM used / left",
        "chrF vs human",
        "agreement with verify",
    ):
        assert figure in md
    rows = [json.loads(line) for line in (report / "translations.jsonl").read_text().splitlines()]
    assert len(rows) == 16 and all("board" in r and "emulated" in r for r in rows)
    assert "init post axmodel ok,remain_cmm(" in (report / "axllm.log").read_text()
    assert fake_servers() == []
    # Nothing outside the remote folder: its parent holds it alone.
    assert sorted(p.name for p in remote.parent.iterdir()) == ["tiny"]

    # A planted divergence: the board computes with the full-precision model instead. Kept serving.
    board_env(FAKE_AXLLM_MODEL=str(tiny_hunyuan))
    planted = board(
        made_all,
        "board-full",
        ssh_boards.config,
        remote,
        "--keep-serving",
        "--sentences",
        "16",
        "--output",
        str(tmp_path / "planted"),
    )
    assert planted.returncode == 0, planted.stdout[-3000:] + planted.stderr[-3000:]
    assert "nothing to copy" in planted.stdout + planted.stderr  # a second run copies nothing
    said = planted.stdout + planted.stderr
    assert "axllm keeps serving on board-full" in said
    lowered = load_json(tmp_path / "planted" / "board.json")["agreement"]
    half = agreement["chrf_vs_emulated"]["score"] / 2
    assert lowered["chrf_vs_emulated"]["score"] < half, (lowered, agreement)
    assert lowered["exact"] < agreement["exact"]
    assert len(fake_servers()) == 1
    # The printed stop command is SIGINT: axllm de-initialises and gives its CMM back.
    command = said.split("stop it with `ssh board-full ", 1)[1].split("`", 1)[0]
    assert command.startswith("kill -INT ")
    stop = subprocess.run(
        ["ssh", "-F", str(ssh_boards.config), "board-full", command], stdin=subprocess.DEVNULL
    )
    assert stop.returncode == 0
    for _ in range(100):
        if not fake_servers():
            break
        time.sleep(0.2)
    assert fake_servers() == [] and not list(ssh_boards.cmm.glob("held-*.json"))


def test_deploy_copies_once_resumes_and_checks_every_file(made_all, ssh_boards, tmp_path):
    from axera_pipeline.board import deploy
    from axera_pipeline.board.remote import SshHost

    remote = tmp_path / "home" / "pkg"
    files = deploy.package_files(made_all)
    host = SshHost("board-full", ssh_boards.config)
    said: list[str] = []
    try:
        first = deploy.deploy(host, made_all, str(remote), said.append)
        assert first.method == "rsync" and sorted(first.copied) == sorted(f.name for f in files)
        assert deploy.deploy(host, made_all, str(remote), said.append).copied == []
        # An interrupted copy: one file cut short, one never arrived. Only those two are copied again.
        cut = remote / "tokenizer.txt"
        cut.write_bytes(cut.read_bytes()[:100])
        (remote / "post_config.json").unlink()
        resumed = deploy.deploy(host, made_all, str(remote), said.append)
        assert sorted(resumed.copied) == ["post_config.json", "tokenizer.txt"]
    finally:
        host.close()
    for item in files:
        assert manifest.sha256_file(remote / item.name) == item.sha256, item.name
    assert sorted(p.name for p in remote.parent.iterdir()) == ["pkg"]
    # Only what the board's runtime reads: no build log, no README, no float32 table for the demo.
    held = {str(p.relative_to(remote)) for p in remote.rglob("*") if p.is_file()}
    assert held == {f.name for f in files} and not {"build.log", "README.md"} & held
    assert not any(name.endswith(".npy") for name in held)
    assert (made_all / "build.log").is_file()


def test_without_a_socket_folder_every_command_connects_on_its_own(ssh_boards, monkeypatch):
    from axera_pipeline.board import remote

    monkeypatch.setattr(remote, "SOCKET_PATH_MAX", 10)  # no folder is short enough for ssh's socket
    host = remote.SshHost("board-full", ssh_boards.config)
    try:
        assert host.control is None and host.shared == []
        assert host.run("echo ok").stdout.strip() == "ok"
    finally:
        host.close()


def test_without_rsync_on_the_board_scp_copies_and_checks(made_all, ssh_boards, tmp_path):
    from axera_pipeline.board import deploy
    from axera_pipeline.board.remote import SshHost

    remote = tmp_path / "home" / "pkg"
    host = SshHost("board-no-rsync", ssh_boards.config)
    try:
        done = deploy.deploy(host, made_all, str(remote), lambda m: None)
        assert done.method == "scp"  # over SFTP, which this sshd serves
        (remote / "config.json").write_text("{}")
        again = deploy.deploy(host, made_all, str(remote), lambda m: None)
        assert again.copied == ["config.json"]
    finally:
        host.close()
    for item in deploy.package_files(made_all):
        assert manifest.sha256_file(remote / item.name) == item.sha256, item.name
    assert not list(remote.rglob("*.part"))


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("board-off", "cannot reach board-off (ssh: connect to host 127.0.0.1 port"),
        ("board-stranger", "board-stranger refused the login"),
        ("board-no-axllm", "no axllm on board-no-axllm's PATH: install it with Axera's script"),
        ("board-tiny-disk", "board-tiny-disk has 0 MiB free under"),
    ],
)
def test_errors_before_serving(host, expected, made_all, ssh_boards, tmp_path):
    done = board(made_all, host, ssh_boards.config, tmp_path / "remote")
    assert done.returncode != 0
    assert expected in one_error(done)
    assert fake_servers() == []


def editable_copy(package: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "pkg" / "ax650"
    shutil.copytree(package, copy)
    return copy


def rehash(package: Path) -> None:
    """The manifest names every file's sha256: an edited package must say what it now holds."""
    record = load_json(package / "manifest.json")
    files = record["result"]["files"]
    for name in files:
        files[name] = manifest.sha256_file(package / name)
    (package / "manifest.json").write_text(json.dumps(record, indent=2))


def test_a_package_that_fails_check_package_is_not_copied(made_all, ssh_boards, tmp_path):
    package = editable_copy(made_all, tmp_path)
    next(package.glob("*_l1_together.axmodel")).unlink()
    done = board(package, "board-full", ssh_boards.config, tmp_path / "remote")
    assert "would not load on the board, so nothing is copied: 1 of 2 layer files" in one_error(done)
    assert not (tmp_path / "remote").exists()


@pytest.mark.parametrize(
    ("name", "hint"), [("Llama3", ""), ("hunyuan", " (the name is HunYuan: case counts)")]
)
def test_a_tokenizer_type_axllm_does_not_register_stops_before_copying(
    name, hint, made_all, ssh_boards, tmp_path
):
    """axllm's LLM.Init would fail on the board (create_tokenizer): nothing is copied or started."""
    package = editable_copy(made_all, tmp_path)
    config = load_json(package / "config.json")
    config["tokenizer_type"] = name
    (package / "config.json").write_text(json.dumps(config))
    rehash(package)
    remote = tmp_path / "remote"
    line = one_error(board(package, "board-full", ssh_boards.config, remote))
    assert "would not load on the board, so nothing is copied" in line
    assert f"tokenizer_type {name!r} is not registered in axllm, LLM.Init fails{hint}" in line
    assert not remote.exists() and fake_servers() == []


@pytest.mark.parametrize("case", ["embedding", "cmm"])
def test_the_server_dies_while_loading(case, made_all, ssh_boards, tmp_path, board_env):
    package = editable_copy(made_all, tmp_path)
    if case == "embedding":
        layer0 = next(package.glob("*_l0_together.axmodel"))
        graph = load_json(layer0)
        graph["hidden_size"] = 128  # layers built for another width than config.json's table
        layer0.write_text(json.dumps(graph))
        expected = "tokens_embed_size mismatch: config(256) != model(128)"
    else:
        board_env(FAKE_AXLLM_CMM_MB="0.0005")
        expected = (
            "AX_ENGINE_CreateHandle (the board ran out of CMM (ax-llm issue #21)); the package's .axmodel"
        )
    rehash(package)
    done = board(package, "board-full", ssh_boards.config, tmp_path / "remote")
    line = one_error(done)
    assert "axllm died while loading on board-full" in line and expected in line
    assert fake_servers() == []


def test_a_request_that_times_out_stops_the_server(made_all, ssh_boards, tmp_path, board_env):
    board_env(FAKE_AXLLM_STALL="1")
    done = board(made_all, "board-full", ssh_boards.config, tmp_path / "remote", "--request-timeout", "5")
    assert "a request got no answer within 5 s (--request-timeout)" in one_error(done)
    assert fake_servers() == []


def test_ctrl_c_stops_the_server_with_sigint(made_all, ssh_boards, tmp_path, board_env):
    from conftest import Run

    board_env(FAKE_AXLLM_STALL="1")
    args = ["--package", str(made_all), "--host", "board-full", "--ssh-config", str(ssh_boards.config)]
    args += ["--remote-dir", str(tmp_path / "remote"), "--output", str(tmp_path / "report")]
    run = Run(["nox", "-s", "board", "--", *args])
    run.wait_for("measuring 32 translations")
    time.sleep(1)
    run.signal(signal.SIGINT)
    output = run.finish(timeout=300)
    assert run.proc.returncode in (130, 2), output[-3000:]
    assert "board: interrupted; the earlier output is unchanged" in output
    log = (tmp_path / "remote" / ".axllm.log").read_text()
    assert "received signal 2, stopping server" in log and "LLM deinit ok" in log
    assert fake_servers() == [] and not (tmp_path / "report").exists()
    assert not list(ssh_boards.cmm.glob("held-*.json"))


def test_an_axllm_that_ignores_sigint_is_killed_with_a_cmm_warning(made_all, ssh_boards, tmp_path, board_env):
    """The escalation, and why it is the last resort: the killed stand-in keeps its CMM, as ax-llm #60
    reports, and the next load on that board fails until a reboot (here: the record removed)."""
    board_env(FAKE_AXLLM_IGNORE_SIGINT="1")
    remote = tmp_path / "remote"
    done = board(made_all, "board-full", ssh_boards.config, remote, "--sentences", "1", "--stop-timeout", "2")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    said = done.stdout + done.stderr
    assert "WARNING: axllm did not stop on SIGINT within 2 s and was killed with SIGTERM" in said
    assert "may keep its CMM until a reboot (ax-llm issue #60)" in said and fake_servers() == []
    leaked = list(ssh_boards.cmm.glob("held-*.json"))
    assert len(leaked) == 1
    try:
        board_env()
        again = board(made_all, "board-full", ssh_boards.config, remote, "--sentences", "1")
        line = one_error(again)
        assert "axllm died while loading on board-full" in line and "AX_ENGINE_CreateHandle" in line
    finally:
        for record in leaked:
            record.unlink()  # the reboot


def test_typed_input_never_reaches_the_board(made_all, ssh_boards, tmp_path):
    """What the user types during a run (here: a command line written to its stdin) is read by nothing
    on the board: no ssh, rsync or scp reads this process's stdin, and the tunnel opens no session."""
    marker = tmp_path / "typed-input-ran"
    args = ["--package", str(made_all), "--host", "board-full", "--ssh-config", str(ssh_boards.config)]
    args += ["--remote-dir", str(tmp_path / "remote"), "--sentences", "2", "--output", str(tmp_path / "r")]
    local_tmp = tempfile.mkdtemp(prefix="bt-")
    proc = subprocess.Popen(
        ["nox", "-s", "board", "--", *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "TMPDIR": local_tmp},
    )
    for _ in range(20):
        proc.stdin.write(f"touch {marker}\n")
    proc.stdin.flush()
    try:
        output, _ = proc.communicate(timeout=900)
    finally:
        shutil.rmtree(local_tmp, ignore_errors=True)
    assert proc.returncode == 0, output[-3000:]
    assert not marker.exists(), "a line typed during the run was run on the board"


def test_a_prompt_longer_than_the_prefill_is_refused_before_copying(made_all, ssh_boards, tmp_path):
    package = editable_copy(made_all, tmp_path)
    config = load_json(package / "config.json")
    config["prefill_max_token_num"] = 16
    (package / "config.json").write_text(json.dumps(config))
    rehash(package)
    remote = tmp_path / "remote"
    line = one_error(board(package, "board-full", ssh_boards.config, remote))
    assert "row 1 of the eval set is" in line and "longer than the 16 the package prefills" in line
    assert not remote.exists() and fake_servers() == []


def test_axllm_s_error_text_is_an_error_not_a_translation(made_all, ssh_boards, tmp_path, board_env):
    """axllm answers a prompt over its limit with status 200 and its error text as the content."""
    board_env(FAKE_AXLLM_PREFILL_MAX="8")
    done = board(
        made_all, "board-full", ssh_boards.config, tmp_path / "remote", "--output", str(tmp_path / "r")
    )
    line = one_error(done)
    assert "axllm answered row 1 with its error text, not a translation: '当前会话上下文已超过" in line
    assert fake_servers() == [] and not (tmp_path / "r").exists()


def odd_remote(tmp_path: Path) -> Path:
    """A remote folder a shell splits, quotes break, and only UTF-8 spells."""
    return tmp_path / "board home" / 'it\'s "ünï cödé" $HOME;x'


def test_a_busybox_board_with_any_remote_path(made_all, ssh_boards, tmp_path, board_env):
    """Only BusyBox's applets and ash on the board (no GNU sha256sum flags, no rsync: scp over SFTP);
    a build that answers `axllm version` is named by it."""
    from helpers import sshd

    if sshd.BUSYBOX is None:
        pytest.skip("busybox is not installed (Debian: apt install busybox)")
    board_env(FAKE_AXLLM_VERSION="'axllm 2.1.0 (board build)'")
    remote = odd_remote(tmp_path)
    out = tmp_path / "report"
    done = board(
        made_all, "board-busybox", ssh_boards.config, remote, "--sentences", "4", "--output", str(out)
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
    assert "with scp" in done.stdout + done.stderr
    f = load_json(out / "board.json")
    assert f["axllm"] == "axllm 2.1.0 (board build)" and f["requests"] == 4
    assert f["deploy"]["remote_dir"] == str(remote) and f["deploy"]["method"] == "scp"
    for item in manifest.read(made_all)["result"]["files"]:
        if item not in ("build.log", "README.md") and not item.endswith(".npy"):
            assert (remote / item).is_file(), item
    assert fake_servers() == []


def test_a_dropbear_board_gets_scp_s_legacy_protocol(made_all, ssh_boards, tmp_path, board_env):
    """Dropbear has no SFTP server: OpenSSH 9's scp fails, and the copy goes on with `scp -O`, the
    remote path quoted for the board's shell. This build sends no usage: axllm's log gives TTFT."""
    if ssh_boards.dropbear is None:
        pytest.skip(ssh_boards.no_dropbear)
    board_env(FAKE_AXLLM_USAGE="0")
    remote = odd_remote(tmp_path)
    out = tmp_path / "report"
    done = board(
        made_all, "board-dropbear", ssh_boards.config, remote, "--sentences", "4", "--output", str(out)
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
    said = done.stdout + done.stderr
    assert "has no SFTP server (Dropbear?): scp's legacy protocol (-O) from here on" in said
    f = load_json(out / "board.json")
    assert f["deploy"]["method"] == "scp -O" and f["requests"] == 4
    assert f["ttft_s"]["source"] == "axllm's log (ttft lines)"
    assert fake_servers() == []
