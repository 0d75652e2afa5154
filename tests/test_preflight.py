"""The preflight: will a model build with pulsar2 and fit on the board, judged in seconds from its configs.

Unit tests for the verdicts, then `nox -s preflight` on the config-only fixtures of ten real families
(tests/fixtures/models/), on the tiny models' real tokenizers, and `make all` on a refused model."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path

import pytest
from conftest import FAKES, ROOT, run_cmd

from axera_pipeline.common import hub_files, resources
from axera_pipeline.common.cli import UserError
from axera_pipeline.toolchain import model_types, npu_memory, profiles

FIXTURES = ROOT / "tests" / "fixtures" / "models"


def config_of(model: str) -> dict:
    return json.loads((FIXTURES / model / "config.json").read_text(encoding="utf-8"))


def test_model_type_verdicts():
    ok = model_types.verdict(["hunyuan_v1_dense"], {})
    assert ok.status == "ok" and "5.1-patch1" in ok.detail and "HY-MT1.5-1.8B.axera" in ok.detail
    refused = model_types.verdict(["mistral3", "ministral3"], config_of("Ministral-3-3B-Instruct-2512"))
    assert refused.status == "fail" and "AssertionError: model_type error ministral3" in refused.detail
    assert "#32" in refused.detail
    assert model_types.verdict(["llava", "llama"], {}).status == "fail"
    instead = model_types.verdict(["minicpm5"], {})
    assert instead.status == "fail" and "--model-type llama" in instead.detail
    unknown = model_types.verdict(["brand_new_arch"], {})
    assert unknown.status == "warn" and "pulsar2 itself decides" in unknown.detail
    # Phi-4-mini: phi3 with partial rotary embeddings failed on 6.0 only.
    phi4 = config_of("Phi-4-mini-instruct")
    assert model_types.verdict(["phi3"], phi4).status == "warn"
    assert model_types.verdict(["phi3"], phi4, "6.0").status == "fail"
    assert model_types.verdict(["phi3"], {**phi4, "partial_rotary_factor": 1.0}, "6.0").status == "ok"
    # pulsar2's --model_type, when the build will pass one, is what counts.
    assert model_types.verdict(["minicpm5"], {}, override="llama").status == "ok"


def test_board_memory_of_hy_mt():
    need = npu_memory.estimate(config_of("HY-MT1.5-1.8B"), profiles.load("ax650"))
    mib = npu_memory.MIB
    # 32 layers x 48.2M weights at int4 + a bf16 scale per 128, 120818 x 2048 s8 lm_head, 2k bf16 KV.
    assert 860 < need.layer_files / mib < 880 and 265 < need.post_file / mib < 275
    assert need.kv_cache == 32 * 2 * 2048 * 4 * 128 * 2 and need.embedding == 120818 * 2048 * 2
    assert {f.board: f.verdict for f in npu_memory.fits_on(need, "AX650")}["llm-8850"] == "fits"
    bf16 = npu_memory.estimate(config_of("HY-MT1.5-1.8B"), profiles.load("ax650"), bits=8)
    assert bf16.layer_files > 1.9 * need.layer_files


def test_fit_thresholds():
    need = npu_memory.Need(layer_files=2000 * 2**20, post_file=0, kv_cache=0, runtime=0, embedding=0)
    cards = {f.board: f.verdict for f in npu_memory.fits_on(need, "AX650")}
    assert cards["llm-8850"] == "fits" and cards["axcl-4gb"] == "fits"
    need = npu_memory.Need(layer_files=2800 * 2**20, post_file=0, kv_cache=0, runtime=0, embedding=0)
    assert npu_memory.fit(need, "axcl-4gb").verdict == "tight"
    need = npu_memory.Need(layer_files=3100 * 2**20, post_file=0, kv_cache=0, runtime=0, embedding=0)
    assert npu_memory.fit(need, "axcl-4gb").verdict == "does not fit"
    big_table = npu_memory.Need(layer_files=0, post_file=0, kv_cache=0, runtime=0, embedding=700 * 2**20)
    assert npu_memory.fit(big_table, "module-llm").verdict == "does not fit"  # its RAM, not its CMM
    assert npu_memory.fit(big_table, "llm-8850").verdict == "fits"  # a card's table lives on its host


def test_pulsar2_ram_and_the_parallel_to_try():
    size = 3.6 * resources.GIB
    assert resources.pulsar2_ram(size, 32) > 32 * resources.GIB  # the notes: over 32 GB at high --parallel
    best = resources.largest_parallel(size, 24 * resources.GIB)
    assert (
        resources.pulsar2_ram(size, best) <= 0.9 * 24 * resources.GIB < resources.pulsar2_ram(size, best + 1)
    )
    assert resources.largest_parallel(size, 6 * resources.GIB) == 0


def test_a_folder_without_config_is_one_line(tmp_path: Path):
    with pytest.raises(UserError, match="has no config.json"):
        hub_files.locate(str(tmp_path))
    with pytest.raises(UserError, match="neither a folder nor a hub id"):
        hub_files.locate("./no/such/folder")


class FakeHub(http.server.BaseHTTPRequestHandler):
    """Serves `/<org>/<name>/resolve/main/<file>` from a folder, and records every path asked for."""

    folder: Path
    asked: list[str] = []

    def do_GET(self):  # noqa: N802 - http.server's name
        type(self).asked.append(self.path)
        name = self.path.rsplit("/", 1)[-1]
        path = self.folder / name
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_hub(tmp_path: Path):
    served = tmp_path / "served"
    served.mkdir()
    for name in ("config.json", "tokenizer_config.json"):
        (served / name).write_bytes((FIXTURES / "Qwen3-0.6B" / name).read_bytes())
    (served / "model.safetensors").write_bytes(b"never fetched")
    handler = type("Hub", (FakeHub,), {"folder": served, "asked": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()


def test_a_hub_id_fetches_only_the_small_files(fake_hub, tmp_path: Path, monkeypatch):
    endpoint, handler = fake_hub
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    folder = hub_files.locate("Qwen/Qwen3-0.6B")
    assert json.loads((folder / "config.json").read_text())["model_type"] == "qwen3"
    assert not any(p.endswith(".safetensors") for p in handler.asked)
    asked = len(handler.asked)
    assert hub_files.locate("Qwen/Qwen3-0.6B") == folder and len(handler.asked) == asked  # cached


def test_an_unreachable_hub_with_nothing_cached(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(hub_files.Unreachable, match="cannot reach 127.0.0.1:9"):
        hub_files.locate("someone/some-model")


def preflight(*args: str, env: dict | None = None):
    return run_cmd(
        ["nox", "-s", "preflight", "--", *args], env={"PULSAR2_BIN": str(FAKES / "pulsar2"), **(env or {})}
    )


def verdicts(stdout: str) -> dict[str, str]:
    """`what` -> status from the preflight's one-line checks."""
    found = {}
    for line in stdout.splitlines():
        status, rest = line[:8].strip(), line[8:]
        if status in ("ok", "warn", "fail", "note"):
            found[rest[:22].strip()] = status
    return found


# What each family gets: the checks that decide (the rest are reported for every model).
EXPECTED = {
    "HY-MT1.5-1.8B": {"pulsar2 model type": "ok", "chat template": "ok", "template agreement": "ok"},
    "Qwen3-0.6B": {"pulsar2 model type": "ok", "chat template": "ok", "template agreement": "ok"},
    # Qwen2.5's and SmolLM2's templates add a default system prompt that axllm's do not write.
    "Qwen2.5-1.5B-Instruct": {
        "pulsar2 model type": "ok",
        "chat template": "ok",
        "template agreement": "warn",
    },
    "SmolLM2-135M-Instruct": {
        "pulsar2 model type": "ok",
        "chat template": "ok",
        "template agreement": "warn",
        "group size": "fail",  # hidden 576 is not a multiple of 128
    },
    "Llama-3.2-1B-Instruct": {
        "pulsar2 model type": "ok",
        "chat template": "warn",
        "template agreement": "warn",
    },
    "TinyLlama-1.1B-Chat-v1.0": {"pulsar2 model type": "ok", "chat template": "warn"},
    "gemma-3-270m-it": {"pulsar2 model type": "ok", "chat template": "ok", "template agreement": "ok"},
    "Ministral-3-3B-Instruct-2512": {"pulsar2 model type": "fail", "chat template": "warn"},
    "llava-1.5-7b-hf": {"pulsar2 model type": "fail", "chat template": "warn"},
    "Phi-4-mini-instruct": {"pulsar2 model type": "warn", "chat template": "warn"},
}


@pytest.mark.e2e
@pytest.mark.parametrize("model", sorted(EXPECTED))
def test_preflight_on_real_families(model):
    done = preflight("--model", str(FIXTURES / model))
    found = verdicts(done.stdout)
    for what, status in EXPECTED[model].items():
        assert found.get(what) == status, (what, done.stdout)
    assert {"board memory ax650", "board memory ax620e", "pulsar2 RAM ax650", "quantize time"} <= found.keys()
    failing = "fail" in EXPECTED[model].values()
    assert (done.returncode != 0) == failing, done.stdout + done.stderr
    if failing:
        out = done.stdout + done.stderr
        assert "preflight: error:" in out and "Traceback" not in out


@pytest.mark.e2e
def test_preflight_with_a_board(tmp_path):
    fits = preflight("--model", str(FIXTURES / "HY-MT1.5-1.8B"), "--board", "llm-8850")
    assert fits.returncode == 0, fits.stdout
    assert verdicts(fits.stdout)["board memory ax650"] == "ok" and "board memory ax620e" not in fits.stdout
    assert "fits: M5Stack LLM-8850" in fits.stdout
    too_big = preflight("--model", str(FIXTURES / "Phi-4-mini-instruct"), "--board", "module-llm")
    assert too_big.returncode != 0 and "does not fit: M5Stack Module LLM" in too_big.stdout
    assert "board memory ax620e: does not fit" in too_big.stdout + too_big.stderr


@pytest.mark.e2e
def test_preflight_without_the_hub_goes_on():
    done = preflight(
        "--model", "someone/some-model", env={"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": "/nonexistent"}
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cannot reach 127.0.0.1:9" in done.stdout and "preflight skipped" in done.stdout


@pytest.mark.e2e
def test_template_agreement_on_real_tokenizers(tiny_hunyuan, tiny_llama):
    for model in (tiny_hunyuan, tiny_llama):
        done = preflight("--model", str(model), "--chip", "ax650")
        assert done.returncode == 0, done.stdout + done.stderr
        line = next(ln for ln in done.stdout.splitlines() if " token ids " in ln)
        assert line.startswith("ok") and "32/32 held-out rows give the model verify's token ids" in line
        assert "huggingface BPE (type 3), added tokens in byte-level form" in done.stdout
    # A planted mismatch: the HunYuan model prompted in ChatML, as a wrong tokenizer_type would. Its
    # vocabulary has no <|im_start|>: on the board that marker becomes pieces, which stops the run.
    planted = preflight("--model", str(tiny_hunyuan), "--chip", "ax650", "--axllm-tokenizer-type", "Qwen3")
    assert planted.returncode != 0
    line = next(ln for ln in planted.stdout.splitlines() if " token ids " in ln)
    assert line.startswith("fail") and "keeps axllm's Qwen3 prompt intact" in line and "<|im_start|>" in line


@pytest.mark.e2e
def test_make_all_stops_before_quantizing_a_refused_model(tmp_path):
    done = run_cmd(
        ["make", "all", f"MODEL={FIXTURES / 'llava-1.5-7b-hf'}"],
        env={"BUILD_DIR": str(tmp_path), "PULSAR2_BIN": str(FAKES / "pulsar2")},
        timeout=300,
    )
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert "model_type error llava" in out and "; not quantizing" in out
    assert "Running session quantize" not in out
    assert not list(tmp_path.rglob("gptq-int4*"))


SAME_AS_TRANSFORMERS = """
import json, sys
from pathlib import Path
from transformers.utils.chat_template_utils import render_jinja_template
from axera_pipeline.common import chat_format
from axera_pipeline.gptq.template_check import hf_text, special_strings

messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Translate: 你好"}]
differ = []
for folder in sorted(Path(sys.argv[1]).iterdir()):
    if not folder.is_dir():
        continue
    template, specials = chat_format.model_template(folder), special_strings(folder)
    for chat in (messages, messages[1:]):
        theirs = render_jinja_template([chat], chat_template=template, add_generation_prompt=True, **specials)
        while isinstance(theirs, (list, tuple)):
            theirs = theirs[0]
        if hf_text(template, chat, specials) != theirs:
            differ.append(folder.name)
print(json.dumps(differ))
"""


def test_the_quick_renderer_is_transformers(gptq_python):
    """The template check renders config-only folders with Jinja set up as transformers sets it up."""
    done = run_cmd([gptq_python, "-c", SAME_AS_TRANSFORMERS, str(FIXTURES)])
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
