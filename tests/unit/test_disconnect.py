"""A request whose client leaves stops: its handler is cancelled once the body is read and the client is gone."""

from __future__ import annotations

import asyncio

from voicerag.api.middleware import CancelOnDisconnect


class EndlessApp:
    """An ASGI app that reads its body (kept in ``bodies``), then works for ever until it is cancelled."""

    def __init__(self) -> None:
        self.started, self.stopped = asyncio.Event(), asyncio.Event()
        self.bodies: list[dict] = []

    async def __call__(self, scope, receive, send) -> None:
        self.bodies.append(await receive())
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.stopped.set()
            raise


async def test_handler_is_cancelled_when_the_client_leaves() -> None:
    endless_app = EndlessApp()
    started, stopped = endless_app.started, endless_app.stopped

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
    assert endless_app.bodies[0]["type"] == "http.request"


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


async def test_a_request_without_a_body_is_watched_from_the_start() -> None:
    """``GET /v1/voice/speech?text=...`` never reads a body: its work still stops when the client leaves, and a
    handler that does read the (empty) body gets it."""
    endless_app = EndlessApp()
    started, stopped, bodies = endless_app.started, endless_app.stopped, endless_app.bodies
    inbox: asyncio.Queue = asyncio.Queue()
    await inbox.put({"type": "http.request", "body": b"", "more_body": False})
    scope = {"type": "http", "method": "GET", "path": "/v1/voice/speech", "headers": [(b"host", b"x")]}

    async def send(message) -> None:
        raise AssertionError(f"nothing is sent: {message}")

    request = asyncio.ensure_future(CancelOnDisconnect(endless_app)(scope, inbox.get, send))
    async with asyncio.timeout(30):
        await started.wait()
        await inbox.put({"type": "http.disconnect"})
        await request
    assert stopped.is_set() and bodies == [{"type": "http.request", "body": b"", "more_body": False}]


def test_get_voice_speech_stops_when_its_client_leaves(make_settings) -> None:
    """A real server: ``GET /v1/voice/speech`` of a 45-sentence text, and the client hangs up once the voice has
    begun; the handler is cancelled (between two sentences: nothing more is synthesised), not left to finish."""
    import logging
    import socket
    import threading

    import httpx

    from tests.helpers import serve
    from voicerag.api.app import create_app

    stopped = threading.Event()

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "client left GET /v1/voice/speech" in record.getMessage():
                stopped.set()

    def synthesised(url: str) -> int:
        return httpx.get(f"{url}/v1/cache/stats", timeout=60).json()["tts"]["misses"]

    logger = logging.getLogger("voicerag.api.middleware")
    watch = Watch(logging.INFO)
    logger.addHandler(watch)
    text = " ".join(f"Sentence number {i} is here to take the voice a while to read." for i in range(45))
    try:
        with serve(create_app(make_settings())) as url:
            host, port = url.removeprefix("http://").split(":")
            with socket.create_connection((host, int(port))) as sock:
                path = "/v1/voice/speech?text=" + text.replace(" ", "+")
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
                while synthesised(url) == 0:  # the voice has begun: now hang up
                    threading.Event().wait(0.02)
            assert stopped.wait(120), "the speech request kept running after its client left"  # a hang guard
            assert synthesised(url) < 45  # stopped before the end of the text
    finally:
        logger.removeHandler(watch)
