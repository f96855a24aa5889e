"""One rule for a database connection that goes away under a statement (a PostgreSQL backend killed, a
failover): the work is rolled back whole, the connection is dropped from the pool, and the work runs again on a
fresh one, up to ``ATTEMPTS`` times; then ``DatabaseUnavailable`` (503 with Retry-After). Reads and writes alike:
a read changes nothing, and a write is one transaction, so running either again is safe."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from voicerag.errors import DatabaseUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

ATTEMPTS = 3
# asyncpg's names for a connection that died under a statement; SQLAlchemy does not always mark these invalidated
_LOST_CONNECTION = {"InternalClientError", "ConnectionDoesNotExistError", "InterfaceError", "ConnectionResetError"}


def connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) says the database connection went away, not that the work was wrong."""
    seen: BaseException | None = exc
    for _ in range(8):  # the exception, what it wraps, what that was raised from...
        if seen is None:
            break
        if isinstance(seen, DBAPIError) and seen.connection_invalidated:
            return True
        if type(seen).__name__ in _LOST_CONNECTION or isinstance(seen, ConnectionError):
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False


async def run(
    engine: AsyncEngine, work: Callable[[AsyncConnection], Awaitable[T]], *, transaction: bool, what: str
) -> T:
    """``work`` on a pooled connection (in one transaction when ``transaction``), run again on a fresh
    connection when the one it had was lost; ``what`` names it in the log and the 503."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            async with engine.connect() as conn:  # the checkout's own ping can meet the kill too
                try:
                    if not transaction:
                        return await work(conn)
                    async with conn.begin():
                        return await work(conn)
                except Exception as exc:
                    if connection_lost(exc):
                        with contextlib.suppress(Exception):
                            await conn.invalidate()  # never back into the pool
                    raise
        except Exception as exc:
            if not connection_lost(exc):
                raise
            log.warning("database connection lost during %s (attempt %d of %d): %s", what, attempt, ATTEMPTS, exc)
            if attempt == ATTEMPTS:
                raise DatabaseUnavailable(
                    f"the database connection was lost {ATTEMPTS} times during {what}; nothing was changed, "
                    "send the request again"
                ) from exc
    raise AssertionError("unreachable")


async def rows(conn: AsyncConnection, query: Any, mappings: bool = False) -> list[Any]:
    """Every row ``query`` returns on ``conn`` (as mappings: by column name)."""
    result = await conn.execute(query)
    return list(result.mappings().all() if mappings else result.all())


async def fetch(engine: AsyncEngine, query: Any, *, what: str, mappings: bool = False) -> list[Any]:
    """Every row of one query, read under the rule above."""
    return await run(engine, lambda conn: rows(conn, query, mappings), transaction=False, what=what)


async def execute(engine: AsyncEngine, statement: Any, *, what: str) -> int:
    """One writing statement in its own transaction, under the rule above; the rows it touched."""

    async def write(conn: AsyncConnection) -> int:
        return int((await conn.execute(statement)).rowcount or 0)

    return await run(engine, write, transaction=True, what=what)
