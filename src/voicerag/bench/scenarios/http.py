"""Group ``http``: a served VoiceRAG under load."""

from __future__ import annotations

from typing import Any

import httpx
import psutil

from voicerag.bench.load import LoadPlan, run_load
from voicerag.bench.profiles import BenchConfig
from voicerag.bench.scenarios import Group
from voicerag.bench.server import BenchServer, server_process
from voicerag.bench.stats import cache_summary


async def http_load(config: BenchConfig, mix: list[str], scenarios: dict[str, Any]) -> None:
    """A served VoiceRAG under load with the performance layer on and off, and the concurrency sweep."""
    p = config.profile
    logs = config.data_dir / "logs"

    def body(i: int) -> dict[str, Any]:
        return {"question": mix[i % len(mix)], "collection": "bench"}

    async def load(server: BenchServer, concurrency: int, seconds: float, keep_alive: bool = True) -> dict[str, Any]:
        """The load, with the server process's CPU and memory and its cache figures."""
        process = psutil.Process(server.pid)
        before = process.cpu_times()
        plan = LoadPlan(f"{server.url}/v1/ask", body, concurrency, seconds, keep_alive=keep_alive)
        result = await run_load(plan)
        after = process.cpu_times()
        cpu = (after.user - before.user) + (after.system - before.system)
        stats = httpx.get(f"{server.url}/v1/cache/stats", timeout=30).json()
        return result | {
            "server_cpu_percent": round(100 * cpu / result["seconds"], 1),
            "server_rss_mb": round(process.memory_info().rss / 1e6, 1),
            "cache": cache_summary(stats),
        }

    if config.wants("http"):
        with server_process(config.data_dir, logs / "server_on.log", preload_speech=False) as server:
            await load(server, 2, 1.0)  # warm up the process (models, connections); the caches stay cold
            scenarios["http_ask_cold"] = await load(server, p.concurrency, p.http_seconds)
            scenarios["http_ask_cold"]["performance_layer"] = "on, caches starting empty"
            scenarios["http_ask"] = await load(server, p.concurrency, p.http_seconds)
            scenarios["http_ask"]["performance_layer"] = "on, steady state (the same load, next window)"
            for concurrency in p.sweep:
                scenarios[f"http_ask_c{concurrency}"] = await load(server, concurrency, p.sweep_seconds)
        off = {"cache_enabled": False, "retrieval_max_batch": 1, "db_pool_size": 1}
        with server_process(config.data_dir, logs / "server_off.log", preload_speech=False, **off) as server:
            await load(server, 2, 1.0, keep_alive=False)
            scenarios["http_ask_layer_off"] = await load(server, p.concurrency, p.http_seconds, keep_alive=False)
            scenarios["http_ask_layer_off"]["performance_layer"] = "off: no caches, no batching, 1 db "
            scenarios["http_ask_layer_off"]["performance_layer"] += "connection, no client keep-alive"


GROUP = Group(("http",), lambda bench: http_load(bench.config, bench.mix, bench.scenarios))
