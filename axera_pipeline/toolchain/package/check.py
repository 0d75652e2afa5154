"""Check a model folder as axllm and Axera's Python demo would read it: one line per problem.

The rules are theirs (docs/package.md, from ax-llm's src/main.cpp and tokenizer.axera's reader,
HY-MT1.5-1.8B.axera python/): works on our packages and on Axera's own releases alike.
"""

from __future__ import annotations

import ast
import base64
import binascii
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from axera_pipeline.common import axllm_prompts, axllm_tokenizer, chat_format, manifest
from axera_pipeline.common import package_layout as layout
from axera_pipeline.common.checkpoint import has_tokenizer
from axera_pipeline.toolchain.package import id_check

REQUIRED = {
    "template_filename_axmodel": str,
    "filename_post_axmodel": str,
    "url_tokenizer_model": str,
    "tokenizer_type": str,
    "filename_tokens_embed": str,
    "axmodel_num": int,
    "tokens_embed_num": int,
    "tokens_embed_size": int,
    "model_name": str,
}
POST_CONFIG = {
    "enable_temperature": bool,
    "enable_repetition_penalty": bool,
    "enable_top_p_sampling": bool,
    "enable_top_k_sampling": bool,
    "temperature": float,
    "repetition_penalty": float,
    "top_p": float,
    "penalty_window": int,
    "top_k": int,
}
TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
INT32_MAX = 2**31 - 1


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)  # it would not load
    # It loads, but the board will not compute what verify did.
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def has_type(value: Any, kind: type) -> bool:
    """As axllm's JSON parser takes them: bools are not numbers, floats are not integers."""
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def read_object(path: Path, report: Report) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        report.problems.append(f"{path.name} is missing")
        return None
    except (OSError, ValueError) as exc:
        report.problems.append(f"{path.name} is not valid JSON ({str(exc).splitlines()[0]})")
        return None
    if not isinstance(data, dict):
        report.problems.append(f"{path.name} is not a JSON object")
        return None
    return data


def check_path(key: str, value: str, report: Report) -> bool:
    """axllm resolves paths against the folder, except absolute ones and ones starting with ./"""
    if os.path.isabs(value) or value.startswith(("./", ".\\")):
        report.problems.append(
            f"config.json {key} {value!r} must be a bare file name (no ./ or absolute path)"
        )
        return False
    if "://" in value:
        report.problems.append(f"config.json {key} {value!r} is a URL; axllm reads local files only")
        return False
    return True


def check_config(folder: Path, report: Report) -> dict | None:
    config = read_object(folder / layout.CONFIG, report)
    if config is None:
        return None
    ok = True
    for key, kind in REQUIRED.items():
        if key not in config:
            report.problems.append(f"config.json has no {key} (axllm requires it)")
            ok = False
        elif not has_type(config[key], kind):
            report.problems.append(f"config.json {key} must be {TYPE_NAMES[kind]}, not {config[key]!r}")
            ok = False
    for key in ("use_mmap_load_embed", "b_use_mmap_load_embed"):
        if key in config and not isinstance(config[key], bool):
            report.problems.append(f"config.json {key} must be true or false, not {config[key]!r}")
    for key in ("bos", "eos"):
        if key in config and not has_type(config[key], bool) and not has_type(config[key], int):
            report.problems.append(f"config.json {key} must be true or false, not {config[key]!r}")
    if "post_config_path" in config and not isinstance(config["post_config_path"], str):
        report.problems.append(
            f"config.json post_config_path must be a string, not {config['post_config_path']!r}"
        )
    return config if ok else None


def check_layers(folder: Path, config: dict, report: Report) -> None:
    template = config["template_filename_axmodel"]
    if not check_path("template_filename_axmodel", template, report):
        return
    if "%" in str(folder.resolve()):
        report.problems.append(f"the folder path {folder} holds a %, which breaks axllm's layer template")
    directives = re.findall(r"%.", template)
    if directives != ["%d"]:
        report.problems.append(f"template_filename_axmodel {template!r} must hold exactly one %d")
        return
    count = config["axmodel_num"]
    if count <= 0:
        report.problems.append(f"axmodel_num must be positive, not {count}")
    missing = [template % i for i in range(count) if not (folder / (template % i)).is_file()]
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        report.problems.append(f"{len(missing)} of {count} layer files (axmodel_num) are missing: {shown}")
    post = config["filename_post_axmodel"]
    if check_path("filename_post_axmodel", post, report) and not (folder / post).is_file():
        report.problems.append(f"post model {post} is missing")


def check_embeddings(folder: Path, config: dict, report: Report) -> None:
    name = config["filename_tokens_embed"]
    if not check_path("filename_tokens_embed", name, report):
        return
    path = folder / name
    if not path.is_file():
        report.problems.append(f"embedding file {name} is missing")
        return
    want = config["tokens_embed_num"] * config["tokens_embed_size"] * 2
    size = path.stat().st_size
    if size != want:
        report.problems.append(
            f"{name} is {size} bytes; tokens_embed_num x tokens_embed_size x 2 (bf16) = {want}"
        )
    mmap = config.get("use_mmap_load_embed", config.get("b_use_mmap_load_embed", False))
    if size > INT32_MAX and not mmap:
        report.problems.append(
            f"{name} is 2 GiB or more, which axllm's 32-bit size check refuses: set use_mmap_load_embed: true"
        )


def _ints(line: str, what: str, report: Report) -> list[int] | None:
    try:
        return [int(x) for x in line.split()]
    except ValueError:
        report.problems.append(f"tokenizer.txt {what} is not numbers: {line[:60]!r}")
        return None


def check_tokenizer_txt(path: Path, vocab_rows: int, report: Report) -> None:
    """Read tokenizer.txt line by line as tokenizer.axera's reader does (getline on \\n)."""
    try:
        lines = path.read_bytes().split(b"\n")
    except OSError:
        report.problems.append(f"tokenizer file {path.name} is missing")
        return
    try:
        text = [ln.decode("utf-8") for ln in lines]
    except UnicodeDecodeError:
        report.problems.append(f"{path.name} is not UTF-8 text")
        return
    header = _ints(text[0], "header (line 1)", report)
    if header is None:
        return
    if len(header) != 2 or header[0] != 430 or header[1] not in (0, 1, 2, 3):
        report.problems.append(
            f"{path.name} header {text[0]!r} must be `430 <type 0-3>`; axllm cannot load it"
        )
        return
    kind = header[1]
    counts = _ints(text[1] if len(text) > 1 else "", "count line (line 2)", report)
    if counts is None or len(counts) != 3:
        report.problems.append(f"{path.name} line 2 must be `<n_special> <n_stop> <n_prefix>`")
        return
    ids = _ints(text[2] if len(text) > 2 else "", "id line (line 3)", report) or []
    if len(ids) < sum(counts):
        report.problems.append(f"{path.name} line 3 holds {len(ids)} ids but line 2 declares {sum(counts)}")
    if counts[1] == 0:
        report.problems.append(f"{path.name} has no stop ids: generation would never end on EOS")
    body = text[3:]
    if body and body[-1] == "":
        body = body[:-1]
    if not body:
        report.problems.append(f"{path.name} has no vocabulary")
        return
    sizes = _ints(body[0], "vocabulary count", report)
    if sizes is None:
        return
    if kind == 3:
        if len(sizes) != 2:
            report.problems.append(f"{path.name} type 3 count line must be `<vocab_len> <merge_len>`")
            return
        entries, declared = sizes[0], sizes[0] + sizes[1]
    else:
        if len(sizes) != 1:
            report.problems.append(f"{path.name} type {kind} count line must be one number")
            return
        entries = declared = sizes[0]
    present = len(body) - 1
    if present < declared:
        report.problems.append(f"{path.name} declares {declared} entries but holds {present} (truncated)")
        return
    for number, line in enumerate(body[1 : 1 + entries], start=5):
        if kind in (1, 2):
            try:
                base64.b64decode(line, validate=True)
            except (binascii.Error, ValueError):
                report.problems.append(f"{path.name} line {number} is not base64: {line[:40]!r}")
                return
        elif kind == 0:
            parts = line.split(" ")
            if len(parts) != 3 or not parts[2].isdigit() or not 1 <= int(parts[2]) <= 6:
                report.problems.append(f"{path.name} line {number} must be `<base64> <score> <type 1-6>`")
                return
    bad = [i for i in ids if not 0 <= i < entries]
    if bad:
        report.problems.append(f"{path.name} names ids outside its vocabulary of {entries}: {bad[:5]}")
    if entries > vocab_rows:
        report.problems.append(f"{path.name} has {entries} tokens but the embedding table {vocab_rows} rows")


def check_post_config(folder: Path, config: dict, report: Report) -> None:
    name = config.get("post_config_path", layout.POST_CONFIG)
    if not isinstance(name, str) or not check_path("post_config_path", name, report):
        return
    if not (folder / name).is_file():
        report.notes.append(f"no {name}: axllm warns and decodes greedily")
        return
    post = read_object(folder / name, report)
    if post is None:
        return
    for key, kind in POST_CONFIG.items():
        if key not in post:
            report.problems.append(f"{name} has no {key} (axllm reads all nine keys)")
        elif not has_type(post[key], kind):
            report.problems.append(f"{name} {key} must be {TYPE_NAMES[kind]}, not {post[key]!r}")


def npy_header(path: Path) -> tuple[str, tuple[int, ...]] | None:
    raw = path.read_bytes()[:4096]
    if raw[:6] != b"\x93NUMPY":
        return None
    length_bytes = 2 if raw[6] == 1 else 4
    length = int.from_bytes(raw[8 : 8 + length_bytes], "little")
    start = 8 + length_bytes
    try:
        header = ast.literal_eval(raw[start : start + length].decode("latin1"))
    except (ValueError, SyntaxError):
        return None
    return header.get("descr", ""), tuple(header.get("shape", ()))


def check_python_demo(folder: Path, config: dict | None, report: Report, required: bool | None) -> None:
    npy = folder / layout.EMBED_NPY
    if not npy.is_file():
        if required:
            report.problems.append(f"{layout.EMBED_NPY} is missing (Axera's Python demo loads it)")
        else:
            report.notes.append(
                f"no {layout.EMBED_NPY}: Axera's Python demo cannot run this folder (axllm can)"
            )
        return
    found = npy_header(npy)
    if found is None:
        report.problems.append(f"{layout.EMBED_NPY} is not a .npy file")
    elif config is not None:
        want = (config["tokens_embed_num"], config["tokens_embed_size"])
        if found != ("<f4", want):
            report.problems.append(
                f"{layout.EMBED_NPY} is {found[0]} {found[1]}; the demo needs float32 {want}"
            )
    groups: dict[str, dict[int, int]] = {}
    for path in folder.iterdir():
        m = layout.DEMO_LAYER.match(path.name)
        if m:
            groups.setdefault(m["prefix"], {})[int(m["idx"])] = int(m["prefill"])
    if not groups:
        report.problems.append("no <prefix>_p<N>_l<i>_together.axmodel files for the Python demo")
        return
    prefix = max(groups, key=lambda p: len(groups[p]))
    indices = sorted(groups[prefix])
    if indices != list(range(len(indices))):
        report.problems.append(f"{prefix} layer files are not numbered 0..{len(indices) - 1} without gaps")
    if not (folder / layout.post_model(prefix)).is_file():
        report.problems.append(
            f"{layout.post_model(prefix)} is missing (the demo pairs it with {prefix} layers)"
        )
    chunks = set(groups[prefix].values())
    if chunks != {layout.DEMO_PREFILL_CHUNK}:
        report.notes.append(
            f"layers were built with prefill chunks of {sorted(chunks)}; the demo hard-codes "
            f"{layout.DEMO_PREFILL_CHUNK}"
        )
    check_hf_folder(folder, report)


def check_hf_folder(folder: Path, report: Report) -> None:
    hf = hf_subfolder(folder)
    if hf is None:
        report.problems.append(
            "no Hugging Face subfolder (config.json + tokenizer) for the demo's --hf_model"
        )
        return
    config = read_object(hf / "config.json", report)
    if config is not None and not config.get("model_type"):
        report.problems.append(f"{hf.name}/config.json has no model_type (AutoConfig needs it)")
    if not any((hf / n).is_file() for n in ("tokenizer.json", "tokenizer.model", "vocab.json")):
        report.problems.append(f"{hf.name}/ holds no tokenizer files (tokenizer.json, tokenizer.model)")
    tok_config = hf / "tokenizer_config.json"
    if tok_config.is_file():
        data = read_object(tok_config, report) or {}
        if str(data.get("tokenizer_class", "")).startswith("TokenizersBackend"):
            report.problems.append(
                f"{hf.name}/tokenizer_config.json names {data['tokenizer_class']}, which transformers 4.57.1 "
                "(the demo's pin) cannot load"
            )


def hf_subfolder(folder: Path) -> Path | None:
    """The Hugging Face config/tokenizer subfolder (ours is hf_tokenizer/, Axera's *_tokenizer/)."""
    candidates = [p for p in sorted(folder.iterdir()) if p.is_dir() and (p / "config.json").is_file()]
    return next((p for p in candidates if p.name == layout.HF_DIR), candidates[0] if candidates else None)


def check_template(folder: Path, tokenizer_type: str, report: Report) -> None:
    """The prompt format axllm will use against the model's own chat template, where the folder has one."""
    hf = hf_subfolder(folder)
    if hf is None:
        return
    config = read_object(hf / "config.json", Report()) or {}
    own = chat_format.choose(chat_format.model_template(hf), chat_format.model_types(config), tokenizer_type)
    if not own.exact:
        report.warnings.append(own.warning())


def check_prompts(path: Path, name: str, report: Report) -> axllm_tokenizer.Tokenizer | None:
    """tokenizer.txt read and encoded as tokenizer.axera does: the name axllm must register, the
    template's markers that must stay one token each, the BOS that must not come twice."""
    try:
        board = axllm_tokenizer.read(path)
    except axllm_tokenizer.LoadError as exc:
        report.problems.append(f"{path.name}: axllm cannot load it ({exc})")
        return None
    report.problems += axllm_prompts.problems(board, name)
    return board


def check_token_ids(folder: Path, config: dict, report: Report, gptq_python: str | None) -> None:
    """How many held-out rows the board gives the model verify's ids for: measured now where the GPTQ
    environment is there, else as the build recorded it."""
    name, path = config["tokenizer_type"], folder / config["url_tokenizer_model"]
    hf = hf_subfolder(folder)
    if gptq_python and hf is not None and has_tokenizer(hf):
        found = id_check.measure_file(hf, name, path, gptq_python)
        if found is not None:
            line = f"token ids (measured now): {found.figure()}"
            (report.warnings if found.agree != found.rows else report.notes).append(line)
            return
    recorded = (((manifest.read(folder) or {}).get("result") or {}).get("package") or {}).get("token_ids")
    chosen = (recorded or {}).get("chosen") or {}
    if chosen.get("agree") is not None:
        found = id_check.Measured.from_record(chosen)
        line = f"token ids (recorded at build): {found.figure()}"
        (report.warnings if found.agree != found.rows else report.notes).append(line)
        return
    report.notes.append(
        "token ids: not compared with verify's (no GPTQ environment here and none recorded at build)"
    )


def check(
    folder: Path, *, python_demo: bool | None = None, ids: bool = True, gptq_python: str | None = None
) -> Report:
    """Everything axllm and the demo read. python_demo: True requires it, None checks it when present;
    ids: say how the board's ids compare with verify's (measured with gptq_python, else as recorded)."""
    report = Report()
    if not folder.is_dir():
        report.problems.append(f"{folder} is not a folder")
        return report
    config = check_config(folder, report)
    if config is not None:
        check_layers(folder, config, report)
        check_embeddings(folder, config, report)
        url, name = config["url_tokenizer_model"], config["tokenizer_type"]
        if check_path("url_tokenizer_model", url, report):
            before = len(report.problems)
            check_tokenizer_txt(folder / url, config["tokens_embed_num"], report)
            if len(report.problems) == before and check_prompts(folder / url, name, report) and ids:
                check_token_ids(folder, config, report, gptq_python)
        check_template(folder, name, report)
        check_post_config(folder, config, report)
    if python_demo is not False:
        check_python_demo(folder, config, report, python_demo)
    return report
