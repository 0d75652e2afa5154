"""Real tokenizers for the tests, offline: llama-cpp-python's sdist (PyPI) ships vocabulary-only GGUF
files of real models with the ids their tokenizers give llama.cpp's test texts. Fetched once into a
cache, turned into Hugging Face folders (gguf_vocab.py, in the GPTQ environment), checked against
those ids. Standard library only: the test fixtures, the recorder of Axera's vectors and the
tokenizer-forms benchmark share it.

HY-MT-like variants add HunYuan's chat markers to a real vocabulary as special tokens, with HY-MT's
chat template, so that the package's HY-MT prompts can be measured on real vocabularies.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

SDIST = "llama-cpp-python==0.3.36"
SDIST_FILE = "llama_cpp_python-0.3.36.tar.gz"
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
MODELS = "llama_cpp_python-0.3.36/vendor/llama.cpp/models"
BYTE_LEVEL = ("qwen2", "qwen35", "llama-bpe", "deepseek-llm")
SENTENCEPIECE = ("llama-spm", "phi-3")
VOCABS = (*BYTE_LEVEL, *SENTENCEPIECE)
HELPERS = Path(__file__).resolve().parent
ROOT = HELPERS.parents[1]
HY_MT_FIXTURE = ROOT / "tests" / "fixtures" / "models" / "HY-MT1.5-1.8B"
# HY-MT's markers as its tokenizer has them: BOS, the end of an answer (its EOS), pad, the chat turns.
HUNYUAN_MARKERS = (
    "<｜hy_begin▁of▁sentence｜>",
    "<｜hy_place▁holder▁no▁2｜>",
    "<｜hy_▁pad▁｜>",
    "<｜hy_User｜>",
    "<｜hy_Assistant｜>",
    "<｜hy_place▁holder▁no▁3｜>",
    "<｜hy_place▁holder▁no▁8｜>",
)


def cache() -> Path:
    return Path(os.environ.get("AXERA_TEST_CACHE") or Path.home() / ".cache" / "axera-llm-pipeline" / "tests")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def models_dir() -> Path:
    """The sdist's vocabulary files (and their .inp/.out), downloaded and unpacked once."""
    target = cache() / "llama-vocab"
    if (target / "complete").is_file():
        return target
    cache().mkdir(parents=True, exist_ok=True)
    archive = cache() / SDIST_FILE
    if not archive.is_file() or sha256(archive) != SDIST_SHA256:
        with tempfile.TemporaryDirectory(dir=cache()) as scratch:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:"]
                + ["--disable-pip-version-check", SDIST, "-d", scratch],
                check=True,
                stdin=subprocess.DEVNULL,
            )
            Path(scratch, SDIST_FILE).replace(archive)
    if sha256(archive) != SDIST_SHA256:
        raise RuntimeError(f"{archive} is not the {SDIST} sdist this test pins (sha256 differs)")
    stage = Path(tempfile.mkdtemp(prefix=".llama-vocab-", dir=cache()))
    wanted = {f"ggml-vocab-{n}.gguf{ext}" for n in VOCABS for ext in ("", ".inp", ".out")}
    with tarfile.open(archive) as tar:
        for member in tar:
            name = member.name.rpartition("/")[2]
            if member.name.startswith(MODELS) and name in wanted:
                with tar.extractfile(member) as source, open(stage / name, "wb") as out:
                    shutil.copyfileobj(source, out)
    (stage / "complete").write_text(SDIST_SHA256 + "\n")
    shutil.rmtree(target, ignore_errors=True)
    stage.rename(target)
    return target


def folders(gptq_python: str) -> dict[str, Path]:
    """Each vocabulary as a Hugging Face folder that gives llama.cpp's test texts the real ids."""
    out = cache() / "hf"
    marker = out / "checked.json"
    if marker.is_file() and set(json.loads(marker.read_text())) == set(VOCABS):
        return {name: out / name for name in VOCABS}
    shutil.rmtree(out, ignore_errors=True)
    done = subprocess.run(
        [gptq_python, str(HELPERS / "gguf_vocab.py"), str(models_dir()), str(out), *VOCABS],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise RuntimeError(f"gguf_vocab.py failed: {done.stderr[-2000:]}")
    checked = json.loads(done.stdout.strip().splitlines()[-1])
    wrong = {n: c for n, c in checked.items() if c["identical"] != c["cases"]}
    if wrong:
        raise RuntimeError(f"these folders do not give llama.cpp's test texts the real ids: {wrong}")
    marker.write_text(json.dumps(checked, indent=2, ensure_ascii=False))
    return {name: out / name for name in VOCABS}


def hy_mt_like(source: Path, target: Path) -> Path:
    """A real vocabulary with HunYuan's markers as special tokens and HY-MT's chat template."""
    if (target / "tokenizer_config.json").is_file():
        return target
    tokenizer = json.loads((source / "tokenizer.json").read_text(encoding="utf-8"))
    taken = {a["id"] for a in tokenizer["added_tokens"]} | set(tokenizer["model"]["vocab"].values())
    next_id = max(taken) + 1
    for offset, marker in enumerate(HUNYUAN_MARKERS):
        tokenizer["added_tokens"].append(
            {
                "id": next_id + offset,
                "content": marker,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": True,
            }
        )
    if tokenizer.get("post_processor", {}).get("type") == "TemplateProcessing":
        tokenizer["post_processor"] = None  # HY-MT's template writes its own BOS
    template = json.loads((HY_MT_FIXTURE / "tokenizer_config.json").read_text(encoding="utf-8"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": HUNYUAN_MARKERS[0],
        "eos_token": HUNYUAN_MARKERS[1],
        "pad_token": HUNYUAN_MARKERS[2],
        "chat_template": template["chat_template"],
        "model_max_length": 1_000_000,
        "clean_up_tokenization_spaces": False,
    }
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    (stage / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False), encoding="utf-8")
    (stage / "tokenizer_config.json").write_text(json.dumps(config, ensure_ascii=False, indent=2))
    shutil.copy(HY_MT_FIXTURE / "config.json", stage / "config.json")
    if (source / "tokenizer.model").is_file():  # SentencePiece: the markers are added on top of it
        shutil.copy(source / "tokenizer.model", stage / "tokenizer.model")
    shutil.rmtree(target, ignore_errors=True)
    stage.rename(target)
    return target


def hy_mt_folders(gptq_python: str) -> dict[str, Path]:
    """The byte-level vocabularies (and the SentencePiece ones, as type 0's limit) with HY-MT's markers."""
    real = folders(gptq_python)
    base = cache() / "hy-mt-like"
    base.mkdir(parents=True, exist_ok=True)
    return {name: hy_mt_like(real[name], base / name) for name in VOCABS}
