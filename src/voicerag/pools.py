"""Connection pools built once by the composition root: SQL engine, shared HTTP client, Redis pool."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event, make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from voicerag.config import Settings
from voicerag.errors import UpstreamError

log = logging.getLogger(__name__)

RETRY_STATUSES = {429, 500, 502, 503, 504}


def bearer(api_key: str | None) -> dict[str, str]:
    """The Authorization header for an OpenAI-style API key (none without a key)."""
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


SQLITE_WAL_ATTEMPTS = 40


def _use_wal(database: str | None) -> None:
    """Switch a SQLite file to WAL (which the file keeps) before any pooled connection opens. Processes or
    engines opening one new file together race for the switch, and SQLite answers the losers "database is
    locked" at once, without waiting out the busy timeout: they retry briefly (this runs once, at startup)."""
    import sqlite3

    if not database or database == ":memory:":
        return
    path = Path(database)
    if not path.exists():  # the store holds documents and key hashes: only its owner reads it
        path.touch(mode=0o600)
    for attempt in range(SQLITE_WAL_ATTEMPTS):
        try:
            with contextlib.closing(sqlite3.connect(database, timeout=30)) as conn:
                conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or attempt == SQLITE_WAL_ATTEMPTS - 1:
                raise
            time.sleep(min(0.25, 0.01 * (attempt + 1)))


def create_engine(settings: Settings) -> AsyncEngine:
    """The async SQLAlchemy engine with pool sizes, timeouts, pre-ping and recycle from Settings."""
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        _use_wal(make_url(url).database)
        engine = create_async_engine(
            url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout_s,
            pool_pre_ping=False,  # a local file cannot drop a connection; the ping doubled every tier read
            connect_args={"timeout": 30},
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA synchronous=NORMAL")  # the file is in WAL mode already (_use_wal)
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_s,
        pool_recycle=settings.db_pool_recycle_s,
        pool_pre_ping=True,
    )


def create_http_client(settings: Settings, stats: HttpStats) -> httpx.AsyncClient:
    """One pooled client for every provider: limits, keep-alive, HTTP/2, timeouts, and the provider policy
    (``ProviderTransport``: retries, stats, errors)."""
    inner = httpx.AsyncHTTPTransport(
        http2=True,
        limits=httpx.Limits(
            max_connections=settings.http_max_connections,
            max_keepalive_connections=settings.http_max_keepalive,
            keepalive_expiry=30,
        ),
    )
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.http_timeout_s, connect=settings.http_connect_timeout_s),
        transport=ProviderTransport(inner, settings.http_retries, stats),
        follow_redirects=True,
    )


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


@dataclass
class HttpStats:
    """Provider HTTP attempts (each try counts), the retries among them, and the failed ones."""

    requests: int = 0
    retries: int = 0
    errors: int = 0


# Failures that leave the request unsent or unanswered before any byte came back: safe to try again.
_RETRY_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError)


def _upstream(request: httpx.Request, exc: httpx.TransportError) -> UpstreamError:
    host = request.url.host
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamError(f"provider {host} timed out ({type(exc).__name__})")
    return UpstreamError(f"provider {host} unreachable: {type(exc).__name__}: {exc}")


class _MappedStream(httpx.AsyncByteStream):
    """A response body whose transport failures (a read timeout mid-stream, a dropped connection) arrive as
    UpstreamError, like the failures before the response."""

    def __init__(self, stream: httpx.AsyncByteStream, request: httpx.Request):
        self.stream, self.request = stream, request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.stream:
                yield chunk
        except httpx.TransportError as exc:
            raise _upstream(self.request, exc) from exc

    async def aclose(self) -> None:
        await self.stream.aclose()


class ProviderTransport(httpx.AsyncBaseTransport):
    """The one HTTP policy of every provider client (embeddings, LLM, STT, TTS), as the transport under the shared
    client: connect errors and 429/5xx are retried ``retries`` times with exponential backoff and jitter, honouring
    ``Retry-After``; every attempt, retry and failure is counted in ``stats``; and a transport failure (refused,
    timed out, dropped, also while the body streams) is raised as ``UpstreamError``, which the API maps to 502 and
    the pipeline to its fallbacks. The last 429/5xx is returned for the client to read the provider's message."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        retries: int,
        stats: HttpStats,
        max_backoff_s: float = 8.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        self.inner, self.retries, self.stats = inner, retries, stats
        self.max_backoff_s, self.sleep = max_backoff_s, sleep

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        attempt = 0
        while True:
            self.stats.requests += 1
            try:
                response = await self.inner.handle_async_request(request)
            except _RETRY_ERRORS as exc:
                if attempt >= self.retries:
                    self.stats.errors += 1
                    raise _upstream(request, exc) from exc
                delay = None
            except httpx.TransportError as exc:
                self.stats.errors += 1
                raise _upstream(request, exc) from exc
            else:
                if response.status_code not in RETRY_STATUSES or attempt >= self.retries:
                    if response.status_code >= 400:
                        self.stats.errors += 1
                    return httpx.Response(
                        response.status_code,
                        headers=response.headers,
                        stream=_MappedStream(response.stream, request),  # type: ignore[arg-type]
                        extensions=response.extensions,
                    )
                delay = _retry_after(response)
                await response.aclose()
            backoff = delay if delay is not None else 0.2 * 2**attempt * (0.5 + random.random())
            attempt += 1
            self.stats.retries += 1
            log.warning("retrying %s %s in %.2fs (attempt %d)", request.method, request.url, backoff, attempt)
            await self.sleep(min(backoff, self.max_backoff_s))

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Pools:
    """The shared pools: SQL engine, HTTP client (made on first use: its TLS set-up costs a CLI command that
    calls no provider 0.1 s), and Redis (None unless configured)."""

    settings: Settings
    engine: AsyncEngine
    http_stats: HttpStats = field(default_factory=HttpStats)
    redis: Any = None
    _http: httpx.AsyncClient | None = None

    @classmethod
    def create(cls, settings: Settings) -> Pools:
        redis = None
        if settings.redis_url:
            from voicerag.cache.redis_pool import create_redis

            redis = create_redis(settings)
        return cls(settings, create_engine(settings), redis=redis)

    @property
    def http(self) -> httpx.AsyncClient:
        """The pooled provider client (``create_http_client``)."""
        if self._http is None:
            self._http = create_http_client(self.settings, self.http_stats)
        return self._http

    async def health(self) -> dict[str, Any]:
        """Check each pool with a real round trip."""
        out: dict[str, Any] = {}
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            out["database"] = {"ok": True}
        except Exception as exc:  # report, don't raise: /readyz shows it
            out["database"] = {"ok": False, "error": str(exc)[:200]}
        if self.redis is not None:
            try:
                await asyncio.wait_for(self.redis.ping(), timeout=self.settings.redis_timeout_s * 4)
                out["redis"] = {"ok": True}
            except Exception as exc:
                out["redis"] = {"ok": False, "error": str(exc)[:200] or type(exc).__name__}
        return out

    def stats(self) -> dict[str, Any]:
        pool = self.engine.pool
        out: dict[str, Any] = {
            "database": {
                "dialect": self.engine.dialect.name,
                "size": getattr(pool, "size", lambda: None)(),
                "checked_out": getattr(pool, "checkedout", lambda: None)(),
                "idle": getattr(pool, "checkedin", lambda: None)(),
                "overflow": getattr(pool, "overflow", lambda: None)(),
            },
            "http": {
                "max_connections": self.settings.http_max_connections,
                "requests": self.http_stats.requests,
                "retries": self.http_stats.retries,
                "errors": self.http_stats.errors,
            },
        }
        if self.redis is not None:
            cp = self.redis.connection_pool
            out["redis"] = {
                "max_connections": cp.max_connections,
                "in_use": len(getattr(cp, "_in_use_connections", ())),
                "idle": len(getattr(cp, "_available_connections", ())),
            }
        return out

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        if self.redis is not None:
            await self.redis.aclose()
        await self.engine.dispose()
