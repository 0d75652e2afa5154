"""Host-side orchestration: finding interpreters and managing the GPTQ environment.

Runs in nox's own interpreter (any Python >= 3.10); never imports torch or gptqmodel.
"""
