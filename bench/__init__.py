"""Benchmarks: `make bench` (python -m bench) and the scripts beside it. Numbers, not tests."""
