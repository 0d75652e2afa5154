"""Write everything of a board package except the axmodels and the embedding tables (GPTQ side)."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from axera_pipeline.common import atomic, chat_format
from axera_pipeline.common import package_layout as layout
from axera_pipeline.common.checkpoint import Checkpoint
from axera_pipeline.toolchain import npu_memory
from axera_pipeline.toolchain.package import axllm_config, hf_folder, id_check, readme, tokenizer_txt
from axera_pipeline.toolchain.profiles import Profile


@dataclass(frozen=True)
class PackageOptions:
    python_demo: bool = True
    model_name: str = ""
    tokenizer_type: str = ""


def source_name(ckpt: Checkpoint) -> str:
    """The original model's name, from the quantize manifest (the checkpoint folder is gptq-int4)."""
    try:
        manifest = json.loads((ckpt.path / layout.MANIFEST).read_text(encoding="utf-8"))
        return Path(str(manifest["inputs"]["model"]["source"]).rstrip("/")).name
    except (OSError, ValueError, KeyError, TypeError):
        return ckpt.path.parent.name


def adds_bos(folder: Path, converted: tokenizer_txt.TokenizerTxt) -> bool:
    """Whether the Hugging Face tokenizer puts a BOS before plain text (axllm's `bos`)."""
    config = folder / "tokenizer_config.json"
    flag = json.loads(config.read_text(encoding="utf-8")).get("add_bos_token") if config.is_file() else None
    if isinstance(flag, bool):
        return flag
    tokenizer = folder / "tokenizer.json"
    if tokenizer.is_file():
        return bool(tokenizer_txt.prefix_ids(json.loads(tokenizer.read_text(encoding="utf-8"))))
    return bool(converted.prefix)


@dataclass(frozen=True)
class Prepared:
    """What can be decided before pulsar2 runs, so a tokenizer axllm cannot read fails in seconds."""

    ckpt: Checkpoint
    options: PackageOptions
    template: chat_format.Choice
    name: str
    chosen: id_check.Measured  # the tokenizer.txt form the board encodes most like the model
    measured: tuple[id_check.Measured, ...]  # every form tried

    @property
    def tokenizer(self) -> tokenizer_txt.TokenizerTxt:
        return self.chosen.txt

    @property
    def tokenizer_type(self) -> str:
        return self.template.name


def prepare(ckpt: Checkpoint, options: PackageOptions) -> Prepared:
    """The template axllm will use, and the tokenizer.txt forms that keep its markers (in seconds, with
    no GPTQ environment: a tokenizer the board would garble stops the build before pulsar2)."""
    template = chat_format.for_model(ckpt.path, chat_format.model_types(ckpt.config), options.tokenizer_type)
    judged = id_check.measure(ckpt.path, template.name, None)
    chosen = id_check.choose(judged, template.name)
    name = axllm_config.model_name(source_name(ckpt), options.model_name)
    return Prepared(ckpt, options, template, name, chosen, tuple(judged))


def measured(package: Prepared, gptq_python: str | None) -> Prepared:
    """The same, with every form measured against verify's ids in the GPTQ environment."""
    found = id_check.measure(package.ckpt.path, package.tokenizer_type, gptq_python)
    return replace(package, chosen=id_check.choose(found, package.tokenizer_type), measured=tuple(found))


def memory(ckpt: Checkpoint, profile: Profile) -> npu_memory.Need:
    quant = ckpt.config.get("quantization_config") or {}
    bits, group = int(quant.get("bits", 4)), int(quant.get("group_size", 128))
    return npu_memory.estimate(ckpt.config, profile, bits, group)


def write(
    stage: Path,
    package: Prepared,
    *,
    folder_name: str,
    prefix: str,
    profile: Profile,
    pulsar2: str,
    command: str,
) -> dict[str, object]:
    """tokenizer.txt, config.json, post_config.json, the Hugging Face subfolder and README.md."""
    ckpt, options, converted, name = package.ckpt, package.options, package.tokenizer, package.name
    need = memory(ckpt, profile)
    text = ckpt.text_config
    atomic.write_text(stage / layout.TOKENIZER_TXT, converted.text())
    config = axllm_config.config(
        name=name,
        tokenizer_type=package.tokenizer_type,
        prefix=prefix,
        prefill_chunk=profile.prefill_chunk,
        layers=int(text["num_hidden_layers"]),
        vocab=int(text["vocab_size"]),
        hidden=int(text["hidden_size"]),
        bos=adds_bos(ckpt.path, converted),
        hf_config=ckpt.config,
        runtime={
            "prefill_token_num": profile.prefill_chunk,
            "prefill_max_token_num": profile.longest_prefill,
            "max_token_len": profile.context_len,
        },
    )
    atomic.write_text(stage / layout.CONFIG, json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    gen_file = ckpt.path / "generation_config.json"
    generation = json.loads(gen_file.read_text(encoding="utf-8")) if gen_file.is_file() else {}
    post = axllm_config.post_config(generation)
    atomic.write_text(stage / layout.POST_CONFIG, json.dumps(post, indent=2) + "\n")
    hf_folder.write(ckpt.path, stage / layout.HF_DIR)
    atomic.write_text(
        stage / layout.README,
        readme.text(
            folder_name=folder_name,
            model=name,
            chip=profile.chip,
            profile=profile.name,
            context_len=profile.context_len,
            prefill_chunk=profile.prefill_chunk,
            longest_prefill=profile.longest_prefill,
            pulsar2=pulsar2,
            command=command,
            python_demo=options.python_demo,
            template=package.template,
            token_ids=package.chosen,
            need=need,
            fits=npu_memory.fits_on(need, profile.chip),
        ),
    )
    return {
        "model_name": name,
        "tokenizer_type": config["tokenizer_type"],
        "tokenizer_txt_type": tokenizer_txt.TYPE_NAMES[converted.kind],
        "tokenizer_txt_form": package.chosen.key,
        # The board's ids against verify's on the held-out rows, for the chosen form and every other.
        "token_ids": {"chosen": package.chosen.record(), "forms": [m.record() for m in package.measured]},
        "tokens": converted.entries,
        "stop_ids": converted.stop,
        "prefix_ids": converted.prefix,
        "chat_template": {
            "model_format": package.template.format,
            "exact": package.template.exact,
            "warning": package.template.warning(),
        },
        "memory_estimate_mib": {
            "cmm": round(need.cmm / npu_memory.MIB),
            "axmodel_files": round(need.axmodel_files / npu_memory.MIB),
            "kv_cache": round(need.kv_cache / npu_memory.MIB),
            "ram": round(need.embedding / npu_memory.MIB),
        },
    }
