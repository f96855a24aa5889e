"""Group ``floor``: the same parts in a bare loop and a minimal ASGI app, beside VoiceRAG."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import psutil

from voicerag.app import VoiceRAG
from voicerag.bench import wrk
from voicerag.bench.floor import FloorSearch
from voicerag.bench.load import LoadPlan, run_load
from voicerag.bench.profiles import BenchConfig
from voicerag.bench.scenarios import BenchRun, Group
from voicerag.bench.server import floor_process, server_process
from voicerag.config import Settings


async def floor_loop(
    base: Settings, questions: list[str], record: Callable[..., dict[str, Any]], scenarios: dict[str, Any]
) -> None:
    """Uncached hybrid search in process: the floor and ours, interleaved query by query, three rounds."""
    sample = questions[: min(200, len(questions))]
    async with await VoiceRAG.open(base.model_copy(update={"cache_enabled": False})) as rag:
        state = (await rag.retriever.current(["bench"]))["bench"]
        floor = FloorSearch(rag.embedder.embed_sync, state)  # type: ignore[arg-type]
        floor.batch(["warm up"])
        await rag.pipeline.search("warm up", ["bench"], "hybrid", 10, use_cache=False)
        bare: list[float] = []
        ours: list[float] = []
        rounds = []
        for _ in range(3):
            b_round, o_round = [], []
            for q in sample:
                t = time.perf_counter()
                floor.batch([q])
                b_round.append(time.perf_counter() - t)
                t = time.perf_counter()
                await rag.pipeline.search(q, ["bench"], "hybrid", 10, use_cache=False)
                o_round.append(time.perf_counter() - t)
            rounds.append(round(float(np.percentile(o_round, 95) / np.percentile(b_round, 95)), 3))
            bare += b_round
            ours += o_round
        record("floor_search", bare, sum(bare), 0)
        record("search_hybrid_vs_floor", ours, sum(ours), 0, p95_ratio_per_round=rounds)
    await _miss_cost(base, sample, record)


async def _miss_cost(base: Settings, sample: list[str], record: Callable[..., dict[str, Any]]) -> None:
    """What a cache miss costs: asks with the cache off and asks that miss it (every question new), interleaved
    one by one in two processes' worth of VoiceRAG on the same store, with the default tiers."""
    off_rag = await VoiceRAG.open(base.model_copy(update={"cache_enabled": False}))
    on_rag = await VoiceRAG.open(base)
    try:
        for rag in (off_rag, on_rag):
            await rag.ask("warm up", ["bench"])
        off: list[float] = []
        on: list[float] = []
        for round_ in range(3):
            for i, q in enumerate(sample):
                question = f"{q} (miss {round_}.{i})"
                t = time.perf_counter()
                await off_rag.ask(question, ["bench"])
                off.append(time.perf_counter() - t)
                t = time.perf_counter()
                answer = await on_rag.ask(question + " ", ["bench"])
                on.append(time.perf_counter() - t)
                assert not answer.cached
        record("ask_cache_off", off, sum(off), 0)
        record("ask_cache_miss", on, sum(on), 0, tiers="memory (answer, search, embedding); the preset defaults")
    finally:
        await off_rag.aclose()
        await on_rag.aclose()


async def floor_http(config: BenchConfig, questions: list[str], scenarios: dict[str, Any]) -> None:
    """The floor app and ``voicerag serve`` side by side, windows alternating, at 1 and 32 clients; unique
    queries (every search a cache miss), then cached asks."""
    p = config.profile
    logs = config.data_dir / "logs"

    def unique(i: int) -> str:
        return f"{questions[i % len(questions)]} (asked as number {i})"

    async def window(url: str, body: Callable[[int], dict[str, Any]], concurrency: int, pid: int) -> dict[str, Any]:
        """One load window; from wrk when it is installed (a client that does not share our interpreter)."""
        process = psutil.Process(pid)
        before = process.cpu_times()
        if wrk.available():
            bodies = [body(i) for i in range(20_000)]
            result = await asyncio.to_thread(wrk.run_wrk, url, bodies, concurrency, p.http_seconds)
        else:
            result = await run_load(LoadPlan(url, body, concurrency, p.http_seconds))
        after = process.cpu_times()
        cpu = (after.user - before.user) + (after.system - before.system)
        return result | {"server_cpu_ms_per_request": round(1000 * cpu / max(result["requests"], 1), 3)}

    settings = {"preload_speech": False, "cache_write_behind": True}
    with (
        floor_process(config.data_dir, logs / "floor.log") as floor,
        server_process(config.data_dir, logs / "server_search.log", **settings) as server,
    ):
        await run_load(LoadPlan(f"{floor.url}/search", lambda i: {"query": unique(i)}, 2, 1.0))
        await run_load(
            LoadPlan(f"{server.url}/v1/search", lambda i: {"query": unique(i), "collection": "bench"}, 2, 1.0)
        )
        offset = 10_000
        for concurrency in (1, 32):
            for _ in range(2):  # alternate the two, twice; the second window of each is kept
                offset += 100_000
                scenarios[f"floor_http_search_c{concurrency}"] = await window(
                    f"{floor.url}/search", lambda i, o=offset: {"query": unique(o + i)}, concurrency, floor.pid
                )
                offset += 100_000
                scenarios[f"http_search_c{concurrency}"] = await window(
                    f"{server.url}/v1/search",
                    lambda i, o=offset: {"query": unique(o + i), "collection": "bench", "k": 10},
                    concurrency,
                    server.pid,
                )
        for concurrency in (16, 64):  # overload: unique questions (nothing cached); throughput should hold
            offset += 100_000
            scenarios[f"http_ask_uncached_c{concurrency}"] = await window(
                f"{server.url}/v1/ask",
                lambda i, o=offset: {"question": unique(o + i), "collection": "bench"},
                concurrency,
                server.pid,
            )
        popular = questions[:50]
        for q in popular:
            httpx.post(f"{server.url}/v1/ask", json={"question": q, "collection": "bench"}, timeout=60)
        for concurrency in (1, 32):
            scenarios[f"http_ask_cached_c{concurrency}"] = await window(
                f"{server.url}/v1/ask",
                lambda i: {"question": popular[i % len(popular)], "collection": "bench"},
                concurrency,
                server.pid,
            )
            scenarios[f"http_ask_cached_c{concurrency}"]["server_ms"] = _server_ask_ms(server.url)


def _server_ask_ms(url: str) -> dict[str, float]:
    """Server-side time of a cached ask, from the answer's own timing (median of 50)."""
    times = []
    for _ in range(50):
        body = httpx.post(
            url + "/v1/ask", json={"question": "probe question", "collection": "bench"}, timeout=60
        ).json()
        times.append(body["timings_ms"]["total"])
    times = times[1:]
    return {"p50": round(float(np.percentile(times, 50)), 3), "p95": round(float(np.percentile(times, 95)), 3)}


async def _floor(bench: BenchRun) -> None:
    await floor_loop(bench.base, bench.questions, bench.record, bench.scenarios)
    await floor_http(bench.config, bench.questions, bench.scenarios)


GROUP = Group(("floor",), _floor)
