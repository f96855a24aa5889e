import asyncio
import threading

import numpy as np

from voicerag.bench.corpus import synthetic_corpus, zipf_mix
from voicerag.bench.regression import compare, median_of_runs
from voicerag.bench.stats import run_clients, summarize
from voicerag.retrieval.faiss_index import FaissIndex
from voicerag.retrieval.index import IndexParams
from voicerag.retrieval.lexical import BM25Index
from voicerag.retrieval.worker import RetrievalWorker, SearchJob, Target


def test_percentiles_match_a_known_sample() -> None:
    latencies = [i / 1000 for i in range(1, 101)]  # 1..100 ms
    result = summarize(latencies, seconds=2.0, errors=1)
    assert result["p50_ms"] == 50.5 and result["p95_ms"] == 95.05 and result["p99_ms"] == 99.01
    assert result["max_ms"] == 100.0 and result["rps"] == 50.0 and result["errors"] == 1
    assert result["quantiles_ms"]["0"] == 1.0 and result["quantiles_ms"]["100"] == 100.0


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


async def test_worker_batches_greedily_what_queued_while_it_was_busy() -> None:
    """No timer: the first search runs at once; the ten that queue while it runs go in one call."""
    release, entered = threading.Event(), threading.Event()
    calls: list[list[str]] = []

    def embed_sync(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        if len(calls) == 1:
            entered.set()
            release.wait(timeout=60)
        return np.stack([np.eye(4, dtype=np.float32)[len(t) % 4] for t in texts])

    async def embed(texts: list[str]) -> np.ndarray:
        raise AssertionError("a local model embeds inside the worker call")

    ids = np.arange(4, dtype=np.int64)
    dense = FaissIndex.build("flat", 4, IndexParams(), ids, np.eye(4, dtype=np.float32))
    lexical = BM25Index()
    lexical.update(ids, ["zero", "one", "two", "three"], np.zeros(0, np.int64))
    target = Target("c", dense, lexical)
    worker = RetrievalWorker(embed, embed_sync, concurrency=1, max_batch=64)
    first = asyncio.ensure_future(worker.run(SearchJob("x", None, [target], "dense", 1)))
    await asyncio.to_thread(entered.wait, 60)
    rest = [asyncio.ensure_future(worker.run(SearchJob("y" * i, None, [target], "hybrid", 2))) for i in range(10)]
    await asyncio.sleep(0)  # let them queue
    release.set()
    done = await asyncio.gather(first, *rest)
    assert [len(c) for c in calls] == [1, 10] and worker.batches == 2
    assert done[0].hits[0].chunk_id == 1  # "x": one character, the unit vector of id 1
    assert all(job.hits and job.vector is not None for job in done)


def report(search_p50: float = 10.0, rps: float = 200.0, overhead: float = 1.5) -> dict:
    return {
        "scenarios": {"search_hybrid_cold": {"p50_ms": search_p50, "p95_ms": 20.0}, "http_ask": {"rps": rps}},
        "ratios": {"search_overhead_vs_faiss": overhead},
    }


def test_regression_checker_passes_an_unchanged_run_and_flags_an_injected_slowdown() -> None:
    baseline = report()
    assert not any(f.regressed for f in compare(report(), baseline))
    slow = compare(report(search_p50=20.0), baseline)
    assert [f.figure for f in slow if f.regressed] == ["scenarios.search_hybrid_cold.p50_ms"]
    fewer = compare(report(rps=100.0), baseline)
    assert [f.figure for f in fewer if f.regressed] == ["scenarios.http_ask.rps"]
    assert not any(f.regressed for f in compare(report(search_p50=5.0, rps=400.0), baseline))  # faster is fine


def test_regression_rules_are_noise_aware() -> None:
    baseline = report(search_p50=1.0)
    # +60% but only 0.6 ms: under the absolute floor, so jitter, not a regression
    assert not any(f.regressed for f in compare(report(search_p50=1.6), baseline))
    noisy = report(search_p50=14.0) | {"spread": {"scenarios.search_hybrid_cold.p50_ms": 0.5}}
    finding = next(f for f in compare(noisy, report()) if f.figure.endswith("search_hybrid_cold.p50_ms"))
    assert finding.tolerance == 0.5 and not finding.regressed  # +40% within the 50% spread seen between runs


def test_median_of_runs_takes_each_figures_median_and_its_spread() -> None:
    merged = median_of_runs([report(search_p50=v) for v in (10.0, 30.0, 12.0)])
    assert merged["scenarios"]["search_hybrid_cold"]["p50_ms"] == 12.0 and merged["runs"] == 3
    assert merged["spread"]["scenarios.search_hybrid_cold.p50_ms"] == round(20 / 12, 4)
