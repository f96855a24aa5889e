"""The pgvector backend's contract runs against a PostgreSQL of the tests' own (the ``pgvector_url`` fixture)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def pgvector_backend(pgvector_url: str) -> Iterator[object]:
    """A PgVectorBackend whose queries run on an event loop in a thread (the read model's arrangement)."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from voicerag.retrieval.index import IndexParams
    from voicerag.retrieval.pgvector_index import PgVectorBackend, create_vector_schema

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def run(coro):
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    async def make_engine():
        engine = create_async_engine(pgvector_url)
        await create_vector_schema(engine, 384, 16, 64)
        return engine

    engine = run(make_engine())
    try:
        yield PgVectorBackend(engine, loop, 384, IndexParams(hnsw_ef_search=200))
    finally:
        run(engine.dispose())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
