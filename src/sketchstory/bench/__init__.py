"""Benchmarks: the full SD1.5 architecture with random weights, timed and measured in one run."""
