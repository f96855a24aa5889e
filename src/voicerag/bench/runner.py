"""``voicerag bench``: scenarios run side by side in one process, so their ratios mean something."""

from __future__ import annotations

import asyncio
import os
import platform
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from voicerag.app import VoiceRAG
from voicerag.config import Settings
from voicerag.documents.loaders import Document
from voicerag.evaluation.retrieval import load_beir

WORDS = [
    "river",
    "mountain",
    "engine",
    "protocol",
    "harvest",
    "violin",
    "glacier",
    "market",
    "theory",
    "signal",
    "copper",
    "orbit",
    "garden",
    "cipher",
    "lantern",
    "canyon",
    "vessel",
    "meadow",
    "quartz",
    "falcon",
    "archive",
    "beacon",
    "timber",
    "voltage",
    "harbor",
    "compass",
    "saddle",
    "pixel",
    "cathedral",
    "nebula",
    "tundra",
    "ledger",
    "marble",
    "kernel",
    "monsoon",
    "prism",
    "atlas",
    "orchard",
    "citadel",
    "ember",
    "frontier",
]


def synthetic_corpus(count: int, seed: int = 0) -> tuple[list[Document], list[str]]:
    """``count`` documents of ~60 words from a small vocabulary, and one question per document."""
    rng = random.Random(seed)
    docs, questions = [], []
    for i in range(count):
        words = [rng.choice(WORDS) for _ in range(60)]
        docs.append(Document(f"s{i}", f"Record {i}. " + " ".join(words) + ".", f"Synthetic {i}"))
        questions.append(f"What does record {i} say about {words[3]} and {words[17]}?")
    return docs, questions


def zipf_mix(questions: list[str], requests: int, exponent: float, seed: int = 0) -> list[str]:
    """A request stream over ``questions`` whose popularity follows a Zipf law (repeats like real traffic)."""
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, len(questions) + 1, dtype=np.float64)
    weights = ranks**-exponent
    picks = rng.choice(len(questions), size=requests, p=weights / weights.sum())
    return [questions[i] for i in picks]


def summarize(latencies_s: list[float], seconds: float, errors: int = 0) -> dict[str, Any]:
    ms = np.asarray(latencies_s) * 1000
    return {
        "requests": len(latencies_s),
        "errors": errors,
        "p50_ms": round(float(np.percentile(ms, 50)), 3) if len(ms) else 0.0,
        "p95_ms": round(float(np.percentile(ms, 95)), 3) if len(ms) else 0.0,
        "p99_ms": round(float(np.percentile(ms, 99)), 3) if len(ms) else 0.0,
        "max_ms": round(float(ms.max()), 3) if len(ms) else 0.0,
        "rps": round(len(latencies_s) / seconds, 2) if seconds else 0.0,
    }


async def run_clients(
    work: Callable[[int], Awaitable[Any]], requests: int, concurrency: int
) -> tuple[list[float], float, int]:
    """``requests`` calls of ``work(i)`` spread over ``concurrency`` clients; returns latencies, wall time, errors."""
    latencies: list[float] = []
    errors = 0
    counter = iter(range(requests))

    async def client() -> None:
        nonlocal errors
        for i in counter:
            started = time.perf_counter()
            try:
                await work(i)
            except Exception:
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started, errors


@dataclass
class BenchConfig:
    data_dir: Path
    beir: Path | None = None
    synthetic: int = 2000
    requests: int = 500
    zipf: float = 1.1
    concurrency: int = 32


async def _open(settings: Settings) -> VoiceRAG:
    return await VoiceRAG.open(settings)


async def run_bench(config: BenchConfig) -> dict[str, Any]:
    """Ingest, then: ask uncached vs cached (Zipf mix), embedding throughput with and without micro-batching
    at ``concurrency`` clients, and our dense search vs raw FAISS on the same index and query vectors."""
    process = psutil.Process()
    cpu_start = process.cpu_times()
    if config.beir:
        data = load_beir(config.beir)
        docs, questions = data.corpus, list(data.queries.values())
    else:
        docs, questions = synthetic_corpus(config.synthetic)
    base = Settings(data_dir=config.data_dir)
    scenarios: dict[str, Any] = {}
    async with await _open(base) as rag:
        report = await rag.ingest("bench", docs)
        scenarios["ingest"] = {
            "documents": report.documents,
            "chunks": report.chunks,
            "seconds": round(report.seconds, 3),
            "docs_per_s": round(report.docs_per_s, 2),
            "chunks_per_s": round(report.chunks_per_s, 2),
        }
    mix = zipf_mix(questions, config.requests, config.zipf)

    async with await _open(base.model_copy(update={"cache_enabled": False})) as rag:
        lat, wall, errors = await run_clients(lambda i: rag.ask(mix[i], ["bench"]), len(mix), 1)
        scenarios["ask_uncached"] = summarize(lat, wall, errors)
        # raw FAISS vs our search on the same index and the same query vectors, then whole searches
        index = await rag.retriever.index_for("bench")
        generations = {"bench": index.generation}
        sample = questions[:200]
        vectors = await rag.embed(sample)

        async def raw_faiss(i: int) -> None:
            index.dense.search(vectors[i], 10)

        async def ours_given_vector(i: int) -> None:
            await rag.retriever.search(sample[i], vectors[i], ["bench"], "dense", 10, generations)

        timed = {
            "faiss_raw": raw_faiss,
            "search_dense_given_vector": ours_given_vector,
            "search_dense_uncached": lambda i: rag.pipeline.search(sample[i], ["bench"], "dense", 10, use_cache=False),
            "search_lexical_uncached": lambda i: rag.pipeline.search(
                sample[i], ["bench"], "lexical", 10, use_cache=False
            ),
            "search_hybrid_uncached": lambda i: rag.pipeline.search(
                sample[i], ["bench"], "hybrid", 10, use_cache=False
            ),
        }
        for name, call in timed.items():
            scenarios[name] = summarize(*await run_clients(call, len(sample), 1))

    async with await _open(base) as rag:
        await rag.cache.invalidate()  # start cold: nothing left from the ingest or an earlier run
        lat, wall, errors = await run_clients(lambda i: rag.ask(mix[i], ["bench"]), len(mix), 1)
        scenarios["ask_cached"] = summarize(lat, wall, errors) | {
            "answer_hit_rate": rag.cache.stats_json()["answer"]["hit_rate"]
        }

    distinct = [f"{q} (variant {i})" for i, q in enumerate(questions[: config.requests])]
    for label, wait_ms, batch in (("embed_unbatched", 0.0, 1), ("embed_microbatched", 2.0, 32)):
        settings = base.model_copy(
            update={"cache_enabled": False, "embed_batch_wait_ms": wait_ms, "embed_batch_size": batch}
        )
        async with await _open(settings) as rag:
            await rag.pipeline.embed_query("warm up")
            lat, wall, errors = await run_clients(
                lambda i, rag=rag: rag.pipeline.embed_query(distinct[i]), len(distinct), config.concurrency
            )
            scenarios[label] = summarize(lat, wall, errors) | {"concurrency": config.concurrency}

    cpu_end = process.cpu_times()
    ratios = {
        "search_overhead_vs_faiss": _ratio(
            scenarios["search_dense_given_vector"]["p50_ms"], scenarios["faiss_raw"]["p50_ms"]
        ),
        "cached_ask_speedup": _ratio(scenarios["ask_uncached"]["p50_ms"], scenarios["ask_cached"]["p50_ms"]),
        "cached_ask_speedup_mean": _ratio(scenarios["ask_cached"]["rps"], scenarios["ask_uncached"]["rps"]),
        "microbatch_throughput_gain": _ratio(
            scenarios["embed_microbatched"]["rps"], scenarios["embed_unbatched"]["rps"]
        ),
    }
    return {
        "scenarios": scenarios,
        "ratios": ratios,
        "config": {
            "corpus": str(config.beir) if config.beir else f"synthetic:{config.synthetic}",
            "requests": config.requests,
            "zipf": config.zipf,
            "concurrency": config.concurrency,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 1e9, 1),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpu_seconds": round((cpu_end.user - cpu_start.user) + (cpu_end.system - cpu_start.system), 2),
            "peak_rss_mb": round(_peak_rss_mb(), 1),
        },
    }


def _ratio(a: float, b: float) -> float:
    return round(a / b, 2) if b else 0.0


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
