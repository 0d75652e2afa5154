"""Hugging Face LLM -> GPTQ -> Axera NPU, split by the interpreter each part runs in.

- ``common``: standard library only; imported from every side.
- ``host``: nox's own interpreter (standard library only): finds Python, manages the GPTQ environment, doctor.
- ``toolchain``: the small host venv (standard library + pyyaml): chip profiles, driving pulsar2
  (local, package or Docker), judging its log, building and checking the board package.
- ``gptq``: the isolated GPTQ environment (torch, transformers, gptqmodel): quantize, verify, embeddings.

The sides never import each other except through ``common`` (and ``host`` reading the toolchain's
backends, which need no pyyaml); ``make lint`` checks these boundaries with import-linter.
"""
