"""``voicerag bench``: every scenario runs side by side in one invocation, so the ratios between them mean
something on a noisy machine. Profiles: ``quick`` (a smoke test, seconds) and ``full`` (``make bench``)."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

import psutil

from voicerag.app import VoiceRAG
from voicerag.bench.corpus import synthetic_corpus, zipf_mix
from voicerag.bench.profiles import PROFILES, SWEEP, BenchConfig
from voicerag.bench.scenarios import BenchRun, embedding, floor, http, jobs, replica, search, speech, voice
from voicerag.bench.stats import peak_rss_mb, resources
from voicerag.config import Settings
from voicerag.evaluation.retrieval import load_beir

# In this order: the in-process groups first, the server processes after them.
GROUPS = (
    search.GROUP,
    embedding.GROUP,
    floor.GROUP,
    replica.GROUP,
    jobs.GROUP,
    speech.GROUP,
    http.GROUP,
    voice.GROUP,
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
    spoken: list[tuple[str, bytes]] = []

    def clips() -> list[tuple[str, bytes]]:
        """The spoken questions (recorded, or synthesised once) for the speech and voice scenarios."""
        if not spoken:
            found = speech.recorded_clips(config.speech, p.speech_clips) if config.speech else []
            spoken.extend(found or speech.spoken_questions(p.speech_clips))
        return spoken

    bench = BenchRun(config, base, questions, zipf_mix(questions, p.requests, config.zipf), clips)
    scenarios = bench.scenarios

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

    for group in GROUPS:
        if group.wanted(config):
            await group.run(bench)
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
