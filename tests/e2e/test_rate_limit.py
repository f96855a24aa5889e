"""Per-caller rate limits: over the burst, 429 with Retry-After; another caller is not affected."""

from __future__ import annotations

import httpx

from tests.helpers import serve
from voicerag import VoiceRAG
from voicerag.api.app import create_app


async def test_rate_limit_per_key(make_settings, facts) -> None:
    settings = make_settings(rate_limit_per_s=0.001, rate_limit_burst=2, api_key_cache_s=0)
    async with await VoiceRAG.open(settings) as rag:
        await rag.ingest("kb", facts)
        first = (await rag.keys.create("first", ["read:kb"]))[0]
        second = (await rag.keys.create("second", ["read:kb"]))[0]
    with serve(create_app(settings)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            body = {"query": "cats", "collection": "kb"}
            statuses = [
                (await client.post("/v1/search", json=body, headers={"Authorization": f"Bearer {first}"})).status_code
                for _ in range(3)
            ]
            assert statuses == [200, 200, 429]
            limited = await client.post("/v1/search", json=body, headers={"Authorization": f"Bearer {first}"})
            assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
            assert "'first' is over its rate limit" in limited.json()["detail"]
            other = await client.post("/v1/search", json=body, headers={"Authorization": f"Bearer {second}"})
            assert other.status_code == 200
            assert (await client.get("/healthz")).status_code == 200  # probes are never limited


async def test_rate_limit_is_shared_by_replicas_through_redis(make_settings, facts) -> None:
    from tests.helpers import REDIS_URL, need_service

    need_service("Redis", "127.0.0.1", 6379)
    import redis.asyncio as aioredis

    url = REDIS_URL.rsplit("/", 1)[0] + "/7"
    client = aioredis.from_url(url)
    await client.flushdb()
    base = make_settings(rate_limit_per_s=0.001, rate_limit_burst=2, redis_url=url)
    async with await VoiceRAG.open(base) as rag:
        await rag.ingest("kb", facts)
    replica = base.model_copy(update={"data_dir": base.data_dir.parent / "replica"})  # same store file via URL
    replica = replica.model_copy(update={"database_url": base.resolved_database_url})
    try:
        with serve(create_app(base)) as one, serve(create_app(replica)) as two:
            body = {"query": "cats", "collection": "kb"}
            async with httpx.AsyncClient(timeout=60) as http:
                first = (await http.post(f"{one}/v1/search", json=body)).status_code
                second = (await http.post(f"{two}/v1/search", json=body)).status_code
                third = await http.post(f"{one}/v1/search", json=body)
        assert (first, second, third.status_code) == (200, 200, 429)  # one bucket for the caller, two servers
        assert await client.exists("voicerag:rate:address 127.0.0.1")
    finally:
        await client.flushdb()
        await client.aclose()
