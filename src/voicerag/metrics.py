"""Prometheus metrics, on a registry owned by each VoiceRAG instance (no module-level globals)."""

from __future__ import annotations

import gc
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from voicerag.cache.tiered import TieredCache
    from voicerag.pools import Pools

disable_created_metrics()  # no *_created gauges beside every counter: they double the series for nothing

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@dataclass
class RequestSample:
    at: float  # time.monotonic()
    route: str
    seconds: float
    status: int


class RecentRequests:
    """The last requests' route, duration and status, for windows over the recent past: those of the last
    ``horizon_s`` (the alerts' window, kept up to date by the alert monitor), and never more than ``maxlen``."""

    def __init__(self, maxlen: int = 50_000, horizon_s: float = 300.0):
        self.samples: deque[RequestSample] = deque(maxlen=maxlen)
        self.horizon_s = horizon_s

    def add(self, route: str, seconds: float, status: int) -> None:
        now = time.monotonic()
        self.samples.append(RequestSample(now, route, seconds, status))
        while self.samples[0].at < now - self.horizon_s:
            self.samples.popleft()

    def since(self, started: float) -> list[RequestSample]:
        return [s for s in self.samples if s.at >= started]


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
        self._live = _LiveFigures(self.worker)
        self.registry.register(self._live)
        self.replica_sync = Histogram(
            "voicerag_replica_sync_seconds",
            "time from another process's committed write to this process serving it",
            ["worker"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter("voicerag_errors", "errors by kind", ["kind", "worker"], registry=self.registry)
        self.recent = RecentRequests()  # for the alerts' rolling window
        self.gc_pauses = Histogram(
            "voicerag_gc_pause_seconds",
            "Python garbage-collector pauses (every thread waits), by generation",
            ["generation", "worker"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self._gc_seen: deque[tuple[int, float]] = deque(maxlen=10_000)

    def watch_gc(self) -> Callable[[], None]:
        """Time every garbage collection of this process (``voicerag_gc_pause_seconds``); returns the undo. The
        callback only appends to a deque (a collection can start inside any code, even while a metric's lock is
        held); the pauses reach the histogram at the next scrape."""
        started = [0.0]

        def callback(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                started[0] = time.perf_counter()
            else:
                self._gc_seen.append((info["generation"], time.perf_counter() - started[0]))

        gc.callbacks.append(callback)
        return lambda: gc.callbacks.remove(callback)

    def _drain_gc(self) -> None:
        while self._gc_seen:
            generation, seconds = self._gc_seen.popleft()
            self.gc_pauses.labels(str(generation), self.worker).observe(seconds)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """One HTTP request: into the histogram, the error counter (4xx and 5xx) and the recent window."""
        if status >= 400:
            self.errors.labels(f"http_{status // 100}xx", self.worker).inc()
        self.requests.labels(route, method, str(status), self.worker).observe(seconds)
        self.recent.add(route, seconds, status)

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
        """The text exposition format, with the cache and pool figures read from the live objects."""
        self._live.cache, self._live.pools = cache, pools
        self._drain_gc()
        return generate_latest(self.registry)


class _LiveFigures(Collector):
    """Cache and pool figures read at scrape time: cumulative ones as counters (``_total``), current ones as
    gauges; labels are policy, tier, pool and state names only (all bounded)."""

    def __init__(self, worker: str):
        self.worker = worker
        self.cache: TieredCache | None = None
        self.pools: Pools | None = None

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        if self.cache is not None:
            events = CounterMetricFamily(
                "voicerag_cache_events",
                "cache hits and misses per policy and tier",
                labels=["policy", "tier", "event", "worker"],
            )
            memory = GaugeMetricFamily(
                "voicerag_cache_memory_bytes", "bytes held by the memory tier", labels=["policy", "worker"]
            )
            for policy, stats in self.cache.stats_json().items():
                for tier, figures in stats["tiers"].items():
                    for event in ("hits", "misses"):
                        events.add_metric([policy, tier, event, self.worker], figures[event])
                    if tier == "memory" and "bytes" in figures:
                        memory.add_metric([policy, self.worker], figures["bytes"])
            yield events
            yield memory
        if self.pools is not None:
            stats = self.pools.stats()
            connections = GaugeMetricFamily(
                "voicerag_pool_connections", "connections per pool and state", labels=["pool", "state", "worker"]
            )
            for pool in ("database", "redis"):
                for state, value in stats.get(pool, {}).items():
                    if isinstance(value, int) and not isinstance(value, bool) and state != "dialect":
                        connections.add_metric([pool, state, self.worker], max(0, value))
            yield connections
            http = stats["http"]
            for name, help_text in (
                ("requests", "requests to providers"),
                ("retries", "provider requests retried"),
                ("errors", "provider requests that failed"),
            ):
                family = CounterMetricFamily(f"voicerag_provider_{name}", help_text, labels=["worker"])
                family.add_metric([self.worker], http[name])
                yield family
