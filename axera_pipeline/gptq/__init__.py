"""Runs in the isolated GPTQ environment (Python 3.13, torch, transformers, gptqmodel).

Heavy libraries are imported inside functions, so argument errors come back in well under a second.
"""
