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


async def test_failed_authentication_is_rate_limited_per_address(make_settings) -> None:
    """Guessing keys costs time: past a burst of failures an address gets 429; a good key still works."""
    settings = make_settings(auth_failures_per_s=0.001, auth_failures_burst=3, api_key_cache_s=0)
    async with await VoiceRAG.open(settings) as rag:
        good = (await rag.keys.create("good", ["admin"]))[0]
    with serve(create_app(settings)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            guesses = [
                (await client.get("/v1/collections", headers={"Authorization": f"Bearer vr_guess{i}"})).status_code
                for i in range(5)
            ]
            assert guesses == [401, 401, 401, 429, 429]
            limited = await client.get("/v1/collections")  # no key at all counts as a failure too
            assert limited.status_code == 429 and "VOICERAG_AUTH_FAILURES_PER_S" in limited.json()["detail"]
            assert int(limited.headers["retry-after"]) >= 1
            ok = await client.get("/v1/collections", headers={"Authorization": f"Bearer {good}"})
            assert ok.status_code == 200  # the address is not locked out of keys that work
