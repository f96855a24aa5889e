"""Queued ingestion: an upload answered 202 with a job, run by a worker (arq on the real Redis), progress and
per-file errors on the job; a job run twice (a worker killed mid-job, then retried) leaves no duplicates."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.helpers import REDIS_URL, make_pdf, need_service, serve
from voicerag import VoiceRAG
from voicerag.api.app import create_app

QUEUE_REDIS = REDIS_URL.rsplit("/", 1)[0] + "/8"


@pytest.fixture
async def queue_settings(backend_settings):
    need_service("Redis", "127.0.0.1", 6379)
    import redis.asyncio as aioredis

    client = aioredis.from_url(QUEUE_REDIS)
    await client.flushdb()
    yield backend_settings(redis_url=QUEUE_REDIS, job_timeout_s=60)
    await client.flushdb()
    await client.aclose()


async def run_worker_until_idle(settings) -> None:
    """One `voicerag worker --burst`'s worth: run what is queued, then stop."""
    from arq.worker import Worker

    from voicerag.jobs.queue import worker_settings

    options = worker_settings(settings.redis_url, settings.job_timeout_s, 1)

    async def startup(ctx):
        ctx["rag"] = await VoiceRAG.open(settings)

    worker = Worker(**(options | {"on_startup": startup}), burst=True, handle_signals=False)
    try:
        await worker.main()
    finally:
        await worker.close()


async def test_async_upload_is_a_job_a_worker_runs(queue_settings) -> None:
    with serve(create_app(queue_settings)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            files = [
                ("files", ("pump.pdf", make_pdf(["The pump must be serviced every 90 days."]), "application/pdf")),
                ("files", ("notes.txt", b"The warehouse opens at 7 am on weekdays.", "text/plain")),
                ("files", ("broken.pdf", b"%PDF-1.4 garbage", "application/pdf")),
            ]
            accepted = await client.post("/v1/collections/ops/files", params={"async": "true"}, files=files)
            assert accepted.status_code == 202, accepted.text
            job = accepted.json()
            assert job["status"] == "queued" and job["documents"] == 2
            assert [e["file"] for e in job["errors"]] == ["broken.pdf"]
            await run_worker_until_idle(queue_settings)
            done = (await client.get(f"/v1/jobs/{job['id']}")).json()
            assert done["status"] == "done" and done["chunks_done"] == done["chunks_total"] == 2
            assert done["result"]["added"] == 2 and done["attempts"] == 1
            answer = (
                await client.post("/v1/ask", json={"question": "How often is the pump serviced?", "collection": "ops"})
            ).json()
            assert "90 days" in answer["answer"]
            assert (await client.get("/v1/jobs/not-a-job")).status_code == 404


async def test_a_job_run_again_completes_without_duplicates(queue_settings, facts) -> None:
    async with await VoiceRAG.open(queue_settings.model_copy(update={"ingest_batch_docs": 1})) as rag:
        job = await rag.enqueue_ingest("kb", facts)
        # the first attempt dies after its first batch committed (as a killed worker would)
        original = rag.ingestor.embed
        calls = 0

        async def dying(texts, spans):
            nonlocal calls
            calls += 1
            if calls == 2:
                raise asyncio.CancelledError  # the process is going away mid-job
            return await original(texts, spans)

        rag.ingestor.embed = dying
        from voicerag.jobs.queue import ingest_job

        with pytest.raises(asyncio.CancelledError):
            await ingest_job({"rag": rag}, job.id)
        rag.ingestor.embed = original
        assert (await rag.list_collections())[0]["documents"] == 1
        result = await ingest_job({"rag": rag}, job.id)  # arq delivers it again
        assert (result["added"], result["unchanged"]) == (2, 1)
        [collection] = await rag.list_collections()
        assert collection["documents"] == 3 and collection["chunks"] == 3
        assert (await rag.jobs.get(job.id)).attempts == 2


async def test_queued_ingest_needs_redis(backend_settings, facts) -> None:
    async with await VoiceRAG.open(backend_settings()) as rag:
        from voicerag.errors import InvalidInput

        with pytest.raises(InvalidInput, match="VOICERAG_REDIS_URL"):
            await rag.enqueue_ingest("kb", facts)


async def test_a_killed_worker_process_leaves_a_job_another_finishes(make_settings) -> None:
    """Real processes: `voicerag worker` is killed (SIGKILL) after the job's first batches committed; a second
    worker picks the job up once arq's in-progress mark expires and finishes it without duplicate chunks."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from voicerag import Document

    need_service("Redis", "127.0.0.1", 6379)
    import redis.asyncio as aioredis

    client = aioredis.from_url(QUEUE_REDIS)
    await client.flushdb()
    settings = make_settings(redis_url=QUEUE_REDIS, job_timeout_s=20, ingest_batch_docs=1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICERAG_")}
    env |= {
        "VOICERAG_DATA_DIR": str(settings.data_dir),
        "VOICERAG_REDIS_URL": QUEUE_REDIS,
        "VOICERAG_JOB_TIMEOUT_S": "20",  # arq hands the job on 20 + 10 s after the dead worker took it
        "VOICERAG_INGEST_BATCH_DOCS": "1",
        "VOICERAG_PRELOAD_SPEECH": "false",
    }
    documents = [
        Document(f"doc-{i}", f"Document number {i} says that item {i} costs {i * 3} euros.") for i in range(300)
    ]
    async with await VoiceRAG.open(settings) as rag:
        job = await rag.enqueue_ingest("kb", documents)

        def worker() -> subprocess.Popen:
            command = [sys.executable, "-m", "voicerag.cli", "worker"]
            return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        async def until(condition, limit_s: float = 120) -> None:
            deadline = time.monotonic() + limit_s  # bounded only to catch a hang
            while not await condition():
                assert time.monotonic() < deadline, "timed out"
                await asyncio.sleep(0.05)

        first = worker()
        try:
            await until(lambda: _progressed(rag, job.id))
            first.send_signal(signal.SIGKILL)
            first.wait(30)
        finally:
            first.kill()
        interrupted = await rag.jobs.get(job.id)
        assert interrupted.status == "running" and 0 < interrupted.chunks_done < 300
        second = worker()
        try:
            await until(lambda: _finished(rag, job.id))
        finally:
            second.terminate()
            second.wait(30)
        done = await rag.jobs.get(job.id)
        assert done.status == "done" and done.attempts == 2
        [collection] = await rag.list_collections()
        assert collection["documents"] == 300 and collection["chunks"] == 300  # no duplicates
        assert (await rag.search("item 299 costs", ["kb"], mode="lexical"))[0].document_id == "doc-299"
    await client.flushdb()
    await client.aclose()


async def _progressed(rag, job_id: str) -> bool:
    job = await rag.jobs.get(job_id)
    return job.chunks_done >= 5


async def _finished(rag, job_id: str) -> bool:
    return (await rag.jobs.get(job_id)).status in ("done", "failed")
