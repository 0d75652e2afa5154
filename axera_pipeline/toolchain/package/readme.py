"""README.md in a package: how to run it with axllm and Axera's Python demo, and what it was built for."""

from __future__ import annotations

from axera_pipeline.common import package_layout as layout
from axera_pipeline.common.chat_format import Choice
from axera_pipeline.toolchain.npu_memory import MIB, Fit, Need
from axera_pipeline.toolchain.package.id_check import Measured


def text(
    *,
    folder_name: str,
    model: str,
    chip: str,
    profile: str,
    context_len: int,
    prefill_chunk: int,
    longest_prefill: int,
    pulsar2: str,
    command: str,
    python_demo: bool,
    template: Choice,
    token_ids: Measured,
    need: Need,
    fits: list[Fit],
) -> str:
    lines = [
        f"# {model} for {chip}",
        "",
        f"Built by axera-llm-pipeline with pulsar2 {pulsar2} (`{command}`, profile `{profile}`): "
        f"{context_len}-token context, prefill in chunks of {prefill_chunk} tokens, prompts up to "
        f"{longest_prefill} tokens.",
        "",
        "## axllm (C++ runtime)",
        "",
        "```sh",
        f"axllm run {folder_name}        # or: axllm serve {folder_name}",
        "```",
        "",
        f"axllm reads `{layout.CONFIG}` (its own schema), `{layout.TOKENIZER_TXT}`, `{layout.POST_CONFIG}`, "
        f"the `.axmodel` files and `{layout.EMBED_BF16}` from this folder.",
        "",
        "## Axera's Python demo",
        "",
    ]
    if python_demo:
        lines += [
            "```sh",
            f"python3 infer_axmodel.py --hf_model {folder_name}/{layout.HF_DIR} --axmodel_path {folder_name} "
            '-q "..."',
            "```",
            "",
            f"The demo reads `{layout.EMBED_NPY}` and the layer files here, and the Hugging Face config and "
            f"tokenizer from `{layout.HF_DIR}/` (loadable with transformers 4.57.1, which the demo pins, "
            "and 5.x).",
        ]
        if prefill_chunk != layout.DEMO_PREFILL_CHUNK or context_len - 1 != layout.DEMO_KV_CACHE:
            lines += [
                "",
                f"Note: the demo hard-codes {layout.DEMO_PREFILL_CHUNK}-token prefill chunks and a "
                f"{layout.DEMO_KV_CACHE}-token KV cache (the 2k build); this package was built with "
                f"{prefill_chunk}-token chunks and a {context_len - 1}-token KV cache, so change those "
                "constants in the demo (or use axllm).",
            ]
    else:
        lines += [
            f"Built with `--no-python-demo`: `{layout.EMBED_NPY}` is left out, so only axllm can run it.",
        ]
    lines += ["", *template_section(template, token_ids), "", *memory_section(need, fits)]
    lines += ["", f"`{layout.MANIFEST}` records every file's sha256 and how it was built.", ""]
    return "\n".join(lines)


def template_section(template: Choice, token_ids: Measured) -> list[str]:
    lines = ["## Chat template on the board", ""]
    if template.exact:
        lines.append(
            f"axllm prompts the model as `{template.name}` (`tokenizer_type` in `{layout.CONFIG}`), the "
            f"model's own format: {template.describe} ({template.reason})."
        )
    else:
        lines.append(f"**WARNING:** {template.warning()}.")
    return [
        *lines,
        "",
        f"`{layout.TOKENIZER_TXT}` is written as {token_ids.describe}: {token_ids.figure()} (every "
        "template marker one token; measured with axllm's tokenizer code reproduced in Python, "
        "`manifest.json` lists every form tried).",
    ]


def memory_section(need: Need, fits: list[Fit]) -> list[str]:
    lines = [
        "## Memory on the board (estimated)",
        "",
        f"The NPU's memory pool (CMM): about {need.cmm / MIB:.0f} MiB: the layers "
        f"{need.layer_files / MIB:.0f}, the post model {need.post_file / MIB:.0f}, the KV cache "
        f"{need.kv_cache / MIB:.0f} and axllm's buffers {need.runtime / MIB:.0f}. Ordinary RAM: the "
        f"embedding table, {need.embedding / MIB:.0f} MiB.",
        "",
        "| board | verdict | detail |",
        "|---|---|---|",
    ]
    return lines + [f"| {f.board} | {f.verdict} | {f.detail} |" for f in fits]
