"""The board step's logic: reading axllm's log (both formats), the report's figures, which verify
translations a package is compared with, and when greedy decoding on the board is comparable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from axera_pipeline.board import axllm_log, report, run

NEW_LOG = """\
12:00:01.000 INF Init:1773 | LLM init start
  3% | ██ | 1 / 5 [0.27s<7.16s, 3.77 count/s] init 0 axmodel ok,remain_cmm(7000 MB)
12:00:02.000 INF Init:1938 | init 1 axmodel ok,remain_cmm(6960 MB)
12:00:02.100 INF Init:1945 | init post axmodel ok,remain_cmm(6900 MB)
12:00:03.000 INF operator():1505 | OpenAI chat request: model=m stream=1 max_tokens=64 has_temperature=0
12:00:03.173 INF Run:3172 | ttft: 173.71 ms
12:00:04.000 NTC Run:3583 | hit eos,decode avg 15.68 token/s
"""
OLD_LOG = """\
100% | ████ |  27 /  27 [2.64s<2.64s, 10.21 count/s] init post axmodel ok,remain_cmm(11442 MB)
[I][                             Run][ 484]: ttft: 125.02 ms
[N][                             Run][ 623]: hit eos,avg 29.29 token/s
[E][                            init][ 421]: AX_ENGINE_CreateHandle
"""


def test_axllm_logs_of_both_formats():
    new = axllm_log.parse(NEW_LOG)
    assert new.remain_cmm == [("0", 7000), ("1", 6960), ("post", 6900)]
    assert new.cmm_left_mb == 6900 and new.cmm_used_mb == 150  # 100 MB over two loads, three loaded
    assert new.ttft_ms == [173.71] and new.decode_tps == [15.68] and new.request_override
    old = axllm_log.parse(OLD_LOG)
    assert old.ttft_ms == [125.02] and old.decode_tps == [29.29] and not old.request_override
    assert old.cause() == "AX_ENGINE_CreateHandle (the board ran out of CMM (ax-llm issue #21))"


def test_a_dying_axllm_names_its_cause():
    text = (
        "12:00:01.000 ERR Init:1827 | create_tokenizer(Llama3) failed\n"
        "12:00:01.001 ERR main:1372 | LLM.Init failed\n"
    )
    cause = axllm_log.parse(text).cause()
    assert cause.startswith("create_tokenizer(Llama3) failed") and "--axllm-tokenizer-type" in cause
    assert axllm_log.parse("\x1b[31m12:00:01.000 ERR x:1 | boom\x1b[0m\n").cause() == "boom"


def test_percentiles():
    assert report.percentile([], 0.5) is None
    assert report.percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert report.percentile([float(i) for i in range(1, 21)], 0.95) == 19.0


def package_with(tmp_path: Path, post: dict, profile: str = "ax650") -> run.Package:
    folder = tmp_path / profile
    folder.mkdir(exist_ok=True)
    (folder / "post_config.json").write_text(json.dumps(post))
    record = {"inputs": {"profile": {"name": profile}}}
    return run.Package(folder, {"post_config_path": "post_config.json"}, record)


def test_greedy_on_the_board_is_comparable_unless_the_package_says_otherwise(tmp_path):
    greedy = {"enable_temperature": False, "enable_repetition_penalty": False}
    assert run.comparable(package_with(tmp_path, greedy), axllm_log.Log())[0]
    penalty = {**greedy, "enable_repetition_penalty": True}
    assert not run.comparable(package_with(tmp_path, penalty), axllm_log.parse(NEW_LOG))[0]
    sampling = {**greedy, "enable_top_p_sampling": True}
    assert run.comparable(package_with(tmp_path, sampling), axllm_log.parse(NEW_LOG))[0]
    assert not run.comparable(package_with(tmp_path, sampling), axllm_log.parse(OLD_LOG))[0]


def verify_report(folder: Path, rows: list[dict], emulate: list[dict], quantized: dict) -> Path:
    folder.mkdir(parents=True)
    (folder / "translations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    inputs = {"quantized": quantized, "emulate": emulate}
    (folder / "manifest.json").write_text(json.dumps({"inputs": inputs}))
    return folder


def test_the_board_meets_verify_s_emulation_of_its_numerics_checkpoint_and_rows(tmp_path):
    """Chosen by what the report was made with, not by its folder's or the profile's name."""
    checkpoint = tmp_path / "gptq-int8"
    rows = [
        {"src": "en", "tgt": "zh", "source": "a", "gptq": "g", "emulated chip-a+chip-b": "e", "rtn": "r"},
        {"src": "en", "tgt": "zh", "source": "b", "gptq": "g2", "emulated chip-a+chip-b": "e2", "rtn": "r2"},
    ]
    bf16_s8 = {"profiles": ["chip-a", "chip-b"], "hidden_state_type": "bf16", "post_weight_type": "s8"}
    files = {"model.safetensors": "abc"}
    verify_report(tmp_path / "gptq-int8-verify", rows, [bf16_s8], files)

    def package(profile: dict, checkpoint_files: dict = files) -> run.Package:
        record = {
            "inputs": {"profile": profile, "checkpoint": checkpoint_files},
            "result": {"checkpoint": str(checkpoint)},
        }
        return run.Package(tmp_path / "pkg", {}, record)

    asked = [{"src": "en", "tgt": "zh", "source": "b"}]
    # Another profile name with the same numerics (ax630c-like): the same emulation.
    found = run.verify_translations(package({"name": "ax630c", "hidden_state_type": "bf16"}), None, asked)
    assert found.variant == "emulated chip-a+chip-b" and found.why == ""
    assert run.align(asked, found.rows, found.variant) == ["e2"]
    # Other numerics: verify's plain GPTQ translations, with the reason.
    fp8 = run.verify_translations(package({"name": "x", "post_weight_type": "fp8_e4m3"}), None, asked)
    assert fp8.variant == "gptq" and "did not emulate x's numerics" in fp8.why
    # Another checkpoint (int4 where verify measured int8): none.
    other = run.verify_translations(package({"name": "x"}, {"model.safetensors": "def"}), None, asked)
    assert other.rows is None and "measured another checkpoint" in other.why
    # Rows verify never translated: none.
    unseen = run.verify_translations(
        package({"name": "x"}), None, [{"src": "en", "tgt": "zh", "source": "new"}]
    )
    assert unseen.rows is None and "translated other rows" in unseen.why


def test_time_to_first_token_comes_from_axllm_first_and_says_so():
    usage = {"ttft_ms": 120.0, "decode_tps": 15.0}
    replies = [
        {"usage": usage, "stream_ttft_s": 0.3, "first_chunk_s": 0.4, "decode_s": 1.0},
        {"usage": usage, "stream_ttft_s": 0.3, "first_chunk_s": 0.4, "decode_s": 1.0},
    ]
    ttft, decode = report.speeds(replies, axllm_log.Log(), [11, 11])
    assert ttft["p50"] == 0.12 and ttft["source"] == "axllm's usage.ttft_ms" and decode["p50"] == 15.0
    older = [{**r, "usage": {}} for r in replies]
    log = axllm_log.Log(ttft_ms=[200.0, 210.0], decode_tps=[9.0, 9.5])
    ttft, decode = report.speeds(older, log, [11, 11])
    assert ttft["source"].startswith("axllm's log") and ttft["p50"] in (0.2, 0.21)
    ttft, decode = report.speeds(older, axllm_log.Log(), [11, 11])
    assert ttft["source"].startswith("stream timing") and ttft["p50"] == 0.3 and decode["p50"] == 10.0


def test_the_stream_s_first_chunk_is_one_decode_step_late():
    from axera_pipeline.board import client

    reply = client.Reply("abc", first_chunk_s=0.5, chunk_times=[0.5, 0.6, 0.7])
    assert abs(reply.stream_ttft_s - 0.4) < 1e-9 and abs(reply.step_s - 0.1) < 1e-9
    assert client.Reply("当前会话上下文已超过该模型的长度上限，请发送 /reset", 0.1).axllm_error()
    assert client.Reply("模型运行失败，请重新尝试。", 0.1).axllm_error()
    assert client.Reply("一个正常的翻译。", 0.1).axllm_error() is None


@pytest.mark.parametrize(
    ("argv", "serve"),
    [
        ([b"axllm", b"serve", b"/m dir", b"--port", b"8000"], True),
        ([b"/usr/bin/python3", b"/x/tests/fakes/axllm", b"serve", b"/m dir", b"--port", b"1"], True),
        ([b"/usr/local/bin/axllm", b"run", b"/m dir"], False),
        ([b"axllm", b"serve", b"/other"], False),
        ([b"sleep", b"300"], False),
        ([], False),
    ],
)
def test_only_this_package_s_axllm_serve_is_signalled(argv, serve):
    from axera_pipeline.board import server

    assert server.is_axllm_serve(b"\0".join(argv) + b"\0", "/m dir") is serve


def test_a_stale_pid_file_never_signals_someone_else(tmp_path):
    """After a reboot the pid in .axllm.pid may be any process: it is left alone."""
    import subprocess

    from axera_pipeline.board import remote, server

    bystander = subprocess.Popen(["sleep", "300"])
    try:
        (tmp_path / server.PID).write_text(f"{bystander.pid}\n")
        said: list[str] = []
        server.stop_leftover(remote.LocalHost(), str(tmp_path), str(tmp_path / "model"), said.append)
        assert bystander.poll() is None and said == []
        assert not (tmp_path / server.PID).exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_the_ssh_socket_folder_is_short_enough_whatever_tmpdir_is(tmp_path, monkeypatch):
    from axera_pipeline.board import remote

    deep = tmp_path / ("d" * 60)
    deep.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(deep))
    folder = remote.control_folder()
    try:
        assert folder is not None and folder.parent == Path("/tmp")
        assert len(str(folder)) + 1 + 40 <= remote.SOCKET_PATH_MAX
    finally:
        folder.rmdir()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--port", "70000"], "--port 70000 is not a TCP port (1-65535)"),
        (["--sentences", "-1"], "--sentences must be 0 or more"),
        (["--remote-dir", "/data/100%"], "holds a %: axllm expands the layer file's path with sprintf"),
    ],
)
def test_usage_mistakes_are_one_line(argv, expected, capsys):
    with pytest.raises(SystemExit) as stopped:
        run.parse_args(["--package", "p", "--host", "h", *argv])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and expected in err and err.count("\n") == 1
