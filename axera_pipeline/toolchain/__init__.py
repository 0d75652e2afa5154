"""Runs in the host venv (standard library + pyyaml); drives Axera's pulsar2 in its own toolchain.

Never imports torch or gptqmodel: pulsar2 brings its own Python, and the one step that needs torch
(the embedding table) runs in the GPTQ environment as a separate process.
"""
