"""Benchmarks: small, repeatable measurements whose figures are written down in docs/benchmarks.md."""
