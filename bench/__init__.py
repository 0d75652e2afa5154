"""Benchmarks (`nox -s bench -- NAME`) and experiments; each runs as `python -m bench.NAME` from the root."""
