"""The queue: arq on Redis. Chosen because it is asyncio-native like the rest of the service, small, and its
at-least-once delivery fits an idempotent ingest (content hashes skip what a killed attempt already wrote);
a job lost in flight is picked up again after ``job_timeout_s``."""

from __future__ import annotations

from typing import Any

from voicerag.errors import InvalidInput

QUEUE = "voicerag:jobs"
INGEST = "ingest_job"


def redis_settings(url: str | None) -> Any:
    from arq.connections import RedisSettings

    if not url:
        raise InvalidInput(
            "queued ingestion needs Redis for its job queue: set VOICERAG_REDIS_URL (and run 'voicerag worker')"
        )
    return RedisSettings.from_dsn(url)


async def enqueue(redis_url: str | None, job_id: str) -> None:
    from arq import create_pool

    pool = await create_pool(redis_settings(redis_url), default_queue_name=QUEUE)
    try:
        await pool.enqueue_job(INGEST, job_id, _job_id=job_id)
    finally:
        await pool.aclose()


async def ingest_job(ctx: dict[str, Any], job_id: str) -> dict[str, Any]:
    """Run one job on the worker's VoiceRAG: batches commit as they go; progress lands in the job's row."""
    rag = ctx["rag"]
    store = rag.jobs
    await store.start_attempt(job_id)
    job = await store.get(job_id)
    docs = await store.documents(job_id)

    async def progress(done: int, total: int) -> None:
        await store.update(job_id, chunks_done=done, chunks_total=total)

    try:
        report = await rag.ingest(job.collection, docs, progress=progress)
    except Exception as exc:
        detail = getattr(exc, "detail", None) or str(exc) or type(exc).__name__
        await store.update(job_id, status="failed", errors=[*job.errors, {"file": "*", "detail": detail}])
        raise
    await store.update(job_id, status="done", result=report.to_json())
    return report.to_json()


def worker_settings(redis_url: str | None, job_timeout_s: float, max_jobs: int) -> dict[str, Any]:
    """Keyword arguments for ``arq.worker.Worker`` (the VoiceRAG is opened in ``on_startup``)."""
    from voicerag.app import VoiceRAG
    from voicerag.config import load_settings

    async def startup(ctx: dict[str, Any]) -> None:
        ctx["rag"] = await VoiceRAG.open(load_settings())
        await ctx["rag"].embed(["warm up"])  # the model loads now, not inside the first job's time limit

    async def shutdown(ctx: dict[str, Any]) -> None:
        if "rag" in ctx:
            await ctx["rag"].aclose()

    return {
        "functions": [ingest_job],
        "queue_name": QUEUE,
        "redis_settings": redis_settings(redis_url),
        "on_startup": startup,
        "on_shutdown": shutdown,
        "job_timeout": job_timeout_s,
        "max_jobs": max_jobs,
        "max_tries": 5,
    }
