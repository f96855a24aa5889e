"""VoiceRAG on the pgvector backend: one shared dense index for every replica, deletes and re-creation."""

from __future__ import annotations

import pytest

from voicerag import Document, VoiceRAG
from voicerag.errors import NotFound


async def _reset(url: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    from voicerag.documents.tables import metadata

    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)
        await conn.exec_driver_sql("DROP TABLE IF EXISTS vr_vectors")
    await engine.dispose()


async def test_replicas_share_one_pgvector_index(pgvector_url, make_settings, facts) -> None:
    await _reset(pgvector_url)
    base = {"database_url": pgvector_url, "vector_backend": "pgvector"}
    one = await VoiceRAG.open(make_settings(data_dir=make_settings().data_dir / "one", **base))
    two = await VoiceRAG.open(make_settings(data_dir=make_settings().data_dir / "two", **base))
    try:
        await one.ingest("kb", facts)
        assert (await one.search("Who created Python?", ["kb"], mode="dense"))[0].document_id == "python"
        found = await two.search("When was the Eiffel Tower completed?", ["kb"], mode="dense")
        assert found[0].document_id == "paris" and len(await two.retriever.loaded("kb").dense.ids_async()) == 3
        answer = await two.ask("How long does a cat sleep?", ["kb"])
        assert "15 hours" in answer.text
        await one.delete_collection("kb")
        with pytest.raises(NotFound):
            await one.search("cats", ["kb"])
        await one.ingest("kb", [Document("dogs", "Dogs bark at the mail carrier every morning.", "Dogs")])
        results = await one.search("How long does a cat sleep?", ["kb"], mode="dense", k=10)
        assert [s.document_id for s in results] == ["dogs"]  # nothing of the old collection's vectors
    finally:
        await one.aclose()
        await two.aclose()


def test_pgvector_needs_a_postgres_store(make_settings) -> None:
    with pytest.raises(ValueError, match="needs a PostgreSQL store"):
        make_settings(vector_backend="pgvector")
