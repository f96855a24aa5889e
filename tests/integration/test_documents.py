"""Ingest, update, delete and restart, against SQLite and the real PostgreSQL (the `backend` fixture)."""

from __future__ import annotations

import pytest

from voicerag import Document, VoiceRAG
from voicerag.errors import InvalidInput, NotFound


async def test_reingest_unchanged_does_nothing(rag: VoiceRAG, facts) -> None:
    first = await rag.ingest("kb", facts)
    assert (first.added, first.updated, first.unchanged) == (3, 0, 0) and first.chunks == 3
    second = await rag.ingest("kb", facts)
    assert (second.added, second.updated, second.unchanged, second.chunks) == (0, 0, 3, 0)
    assert second.generation == first.generation  # nothing written, nothing invalidated
    [collection] = await rag.list_collections()
    assert collection["documents"] == 3 and collection["chunks"] == 3


async def test_update_replaces_old_chunks(rag: VoiceRAG, facts) -> None:
    await rag.ingest("kb", facts)
    before = await rag.ask("When was the Eiffel Tower completed?", ["kb"])
    assert "1889" in before.text
    edited = Document(
        "paris", "Paris is the capital of France. The Eiffel Tower was completed in 1887 in this edit.", "Paris"
    )
    report = await rag.ingest("kb", [edited])
    assert (report.added, report.updated) == (0, 1)
    after = await rag.ask("When was the Eiffel Tower completed?", ["kb"])
    assert "1887" in after.text and "1889" not in after.text and not after.cached
    for mode in ("dense", "lexical", "hybrid"):
        results = await rag.search("Eiffel Tower World's Fair 1889", ["kb"], mode=mode, k=10)
        assert all("1889" not in s.text for s in results), mode
    document = await rag.get_document("kb", "paris")
    assert document["chunks"] == 1 and "1887" in document["chunk_texts"][0]


async def test_delete_removes_from_every_index(rag: VoiceRAG, facts) -> None:
    await rag.ingest("kb", facts)
    assert any(s.document_id == "python" for s in await rag.search("Guido van Rossum", ["kb"]))
    await rag.delete_documents("kb", ["python"])
    for mode in ("dense", "lexical", "hybrid"):
        results = await rag.search("Guido van Rossum", ["kb"], mode=mode, k=10)
        assert all(s.document_id != "python" for s in results), mode
    with pytest.raises(NotFound, match="no document 'python'"):
        await rag.get_document("kb", "python")
    with pytest.raises(NotFound):
        await rag.delete_documents("kb", ["python"])


async def test_delete_collection_and_unknown_collection(rag: VoiceRAG, facts) -> None:
    await rag.ingest("kb", facts)
    await rag.delete_collection("kb")
    with pytest.raises(NotFound, match="collection 'kb' does not exist"):
        await rag.search("cats", ["kb"])
    assert await rag.list_collections() == []
    # re-created under the same name: a fresh generation, never the old collection's answers
    await rag.ingest("kb", [Document("dogs", "Dogs bark at the mail carrier every morning.", "Dogs")])
    answer = await rag.ask("How long does a cat sleep?", ["kb"])
    assert all(s.document_id == "dogs" for s in answer.sources)


async def test_invalid_input_stores_nothing(rag: VoiceRAG, facts) -> None:
    await rag.ingest("kb", facts)
    with pytest.raises(InvalidInput, match="has no text"):
        await rag.ingest("kb", [Document("new", "Fine text."), Document("bad", "   ")])
    [collection] = await rag.list_collections()
    assert collection["documents"] == 3
    with pytest.raises(InvalidInput, match="collection name"):
        await rag.ingest("bad name!", facts)
    with pytest.raises(InvalidInput, match="at most 2000"):
        await rag.ask("x" * 100_000, ["kb"])


async def test_multi_collection_search(rag: VoiceRAG, facts) -> None:
    await rag.ingest("animals", facts[:1])
    await rag.ingest("places", facts[1:2])
    results = await rag.search("Eiffel Tower cats", ["animals", "places"], k=5)
    assert {s.collection for s in results} == {"animals", "places"}


async def test_indexes_persist_across_restart_without_reembedding(backend_settings, facts, monkeypatch) -> None:
    settings = backend_settings()
    async with await VoiceRAG.open(settings) as first:
        await first.ingest("kb", facts)
        expected = [s.chunk_id for s in await first.search("capital of France", ["kb"], mode="dense")]
    async with await VoiceRAG.open(settings.model_copy(update={"cache_enabled": False})) as second:
        calls = []
        original = second.store.chunk_rows

        async def spy(collection, ids, dim):
            calls.append((ids, dim))
            return await original(collection, ids, dim)

        monkeypatch.setattr(second.store, "chunk_rows", spy)
        got = [s.chunk_id for s in await second.search("capital of France", ["kb"], mode="dense")]
        assert got == expected
        assert calls == [(None, None)]  # texts read once; no vector read back, nothing re-embedded


async def test_stale_index_file_is_rebuilt_from_stored_vectors(backend_settings, facts) -> None:
    settings = backend_settings()
    async with await VoiceRAG.open(settings) as first:
        await first.ingest("kb", facts)
    (settings.data_dir / "indexes" / "kb" / "manifest.json").write_text('{"format": 1, "generation": 1, "dense": {')
    async with await VoiceRAG.open(settings) as second:
        results = await second.search("Guido van Rossum", ["kb"], mode="dense")
        assert results[0].document_id == "python"


async def test_auto_index_upgrades_to_hnsw_in_background(backend_settings) -> None:
    settings = backend_settings(index_type="auto", hnsw_threshold=40)
    docs = [Document(f"d{i}", f"Document number {i} talks about topic {i % 7} and item {i}.") for i in range(60)]
    async with await VoiceRAG.open(settings) as rag:
        await rag.ingest("grow", docs[:30])
        assert rag.retriever.loaded("grow").dense.kind == "flat"
        await rag.ingest("grow", docs[30:])
        await rag.retriever.wait_for_rebuilds()
        index = rag.retriever.loaded("grow")
        assert index.dense.kind == "hnsw" and len(index.dense) == 60
        results = await rag.search("item 45", ["grow"], mode="dense", k=3)
        assert "d45" in [s.document_id for s in results]


async def test_processes_starting_together_create_the_schema_once(backend_settings) -> None:
    """`serve --workers N` and replicas start together on a new store: each creates the missing tables, and
    the ones that lose the race find the winner's tables instead of failing to start."""
    import asyncio

    from sqlalchemy import inspect

    from voicerag.documents.store import SQLDocumentStore
    from voicerag.documents.tables import metadata
    from voicerag.pools import create_engine

    engines = [create_engine(backend_settings()) for _ in range(6)]
    try:
        await asyncio.gather(*(SQLDocumentStore(engine).create_schema() for engine in engines))
        async with engines[0].connect() as conn:
            tables = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        assert set(metadata.tables) <= tables
        if engines[0].dialect.name == "sqlite":  # every engine's connections share the file's WAL mode
            async with engines[-1].connect() as conn:
                assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
    finally:
        await asyncio.gather(*(engine.dispose() for engine in engines))


async def test_postgres_backends_killed_during_reads_and_writes_never_fail_them_or_leave_half_a_write(
    make_settings,
) -> None:
    """Every client backend is terminated again and again while documents are written and read and questions
    asked (the answer cache in the same database): each write either lands whole (retried on a fresh connection)
    or says 503 DatabaseUnavailable, each read answers or says the same; none is a bare error, none half-done."""
    import asyncio

    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from tests.conftest import reset_postgres
    from tests.helpers import PG_URL, need_service
    from voicerag.errors import DatabaseUnavailable

    need_service("PostgreSQL", "127.0.0.1", 5432)
    await reset_postgres()
    kill = text(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
    )
    settings = make_settings(database_url=PG_URL, cache_enabled=True, cache_sql=True, cache_redis=False)
    async with await VoiceRAG.open(settings) as rag:
        await rag.ingest("kb", [Document("seed", "The seed document is here.", "Seed")])
        admin = create_async_engine(PG_URL)
        done, kills = asyncio.Event(), []
        reads = {"answered": 0, "refused": 0}

        async def killer() -> None:
            async with admin.connect() as conn:
                while not done.is_set():
                    kills.append((await conn.execute(kill)).scalar())
                    await asyncio.sleep(0.005)

        async def reader() -> None:
            while not done.is_set():
                for read in (
                    lambda: rag.list_documents("kb", 1000, 0),
                    lambda: rag.get_document("kb", "seed"),
                    lambda: rag.ask("Where is the seed document?", ["kb"]),
                ):
                    try:
                        await read()
                        reads["answered"] += 1
                    except DatabaseUnavailable:
                        reads["refused"] += 1

        killing, reading = asyncio.create_task(killer()), asyncio.create_task(reader())
        written, refused = [], 0
        try:
            for i in range(12):  # long enough (about 20 chunks a write) for kills to land inside transactions
                text = " ".join(f"Part {j} of document {i} holds the value {i * 100 + j}." for j in range(300))
                doc = Document(f"d{i}", text, f"Doc {i}")
                try:
                    await rag.ingest("kb", [doc])
                    written.append(doc.id)
                except DatabaseUnavailable:
                    refused += 1
        finally:
            done.set()
            await asyncio.gather(killing, reading)  # a reader's bare error fails the test here
            await admin.dispose()
        assert sum(kills) >= 1 and written and reads["answered"], (kills, refused, reads)
        stored = {d["id"]: d["chunks"] for d in await rag.list_documents("kb", 1000, 0)}
        assert set(written) <= set(stored)  # what was acknowledged is there...
        assert all(chunks >= 1 for chunks in stored.values())  # ...and whatever is there is whole


async def test_a_store_from_the_previous_release_is_migrated_and_keeps_everything(backend_settings, facts) -> None:
    """A store as the release before migrations left it (its tables made by create_all, no answer-unit table,
    no version table): opening it stamps the revision its tables match and upgrades it; every document, key and
    job is still there, and questions are answered (their units embedded at ask time)."""
    from sqlalchemy import text

    from voicerag.documents.migrations import HEAD, VERSION_TABLE

    settings = backend_settings()
    async with await VoiceRAG.open(settings) as rag:
        await rag.ingest("kb", facts)
        key, _ = await rag.keys.create("ops", ["read:kb"])
        job = await rag.jobs.create("kb", facts[:1], [])
        async with rag.pools.engine.begin() as conn:  # back to the previous release's shape
            await conn.execute(text("DROP TABLE vr_chunk_units"))
            await conn.execute(text(f"DROP TABLE {VERSION_TABLE}"))
    async with await VoiceRAG.open(settings) as rag:
        schema = await rag.store.schema_revision()
        assert schema == {"ok": True, "revision": HEAD, "expected": HEAD}
        assert {d["id"] for d in await rag.list_documents("kb")} == {d.id for d in facts}
        assert (await rag.keys.verify(key)) is not None
        assert (await rag.jobs.get(job.id)).collection == "kb"
        answer = await rag.ask("When was the Eiffel Tower completed?", ["kb"])
        assert answer.found and "1889" in answer.text
        async with rag.pools.engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM vr_chunk_units"))).scalar() == 0  # made anew


def test_the_head_revision_named_in_code_is_alembics() -> None:
    """Start-up skips Alembic when a store is at ``HEAD``: a new migration file must move ``HEAD`` with it."""
    from voicerag.documents import migrations

    assert migrations.alembic_head() == migrations.HEAD
