"""The FastAPI application: lifespan builds one VoiceRAG; routes receive it as a dependency."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voicerag.app import VoiceRAG
from voicerag.config import Settings
from voicerag.errors import VoiceRAGError

PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    """An RFC 9457 problem+json response; the ``error`` member lets OpenAI clients show the message too."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail} | extra
    body["error"] = {"message": detail, "type": title.lower().replace(" ", "_"), "code": status}
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


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
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge(seen)
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge as exc:
            await self._refuse(scope, receive, send, exc.size)

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


def create_app(settings: Settings | None = None, rag: VoiceRAG | None = None) -> FastAPI:
    """The ASGI app. Pass ``rag`` to share an already open instance (tests); else one is opened at startup."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = rag is None
        app.state.rag = rag if rag is not None else await VoiceRAG.open(settings)
        preload = None
        if owned and app.state.rag.settings.preload_speech:  # in the background: the API answers meanwhile
            preload = asyncio.create_task(app.state.rag.speech.preload())
        try:
            yield
        finally:
            if preload is not None:
                preload.cancel()
            if owned:
                await app.state.rag.aclose()

    app = FastAPI(
        title="VoiceRAG",
        version="0.1.0",
        description="Voice-enabled retrieval-augmented question answering. Errors are application/problem+json.",
        lifespan=lifespan,
    )
    limit = (settings or (rag.settings if rag else Settings())).max_upload_bytes
    app.add_middleware(BodyLimit, limit=limit)

    @app.middleware("http")
    async def measure(request: Request, call_next: Any) -> Any:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        metrics = request.app.state.rag.metrics
        metrics.requests.labels(path, request.method, str(response.status_code), metrics.worker).observe(
            time.perf_counter() - started
        )
        return response

    @app.exception_handler(VoiceRAGError)
    async def _voicerag_error(request: Request, exc: VoiceRAGError) -> JSONResponse:
        return problem(exc.status, exc.title, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"] if p != "body")
            problems.append(f"{where or 'body'}: {err['msg']}")
        return problem(422, "Invalid request", "; ".join(problems), errors=problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, "Error", str(exc.detail))

    from voicerag.api import openai_routes, routes, voice_routes

    app.include_router(routes.router)
    app.include_router(openai_routes.router)
    app.include_router(voice_routes.router)
    static = resources.files("voicerag.api") / "static"
    if (static / "index.html").is_file():
        from fastapi.staticfiles import StaticFiles

        app.mount("/", StaticFiles(directory=str(static), html=True), name="web")
    return app
