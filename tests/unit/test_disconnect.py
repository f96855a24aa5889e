"""A request whose client leaves stops: its handler is cancelled once the body is read and the client is gone."""

from __future__ import annotations

import asyncio

from voicerag.api.middleware import CancelOnDisconnect


async def test_handler_is_cancelled_when_the_client_leaves() -> None:
    started, stopped = asyncio.Event(), asyncio.Event()

    async def endless_app(scope, receive, send) -> None:
        assert (await receive())["type"] == "http.request"  # reads its body, then works for ever
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            stopped.set()
            raise

    inbox: asyncio.Queue = asyncio.Queue()
    await inbox.put({"type": "http.request", "body": b"{}", "more_body": False})
    sent: list[dict] = []

    async def send(message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/embeddings", "headers": []}
    request = asyncio.ensure_future(CancelOnDisconnect(endless_app)(scope, inbox.get, send))
    async with asyncio.timeout(30):
        await started.wait()
        await inbox.put({"type": "http.disconnect"})
        await request  # returns: the work was stopped, nothing raised to the server
    assert stopped.is_set() and sent == [] and scope["state"]["client_gone"] is True


async def test_a_handler_that_listens_for_the_disconnect_still_hears_it() -> None:
    async def listening_app(scope, receive, send) -> None:
        await receive()
        message = await receive()  # what a streaming response does while it streams
        await send({"type": "heard", "message": message["type"]})

    inbox: asyncio.Queue = asyncio.Queue()
    await inbox.put({"type": "http.request", "body": b"", "more_body": False})
    await inbox.put({"type": "http.disconnect"})
    sent: list[dict] = []

    async def send(message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/ask", "headers": []}
    async with asyncio.timeout(30):
        await CancelOnDisconnect(listening_app)(scope, inbox.get, send)
    assert sent == [{"type": "heard", "message": "http.disconnect"}]  # told, not cancelled
