"""The FastAPI application: lifespan builds one VoiceRAG; routes receive it as a dependency."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from voicerag.api.access_log import redact_access_log
from voicerag.api.middleware import Admission, BodyLimit, CancelOnDisconnect, RequestMetrics, SameOrigin, TrustedHosts
from voicerag.api.problems import problem
from voicerag.api.ratelimit import RateLimiter
from voicerag.app import VoiceRAG
from voicerag.config import Settings
from voicerag.documents.database import connection_lost
from voicerag.errors import DatabaseUnavailable, TooManyRequests, VoiceRAGError

log = logging.getLogger(__name__)

QUERY_PATHS = ("/v1/search", "/v1/ask", "/v1/chat/completions", "/v1/embeddings")


async def _warm(rag: VoiceRAG, freeze_heap: bool) -> None:
    try:
        await rag.warm()
    except Exception:
        log.exception("loading the indexes at start failed; collections load on first use")
        rag.ready = True
    if freeze_heap:
        settle_heap()


def settle_heap() -> None:
    """Collect once, then move every object alive now (the read model, the loaded modules) out of the garbage
    collector's sight (``gc.freeze``): a full collection no longer walks them, so it stops pausing requests for
    tens of milliseconds per 100k chunks. They are still freed by reference counting when dropped."""
    gc.collect()
    gc.freeze()


def _reload_on_sighup(rag: VoiceRAG) -> bool:
    """SIGHUP re-reads the configuration file and applies what can change live (the server's own process)."""
    tasks: set[asyncio.Task[object]] = set()

    def reload() -> None:
        task = asyncio.create_task(rag.live.reload_file())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    try:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals here
        return False
    return True


def create_app(settings: Settings | None = None, rag: VoiceRAG | None = None, freeze_heap: bool = False) -> FastAPI:
    """The ASGI app. Pass ``rag`` to share an already open instance (tests); else one is opened at startup.
    ``freeze_heap`` (``voicerag serve``): once the indexes are loaded, ``settle_heap``."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redact_access_log()  # uvicorn has set up its loggers by now
        owned = rag is None
        app.state.rag = rag if rag is not None else await VoiceRAG.open(settings, role="server")
        served = app.state.rag
        background = [asyncio.create_task(_warm(served, freeze_heap))]  # /readyz: ready once the indexes are in
        unwatch_gc = served.metrics.watch_gc()
        background.append(asyncio.create_task(served.keys.run_refresh()))  # keys verified with no SQL per request
        if owned and served.settings.preload_speech:  # in the background: the API answers meanwhile
            background.append(asyncio.create_task(served.speech.preload()))
        limiter = app.state.limiter
        served.live.listeners.append(lambda s: limiter.retune(s.rate_limit_per_s, s.rate_limit_burst))
        served.alerts.start()
        reloads = _reload_on_sighup(served) if owned else False
        app.state.closing = False
        try:
            yield
        finally:
            app.state.closing = True  # a request still running now gets a 503 to retry, not a bare 500
            if reloads:
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            unwatch_gc()
            await served.alerts.aclose()
            for task in background:
                task.cancel()
            if owned:
                await app.state.rag.aclose()

    app = FastAPI(
        title="VoiceRAG",
        version="0.1.0",
        description="Voice-enabled retrieval-augmented question answering. Errors are application/problem+json.",
        lifespan=lifespan,
        docs_url=None,  # served below from the package's own copy of Swagger UI: /docs works offline
        redoc_url=None,
    )
    config = settings or (rag.settings if rag else Settings())
    app.state.limiter = RateLimiter(config.rate_limit_per_s, config.rate_limit_burst)
    app.state.auth_failures = RateLimiter(  # guessing keys costs time: failures are limited per address
        config.auth_failures_per_s, config.auth_failures_burst, setting="VOICERAG_AUTH_FAILURES_PER_S"
    )
    app.add_middleware(CancelOnDisconnect)
    app.add_middleware(RequestMetrics)
    app.add_middleware(
        Admission, paths=QUERY_PATHS, inflight=config.max_inflight_requests, queued=config.max_queued_requests
    )
    app.add_middleware(BodyLimit, limit=config.max_upload_bytes)
    app.add_middleware(SameOrigin, allowed=tuple(config.allowed_origins + config.cors_origins))
    app.add_middleware(TrustedHosts, allowed=tuple(config.allowed_hosts))
    if config.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=config.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )

    @app.exception_handler(VoiceRAGError)
    async def _voicerag_error(request: Request, exc: VoiceRAGError) -> JSONResponse:
        response = problem(exc.status, exc.title, exc.detail)
        if isinstance(exc, TooManyRequests):
            response.headers["Retry-After"] = RateLimiter.retry_after_header(exc.retry_after_s)
        elif isinstance(exc, DatabaseUnavailable):
            response.headers["Retry-After"] = "1"
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"] if p != "body")
            problems.append(f"{where or 'body'}: {err['msg']}")
        return problem(422, "Invalid request", "; ".join(problems), errors=problems)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        """A fault no handler foresaw: problem+json all the same; 503 with Retry-After while shutting down."""
        if getattr(request.app.state, "closing", False):
            response = problem(503, "Shutting down", "the server is shutting down; send the request again")
            response.headers["Retry-After"] = "1"
            return response
        if connection_lost(exc):  # a read that met a killed database backend: nothing was changed
            log.warning("database connection lost on %s %s: %s", request.method, request.url.path, exc)
            response = problem(503, "Database unavailable", "the database connection was lost; send the request again")
            response.headers["Retry-After"] = "1"
            return response
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem(500, "Internal error", "an unexpected error occurred; it has been logged")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, "Error", str(exc.detail))

    from voicerag.api import openai_routes, routes, voice_routes

    app.include_router(routes.health)
    app.include_router(routes.router)
    app.include_router(openai_routes.router)
    app.include_router(voice_routes.router)
    app.include_router(voice_routes.streams)
    _offline_docs(app)
    static = resources.files("voicerag.api") / "static"
    if (static / "index.html").is_file():
        from fastapi.staticfiles import StaticFiles

        app.mount("/", StaticFiles(directory=str(static), html=True), name="web")
    return app


def _offline_docs(app: FastAPI) -> None:
    """Swagger UI at /docs from the swagger-ui-bundle package (no CDN), its files under /docs-assets."""
    import swagger_ui_bundle
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles

    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def _docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )
