"""One-off experiments behind BENCHMARKS.md sections (`nox -s experiment -- NAME`)."""
