"""A soak: mixed traffic against a running server for a bounded time, sampling the server's resident memory
(from its own /metrics) to show whether it settles. Traffic: searches and asks, new and repeated questions,
speech of short texts; the memory series and its slope over the last half are the answer."""

from __future__ import annotations

import asyncio
import random
import re
import time
from typing import Any

import httpx

RSS = re.compile(r"^process_resident_memory_bytes(?:\{[^}]*\})? ([0-9.e+]+)$", re.M)


async def _rss_mb(client: httpx.AsyncClient) -> float | None:
    response = await client.get("/metrics")
    found = RSS.search(response.text) if response.status_code == 200 else None
    return float(found.group(1)) / 1e6 if found else None


def _slope_mb_per_min(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) in MB per minute."""
    if len(samples) < 3:
        return 0.0
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_m = sum(m for _, m in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples) or 1e-9
    return 60 * sum((t - mean_t) * (m - mean_m) for t, m in samples) / var


async def soak(
    url: str,
    collection: str,
    questions: list[str],
    seconds: float,
    concurrency: int,
    headers: dict[str, str],
    breakdown_every_s: int = 30,
) -> dict[str, Any]:
    """Run the mix for ``seconds``; returns requests by kind and status, the RSS series with its verdict, and
    (when the key has the admin scope) the server's memory breakdown every ``breakdown_every_s``."""
    rng = random.Random(0)
    counts: dict[str, int] = {}
    samples: list[tuple[float, float]] = []
    started = time.monotonic()
    deadline = started + seconds

    async def client(http: httpx.AsyncClient, n: int) -> None:
        i = n
        while time.monotonic() < deadline:
            q = questions[rng.randrange(len(questions))] if rng.random() < 0.6 else f"{rng.choice(questions)} ({i})"
            kind = rng.choices(["search", "ask", "speech"], weights=[5, 4, 1])[0]
            if kind == "search":
                response = await http.post("/v1/search", json={"query": q, "collection": collection})
            elif kind == "ask":
                response = await http.post("/v1/ask", json={"question": q, "collection": collection})
            else:
                response = await http.get("/v1/voice/speech", params={"text": q[:80], "format": "mp3"})
            key = f"{kind} {response.status_code}"
            counts[key] = counts.get(key, 0) + 1
            i += concurrency

    async def sampler(http: httpx.AsyncClient) -> None:
        tick = 0
        while time.monotonic() < deadline:
            rss = await _rss_mb(http)
            if rss is not None:
                samples.append((time.monotonic() - started, rss))
            if tick % breakdown_every_s == 0 and (report := await _breakdown(http)) is not None:
                breakdowns.append({"at_s": round(time.monotonic() - started, 1)} | _brief(report))
            tick += 1
            await asyncio.sleep(1.0)

    breakdowns: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as http:
        await asyncio.gather(sampler(http), *(client(http, n) for n in range(concurrency)))
        final = await _rss_mb(http)
        last = await _breakdown(http)
    half = [s for s in samples if s[0] >= seconds / 2]
    slope = _slope_mb_per_min(half)
    return {
        "seconds": seconds,
        "concurrency": concurrency,
        "requests": counts,
        "rss_mb": {
            "start": samples[0][1] if samples else None,
            "max": max((m for _, m in samples), default=None),
            "end": final,
            "slope_last_half_mb_per_min": round(slope, 2),
        },
        "plateau": abs(slope) < 5.0,
        "series": [(round(t, 1), round(m, 1)) for t, m in samples],
        "memory": {"series": breakdowns, "end": last},
    }


async def _breakdown(client: httpx.AsyncClient) -> dict[str, Any] | None:
    """The server's own account of its memory (``/v1/admin/memory``), when the key may read it."""
    response = await client.get("/v1/admin/memory")
    return response.json() if response.status_code == 200 else None


def _brief(report: dict[str, Any]) -> dict[str, Any]:
    """One line of the breakdown series: RSS, the C heap, Python's blocks, the caches."""
    return {
        "rss_mb": report["rss_mb"],
        "c_heap": report["c_heap"],
        "python_blocks": report["python"]["allocated_blocks"],
        "python_traced_mb": report["python"].get("traced_mb"),
        "cache_mb": round(sum(report["cache_mb"].values()), 1),
    }
