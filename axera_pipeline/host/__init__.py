"""Runs in nox's own interpreter (any Python >= 3.10), standard library only.

Finds Python 3.13, builds and reuses the GPTQ environment, and reports prerequisites (doctor).
"""
