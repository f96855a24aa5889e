"""The read model: no SQL on the read path, read-your-writes, other replicas caught up by change notices and
the change log, concurrent writers, bounded ingest batches (SQLite and the real PostgreSQL)."""

from __future__ import annotations

import asyncio

import pytest

from tests.helpers import PG_URL, count_statements, need_service, wait_for_sync
from voicerag import Document, VoiceRAG


async def test_search_and_ask_run_no_sql(rag: VoiceRAG, facts) -> None:
    await rag.ingest("kb", facts)
    await rag.search("warm up", ["kb"])
    with count_statements(rag) as statements:
        for mode in ("dense", "lexical", "hybrid"):
            assert (await rag.search("Who created Python?", ["kb"], mode=mode))[0].document_id == "python"
        first = await rag.ask("When was the Eiffel Tower completed?", ["kb"])
        again = await rag.ask("When was the Eiffel Tower completed?", ["kb"])
    assert "1889" in first.text and again.cached
    assert statements == []


async def test_texts_over_the_memory_budget_come_from_one_read(backend_settings, facts) -> None:
    async with await VoiceRAG.open(backend_settings(read_model_text_mb=0)) as rag:
        await rag.ingest("kb", facts)
        await rag.search("warm up", ["kb"])
        with count_statements(rag) as statements:
            results = await rag.search("Guido van Rossum", ["kb"], k=3, mode="hybrid")
        assert results[0].document_id == "python" and "Guido" in results[0].text
        assert len(statements) == 1


async def _two_replicas(backend: str, make_settings):
    """Two processes' worth of VoiceRAG on one store, each with its own index files."""
    if backend == "postgres":
        base = {"database_url": PG_URL}
    else:
        base = {"database_url": f"sqlite+aiosqlite:///{make_settings().data_dir.parent / 'shared.db'}"}
    one = await VoiceRAG.open(make_settings(data_dir=make_settings().data_dir / "one", **base))
    two = await VoiceRAG.open(make_settings(data_dir=make_settings().data_dir / "two", **base))
    return one, two


async def test_other_replica_catches_up_by_delta_without_sql_per_request(backend, make_settings, facts) -> None:
    one, two = await _two_replicas(backend, make_settings)
    try:
        await one.ingest("kb", facts)
        assert "1889" in (await two.ask("When was the Eiffel Tower completed?", ["kb"])).text
        report = await one.ingest("kb", [Document("paris", "The Eiffel Tower was completed in 1887, says this edit.")])
        await wait_for_sync(two, "kb", report.generation)  # LISTEN/NOTIFY or data_version, applied as a delta
        assert two.retriever.syncs >= 1 and two.retriever.sync_stats()["lag_max_ms"] is not None
        answer = await two.ask("When was the Eiffel Tower completed?", ["kb"])
        assert "1887" in answer.text and not answer.cached
        assert two.retriever.loaded("kb").generation == report.generation
        await one.delete_documents("kb", ["python"])
        for _ in range(3):
            await two.search("warm", ["kb"])
        await wait_for_sync(two, "kb", report.generation + 1)
        with count_statements(two) as statements:
            results = await two.search("Guido van Rossum", ["kb"], k=10)
            assert all(s.document_id != "python" for s in results)
        assert statements == []
    finally:
        await one.aclose()
        await two.aclose()


async def test_deleted_and_recreated_collection_on_another_replica(backend, make_settings, facts) -> None:
    one, two = await _two_replicas(backend, make_settings)
    try:
        await one.ingest("kb", facts)
        await two.search("cats", ["kb"])
        await one.delete_collection("kb")
        report = await one.ingest("kb", [Document("dogs", "Dogs bark at the mail carrier every morning.", "Dogs")])
        await wait_for_sync(two, "kb", report.generation, loaded=False)
        results = await two.search("How long does a cat sleep?", ["kb"], k=10)
        assert [s.document_id for s in results] == ["dogs"]
    finally:
        await one.aclose()
        await two.aclose()


async def test_concurrent_single_document_writes_all_land(rag: VoiceRAG) -> None:
    docs = [Document(f"d{i}", f"Document {i} is about the topic number {i}.", f"D{i}") for i in range(8)]
    reports = await asyncio.gather(*(rag.ingest("kb", [d]) for d in docs))
    assert sorted(r.added for r in reports) == [1] * 8
    await rag.retriever.flush()  # saves the index files now (normally throttled)
    results = await rag.search("topic number", ["kb"], k=20, mode="lexical")
    assert {s.document_id for s in results} == {d.id for d in docs}
    index_dir = rag.settings.data_dir / "indexes" / "kb"
    assert (index_dir / "manifest.json").is_file()
    assert not [p for p in index_dir.iterdir() if p.name.endswith(".tmp")]


async def test_restart_catches_up_index_files_by_id_difference(backend_settings, facts) -> None:
    settings = backend_settings(index_save_interval_s=3600)
    async with await VoiceRAG.open(settings) as first:
        await first.ingest("kb", facts[:2])
        await first.retriever.flush()
        await first.ingest("kb", facts[2:])  # in the store, not yet in the saved files...
        first.retriever.loaded("kb").dirty = False  # ...and never saved (as if the process had been killed)
    async with await VoiceRAG.open(settings) as second:
        results = await second.search("Guido van Rossum", ["kb"], mode="dense")
        assert results[0].document_id == "python"
        assert (await second.search("Guido", ["kb"], mode="lexical"))[0].document_id == "python"


async def test_ingest_commits_in_batches_and_a_rerun_completes_without_duplicates(backend_settings) -> None:
    docs = [Document(f"d{i}", f"Record {i} describes item {i} in detail.", f"R{i}") for i in range(10)]
    async with await VoiceRAG.open(backend_settings(ingest_batch_docs=3)) as rag:
        calls = 0
        original = rag.ingestor.embed

        async def failing_embed(texts, spans):
            nonlocal calls
            calls += 1
            if calls == 3:
                raise RuntimeError("the process died here")
            return await original(texts, spans)

        rag.ingestor.embed = failing_embed
        progress: list[tuple[int, int]] = []
        with pytest.raises(RuntimeError, match="died"):
            await rag.ingest("kb", docs, progress=lambda done, total: progress.append((done, total)))
        assert progress == [(0, 10), (3, 10), (6, 10)]
        [collection] = await rag.list_collections()
        assert collection["documents"] == 6  # two batches committed, the third lost
        rag.ingestor.embed = original
        report = await rag.ingest("kb", docs)
        assert (report.added, report.unchanged) == (4, 6)
        [collection] = await rag.list_collections()
        assert collection["documents"] == 10 and collection["chunks"] == 10
        results = await rag.search("item 8", ["kb"], k=10, mode="lexical")
        assert [s.document_id for s in results].count("d8") == 1


async def test_postgres_listener_lost_falls_back_to_reading_generations(make_settings, facts) -> None:
    need_service("PostgreSQL", "127.0.0.1", 5432)
    from tests.conftest import reset_postgres

    await reset_postgres()
    one = await VoiceRAG.open(make_settings(database_url=PG_URL, data_dir=make_settings().data_dir / "one"))
    two = await VoiceRAG.open(make_settings(database_url=PG_URL, data_dir=make_settings().data_dir / "two"))
    try:
        await one.ingest("kb", facts)
        await two.search("cats", ["kb"])
        feed = two.retriever.feed
        await feed.aclose()  # the listener is gone: notices can no longer arrive
        assert not feed.healthy
        report = await one.ingest("kb", [Document("paris", "The Eiffel Tower was completed in 1887 in this edit.")])
        answer = await two.ask("When was the Eiffel Tower completed?", ["kb"])  # read from the store instead
        assert "1887" in answer.text and two.retriever.loaded("kb").generation == report.generation
    finally:
        await one.aclose()
        await two.aclose()


async def test_change_log_read_racing_a_commit_is_not_a_gap(rag: VoiceRAG, facts, monkeypatch) -> None:
    """A write committing between the generation read and the change-log read brings one more row: that is a
    complete log (a replica applies both), not a gap that would force a full rebuild."""
    first = await rag.ingest("kb", facts[:1])
    await rag.ingest("kb", facts[1:2])
    latest = await rag.ingest("kb", facts[2:])
    store = rag.store
    original = store._generation

    async def stale_generation(conn, name):  # as if read just before the last write committed
        return (await original(conn, name)) - 1

    monkeypatch.setattr(store, "_generation", stale_generation)
    changes = await store.changes_since("kb", first.generation)
    assert changes is not None and [c.generation for c in changes] == [first.generation + 1, latest.generation]
    monkeypatch.setattr(store, "_generation", original)
    assert await store.changes_since("kb", first.generation - 5) is None  # a real gap: rows pruned or never there


@pytest.mark.parametrize("spin", [False, True])
async def test_embedder_threads_spin_only_when_asked(make_settings, spin: bool) -> None:
    """ONNX Runtime's threads busy-wait between calls unless told not to: off by default (other requests and
    replicas get the cores), on with ONNX_SPIN; the vectors are the same either way."""
    async with await VoiceRAG.open(make_settings(onnx_spin=spin)) as rag:
        options = rag.embedder.session.get_session_options()
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == ("1" if spin else "0")
        vector = (await rag.embedder.embed(["a lantern by the river"]))[0]
    async with await VoiceRAG.open(make_settings(onnx_spin=not spin)) as other:
        again = (await other.embedder.embed(["a lantern by the river"]))[0]
    assert abs(float(vector @ again) - 1.0) < 1e-5


async def test_a_commit_during_a_collections_first_load_is_not_missed(backend, make_settings, facts) -> None:
    """Another replica commits while this one loads a collection for the first time, after this one read its
    chunks: the change notice arrives while the collection is not yet in memory, so the load itself catches up
    before it serves (the periodic sync, seconds later, must not be what fixes it)."""
    one, two = await _two_replicas(backend, make_settings)
    store = two.retriever.store
    read_chunks = store.chunk_rows

    async def read_then_commit_elsewhere(name, ids, dim):  # the first load's full read, then a commit on `one`
        rows = await read_chunks(name, ids, dim)
        if ids is None:
            store.chunk_rows = read_chunks
            late = Document("late", "The lighthouse keeper feeds seventeen cats every evening.", "Lighthouse")
            await one.ingest("kb", [late])
            await two.retriever.on_change(None)  # its notice, while kb is not yet loaded here
        return rows

    try:
        await one.ingest("kb", facts)
        store.chunk_rows = read_then_commit_elsewhere
        results = await two.search("lighthouse keeper cats", ["kb"])
        assert results and results[0].document_id == "late"
    finally:
        await one.aclose()
        await two.aclose()
