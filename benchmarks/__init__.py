"""Benchmark harness for kvtwist: ``python -m benchmarks`` (see benchmarks/README.md)."""
