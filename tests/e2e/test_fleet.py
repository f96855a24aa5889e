"""The scale-out issue's fleet, every part a real process: two API replicas and two ingestion workers on one
PostgreSQL with pgvector and one Redis. A folder goes in through jobs, one worker is killed mid-job, and both
replicas answer fresh, with no duplicate chunks and the same counts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx

from tests.helpers import REDIS_URL, need_service, voicerag_serve, wait_until

QUEUE_REDIS = REDIS_URL.rsplit("/", 1)[0] + "/9"  # a database of its own: no other test's jobs are queued there
FILES = 400  # two jobs of 200 one-chunk files, committed one at a time: long enough for both workers to be busy


def test_two_replicas_and_two_workers_on_pgvector_survive_a_killed_worker(pgvector_url, tmp_path) -> None:
    need_service("Redis", "127.0.0.1", 6379)
    import redis

    queue = redis.Redis.from_url(QUEUE_REDIS)
    queue.flushdb()
    env = {
        "VOICERAG_DATABASE_URL": pgvector_url,
        "VOICERAG_VECTOR_BACKEND": "pgvector",
        "VOICERAG_REDIS_URL": QUEUE_REDIS,
        "VOICERAG_JOB_TIMEOUT_S": "20",  # a dead worker's job is handed on 20 + 10 s after it took it
        "VOICERAG_INGEST_BATCH_DOCS": "1",
    }
    folder = tmp_path / "notes"
    folder.mkdir()
    for i in range(FILES):
        (folder / f"note-{i}.txt").write_text(f"Note {i} says that locker {i} holds {i * 7} brass keys.")
    workers: list[subprocess.Popen] = []
    try:
        with (
            voicerag_serve(tmp_path / "a", env=env) as (_, replica_a),
            voicerag_serve(tmp_path / "b", env=env) as (_, replica_b),
        ):
            for n in range(2):
                variables = {k: v for k, v in os.environ.items() if not k.startswith("VOICERAG_")}
                variables |= env | {"VOICERAG_DATA_DIR": str(tmp_path / f"worker-{n}")}
                command = [sys.executable, "-m", "voicerag.cli", "worker"]
                workers.append(
                    subprocess.Popen(command, env=variables, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
                )
            paths = sorted(folder.iterdir())
            jobs = []
            for half in (paths[: FILES // 2], paths[FILES // 2 :]):  # two jobs: one for each worker
                files = [("files", (p.name, p.read_bytes(), "text/plain")) for p in half]
                queued = httpx.post(f"{replica_a}/v1/collections/fleet/files?async=true", files=files, timeout=60)
                assert queued.status_code == 202, queued.text
                jobs.append(queued.json()["id"])

            def job(job_id: str) -> dict:
                return httpx.get(f"{replica_b}/v1/jobs/{job_id}", timeout=30).json()

            wait_until(lambda: all(job(j)["status"] == "running" and job(j)["chunks_done"] >= 2 for j in jobs))
            workers[0].send_signal(signal.SIGKILL)  # mid-job: each worker holds one of the two
            workers[0].wait(30)
            wait_until(lambda: all(job(j)["status"] in ("done", "failed") for j in jobs), limit_s=240)
            finished = [job(j) for j in jobs]
            assert [j["status"] for j in finished] == ["done", "done"], finished
            assert max(j["attempts"] for j in finished) == 2  # the killed worker's job ran again, on the other

            for replica in (replica_a, replica_b):
                [fleet] = [
                    c
                    for c in httpx.get(f"{replica}/v1/collections", timeout=30).json()["collections"]
                    if c["name"] == "fleet"
                ]
                assert fleet["documents"] == FILES and fleet["chunks"] == FILES, fleet  # no duplicates
                for mode in ("lexical", "hybrid"):
                    body = {"query": "Which locker holds 553 brass keys?", "collection": "fleet", "mode": mode}
                    found = httpx.post(f"{replica}/v1/search", json=body, timeout=30).json()["results"]
                    assert found and found[0]["document_id"] == "note-79.txt", (replica, mode, found[:2])
                body = {"question": "How many brass keys does locker 79 hold?", "collection": "fleet"}
                answer = httpx.post(f"{replica}/v1/ask", json=body, timeout=60).json()
                assert "553" in answer["answer"], (replica, answer["answer"])
            dense = {"query": "brass keys in a locker", "collection": "fleet", "mode": "dense", "k": 10}
            a_ids, b_ids = (
                [r["chunk_id"] for r in httpx.post(f"{r}/v1/search", json=dense, timeout=30).json()["results"]]
                for r in (replica_a, replica_b)
            )
            assert len(a_ids) == 10 and a_ids == b_ids  # one pgvector index serves both replicas
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
                worker.wait(30)
        queue.flushdb()
        queue.close()
