"""The folder a chip build writes for the board: what axllm (C++) and Axera's Python demo read.

Standard library only: writing axllm's config.json and tokenizer.txt, the Hugging Face subfolder, the
README, and checking any folder as the two runtimes would read it (`nox -s check-package`).
"""
