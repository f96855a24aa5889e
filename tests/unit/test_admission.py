"""Admission control: a bounded number of queries run, a bounded number wait, the rest get 503 at once."""

from __future__ import annotations

import asyncio

import httpx

from voicerag.api.middleware import Admission


async def test_beyond_the_queue_a_query_gets_503_with_retry_after() -> None:
    release, entered = asyncio.Event(), asyncio.Event()

    async def slow_app(scope, receive, send) -> None:
        entered.set()
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"answered"})

    admission = Admission(slow_app, paths=("/v1/ask",), inflight=1, queued=1)
    transport = httpx.ASGITransport(app=admission)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client, asyncio.timeout(60):
        first = asyncio.ensure_future(client.post("/v1/ask", json={}))
        await entered.wait()  # running
        second = asyncio.ensure_future(client.post("/v1/ask", json={}))
        while admission.waiting < 1:  # queued
            await asyncio.sleep(0)
        refused = await client.post("/v1/ask", json={})
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert "retry shortly" in refused.json()["detail"] and admission.refused == 1
        other = asyncio.ensure_future(client.get("/healthz"))  # routes outside the query paths are not limited
        release.set()
        assert [(await f).status_code for f in (first, second, other)] == [200, 200, 200]
        assert admission.waiting == 0
