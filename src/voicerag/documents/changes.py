"""Change feeds: how a process learns that another process committed a write, without a query per request.

- PostgreSQL: LISTEN on the channel the store NOTIFYs inside every write transaction (delivered at commit).
- SQLite: ``PRAGMA data_version`` on a connection of our own, read on the event loop every few milliseconds
  (a few microseconds each: it reads the shared WAL index, no I/O); it changes when any other connection
  commits. Requests never wait on it: the catch-up runs beside them.

A feed that cannot vouch for what it has seen (the listener's connection is down) says so with ``healthy``;
the reader then asks the store per request until the feed is back, so no request ever sees a stale generation
because a notification was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from sqlalchemy.engine import make_url

from voicerag.documents.store import CHANGES_CHANNEL

log = logging.getLogger(__name__)

OnChange = Callable[[str | None, int | None], Awaitable[None]]  # (collection, generation) or (None, None): anything


class ChangeFeed(Protocol):
    """Tells the read model when the store changed, by calling ``on_change`` from a task of its own."""

    @property
    def healthy(self) -> bool: ...
    async def start(self, on_change: OnChange) -> None: ...
    async def aclose(self) -> None: ...


class SQLiteDataVersion:
    """Polls ``PRAGMA data_version`` of the database file on a private connection every ``interval_s``."""

    def __init__(self, path: str, interval_s: float):
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._last = self._read()
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    @property
    def healthy(self) -> bool:
        return self._task is not None and not self._task.done()

    def _read(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    async def start(self, on_change: OnChange) -> None:
        self._task = asyncio.create_task(self._run(on_change))

    async def _run(self, on_change: OnChange) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            current = self._read()
            if current != self._last:
                self._last = current
                await on_change(None, None)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._conn.close()


class PostgresListener:
    """LISTENs on the store's change channel over a dedicated asyncpg connection, reconnecting by itself.

    After a reconnect it reports ``None`` (anything may have changed while it was away)."""

    def __init__(self, url: str, retry_s: float = 0.5):
        parsed = make_url(url).set(drivername="postgresql")
        self._dsn = parsed.render_as_string(hide_password=False)
        self._retry_s = retry_s
        self._conn: Any = None
        self._task: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        self._connected = asyncio.Event()
        self.received = 0

    @property
    def healthy(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def start(self, on_change: OnChange) -> None:
        self._task = asyncio.create_task(self._run(on_change))
        with contextlib.suppress(TimeoutError):  # serving starts anyway; requests ask the store meanwhile
            await asyncio.wait_for(self._connected.wait(), timeout=5)

    async def _run(self, on_change: OnChange) -> None:
        import asyncpg

        def deliver(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
            self.received += 1
            try:
                data = json.loads(payload)
                name, generation = str(data["collection"]), int(data["generation"])
            except (ValueError, KeyError, TypeError):
                name, generation = None, None
            asyncio.get_running_loop().create_task(on_change(name, generation))

        first = True
        while True:
            try:
                conn = await asyncpg.connect(self._dsn, timeout=5)
                self._lost.clear()
                conn.add_termination_listener(lambda _c: self._lost.set())
                await conn.add_listener(CHANGES_CHANNEL, deliver)
                self._conn = conn
                self._connected.set()
                if not first:
                    await on_change(None, None)  # notifications may have been missed while disconnected
                first = False
                await self._lost.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("change listener on PostgreSQL unavailable (%s); retrying", exc)
            finally:
                conn_, self._conn = self._conn, None
                if conn_ is not None:
                    with contextlib.suppress(Exception):
                        await conn_.close(timeout=1)
            first = False
            await asyncio.sleep(self._retry_s)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


def create_feed(database_url: str, poll_interval_s: float) -> ChangeFeed:
    """The feed for the store at ``database_url`` (SQLite is polled every ``poll_interval_s``)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return SQLiteDataVersion(url.database or ":memory:", poll_interval_s)
    return PostgresListener(database_url)
