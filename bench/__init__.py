"""Benchmark suite of the Integration Service: ``python -m bench.run [--quick]`` (see BENCHMARKS.md)."""
