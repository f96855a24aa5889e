"""Group ``jobs``: queued ingestion by one and by two ``voicerag worker`` processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from typing import Any

from voicerag.app import VoiceRAG
from voicerag.bench.corpus import synthetic_corpus
from voicerag.bench.profiles import BenchConfig
from voicerag.bench.scenarios import BenchRun, Group
from voicerag.bench.server import worker_processes
from voicerag.config import Settings
from voicerag.errors import NotFound


async def ingest_jobs(config: BenchConfig, parts: int = 8) -> dict[str, Any]:
    """``ingest_jobs``: queued ingestion (arq on Redis) of the same documents, split into ``parts`` jobs, by 1 and
    by 2 ``voicerag worker`` processes on one store (the cores split between their model threads). Timed from
    the first job's start to the last one's end, as the jobs record them (worker start-up excluded)."""
    if not config.redis_url:
        return {"skipped": "no Redis to queue on: pass --redis-url"}
    import redis.asyncio as aioredis

    try:
        async with aioredis.from_url(config.redis_url) as probe:
            await probe.ping()
    except Exception as exc:
        return {"skipped": f"Redis at {config.redis_url} is unreachable: {exc}"}
    docs, _ = synthetic_corpus(config.profile.ingest_docs, seed=7)
    cores = os.cpu_count() or 1
    out: dict[str, Any] = {"documents": len(docs), "jobs": parts}
    settings = Settings(data_dir=config.data_dir, redis_url=config.redis_url, preload_speech=False)
    async with await VoiceRAG.open(settings) as rag:
        for workers in (1, 2):
            collection = f"bench-jobs-{workers}"
            with contextlib.suppress(NotFound):  # left by an interrupted run: its documents would be skipped
                await rag.delete_collection(collection)
            with worker_processes(
                workers,
                config.data_dir,
                config.data_dir / "logs",
                redis_url=config.redis_url,
                onnx_threads=max(1, cores // workers),
            ):
                ids = [(await rag.enqueue_ingest(collection, docs[i::parts])).id for i in range(parts)]
                deadline = time.monotonic() + 3600
                while (jobs := [await rag.jobs.get(i) for i in ids]) and any(
                    j.status in ("queued", "running") for j in jobs
                ):
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"queued ingestion did not finish; see {config.data_dir / 'logs'}")
                    await asyncio.sleep(0.2)
            failed = [j.errors for j in jobs if j.status != "done"]
            if failed:
                raise RuntimeError(f"queued ingestion failed: {failed}")
            ends = [j.updated_at.timestamp() for j in jobs]
            starts = [end - float(j.result["seconds"]) for j, end in zip(jobs, ends, strict=True) if j.result]
            seconds = max(ends) - min(starts)
            chunks = sum(int(j.result["chunks"]) for j in jobs if j.result)
            out[f"workers_{workers}"] = {
                "seconds": round(seconds, 3),
                "docs_per_s": round(len(docs) / seconds, 2),
                "chunks_per_s": round(chunks / seconds, 2),
                "onnx_threads_per_worker": max(1, cores // workers),
            }
            await rag.delete_collection(collection)
    return out


async def _jobs(bench: BenchRun) -> None:
    bench.scenarios["ingest_jobs"] = await ingest_jobs(bench.config)


GROUP = Group(("jobs",), _jobs)
