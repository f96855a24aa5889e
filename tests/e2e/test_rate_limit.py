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
