"""File names in a board package: the GPTQ side writes the embedding tables, the toolchain side the rest."""

from __future__ import annotations

import re

CONFIG = "config.json"  # axllm's schema, not Hugging Face's
TOKENIZER_TXT = "tokenizer.txt"
POST_CONFIG = "post_config.json"
EMBED_BF16 = "model.embed_tokens.weight.bfloat16.bin"  # raw bf16, what axllm reads
EMBED_NPY = "model.embed_tokens.weight.npy"  # float32, what the Python demo reads
# axllm reads a sidecar Hugging Face config from subfolders whose names contain "tokenizer".
HF_DIR = "hf_tokenizer"
README = "README.md"
MANIFEST = "manifest.json"
BUILD_LOG = "build.log"
# The Python demo finds layers by this pattern; the prefix with the most layers wins.
DEMO_LAYER = re.compile(r"^(?P<prefix>.*)_p(?P<prefill>\d+)_l(?P<idx>\d+)_together\.axmodel$")
DEMO_PREFILL_CHUNK = 128
DEMO_KV_CACHE = 2047


def layer_template(prefix: str, prefill_chunk: int) -> str:
    return f"{prefix}_p{prefill_chunk}_l%d_together.axmodel"


def layer_files(prefix: str, prefill_chunk: int, layers: int) -> list[str]:
    return [layer_template(prefix, prefill_chunk) % i for i in range(layers)]


def post_model(prefix: str) -> str:
    return f"{prefix}_post.axmodel"
