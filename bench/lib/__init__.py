"""Shared by the benchmarks and experiments; its scripts run as `python -m bench.lib.NAME`."""
