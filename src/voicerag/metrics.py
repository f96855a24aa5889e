"""Prometheus metrics, on a registry owned by each VoiceRAG instance (no module-level globals)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.process_collector import ProcessCollector

if TYPE_CHECKING:
    from voicerag.cache.tiered import TieredCache
    from voicerag.pools import Pools

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    """Request and stage latency histograms, cache and pool gauges, process CPU and memory.

    Every series carries a ``worker`` label (the process id) so several uvicorn workers can be scraped and
    summed without clashing.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.worker = str(os.getpid())
        ProcessCollector(registry=self.registry)
        self.requests = Histogram(
            "voicerag_request_seconds",
            "HTTP request latency",
            ["route", "method", "status", "worker"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.stages = Histogram(
            "voicerag_stage_seconds",
            "pipeline stage latency",
            ["stage", "worker"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.cache_events = Gauge(
            "voicerag_cache_events",
            "cache hits and misses per policy and tier (cumulative)",
            ["policy", "tier", "event", "worker"],
            registry=self.registry,
        )
        self.cache_bytes = Gauge(
            "voicerag_cache_memory_bytes",
            "bytes held by the memory tier",
            ["policy", "worker"],
            registry=self.registry,
        )
        self.pool = Gauge(
            "voicerag_pool", "connection pool figures", ["pool", "figure", "worker"], registry=self.registry
        )
        self.replica_sync = Histogram(
            "voicerag_replica_sync_seconds",
            "time from another process's committed write to this process serving it",
            ["worker"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter("voicerag_errors", "errors by kind", ["kind", "worker"], registry=self.registry)

    @contextmanager
    def stage(self, name: str, timings: dict[str, float] | None = None) -> Iterator[None]:
        """Time a pipeline stage into the histogram (and into ``timings`` in ms, when given)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - started
            self.stages.labels(name, self.worker).observe(elapsed)
            if timings is not None:
                timings[name] = round(timings.get(name, 0.0) + elapsed * 1000, 3)

    def render(self, cache: TieredCache | None, pools: Pools | None) -> bytes:
        """Refresh the gauges from the live objects and render the text exposition format."""
        if cache is not None:
            for policy, s in cache.stats_json().items():
                for tier, ts in s["tiers"].items():
                    for event in ("hits", "misses"):
                        self.cache_events.labels(policy, tier, event, self.worker).set(ts[event])
                    if tier == "memory" and "bytes" in ts:
                        self.cache_bytes.labels(policy, self.worker).set(ts["bytes"])
        if pools is not None:
            for pool, figures in pools.stats().items():
                for figure, value in figures.items():
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        self.pool.labels(pool, figure, self.worker).set(value)
        return generate_latest(self.registry)
