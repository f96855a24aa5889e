"""The SQL document store (SQLAlchemy 2 Core, async): collections, documents, chunks and their vectors.

SQLite (aiosqlite) and PostgreSQL (asyncpg) run the same code. Every write is one transaction, so a
failed ingest leaves nothing half-written; every write bumps the collection's generation number and records
which chunk ids it added and removed (the change log replicas apply as deltas). On PostgreSQL the write also
sends a NOTIFY on ``CHANGES_CHANNEL``, delivered to listeners when it commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import numpy as np
from sqlalchemy import (
    case,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from voicerag.documents import database
from voicerag.documents.chunking import indexed_text
from voicerag.documents.loaders import Document
from voicerag.documents.tables import changes, chunk_units, chunks, collections, documents, metadata
from voicerag.errors import NotFound, UnknownCollection

log = logging.getLogger(__name__)
T = TypeVar("T")


@contextlib.asynccontextmanager
async def _migration_lock(engine: AsyncEngine) -> AsyncIterator[None]:
    """Across processes (and engines) on one SQLite file: one migration at a time (SQLite runs DDL outside the
    transaction, so two at once would each see the other's half-made tables)."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    handle = os.open(f"{database}.migrate-lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        await asyncio.to_thread(fcntl.flock, handle, fcntl.LOCK_EX)  # a thread: the lock holder needs the loop
        yield
    finally:
        os.close(handle)  # releases the lock


CHANGES_CHANNEL = "voicerag_changes"
SCHEMA_LOCK = 0x766F69636572  # "voicer": the advisory lock migrating processes take in turn
CHANGE_LOG_KEEP = 1000  # generations of history per collection; a replica further behind reloads


@dataclass
class PreparedChunk:
    text: str
    start: int
    end: int
    vector: np.ndarray
    units: bytes | None = None  # the chunk's answer units' vectors, packed (retrieval/quantize.py)


@dataclass
class PreparedDocument:
    """A document with its chunks embedded, ready to be written in one transaction."""

    doc: Document
    content_hash: str
    chunks: list[PreparedChunk]


@dataclass
class ChunkRecord:
    id: int
    collection: str
    doc_id: str
    title: str
    ordinal: int
    text: str
    start: int
    end: int


@dataclass
class Change:
    """One committed write of a collection: the generation it made and the chunk ids it added and removed."""

    generation: int
    added: list[int]
    removed: list[int]
    committed_at: float = 0.0


@dataclass
class ChunkRows:
    """Chunks as parallel columns (what an index and a search result need), in chunk-id order."""

    ids: np.ndarray
    vectors: np.ndarray | None
    doc_ids: list[str]
    titles: list[str]
    texts: list[str]
    starts: list[int]
    ends: list[int]
    units: list[bytes | None] | None = None  # each chunk's packed unit vectors, when stored with its recipe

    def __len__(self) -> int:
        return len(self.ids)

    def indexed_texts(self) -> list[str]:
        """What the lexical index reads of each chunk: its document's title with its text."""
        return [indexed_text(title, text) for title, text in zip(self.titles, self.texts, strict=True)]


def no_rows() -> ChunkRows:
    return ChunkRows(np.zeros(0, np.int64), None, [], [], [], [], [])


@dataclass
class WriteResult:
    """A committed write: the generation it made, the chunk ids it removed and the chunks it added."""

    generation: int
    removed_chunk_ids: list[int]
    added: ChunkRows


INDEX_RECIPE = 3  # how chunks are embedded and tokenised (2: with their title; 3: with unit vectors); a new one
# re-indexes on ingest
UNITS_RECIPE = 1  # how a chunk is cut into answer units; stored unit vectors of another recipe are not used


def content_hash(doc: Document) -> str:
    """Hash of everything stored about a document and how it is indexed: unchanged means re-ingest does
    nothing."""
    payload = json.dumps(
        [INDEX_RECIPE, doc.title, doc.text, doc.metadata], sort_keys=True, ensure_ascii=False, default=str
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


class DocumentStore(Protocol):
    """Where documents, chunks, vectors and collection generations live."""

    async def create_schema(self) -> str: ...
    async def schema_revision(self) -> dict[str, Any]: ...
    async def ensure_collection(self, name: str) -> int: ...
    async def generation(self, name: str) -> int | None: ...
    async def generations(self) -> dict[str, int]: ...
    async def changes_since(self, collection: str, generation: int) -> list[Change] | None: ...
    async def chunk_rows(self, collection: str, ids: list[int] | None, dim: int | None) -> ChunkRows: ...
    async def list_collections(self) -> list[dict[str, Any]]: ...
    async def delete_collection(self, name: str) -> list[int]: ...
    async def document_hashes(self, collection: str, doc_ids: list[str]) -> dict[str, str]: ...
    async def write_documents(self, collection: str, docs: list[PreparedDocument]) -> WriteResult: ...
    async def delete_documents(self, collection: str, doc_ids: list[str]) -> WriteResult: ...
    async def list_documents(self, collection: str, limit: int, offset: int) -> list[dict[str, Any]]: ...
    async def get_document(self, collection: str, doc_id: str) -> dict[str, Any]: ...
    async def fetch_chunks(self, ids: list[int]) -> dict[int, ChunkRecord]: ...


class SQLDocumentStore:
    """DocumentStore over an async SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: AsyncEngine):
        self.engine = engine

    async def create_schema(self) -> str:
        """Bring the store's schema to this release's (the migrations in ``documents/migrations``); returns the
        revision. Processes starting together on one store (``serve --workers N``, replicas) take turns: a
        PostgreSQL advisory lock, or a lock file beside the SQLite file; whoever comes second finds the work done."""
        from voicerag.documents import migrations

        async with _migration_lock(self.engine), self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
            return await conn.run_sync(migrations.upgrade)

    async def schema_revision(self) -> dict[str, Any]:
        """The store's schema revision and this release's (``/readyz``: they must match)."""
        from voicerag.documents import migrations

        async with self.engine.connect() as conn:
            revision = await conn.run_sync(migrations.current)
        return {"ok": revision == migrations.HEAD, "revision": revision, "expected": migrations.HEAD}

    async def _read(self, work: Callable[[AsyncConnection], Awaitable[T]], what: str = "a read") -> T:
        """``work`` on a connection, run again on a fresh one if it was lost (``database.run``)."""
        return await database.run(self.engine, work, transaction=False, what=what)

    async def _write(self, work: Callable[[AsyncConnection], Awaitable[T]], what: str = "a write") -> T:
        """``work`` in one transaction, run again whole on a fresh connection if it was lost: never half a
        write (``database.run``)."""
        return await database.run(self.engine, work, transaction=True, what=what)

    async def ensure_collection(self, name: str) -> int:
        return await self._write(lambda conn: self._ensure_collection(conn, name), "creating a collection")

    async def _ensure_collection(self, conn: AsyncConnection, name: str) -> int:
        gen = await self._generation(conn, name)
        if gen is not None:
            return gen
        try:
            async with conn.begin_nested():
                # Start from the clock, not 1: a deleted and re-created collection never reuses a generation,
                # so no replica or cache can mistake old state for the new collection's.
                await conn.execute(
                    insert(collections).values(name=name, generation=time.time_ns() // 1000, created_at=_now())
                )
        except IntegrityError:  # created concurrently by another writer
            pass
        generation = await self._generation(conn, name)
        assert generation is not None
        return generation

    @staticmethod
    async def _generation(conn: AsyncConnection, name: str) -> int | None:
        return (
            await conn.execute(select(collections.c.generation).where(collections.c.name == name))
        ).scalar_one_or_none()

    async def generation(self, name: str) -> int | None:
        return await self._read(lambda conn: self._generation(conn, name))

    async def generations(self) -> dict[str, int]:
        """Every collection's generation, in one statement."""
        rows = await database.fetch(self.engine, select(collections.c.name, collections.c.generation), what="a read")
        return {r[0]: int(r[1]) for r in rows}

    async def changes_since(self, collection: str, generation: int) -> list[Change] | None:
        """The writes after ``generation`` in order, or None when the log no longer covers them all."""
        query = (
            select(changes.c.generation, changes.c.added, changes.c.removed, changes.c.committed_at)
            .where(changes.c.collection == collection, changes.c.generation > generation)
            .order_by(changes.c.generation)
        )

        async def read(conn: AsyncConnection) -> tuple[int | None, list[Any]]:
            current = await self._generation(conn, collection)
            return current, [] if current is None else await database.rows(conn, query)

        current, rows = await self._read(read)
        if current is None:
            return None
        found = [Change(int(r[0]), list(r[1]), list(r[2]), float(r[3])) for r in rows]
        # contiguous from the next generation to at least the one read first (a write may commit between the two
        # statements: its row then comes along, which is fine; a missing row is not)
        gens = [c.generation for c in found]
        if (
            gens != list(range(generation + 1, generation + 1 + len(gens)))
            or (gens[-1] if gens else generation) < current
        ):
            return None
        return found

    async def _log_change(self, conn: AsyncConnection, collection: str, change: Change) -> None:
        """Record a write in the change log (pruned to CHANGE_LOG_KEEP generations) and notify listeners."""
        await conn.execute(
            insert(changes).values(
                collection=collection,
                generation=change.generation,
                added=change.added,
                removed=change.removed,
                committed_at=time.time(),
            )
        )
        await conn.execute(
            delete(changes).where(
                changes.c.collection == collection, changes.c.generation <= change.generation - CHANGE_LOG_KEEP
            )
        )
        await self._notify(conn, collection, change.generation)

    @staticmethod
    async def _notify(conn: AsyncConnection, collection: str, generation: int) -> None:
        if conn.dialect.name == "postgresql":
            payload = json.dumps({"collection": collection, "generation": generation})
            await conn.execute(select(func.pg_notify(CHANGES_CHANNEL, payload)))

    async def optimize(self) -> list[str]:
        """Refresh the planner's statistics and reclaim space without blocking readers or writers (safe while
        serving): SQLite ``PRAGMA optimize`` + ``ANALYZE`` + a passive WAL checkpoint; PostgreSQL ``VACUUM
        (ANALYZE)`` of VoiceRAG's tables (no full lock, unlike VACUUM FULL)."""
        done: list[str] = []
        if self.engine.dialect.name == "sqlite":
            async with self.engine.connect() as conn:
                for statement in ("PRAGMA optimize", "ANALYZE", "PRAGMA wal_checkpoint(PASSIVE)"):
                    await conn.exec_driver_sql(statement)
                    done.append(statement)
                await conn.commit()
            return done
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            for table in metadata.sorted_tables:
                await conn.exec_driver_sql(f"VACUUM (ANALYZE) {table.name}")
                done.append(f"VACUUM (ANALYZE) {table.name}")
        return done

    async def list_collections(self) -> list[dict[str, Any]]:
        doc_counts = (
            select(
                documents.c.collection,
                func.count().label("documents"),
                func.coalesce(func.sum(documents.c.chunk_count), 0).label("chunks"),
            )
            .group_by(documents.c.collection)
            .subquery()
        )
        query = (
            select(
                collections.c.name,
                collections.c.generation,
                collections.c.created_at,
                func.coalesce(doc_counts.c.documents, 0),
                func.coalesce(doc_counts.c.chunks, 0),
            )
            .select_from(collections.outerjoin(doc_counts, doc_counts.c.collection == collections.c.name))
            .order_by(collections.c.name)
        )
        rows = await database.fetch(self.engine, query, what="a read")
        return [
            {
                "name": r[0],
                "generation": r[1],
                "created_at": r[2].isoformat() if r[2] else None,
                "documents": int(r[3]),
                "chunks": int(r[4]),
            }
            for r in rows
        ]

    async def delete_collection(self, name: str) -> list[int]:
        return await self._write(lambda conn: self._delete_collection(conn, name), "deleting a collection")

    async def _delete_collection(self, conn: AsyncConnection, name: str) -> list[int]:
        if await self._generation(conn, name) is None:
            raise UnknownCollection(f"collection {name!r} does not exist")
        ids = list((await conn.execute(select(chunks.c.id).where(chunks.c.collection == name))).scalars())
        await conn.execute(delete(chunk_units).where(chunk_units.c.collection == name))
        await conn.execute(delete(chunks).where(chunks.c.collection == name))
        await conn.execute(delete(documents).where(documents.c.collection == name))
        await conn.execute(delete(collections).where(collections.c.name == name))
        await conn.execute(delete(changes).where(changes.c.collection == name))
        await self._notify(conn, name, 0)
        return ids

    async def document_hashes(self, collection: str, doc_ids: list[str]) -> dict[str, str]:
        query = select(documents.c.doc_id, documents.c.content_hash).where(documents.c.collection == collection)

        async def read(conn: AsyncConnection) -> dict[str, str]:
            out: dict[str, str] = {}
            for i in range(0, len(doc_ids), 500):
                rows = await database.rows(conn, query.where(documents.c.doc_id.in_(doc_ids[i : i + 500])))
                out.update({r[0]: r[1] for r in rows})
            return out

        return await self._read(read)

    async def _remove(self, conn: AsyncConnection, collection: str, doc_ids: list[str]) -> list[int]:
        removed: list[int] = []
        for i in range(0, len(doc_ids), 500):
            batch = doc_ids[i : i + 500]
            where = (chunks.c.collection == collection) & chunks.c.doc_id.in_(batch)
            ids = list((await conn.execute(select(chunks.c.id).where(where))).scalars())
            removed.extend(ids)
            for j in range(0, len(ids), 1000):
                await conn.execute(delete(chunk_units).where(chunk_units.c.chunk_id.in_(ids[j : j + 1000])))
            await conn.execute(delete(chunks).where(where))
            await conn.execute(
                delete(documents).where(documents.c.collection == collection, documents.c.doc_id.in_(batch))
            )
        return removed

    async def _bump(self, conn: AsyncConnection, collection: str) -> int:
        result = await conn.execute(
            update(collections)
            .where(collections.c.name == collection)
            .values(generation=collections.c.generation + 1)
            .returning(collections.c.generation)
        )
        generation = result.scalar_one_or_none()
        if generation is None:
            raise UnknownCollection(f"collection {collection!r} does not exist")
        return int(generation)

    async def write_documents(self, collection: str, docs: list[PreparedDocument]) -> WriteResult:
        """Replace the given documents (old chunks removed, new ones added) and bump the generation, atomically."""
        return await self._write(lambda conn: self._write_documents(conn, collection, docs), "writing documents")

    async def _write_documents(
        self, conn: AsyncConnection, collection: str, docs: list[PreparedDocument]
    ) -> WriteResult:
        generation = await self._bump(conn, collection)
        removed = await self._remove(conn, collection, [p.doc.id for p in docs])
        now = _now()
        if docs:
            await conn.execute(
                insert(documents),
                [
                    {
                        "collection": collection,
                        "doc_id": p.doc.id,
                        "title": p.doc.title,
                        "content_hash": p.content_hash,
                        "meta": p.doc.metadata,
                        "chars": len(p.doc.text),
                        "chunk_count": len(p.chunks),
                        "updated_at": now,
                    }
                    for p in docs
                ],
            )
        rows = [
            {
                "collection": collection,
                "doc_id": p.doc.id,
                "ordinal": n,
                "text": c.text,
                "start": c.start,
                "end": c.end,
                "vector": np.asarray(c.vector, dtype=np.float32).tobytes(),
            }
            for p in docs
            for n, c in enumerate(p.chunks)
        ]
        added: list[int] = []
        for i in range(0, len(rows), 1000):
            result = await conn.execute(
                insert(chunks).returning(chunks.c.id, sort_by_parameter_order=True), rows[i : i + 1000]
            )
            added.extend(result.scalars())
        flat = [(p, c) for p in docs for c in p.chunks]
        units = [
            {"chunk_id": chunk_id, "collection": collection, "recipe": UNITS_RECIPE, "vectors": c.units}
            for chunk_id, (_, c) in zip(added, flat, strict=True)
            if c.units is not None
        ]
        for i in range(0, len(units), 1000):
            await conn.execute(insert(chunk_units), units[i : i + 1000])
        await self._log_change(conn, collection, Change(generation, added, removed))
        added_rows = ChunkRows(
            ids=np.asarray(added, np.int64),
            vectors=np.stack([c.vector for _, c in flat]).astype(np.float32) if flat else None,
            doc_ids=[p.doc.id for p, _ in flat],
            titles=[p.doc.title for p, _ in flat],
            texts=[c.text for _, c in flat],
            starts=[c.start for _, c in flat],
            ends=[c.end for _, c in flat],
            units=[c.units for _, c in flat],
        )
        return WriteResult(generation, removed, added_rows)

    async def delete_documents(self, collection: str, doc_ids: list[str]) -> WriteResult:
        return await self._write(lambda conn: self._delete_documents(conn, collection, doc_ids), "deleting documents")

    async def _delete_documents(self, conn: AsyncConnection, collection: str, doc_ids: list[str]) -> WriteResult:
        existing = await conn.execute(
            select(documents.c.doc_id).where(documents.c.collection == collection, documents.c.doc_id.in_(doc_ids))
        )
        found = set(existing.scalars())
        missing = [d for d in doc_ids if d not in found]
        if missing:
            raise NotFound(f"collection {collection!r} has no document {missing[0]!r}")
        generation = await self._bump(conn, collection)
        removed = await self._remove(conn, collection, doc_ids)
        await self._log_change(conn, collection, Change(generation, [], removed))
        return WriteResult(generation, removed, no_rows())

    async def list_documents(self, collection: str, limit: int, offset: int) -> list[dict[str, Any]]:
        query = (
            select(documents)
            .where(documents.c.collection == collection)
            .order_by(documents.c.doc_id)
            .limit(limit)
            .offset(offset)
        )
        rows = await database.fetch(self.engine, query, what="a read", mappings=True)
        return [self._doc_json(r) for r in rows]

    @staticmethod
    def _doc_json(row: Any) -> dict[str, Any]:
        return {
            "id": row["doc_id"],
            "collection": row["collection"],
            "title": row["title"],
            "metadata": row["meta"],
            "chars": row["chars"],
            "chunks": row["chunk_count"],
            "content_hash": row["content_hash"],
            "updated_at": row["updated_at"].isoformat(),
        }

    async def get_document(self, collection: str, doc_id: str) -> dict[str, Any]:
        return await self._read(lambda conn: self._get_document(conn, collection, doc_id))

    async def _get_document(self, conn: AsyncConnection, collection: str, doc_id: str) -> dict[str, Any]:
        query = select(documents).where(documents.c.collection == collection, documents.c.doc_id == doc_id)
        row = (await conn.execute(query)).mappings().one_or_none()
        if row is None:
            raise NotFound(f"collection {collection!r} has no document {doc_id!r}")
        texts = (
            await conn.execute(
                select(chunks.c.text)
                .where(chunks.c.collection == collection, chunks.c.doc_id == doc_id)
                .order_by(chunks.c.ordinal)
            )
        ).scalars()
        return self._doc_json(row) | {"chunk_texts": list(texts)}

    async def fetch_chunks(self, ids: list[int]) -> dict[int, ChunkRecord]:
        if not ids:
            return {}
        query = select(
            chunks.c.id,
            chunks.c.collection,
            chunks.c.doc_id,
            documents.c.title,
            chunks.c.ordinal,
            chunks.c.text,
            chunks.c.start,
            chunks.c.end,
        ).select_from(
            chunks.join(
                documents,
                (documents.c.collection == chunks.c.collection) & (documents.c.doc_id == chunks.c.doc_id),
            )
        )
        rows = await database.fetch(self.engine, query.where(chunks.c.id.in_(ids)), what="reading chunks")
        return {r[0]: ChunkRecord(*r) for r in rows}

    async def chunk_rows(self, collection: str, ids: list[int] | None, dim: int | None) -> ChunkRows:
        """The collection's chunks (all, or those of ``ids`` that still exist) with their titles, and their
        vectors when ``dim`` is given: one statement, or one per 1,000 ids."""
        units = case((chunk_units.c.recipe == UNITS_RECIPE, chunk_units.c.vectors), else_=None)
        columns = [chunks.c.id, chunks.c.doc_id, documents.c.title, chunks.c.text, chunks.c.start, chunks.c.end, units]
        if dim is not None:
            columns.append(chunks.c.vector)
        joined = chunks.join(
            documents, (documents.c.collection == chunks.c.collection) & (documents.c.doc_id == chunks.c.doc_id)
        ).outerjoin(chunk_units, chunk_units.c.chunk_id == chunks.c.id)
        query = select(*columns).select_from(joined).where(chunks.c.collection == collection).order_by(chunks.c.id)

        async def read(conn: AsyncConnection) -> list[Any]:
            if ids is None:
                return await database.rows(conn, query)
            rows: list[Any] = []
            for i in range(0, len(ids), 1000):
                rows.extend(await database.rows(conn, query.where(chunks.c.id.in_(ids[i : i + 1000]))))
            return rows

        rows = await self._read(read, "reading chunks")
        vectors = None
        if dim is not None:
            vectors = np.frombuffer(b"".join(r[7] for r in rows), dtype=np.float32).reshape(len(rows), dim)
        return ChunkRows(
            ids=np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)),
            vectors=vectors,
            doc_ids=[r[1] for r in rows],
            titles=[r[2] for r in rows],
            texts=[r[3] for r in rows],
            starts=[r[4] for r in rows],
            ends=[r[5] for r in rows],
            units=[r[6] for r in rows],
        )
