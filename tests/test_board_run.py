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


def test_the_emulation_for_this_chip_is_the_one_compared(tmp_path):
    verify = tmp_path / "gptq-int4-verify"
    verify.mkdir()
    rows = [
        {"src": "en", "tgt": "zh", "source": "a", "gptq": "g", "emulated ax650+ax620e": "e", "rtn": "r"},
        {"src": "en", "tgt": "zh", "source": "b", "gptq": "g2", "emulated ax650+ax620e": "e2", "rtn": "r2"},
    ]
    (verify / "translations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    package = package_with(tmp_path, {}, "ax620e")
    found, variant, folder = run.verify_translations(package, None)
    assert variant == "emulated ax650+ax620e" and folder == verify
    asked = [{"src": "en", "tgt": "zh", "source": "b"}, {"src": "en", "tgt": "zh", "source": "new"}]
    assert run.align(asked, found, variant) == ["e2", None]
    assert run.verify_translations(package_with(tmp_path, {}, "ax630c"), None)[1] == "gptq"


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
    ],
)
def test_usage_mistakes_are_one_line(argv, expected, capsys):
    with pytest.raises(SystemExit) as stopped:
        run.parse_args(["--package", "p", "--host", "h", *argv])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and expected in err and err.count("\n") == 1
