"""One worker hop per batch: the whole uncached retrieval (embed, dense, lexical, fuse) of every request
that is waiting runs as one call on a worker thread (a lone dense search whose vector is already known runs in
place: its index lookup costs less than the hop). Batches form greedily: whatever queued while the worker
was busy goes in the next call, so there is no timer to wait on when the server is idle and many requests
share one model call when it is busy."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np

from voicerag.config import SearchMode
from voicerag.retrieval.index import VectorIndex, blocking_io
from voicerag.retrieval.lexical import BM25Index


@dataclass
class Hit:
    """One retrieved chunk with its fused score and the per-mode scores that produced it."""

    chunk_id: int
    collection: str
    score: float
    dense_score: float | None = None
    lexical_score: float | None = None


@dataclass
class Target:
    """A collection as one search sees it: its indexes at one generation."""

    name: str
    dense: VectorIndex
    lexical: BM25Index


@dataclass(frozen=True)
class FusionParams:
    """How a hybrid search fuses: candidates per mode, the method (``rrf`` by ranks, ``convex`` by normalised
    scores), the RRF constant and the convex weight of the dense side (part of every search's cache key, so
    they travel with the job: a live change never mixes two settings under one key)."""

    candidates: int = 50
    rrf_k: int = 60
    method: str = "convex"
    alpha: float = 0.5


@dataclass
class SearchJob:
    query: str
    vector: np.ndarray | None  # given (cached) or computed by the worker when the mode needs it
    targets: list[Target]
    mode: SearchMode
    k: int
    fusion: FusionParams = FusionParams()
    hits: list[Hit] = field(default_factory=list)

    @property
    def needs_vector(self) -> bool:
        return self.mode != "lexical" and self.vector is None


def rrf_fuse(
    collection: str, dense: list[tuple[float, int]], lexical: list[tuple[float, int]], rrf_k: int
) -> list[Hit]:
    """Reciprocal rank fusion: score = sum over modes of 1 / (rrf_k + rank). Ties go to the chunk with the
    better single-mode rank, then the lexical score, so a unique keyword match is not lost to a coin toss."""
    hits: dict[int, Hit] = {}
    best: dict[int, int] = {}
    for rank, (score, chunk_id) in enumerate(dense, 1):
        hit = hits.setdefault(chunk_id, Hit(chunk_id, collection, 0.0))
        hit.score += 1.0 / (rrf_k + rank)
        hit.dense_score = score
        best[chunk_id] = rank
    for rank, (score, chunk_id) in enumerate(lexical, 1):
        hit = hits.setdefault(chunk_id, Hit(chunk_id, collection, 0.0))
        hit.score += 1.0 / (rrf_k + rank)
        hit.lexical_score = score
        best[chunk_id] = min(best.get(chunk_id, rank), rank)
    return sorted(hits.values(), key=lambda h: (-h.score, best[h.chunk_id], -(h.lexical_score or 0.0)))


def convex_fuse(
    collection: str, dense: list[tuple[float, int]], lexical: list[tuple[float, int]], alpha: float
) -> list[Hit]:
    """A convex combination of scores: each mode's scores min-max normalised over its candidates (a chunk a
    mode did not return counts 0 there), then ``alpha`` x dense + (1 - alpha) x lexical. Uses how much better
    a candidate is, not only its rank; ties go to the lexical score, then the dense one."""
    hits: dict[int, Hit] = {}
    for weight, results, side in ((alpha, dense, "dense_score"), (1.0 - alpha, lexical, "lexical_score")):
        if not results:
            continue
        scores = [score for score, _ in results]
        low, span = min(scores), max(scores) - min(scores)
        for score, chunk_id in results:
            hit = hits.setdefault(chunk_id, Hit(chunk_id, collection, 0.0))
            hit.score += weight * ((score - low) / span if span > 0 else 1.0)
            setattr(hit, side, score)
    return sorted(hits.values(), key=lambda h: (-h.score, -(h.lexical_score or 0.0), -(h.dense_score or 0.0)))


def run_jobs(jobs: list[SearchJob]) -> None:
    """Search every job (vectors already set where needed): dense queries batched per index, then lexical,
    then fusion and the merge across collections. Fills ``job.hits``."""
    by_index: dict[int, tuple[VectorIndex, list[SearchJob]]] = {}
    for job in jobs:
        if job.mode != "lexical" and job.vector is not None:
            for target in job.targets:
                by_index.setdefault(id(target.dense), (target.dense, []))[1].append(job)
    dense_results: dict[tuple[int, int], list[tuple[float, int]]] = {}
    for key, (index, group) in by_index.items():
        fetch = max(_width(job) for job in group)
        scores, ids = index.search(np.stack([job.vector for job in group]), fetch)  # type: ignore[misc]
        for job, row_scores, row_ids in zip(group, scores, ids, strict=True):
            width = _width(job)
            dense_results[(id(job), key)] = [
                (float(s), int(i)) for s, i in zip(row_scores[:width], row_ids[:width], strict=True) if i >= 0
            ]
    for job in jobs:
        width = _width(job)
        merged: list[Hit] = []
        for target in job.targets:
            dense = dense_results.get((id(job), id(target.dense)), [])
            lexical: list[tuple[float, int]] = []
            if job.mode != "dense":
                scores, ids = target.lexical.search(job.query, width)
                lexical = list(zip(scores.tolist(), ids.tolist(), strict=True))
            if job.mode == "dense":
                merged.extend(Hit(i, target.name, s, dense_score=s) for s, i in dense)
            elif job.mode == "lexical":
                merged.extend(Hit(i, target.name, s, lexical_score=s) for s, i in lexical)
            else:
                fusion = job.fusion
                fused = (
                    convex_fuse(target.name, dense, lexical, fusion.alpha)
                    if fusion.method == "convex"
                    else rrf_fuse(target.name, dense, lexical, fusion.rrf_k)
                )
                merged.extend(fused[: job.k])
        if len(job.targets) > 1:
            merged.sort(key=lambda h: -h.score)
        job.hits = merged[: job.k]


def _width(job: SearchJob) -> int:
    return max(job.k, job.fusion.candidates) if job.mode == "hybrid" else job.k


class RetrievalWorker:
    """Runs ``SearchJob``s in greedy batches on at most ``concurrency`` worker threads at a time.

    ``embed_sync`` (a local model) embeds inside the worker call; otherwise ``embed`` (a remote API) is
    awaited for the whole batch first."""

    def __init__(
        self,
        embed: Callable[[list[str]], Awaitable[np.ndarray]],
        embed_sync: Callable[[list[str]], np.ndarray] | None,
        concurrency: int,
        max_batch: int,
    ):
        self.embed = embed
        self.embed_sync = embed_sync
        self.concurrency = concurrency
        self.max_batch = max_batch
        self._queue: list[tuple[SearchJob, asyncio.Future[SearchJob]]] = []
        self._running = 0
        self.batches = 0
        self.jobs = 0

    async def run(self, job: SearchJob) -> SearchJob:
        """Queue ``job`` and wait until its batch has run; returns it with ``hits`` (and ``vector``) filled."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[SearchJob] = loop.create_future()
        self._queue.append((job, future))
        if self._running < self.concurrency:
            self._running += 1
            loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
                batch = [(job, future) for job, future in batch if not future.done()]  # drop cancelled ones
                if not batch:
                    continue
                self.batches += 1
                self.jobs += len(batch)
                jobs = [job for job, _ in batch]
                try:
                    if self.embed_sync is None:
                        await self._embed_remote(jobs)
                    job = jobs[0]
                    if (
                        len(jobs) == 1
                        and job.mode == "dense"
                        and job.vector is not None
                        and not any(blocking_io(t.dense) for t in job.targets)
                    ):
                        self._run(jobs)  # one ANN lookup takes well under a millisecond: a hop would double it
                    else:
                        await asyncio.to_thread(self._run, jobs)
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for job, future in batch:
                    if not future.done():
                        future.set_result(job)
        finally:
            self._running -= 1

    async def _embed_remote(self, jobs: list[SearchJob]) -> None:
        waiting = [job for job in jobs if job.needs_vector]
        if waiting:
            vectors = await self.embed([job.query for job in waiting])
            for job, vector in zip(waiting, vectors, strict=True):
                job.vector = vector

    def _run(self, jobs: list[SearchJob]) -> None:
        waiting = [job for job in jobs if job.needs_vector]
        if waiting and self.embed_sync is not None:
            for job, vector in zip(waiting, self.embed_sync([job.query for job in waiting]), strict=True):
                job.vector = vector
        run_jobs(jobs)
