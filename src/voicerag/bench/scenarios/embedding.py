"""Group ``embed``: the embedder alone, batched and not."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from voicerag.app import VoiceRAG
from voicerag.bench.profiles import BenchConfig
from voicerag.bench.scenarios import Group
from voicerag.bench.stats import resources, run_clients
from voicerag.config import Settings


async def embedding(
    config: BenchConfig, base: Settings, questions: list[str], record: Callable[..., dict[str, Any]]
) -> None:
    """Dense search from many clients, one query per worker call (``search_unbatched``) and batched
    (``search_batched``)."""
    p = config.profile
    distinct = [f"{q} (variant {i})" for i, q in enumerate(questions[: p.requests])]
    for label, batch in (("search_unbatched", 1), ("search_batched", 64)):
        settings = base.model_copy(update={"cache_enabled": False, "retrieval_max_batch": batch})
        async with await VoiceRAG.open(settings) as rag:
            await rag.search("warm up", ["bench"], "dense")
            with resources(extra := {}):
                lat, wall, errors = await run_clients(
                    lambda i, rag=rag: rag.pipeline.search(distinct[i], ["bench"], "dense", 10, use_cache=False),
                    len(distinct),
                    p.concurrency,
                )
            worker = rag.retriever.worker
            record(
                label,
                lat,
                wall,
                errors,
                concurrency=p.concurrency,
                searches_per_batch=round(worker.jobs / max(worker.batches, 1), 2),
                **extra,
            )


GROUP = Group(("embed",), lambda bench: embedding(bench.config, bench.base, bench.questions, bench.record))
