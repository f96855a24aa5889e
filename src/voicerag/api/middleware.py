"""Pure ASGI middleware (no BaseHTTPMiddleware: no extra task and stream per request): body limit, request
metrics, and admission control for the query routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voicerag.api.problems import problem

log = logging.getLogger(__name__)


class BodyLimit:
    """Refuses request bodies over ``limit`` bytes with 413, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await self._refuse(scope, receive, send, int(length))
            return
        seen = exceeded = 0
        started = False

        async def limited() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    exceeded = seen
                    raise _TooLarge(seen)
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if exceeded:  # the body parser turned our error into a 400 of its own: answer 413 below instead
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        with contextlib.suppress(_TooLarge):  # answered below
            await self.app(scope, limited, guarded)
        if exceeded and not started:
            await self._refuse(scope, receive, send, exceeded)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, size: int) -> None:
        response = problem(
            413,
            "Request too large",
            f"the request body is {size} bytes or more; at most {self.limit} bytes "
            f"({self.limit / 1048576:g} MB, VOICERAG_MAX_UPLOAD_MB) are accepted",
        )
        await response(scope, receive, send)


class _TooLarge(Exception):
    def __init__(self, size: int):
        self.size = size


class RequestMetrics:
    """Observes each HTTP request's duration by route template, method and status."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            metrics = scope["app"].state.rag.metrics
            if status == 500 and scope.get("state", {}).get("client_gone"):
                status = 499  # the client closed the connection first (nginx's code): not a server error
            path = getattr(route, "path", None) or ("/" if route is not None else "unmatched")
            metrics.observe_request(path, scope["method"], status, time.perf_counter() - started)


class Admission:
    """Bounds the query routes: at most ``inflight`` run at once and ``queued`` wait; beyond that a request
    gets 503 with Retry-After at once, so an overloaded server keeps its throughput instead of letting every
    request's latency grow without bound."""

    def __init__(self, app: ASGIApp, paths: tuple[str, ...], inflight: int, queued: int):
        self.app = app
        self.paths = paths
        self.slots = asyncio.Semaphore(inflight)
        self.inflight = inflight
        self.queued = queued
        self.waiting = 0
        self.refused = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        if self.slots.locked() and self.waiting >= self.queued:
            self.refused += 1
            response = problem(
                503,
                "Overloaded",
                f"the server is answering {self.inflight} queries with {self.waiting} waiting; retry shortly "
                "(VOICERAG_MAX_INFLIGHT_REQUESTS, VOICERAG_MAX_QUEUED_REQUESTS)",
            )
            response.headers["Retry-After"] = "1"
            await response(scope, receive, send)
            return
        self.waiting += 1
        try:
            await self.slots.acquire()
        finally:
            self.waiting -= 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.slots.release()


class SameOrigin:
    """Refuses what a web page on another site could make a browser send:

    - websockets whose ``Origin`` is not this server's own or in ``allowed`` (a page elsewhere could otherwise
      read documents through answers);
    - when no key is needed, state-changing requests (POST, PUT, PATCH, DELETE) marked cross-site by the browser
      (``Sec-Fetch-Site: cross-site``, or an ``Origin`` that is neither ours nor allowed). With keys, a
      cross-site page has no key to send, so the key check refuses it instead.
    Clients that are not browsers send no ``Origin`` and are not affected."""

    UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

    def __init__(self, app: ASGIApp, allowed: tuple[str, ...]):
        self.app = app
        self.allowed = frozenset(o.rstrip("/") for o in allowed)

    def _foreign(self, scope: Scope) -> str | None:
        headers = dict(scope["headers"])
        origin = headers.get(b"origin", b"").decode("latin-1").rstrip("/")
        host = headers.get(b"host", b"").decode("latin-1")
        scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
        own = {f"{scheme}://{host}", f"{'wss' if scheme == 'https' else 'ws'}://{host}"}
        if origin and origin != "null" and origin not in own and origin not in self.allowed:
            return origin
        if origin == "null":
            return origin
        if scope["type"] == "http" and headers.get(b"sec-fetch-site") == b"cross-site":
            return origin or "another site"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            foreign = self._foreign(scope)
            if foreign is not None:
                await send({"type": "websocket.close", "code": 4403, "reason": f"origin {foreign} is not allowed"})
                return
        elif scope["type"] == "http" and scope["method"] in self.UNSAFE:
            foreign = self._foreign(scope)
            if foreign is not None and not await _keys_required(scope):
                detail = (
                    f"a cross-site request from {foreign} was refused: without API keys this server only accepts "
                    "changes from its own pages (VOICERAG_ALLOWED_ORIGINS lists other sites to trust)"
                )
                await problem(403, "Forbidden", detail)(scope, receive, send)
                return
        await self.app(scope, receive, send)


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
PROBES = frozenset({"/healthz", "/readyz"})


class TrustedHosts:
    """Refuses requests whose ``Host`` names a site this server is not: a DNS-rebinding page (evil.example
    resolving to 127.0.0.1) sends its own name as Host and Origin, and would pass as same-origin. With
    ``ALLOWED_HOSTS`` set, only those names (and the loopback ones) are served; without it, a server that needs
    no key serves loopback names only, and one that needs keys any (a rebinding page has no key to send).
    Health probes are always answered."""

    def __init__(self, app: ASGIApp, allowed: tuple[str, ...]):
        self.app = app
        self.allowed = frozenset(h.lower() for h in allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope.get("path") in PROBES:
            await self.app(scope, receive, send)
            return
        host = dict(scope["headers"]).get(b"host", b"").decode("latin-1").lower()
        name = host.split("]")[0] + "]" if host.startswith("[") else host.rsplit(":", 1)[0]  # the port goes
        if name in LOOPBACK_HOSTS or name in self.allowed:
            await self.app(scope, receive, send)
            return
        if not self.allowed and await _keys_required(scope):
            await self.app(scope, receive, send)
            return
        detail = (
            f"Host {host or '(none)'!r} is not served here: this server answers to "
            f"{', '.join(sorted(LOOPBACK_HOSTS | self.allowed))} (VOICERAG_ALLOWED_HOSTS adds names)"
        )
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4400, "reason": detail[:120]})
            return
        await problem(400, "Host not allowed", detail)(scope, receive, send)


async def _keys_required(scope: Scope) -> bool:
    rag = scope["app"].state.rag
    return bool(rag.settings.require_api_key or await rag.keys.any_active())


class CancelOnDisconnect:
    """Stops a request's work when its client goes away: once the request body has been read (at once for a
    request without a body, such as ``GET /v1/voice/speech``), a watcher waits for ``http.disconnect`` and cancels
    the handler (work on a thread finishes its current step, nothing more is started). A handler that listens for
    the disconnect itself (a streaming response) gets the same message."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        disconnected: asyncio.Future[Message] = loop.create_future()
        watcher: asyncio.Task[None] | None = None
        handler = asyncio.current_task()
        cancelled = listening = False
        body: asyncio.Future[Message] = loop.create_future()  # a body-less request's (empty) body, as watched
        body_handed = False

        async def watch() -> None:
            nonlocal cancelled
            while True:
                message = await receive()
                if message["type"] == "http.request":
                    if not body.done():
                        body.set_result(message)
                    continue
                if message["type"] == "http.disconnect":
                    disconnected.set_result(message)
                    if not listening and handler is not None and not handler.done():
                        cancelled = True  # a handler waiting on the client hears it instead, and stops itself
                        handler.cancel()
                    return

        async def tracked() -> Message:
            nonlocal watcher, listening, body_handed
            if watcher is not None:  # the body is read: only the watcher reads from the client now
                if early and not body_handed:
                    await asyncio.wait({body, disconnected}, return_when=asyncio.FIRST_COMPLETED)
                    if body.done():
                        body_handed = True
                        return body.result()
                listening = True
                return await asyncio.shield(disconnected)
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                watcher = loop.create_task(watch())
            elif message["type"] == "http.disconnect" and not disconnected.done():
                disconnected.set_result(message)
            return message

        headers = dict(scope.get("headers") or [])
        early = scope.get("method") in ("GET", "HEAD", "DELETE", "OPTIONS") and not (
            b"content-length" in headers or b"transfer-encoding" in headers
        )
        if early:  # no body to wait for: watch from the start
            watcher = loop.create_task(watch())

        try:
            await self.app(scope, tracked, send)
        except asyncio.CancelledError:
            if not cancelled:
                raise
            scope.setdefault("state", {})["client_gone"] = True
            log.info("client left %s %s: its work was stopped", scope["method"], scope["path"])
        finally:
            if watcher is not None and not watcher.done():
                watcher.cancel()
