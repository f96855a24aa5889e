"""Jobs in the SQL store: the source of truth for a job's documents, progress and errors (arq on Redis only
carries the job's id to a worker, so a lost Redis entry never loses the job)."""

from __future__ import annotations

import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgpack
from sqlalchemy import JSON, Column, DateTime, Integer, LargeBinary, String, Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from voicerag.documents import database
from voicerag.documents.loaders import Document
from voicerag.documents.tables import metadata
from voicerag.errors import NotFound

jobs = Table(
    "vr_jobs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("collection", String(128), nullable=False),
    Column("status", String(16), nullable=False),  # queued, running, done, failed
    Column("documents", Integer, nullable=False),
    Column("chunks_total", Integer, nullable=False, default=0),
    Column("chunks_done", Integer, nullable=False, default=0),
    Column("attempts", Integer, nullable=False, default=0),
    Column("errors", JSON, nullable=False),  # [{"file": ..., "detail": ...}]
    Column("result", JSON, nullable=True),
    Column("payload", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


@dataclass
class Job:
    id: str
    collection: str
    status: str
    documents: int
    chunks_total: int
    chunks_done: int
    attempts: int
    errors: list[dict[str, str]]
    result: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "collection": self.collection,
            "status": self.status,
            "documents": self.documents,
            "chunks_total": self.chunks_total,
            "chunks_done": self.chunks_done,
            "attempts": self.attempts,
            "errors": self.errors,
            "result": self.result,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


def _pack(docs: list[Document]) -> bytes:
    return zlib.compress(msgpack.packb([[d.id, d.text, d.title, d.metadata] for d in docs], use_bin_type=True))


def _unpack(data: bytes) -> list[Document]:
    return [Document(*row) for row in msgpack.unpackb(zlib.decompress(data), raw=False)]


class JobStore:
    def __init__(self, engine: AsyncEngine):
        self.engine = engine

    async def create(self, collection: str, docs: list[Document], errors: list[dict[str, str]]) -> Job:
        now = datetime.now(UTC)
        job_id = str(uuid.uuid4())
        row = insert(jobs).values(
            id=job_id,
            collection=collection,
            status="queued" if docs else "failed",
            documents=len(docs),
            errors=errors,
            payload=_pack(docs),
            created_at=now,
            updated_at=now,
        )
        await database.execute(self.engine, row, what="recording a job")
        return await self.get(job_id)

    async def get(self, job_id: str) -> Job:
        columns = [c for c in jobs.c if c.name != "payload"]
        rows = await database.fetch(
            self.engine, select(*columns).where(jobs.c.id == job_id), what="reading a job", mappings=True
        )
        row = rows[0] if rows else None
        if row is None:
            raise NotFound(f"no job {job_id!r} (jobs are kept in the store once created)")
        return Job(
            **{
                k: (v.replace(tzinfo=UTC) if isinstance(v, datetime) and v.tzinfo is None else v)
                for k, v in row.items()
            }
        )

    async def documents(self, job_id: str) -> list[Document]:
        rows = await database.fetch(
            self.engine, select(jobs.c.payload).where(jobs.c.id == job_id), what="reading a job"
        )
        data = rows[0][0] if rows else None
        if data is None:
            raise NotFound(f"no job {job_id!r}")
        return _unpack(data)

    async def update(self, job_id: str, **values: Any) -> None:
        statement = update(jobs).where(jobs.c.id == job_id).values(updated_at=datetime.now(UTC), **values)
        await database.execute(self.engine, statement, what="updating a job")

    async def start_attempt(self, job_id: str) -> None:
        statement = (
            update(jobs)
            .where(jobs.c.id == job_id)
            .values(status="running", attempts=jobs.c.attempts + 1, updated_at=datetime.now(UTC))
        )
        await database.execute(self.engine, statement, what="updating a job")
