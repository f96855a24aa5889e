"""An HTTP load generator: N concurrent clients against a running server, for a fixed duration or request
count, optionally at a target rate (open loop: requests start on schedule, whatever the latency)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from voicerag.bench.stats import summarize


@dataclass
class LoadPlan:
    url: str
    body: Callable[[int], dict[str, Any]]  # the JSON body of request i
    concurrency: int = 32
    duration_s: float | None = 10.0
    requests: int | None = None
    rate: float | None = None  # requests per second in total; None: as fast as the clients go
    timeout_s: float = 60.0
    keep_alive: bool = True


async def run_load(plan: LoadPlan) -> dict[str, Any]:
    """Latency percentiles, throughput, errors by status, and the peak number of requests in flight."""
    if plan.duration_s is None and plan.requests is None:
        raise ValueError("give a duration or a request count")
    limits = httpx.Limits(
        max_connections=plan.concurrency, max_keepalive_connections=plan.concurrency if plan.keep_alive else 0
    )
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    in_flight = peak = 0
    issued = 0
    started = time.perf_counter()
    deadline = started + plan.duration_s if plan.duration_s is not None else None

    def next_index() -> int | None:
        nonlocal issued
        if plan.requests is not None and issued >= plan.requests:
            return None
        if deadline is not None and time.perf_counter() >= deadline:
            return None
        issued += 1
        return issued - 1

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal in_flight, peak
        while (i := next_index()) is not None:
            if plan.rate:
                delay = started + i / plan.rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                if deadline is not None and time.perf_counter() >= deadline:
                    return
            in_flight += 1
            peak = max(peak, in_flight)
            sent = time.perf_counter()
            try:
                response = await http.post(plan.url, json=plan.body(i))
                key = str(response.status_code)
            except httpx.HTTPError as exc:
                key = type(exc).__name__
            finally:
                in_flight -= 1
            statuses[key] = statuses.get(key, 0) + 1
            if key.startswith("2"):
                latencies.append(time.perf_counter() - sent)

    async with httpx.AsyncClient(limits=limits, timeout=plan.timeout_s) as http:
        await asyncio.gather(*(client(http) for _ in range(plan.concurrency)))
    wall = time.perf_counter() - started
    errors = sum(n for status, n in statuses.items() if not status.startswith("2"))
    return summarize(latencies, wall, errors) | {
        "concurrency": plan.concurrency,
        "peak_in_flight": peak,
        "seconds": round(wall, 3),
        "target_rps": plan.rate,
        "statuses": statuses,
    }
