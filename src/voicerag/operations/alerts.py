"""Performance alerts evaluated inside the server on a rolling window: p95 latency per route, 5xx error rate,
the answer cache's hit rate, pool saturation, replica sync lag and memory. Thresholds are settings
(``ALERT_*``, 0 turns one off) and may change live. Active alerts show at ``GET /v1/admin/alerts`` and in
``/readyz`` (degraded, still ready); each logs a warning when it starts and when it stops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from voicerag.metrics import RequestSample

if TYPE_CHECKING:
    from voicerag.app import VoiceRAG

log = logging.getLogger(__name__)


@dataclass
class Alert:
    """One threshold crossed: which, by how much, since when (unix seconds)."""

    name: str
    value: float
    threshold: float
    message: str
    since: float

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": round(self.value, 4),
            "threshold": self.threshold,
            "message": self.message,
            "since": self.since,
        }


class AlertMonitor:
    """Evaluates the thresholds every ``ALERT_INTERVAL_S`` (and whenever asked) and keeps the active alerts."""

    def __init__(self, rag: VoiceRAG):
        self.rag = rag
        self.active: dict[str, Alert] = {}
        self._cache_samples: deque[tuple[float, int, int]] = deque(maxlen=10_000)  # (at, hits, misses)
        self._pool_samples: deque[tuple[float, str, float]] = deque(maxlen=10_000)  # (at, pool, share in use)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.rag.settings.alert_interval_s)
            try:
                self.evaluate()
            except Exception:  # an alert that cannot be computed must not stop the others for good
                log.exception("evaluating alerts failed")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def evaluate(self) -> list[Alert]:
        """Compare the window with the thresholds now; log alerts that start or stop; return the active ones."""
        s = self.rag.settings
        now = time.monotonic()
        started = now - s.alert_window_s
        self._sample(now)
        firing = {a.name: a for a in self._check(started)}
        for name, alert in firing.items():
            if name in self.active:
                alert.since = self.active[name].since
            else:
                log.warning("alert started: %s", alert.message)
        for name, alert in self.active.items():
            if name not in firing:
                log.warning("alert resolved: %s (was: %s)", name, alert.message)
        self.active = firing
        return list(firing.values())

    def _sample(self, now: float) -> None:
        answer = self.rag.cache.stats_json().get("answer", {})
        self._cache_samples.append((now, answer.get("hits", 0), answer.get("misses", 0)))
        for pool, share in _pool_shares(self.rag).items():
            self._pool_samples.append((now, pool, share))

    def _check(self, started: float) -> list[Alert]:
        s, at = self.rag.settings, time.time()
        alerts: list[Alert] = []
        by_route: dict[str, list[RequestSample]] = {}
        self.rag.metrics.recent.horizon_s = s.alert_window_s  # a live setting: the window keeps what it needs
        for sample in self.rag.metrics.recent.since(started):
            by_route.setdefault(sample.route, []).append(sample)
        window = f"over the last {s.alert_window_s:g} s"
        for route, samples in sorted(by_route.items()):
            if len(samples) < s.alert_min_requests:
                continue
            durations = sorted(x.seconds for x in samples)
            p95_ms = 1000 * durations[min(len(durations) - 1, int(0.95 * len(durations)))]
            if s.alert_p95_ms and p95_ms > s.alert_p95_ms:
                message = f"{route}: p95 {p95_ms:.0f} ms {window} is above {s.alert_p95_ms:g} ms"
                alerts.append(Alert(f"latency_p95:{route}", p95_ms, s.alert_p95_ms, message, at))
            failed = sum(1 for x in samples if x.status >= 500) / len(samples)
            if s.alert_error_rate and failed > s.alert_error_rate:
                message = f"{route}: {failed:.1%} of {len(samples)} requests failed with a 5xx {window}"
                alerts.append(Alert(f"error_rate:{route}", failed, s.alert_error_rate, message, at))
        cache = [x for x in self._cache_samples if x[0] >= started]
        if s.alert_cache_hit_floor and len(cache) >= 2:
            hits, misses = cache[-1][1] - cache[0][1], cache[-1][2] - cache[0][2]
            if hits + misses >= s.alert_min_requests and hits / (hits + misses) < s.alert_cache_hit_floor:
                rate = hits / (hits + misses)
                message = f"answer cache hit rate {rate:.1%} {window} is below {s.alert_cache_hit_floor:.0%}"
                alerts.append(Alert("cache_hit_rate:answer", rate, s.alert_cache_hit_floor, message, at))
        shares: dict[str, list[float]] = {}
        for when, pool, share in self._pool_samples:
            if when >= started:
                shares.setdefault(pool, []).append(share)
        for pool, values in sorted(shares.items()):
            mean = sum(values) / len(values)
            if s.alert_pool_saturation and mean >= s.alert_pool_saturation:
                message = f"the {pool} pool had {mean:.0%} of its connections in use on average {window}"
                alerts.append(Alert(f"pool_saturation:{pool}", mean, s.alert_pool_saturation, message, at))
        lag = self.rag.retriever.sync_stats()["lag_p95_ms"]
        if s.alert_sync_lag_ms and lag is not None and lag > s.alert_sync_lag_ms:
            message = f"other replicas' writes reach this one {lag:.0f} ms after commit (p95 of the last 1,000)"
            alerts.append(Alert("replica_sync_lag", float(lag), s.alert_sync_lag_ms, message, at))
        rss_mb = resident_mb()
        if s.alert_memory_mb and rss_mb is not None and rss_mb > s.alert_memory_mb:
            message = f"resident memory {rss_mb:.0f} MB is above {s.alert_memory_mb:g} MB"
            alerts.append(Alert("memory", rss_mb, s.alert_memory_mb, message, at))
        return alerts


def _pool_shares(rag: VoiceRAG) -> dict[str, float]:
    """Share of each pool's connections in use now."""
    stats, s = rag.pools.stats(), rag.settings
    shares = {}
    database = stats["database"]
    if database.get("checked_out") is not None and database.get("size") is not None:
        shares["database"] = database["checked_out"] / max(1, s.db_pool_size + s.db_max_overflow)
    if "redis" in stats:
        shares["redis"] = stats["redis"]["in_use"] / max(1, stats["redis"]["max_connections"])
    return shares


def resident_mb() -> float | None:
    """This process's resident memory in MB (Linux ``/proc``; None elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError):
        return None
