"""Runs in the host venv (standard library): the last step, on the board itself.

Deploys a package over the user's own OpenSSH (ssh, rsync or scp), serves it with `axllm serve`
through an SSH tunnel, measures speed and translation quality through axllm's OpenAI API, and writes
the report. Never imports torch or the GPTQ side: the token counts, the template check and the
scores run in the GPTQ environment as their own process.
"""
