"""Measuring primitives: percentiles, concurrent clients, CPU and memory per scenario."""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import psutil

QUANTILES = (0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 99, 100)


def summarize(latencies_s: list[float], seconds: float, errors: int = 0) -> dict[str, Any]:
    """p50 / p95 / p99 / max in ms, requests per second, errors, and the quantiles a CDF is drawn from."""
    ms = np.asarray(latencies_s, dtype=np.float64) * 1000
    if not len(ms):
        return {"requests": 0, "errors": errors, "p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0, "rps": 0.0}
    return {
        "requests": len(ms),
        "errors": errors,
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p95_ms": round(float(np.percentile(ms, 95)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "max_ms": round(float(ms.max()), 3),
        "rps": round(len(ms) / seconds, 2) if seconds else 0.0,
        "quantiles_ms": {str(q): round(float(np.percentile(ms, q)), 3) for q in QUANTILES},
    }


async def run_clients(
    work: Callable[[int], Awaitable[Any]], requests: int, concurrency: int
) -> tuple[list[float], float, int]:
    """``requests`` calls of ``work(i)`` spread over ``concurrency`` clients; returns latencies, wall time, errors."""
    latencies: list[float] = []
    errors = 0
    counter = iter(range(requests))

    async def client() -> None:
        nonlocal errors
        for i in counter:
            started = time.perf_counter()
            try:
                await work(i)
            except Exception:
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started, errors


def peak_rss_mb() -> float:
    """The process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def resources(into: dict[str, Any]) -> Iterator[None]:
    """Adds the CPU seconds used (all threads) and the peak RSS after the block to ``into``."""
    process = psutil.Process()
    before = process.cpu_times()
    started = time.perf_counter()
    try:
        yield
    finally:
        after = process.cpu_times()
        wall = time.perf_counter() - started
        cpu = (after.user - before.user) + (after.system - before.system)
        into["cpu_seconds"] = round(cpu, 3)
        into["cpu_percent"] = round(100 * cpu / wall, 1) if wall else 0.0
        into["peak_rss_mb"] = round(peak_rss_mb(), 1)


def cache_summary(stats: dict[str, Any]) -> dict[str, Any]:
    """Per policy: hit rate and per-tier hit rates (the figures a cache-sizing decision needs)."""
    return {
        policy: {
            "hit_rate": s["hit_rate"],
            "hits": s["hits"],
            "misses": s["misses"],
            "tiers": {tier: t["hit_rate"] for tier, t in s["tiers"].items()},
        }
        for policy, s in stats.items()
        if s["hits"] or s["misses"]
    }
