"""The pgvector backend of ``VectorIndex``: one table shared by every replica (``vr_vectors``), an HNSW index
over inner product, filtered by collection (pgvector 0.8's iterative index scans keep filtered queries
complete).

The read model calls it from its worker thread like any index; the queries run on the event loop's asyncpg
pool (``run_coroutine_threadsafe``), so it declares ``blocking_io`` and is never called on the loop itself.
Adds and removals are idempotent: every replica applies the same deltas, the first one writes them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from voicerag.documents import database
from voicerag.retrieval.index import IndexParams

TABLE = "vr_vectors"


def _literal(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{float(x):.7g}" for x in vector) + "]"


async def create_vector_schema(engine: AsyncEngine, dim: int, m: int, ef_construction: int) -> None:
    """The extension, the table and its HNSW index (inner product), if missing."""
    async with engine.begin() as conn:
        await conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
        await conn.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS {TABLE} (collection varchar(128) NOT NULL, chunk_id bigint NOT NULL, "
                f"embedding vector({dim}) NOT NULL, PRIMARY KEY (collection, chunk_id))"
            )
        )
        await conn.execute(
            text(
                f"CREATE INDEX IF NOT EXISTS {TABLE}_hnsw ON {TABLE} USING hnsw (embedding vector_ip_ops) "
                f"WITH (m = {int(m)}, ef_construction = {int(ef_construction)})"
            )
        )


class PgVectorIndex:
    """The vectors of one collection in PostgreSQL."""

    kind = "pgvector"
    blocking_io = True
    needs_rebuild = False

    def __init__(
        self, engine: AsyncEngine, loop: asyncio.AbstractEventLoop, collection: str, dim: int, params: IndexParams
    ):
        self.engine = engine
        self.loop = loop
        self.collection = collection
        self.dim = dim
        self.params = params

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def __len__(self) -> int:
        return int(self._run(self._scalar(f"SELECT count(*) FROM {TABLE} WHERE collection = :c")))

    async def _scalar(self, sql: str) -> Any:
        found = await database.fetch(self.engine, text(sql).bindparams(c=self.collection), what="reading vectors")
        return found[0][0]

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self._run(self._add(np.asarray(ids, np.int64), np.asarray(vectors, np.float32)))

    async def _add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        rows = [{"c": self.collection, "i": int(i), "v": _literal(v)} for i, v in zip(ids, vectors, strict=True)]
        sql = text(
            f"INSERT INTO {TABLE} (collection, chunk_id, embedding) VALUES (:c, :i, CAST(:v AS vector)) "
            "ON CONFLICT (collection, chunk_id) DO NOTHING"
        )

        async def write(conn: AsyncConnection) -> None:
            for start in range(0, len(rows), 1000):
                await conn.execute(sql, rows[start : start + 1000])

        await database.run(self.engine, write, transaction=True, what="writing vectors")

    def remove(self, ids: np.ndarray) -> None:
        if len(ids):
            self._run(self._remove([int(i) for i in ids]))

    async def _remove(self, ids: list[int]) -> None:
        statement = text(f"DELETE FROM {TABLE} WHERE collection = :c AND chunk_id = ANY(:ids)")
        await database.execute(self.engine, statement.bindparams(c=self.collection, ids=ids), what="removing vectors")

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (scores, ids) per query row; missing slots have id -1."""
        return self._run(self._search(np.atleast_2d(np.asarray(queries, np.float32)), k))

    async def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores = np.full((len(queries), k), -np.inf, np.float32)
        ids = np.full((len(queries), k), -1, np.int64)
        sql = text(
            f"SELECT chunk_id, -(embedding <#> CAST(:q AS vector)) FROM {TABLE} WHERE collection = :c "
            "ORDER BY embedding <#> CAST(:q AS vector) LIMIT :k"
        )

        async def read(conn: AsyncConnection) -> None:
            await conn.execute(text(f"SET hnsw.ef_search = {max(int(self.params.hnsw_ef_search), k)}"))
            await conn.execute(text("SET hnsw.iterative_scan = relaxed_order"))
            for row, query in enumerate(queries):
                found = (await conn.execute(sql, {"q": _literal(query), "c": self.collection, "k": k})).all()
                for col, (chunk_id, score) in enumerate(found):
                    ids[row, col], scores[row, col] = chunk_id, score
            await conn.rollback()

        await database.run(self.engine, read, transaction=False, what="a vector search")
        return scores, ids

    def ids(self) -> np.ndarray:
        return self._run(self.ids_async())

    async def ids_async(self) -> np.ndarray:
        """The ids, from a coroutine on the event loop (``ids`` is for worker threads)."""
        query = text(f"SELECT chunk_id FROM {TABLE} WHERE collection = :c").bindparams(c=self.collection)
        rows = await database.fetch(self.engine, query, what="reading vector ids")
        return np.fromiter((r[0] for r in rows), np.int64, len(rows))

    def snapshot(self) -> tuple[np.ndarray, np.ndarray]:
        return self._run(self._snapshot())

    async def _snapshot(self) -> tuple[np.ndarray, np.ndarray]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(f"SELECT chunk_id, embedding::text FROM {TABLE} WHERE collection = :c ORDER BY chunk_id"),
                    {"c": self.collection},
                )
            ).all()
        ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
        vectors = np.array([np.fromstring(r[1][1:-1], sep=",", dtype=np.float32) for r in rows], np.float32)
        return ids, vectors.reshape(len(rows), self.dim)

    def save(self, path: Path) -> dict[str, Any]:
        """Nothing to write: the vectors live in PostgreSQL. The manifest records the kind."""
        path.write_bytes(b"")
        return {"kind": self.kind, "dim": self.dim}


class PgVectorBackend:
    """pgvector in the shared PostgreSQL store: one index for the whole fleet, nothing saved per process."""

    def __init__(self, engine: AsyncEngine, loop: asyncio.AbstractEventLoop, dim: int, params: IndexParams):
        self.engine = engine
        self.loop = loop
        self.dim = dim
        self.params = params

    def kind_for(self, count: int) -> str:
        return PgVectorIndex.kind

    def _index(self, collection: str) -> PgVectorIndex:
        return PgVectorIndex(self.engine, self.loop, collection, self.dim, self.params)

    def build(self, collection: str, kind: str, ids: np.ndarray, vectors: np.ndarray) -> PgVectorIndex:
        index = self._index(collection)
        index.add(ids, vectors)
        return index

    async def drop(self, collection: str) -> None:
        """Delete the collection's vectors (a collection re-created under the name starts empty)."""
        statement = text(f"DELETE FROM {TABLE} WHERE collection = :c").bindparams(c=collection)
        await database.execute(self.engine, statement, what="dropping vectors")

    def load(self, collection: str, path: Path, meta: dict[str, Any]) -> PgVectorIndex:
        if meta.get("kind") != PgVectorIndex.kind:
            raise ValueError(f"the saved index is {meta.get('kind')!r}, not pgvector")
        return self._index(collection)
