"""Group ``replica``: two ``voicerag serve`` on one store, a write on one until the other serves it."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import httpx
import numpy as np

from voicerag.bench.profiles import BenchConfig
from voicerag.bench.scenarios import Group
from voicerag.bench.server import server_process
from voicerag.bench.stats import summarize


async def replica_sync(config: BenchConfig, questions: list[str], scenarios: dict[str, Any]) -> None:
    """Two ``voicerag serve`` on one store: a write on A, timed from its commit (A's response) until B's search
    finds it, while B serves a query load; B's slowest query during the syncs."""
    logs = config.data_dir / "logs"
    settings = {"preload_speech": False}
    with (
        server_process(config.data_dir, logs / "replica_a.log", **settings) as a,
        server_process(config.data_dir, logs / "replica_b.log", **settings) as b,
    ):
        during: list[float] = []
        stop = asyncio.Event()

        async def query_load(client: int) -> None:
            async with httpx.AsyncClient(timeout=60) as http:
                i = client
                while not stop.is_set():
                    body = {"query": f"{questions[i % len(questions)]} ({i})", "collection": "bench"}
                    t = time.perf_counter()
                    await http.post(f"{b.url}/v1/search", json=body)
                    during.append(time.perf_counter() - t)
                    i += 4

        async def probe(http: httpx.AsyncClient, token: str) -> list[dict[str, Any]]:
            """A lexical search for ``token`` on B (callers wait 5 ms between probes: not a fifth client)."""
            body = {"query": token, "collection": "bench", "mode": "lexical", "k": 1}
            return (await http.post(f"{b.url}/v1/search", json=body)).json()["results"]

        load = asyncio.gather(*(query_load(c) for c in range(4)))
        await asyncio.sleep(2)  # the load's first queries after start (first-use paths) are left out of both
        async with httpx.AsyncClient(timeout=60) as http:
            during.clear()
            quiet_until = time.perf_counter() + 5
            while time.perf_counter() < quiet_until:  # the same load and probing, without writes: the baseline
                await probe(http, f"zqxquiet{random.randrange(10**9)}")
                await asyncio.sleep(0.005)
        quiet = list(during)
        during.clear()
        visible: list[float] = []
        async with httpx.AsyncClient(timeout=60) as http:
            for i in range(20):
                token = f"zqxsync{i}w{random.randrange(10**9)}"
                doc = {"id": f"sync-{i}", "text": f"Replica probe {token} written by the bench.", "title": "probe"}
                await http.post(f"{a.url}/v1/collections/bench/documents", json={"documents": [doc]})
                committed = time.perf_counter()
                while True:
                    found = await probe(http, token)
                    if found and found[0]["document_id"] == f"sync-{i}":
                        break
                    if time.perf_counter() - committed > 120:
                        raise RuntimeError("a write on replica A never became visible on replica B")
                    await asyncio.sleep(0.005)
                visible.append(time.perf_counter() - committed)
                await http.delete(f"{a.url}/v1/collections/bench/documents/sync-{i}")
        stop.set()
        await load
        synced = httpx.get(f"{b.url}/readyz", timeout=30).json()["checks"]["indexes"]
    scenarios["replica_sync"] = summarize(visible, sum(visible), 0) | {
        "note": "commit on A (its response) to the write found by a search on B; B under a 4-client query load",
    }
    scenarios["replica_sync"]["max_query_ms"] = round(max(during) * 1000, 3)
    scenarios["replica_sync"]["max_query_ms_without_writes"] = round(max(quiet) * 1000, 3) if quiet else None
    scenarios["replica_sync"]["p95_query_ms"] = round(float(np.percentile(during, 95)) * 1000, 3)
    scenarios["replica_sync"]["p95_query_ms_without_writes"] = (
        round(float(np.percentile(quiet, 95)) * 1000, 3) if quiet else None
    )
    scenarios["replica_sync"]["server_lag_ms"] = {  # B's own clock: commit on A to B serving it, no polling
        key.removeprefix("lag_").removesuffix("_ms"): synced[key] for key in ("lag_p50_ms", "lag_p95_ms", "lag_max_ms")
    } | {"syncs": synced["syncs"]}
    scenarios["replica_sync"]["queries_during"] = len(during)


GROUP = Group(("replica",), lambda bench: replica_sync(bench.config, bench.questions, bench.scenarios))
