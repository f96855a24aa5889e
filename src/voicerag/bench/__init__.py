"""Benchmarks: scenarios run side by side, with latency percentiles, throughput and ratios."""
