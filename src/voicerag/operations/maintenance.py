"""Maintenance, safe while serving: purge expired cache entries and audio files beyond the budget, refresh the
store's statistics, compact or rebuild indexes that call for it, and advise on pool sizes from what the pools
show. ``voicerag maintenance`` and ``POST /v1/admin/maintenance`` (admin scope) run it."""

from __future__ import annotations

import time
from typing import Any

from voicerag.config import Settings
from voicerag.operations.memory import release_free_memory


def pool_advice(stats: dict[str, Any], settings: Settings) -> list[str]:
    """Plain advice from the pools' current figures (run it under a representative load)."""
    advice = []
    database = stats.get("database", {})
    size, busy = database.get("size") or 0, database.get("checked_out") or 0
    if size and busy >= size:
        advice.append(
            f"every one of the {size} database connections is in use: raise VOICERAG_DB_POOL_SIZE "
            f"(overflow allows {settings.db_max_overflow} more, which are opened and closed per use)"
        )
    elif size and busy == 0 and size > 2:
        advice.append(f"no database connection is in use right now: {size} is plenty (the read path runs no SQL)")
    http = stats.get("http", {})
    if http.get("requests") and http.get("retries", 0) / http["requests"] > 0.05:
        advice.append(
            f"{http['retries']} of {http['requests']} provider requests were retried: check the provider's rate "
            "limits or raise VOICERAG_HTTP_TIMEOUT_S"
        )
    redis = stats.get("redis")
    if redis and redis.get("max_connections") and redis.get("in_use", 0) >= 0.8 * redis["max_connections"]:
        advice.append("Redis connections are at 80% of VOICERAG_REDIS_MAX_CONNECTIONS or more: raise it")
    return advice or ["the pools look right for the current load"]


async def run_maintenance(rag: Any) -> dict[str, Any]:
    """Do it all once; what was done and why."""
    started = time.perf_counter()
    report = {
        "cache_entries_removed": await rag.cache.purge_expired(),
        "store": await rag.store.optimize(),
        "indexes": await rag.retriever.maintain(),
        "pool_advice": pool_advice(rag.pools.stats(), rag.settings),
        "memory_released_mb": release_free_memory(),
    }
    report["seconds"] = round(time.perf_counter() - started, 3)
    return report
