"""Benchmark harness for kvtwist: ``python -m benchmarks`` (see benchmarks/README.md)."""

from __future__ import annotations
