import asyncio

import numpy as np

from voicerag.bench.runner import run_clients, summarize, synthetic_corpus, zipf_mix
from voicerag.pipeline import MicroBatcher


def test_percentiles_match_a_known_sample() -> None:
    latencies = [i / 1000 for i in range(1, 101)]  # 1..100 ms
    result = summarize(latencies, seconds=2.0, errors=1)
    assert result["p50_ms"] == 50.5 and result["p95_ms"] == 95.05 and result["p99_ms"] == 99.01
    assert result["max_ms"] == 100.0 and result["rps"] == 50.0 and result["errors"] == 1


def test_zipf_mix_repeats_popular_questions() -> None:
    questions = [f"q{i}" for i in range(1000)]
    mix = zipf_mix(questions, 5000, 1.1)
    counts = {q: mix.count(q) for q in set(mix)}
    assert len(mix) == 5000 and counts["q0"] > counts.get("q10", 0) > counts.get("q500", 0)
    assert len(counts) < 1000


def test_synthetic_corpus_is_deterministic() -> None:
    docs, questions = synthetic_corpus(50)
    again, _ = synthetic_corpus(50)
    assert [d.text for d in docs] == [d.text for d in again] and len(questions) == 50


async def test_run_clients_respects_concurrency() -> None:
    active = peak = 0

    async def work(i: int) -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.001)
        active -= 1
        if i == 7:
            raise RuntimeError("counted, not raised")

    latencies, wall, errors = await run_clients(work, 40, 4)
    assert peak == 4 and len(latencies) == 39 and errors == 1 and wall > 0


async def test_micro_batcher_gathers_concurrent_requests() -> None:
    batches = []

    async def embed(texts):
        batches.append(list(texts))
        return np.array([[len(t)] for t in texts], dtype=np.float32)

    batcher = MicroBatcher(embed, max_batch=8, wait_s=0.01)
    results = await asyncio.gather(*(batcher.submit("x" * i) for i in range(20)))
    assert [int(r[0]) for r in results] == list(range(20))
    assert [len(b) for b in batches] == [8, 8, 4]
