"""The measured tables of README.md and docs/PERFORMANCE_*.md, rendered from the committed JSON in benchmarks/.

Each table sits between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``; ``scripts/render_perf_docs.py``
rewrites those blocks, and a test fails when a document differs from what its JSON renders to."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from voicerag.bench.profiles import SWEEP
from voicerag.bench.quality_docs import answer_rows, answers
from voicerag.bench.tables import Sources, ms, table

DOCUMENTS = ("README.md", "docs/ANSWERS.md", "docs/PERFORMANCE_QUICKSTART.md", "docs/PERFORMANCE_TUNING_GUIDE.md")
FULL = "bench_full.json"
# the voice turn on recorded clips: voicerag bench --scenarios stt,voice --speech DIR
VOICE = "bench_voice_ljspeech.json"


def measured(src: Sources) -> str:
    """README's headline table."""
    full = src(FULL)
    s, r = full["scenarios"], full["ratios"]
    evals = {m: src(f"eval_squad_{m}.json") for m in ("lexical", "dense", "hybrid")}
    semantic = src("semantic_cache_squad.json")
    at95 = next(row for row in semantic["thresholds"] if row["threshold"] == 0.95)
    stt = src("eval_stt_ljspeech.json")
    voice = src(VOICE)["scenarios"]
    corpus = f"{s['corpus']['chunks']:,} synthetic chunks ({s['corpus']['index_kind'].upper()})"
    rows = [
        [
            "SQuAD dev retrieval, 10,570 questions: nDCG@10 / Recall@100",
            " · ".join(f"{m} {e['ndcg@10']:.3f} / {e['recall@100']:.3f}" for m, e in evals.items()),
            "`eval_squad_{lexical,dense,hybrid}.json`",
        ],
        [
            f"hybrid search p50 / p95, {corpus}, uncached",
            f"{ms(s['search_hybrid_cold']['p50_ms'])} / {ms(s['search_hybrid_cold']['p95_ms'])}",
            f"`{FULL}`",
        ],
        [
            "dense search given the vector vs raw FAISS, p50",
            f"{ms(s['search_dense_given_vector']['p50_ms'])} vs {ms(s['faiss_raw']['p50_ms'])} "
            f"({r['search_overhead_vs_faiss']}×)",
            f"`{FULL}`",
        ],
        [
            "ask p50: uncached vs a cache hit",
            f"{ms(s['ask_uncached']['p50_ms'])} vs {ms(s['ask_cached']['hit_p50_ms'])} ({r['cached_ask_speedup']}×)",
            f"`{FULL}`",
        ],
        [
            f"HTTP /v1/ask at {s['http_ask']['concurrency']} clients (Zipf mix): performance layer off → on "
            "(caches empty) → on (next window)",
            f"{s['http_ask_layer_off']['rps']:.0f} → {s['http_ask_cold']['rps']:.0f} → {s['http_ask']['rps']:.0f} "
            f"req/s; p95 {ms(s['http_ask_layer_off']['p95_ms'])} → {ms(s['http_ask_cold']['p95_ms'])} → "
            f"{ms(s['http_ask']['p95_ms'])}",
            f"`{FULL}`",
        ],
        [
            "semantic answer cache at similarity 0.95: precision / rewording hit rate",
            f"{at95['precision'] * 100:.1f}% / {at95['paraphrase_hit_rate'] * 100:.1f}%",
            "`semantic_cache_squad.json`",
        ],
        [
            f"speech to text on {stt['clips']} LJSpeech clips (Whisper tiny.en int8): WER / real-time factor",
            f"{stt['wer'] * 100:.1f}% / {stt['rtf']:.3f}",
            "`eval_stt_ljspeech.json`",
        ],
        [
            "text to speech (Piper), time to the first sentence's audio, p50",
            ms(s["tts_first_audio"]["p50_ms"]),
            f"`{FULL}`",
        ],
        [
            f"voice to voice, {voice['voice_to_voice_ptt']['requests']} recorded LJSpeech questions (websocket, "
            "uncached): client's `end` / end of speech by silence to the first answer audio, p50",
            f"{ms(voice['voice_to_voice_ptt']['p50_ms'])} / {ms(voice['voice_to_voice_silence']['p50_ms'])}",
            f"`{VOICE}`",
        ],
    ]
    rows += [[what, value, f"`{FULL}`"] for what, value in _read_path_rows(s, r)]
    rows += answer_rows(src)
    return table(["what", "measured", "source in benchmarks/"], rows)


def _read_path_rows(s: dict[str, Any], r: dict[str, Any]) -> list[tuple[str, str]]:
    """The read path against its floor, caches, overload and replicas: rows for the figures the run has."""
    rows = []
    if "search_hybrid_vs_floor" in s and "floor_search" in s:
        rounds = ", ".join(f"{x:.2f}" for x in s["search_hybrid_vs_floor"].get("p95_ratio_per_round", []))
        rows.append(
            (
                "uncached hybrid search in process vs the bare floor (same models and indexes), p95",
                f"{ms(s['search_hybrid_vs_floor']['p95_ms'])} vs {ms(s['floor_search']['p95_ms'])} "
                f"({r.get('search_vs_floor')}×; rounds {rounds})",
            )
        )
    if "http_search_c1" in s and "floor_http_search_c1" in s:
        rows.append(
            (
                "HTTP /v1/search, new questions, 1 client: p50 / p95, vs a minimal ASGI app doing the same",
                f"{ms(s['http_search_c1']['p50_ms'])} / {ms(s['http_search_c1']['p95_ms'])} vs "
                f"{ms(s['floor_http_search_c1']['p50_ms'])} / {ms(s['floor_http_search_c1']['p95_ms'])} "
                f"({r.get('http_search_p95_vs_floor')}× at p95)",
            )
        )
    if "http_search_c32" in s and "floor_http_search_c32" in s:
        rows.append(
            (
                "HTTP /v1/search, new questions, 32 clients: throughput vs the minimal app",
                f"{s['http_search_c32']['rps']:.0f} vs {s['floor_http_search_c32']['rps']:.0f} req/s "
                f"({r.get('http_search_rps_vs_floor')}×)",
            )
        )
    if "http_ask_cached_c1" in s and "http_ask_cached_c32" in s:
        c1, c32 = s["http_ask_cached_c1"], s["http_ask_cached_c32"]
        rows.append(
            (
                "HTTP /v1/ask, cached: server p95 / client p95 at 1 client; throughput at 32 clients",
                f"{ms(c1['server_ms']['p95'])} / {ms(c1['p95_ms'])}; {c32['rps']:.0f} req/s",
            )
        )
    if "http_ask_uncached_c16" in s and "http_ask_uncached_c64" in s:
        rows.append(
            (
                "HTTP /v1/ask, new questions, overload: throughput at 16 → 64 clients",
                f"{s['http_ask_uncached_c16']['rps']:.0f} → {s['http_ask_uncached_c64']['rps']:.0f} req/s "
                f"(p95 {ms(s['http_ask_uncached_c64']['p95_ms'])} at 64)",
            )
        )
    if "ask_cache_miss" in s and "ask_cache_off" in s:
        rows.append(
            (
                "what a cache miss costs: ask p50 with the cache on (every question new) vs off",
                f"{ms(s['ask_cache_miss']['p50_ms'])} vs {ms(s['ask_cache_off']['p50_ms'])} "
                f"({r.get('cache_miss_cost_p50')}×)",
            )
        )
    if "replica_sync" in s:
        sync = s["replica_sync"]
        lag = sync.get("server_lag_ms", {})
        rows.append(
            (
                "a write on one `serve` to its visibility on another (SQLite), p50 / p95; the second one's own lag "
                "p50 / p95; its slowest query meanwhile",
                f"{ms(sync['p50_ms'])} / {ms(sync['p95_ms'])}; {ms(lag.get('p50'))} / {ms(lag.get('p95'))}; "
                f"{ms(sync.get('max_query_ms'))}",
            )
        )
    if "index_pgvector" in s and "index_hnsw" in s:
        rows.append(
            (
                f"dense search at recall@10 ≥ 0.95, {s['index_hnsw']['vectors']:,} vectors: FAISS HNSW vs pgvector "
                "(one query per round trip), p50",
                f"{ms(s['index_hnsw']['p50_ms'])} vs {ms(s['index_pgvector']['p50_ms'])}",
            )
        )
    return rows


def scenarios(src: Sources) -> str:
    full = src(FULL)
    rows = []
    for name, s in full["scenarios"].items():
        if "p50_ms" not in s or SWEEP.fullmatch(name):
            continue
        rows.append(
            [f"`{name}`", s["requests"], ms(s["p50_ms"]), ms(s["p95_ms"]), ms(s["p99_ms"]), s["rps"], s["errors"]]
        )
    return table(["scenario", "requests", "p50", "p95", "p99", "req/s", "errors"], rows)


def ingest(src: Sources) -> str:
    s = src(FULL)["scenarios"]["ingest"]
    return table(
        ["documents", "chunks", "seconds", "chunks/s", "CPU (of 1 core)", "peak RSS"],
        [
            [
                s["documents"],
                s["chunks"],
                s["seconds"],
                s["chunks_per_s"],
                f"{s['cpu_percent']:.0f}%",
                f"{s['peak_rss_mb']:.0f} MB",
            ]
        ],
    )


def index_kinds(src: Sources) -> str:
    full = src(FULL)
    rows = [
        [
            t["kind"].upper(),
            f"{t['knob']} = {t['knob_value']}" if t["knob"] else "exact",
            t["recall_at_10"],
            ms(t["p50_ms"]),
            ms(t["p99_ms"]),
            f"{t['build_s']:.1f} s",
        ]
        for t in full["tables"]["index_kinds"]
    ]
    n = full["scenarios"]["index_flat"]["vectors"]
    return f"{n:,} vectors, one query at a time, k = 10, recall against FLAT:\n\n" + table(
        ["index", "search knob (tuned to recall ≥ 0.95)", "recall@10", "p50", "p99", "build"], rows
    )


def performance_layer(src: Sources) -> str:
    full = src(FULL)
    s = full["scenarios"]
    names = {"p50_ms": "p50", "p95_ms": "p95", "p99_ms": "p99", "rps": "requests/s"}
    rows = [
        [names[row["figure"]], *(ms(row[k]) if row["figure"] != "rps" else row[k] for k in ("off", "on_cold", "on"))]
        for row in full["tables"]["performance_layer"]
    ]
    off = s["http_ask_layer_off"]["performance_layer"].removeprefix("off: ")
    return (
        f"HTTP `POST /v1/ask`, {s['http_ask']['concurrency']} concurrent clients, "
        f"windows of {s['http_ask']['seconds']:.0f} s, "
        f"Zipf-1.1 question mix over {s['corpus']['chunks']:,} chunks. Off = {off}.\n\n"
        + table(["figure", "layer off", "layer on, first window (caches empty)", "layer on, next window"], rows)
    )


def concurrency(src: Sources) -> str:
    rows = [
        [r["concurrency"], r["rps"], ms(r["p50_ms"]), ms(r["p95_ms"])]
        for r in src(FULL)["tables"]["throughput_vs_concurrency"]
    ]
    return table(["clients", "req/s", "p50", "p95"], rows)


def cache_rates(src: Sources) -> str:
    s = src(FULL)["scenarios"]
    rows = []
    for scenario in ("ask_cached", "ask_semantic_cached"):
        for policy, c in s[scenario]["cache"].items():
            tiers = ", ".join(f"{t} {v:.0%}" for t, v in c["tiers"].items())
            rows.append([f"`{scenario}`", policy, f"{c['hit_rate']:.1%}", c["hits"], c["misses"], tiers])
    cached = s["ask_cached"]
    return table(["scenario", "policy", "hit rate", "hits", "misses", "per tier"], rows) + (
        f"\n\nIn `ask_cached`, a hit took {ms(cached['hit_p50_ms'])} (p50) and a miss {ms(cached['miss_p50_ms'])}, "
        f"against {ms(s['ask_uncached']['p50_ms'])} with the caches off."
    )


def semantic(src: Sources) -> str:
    rows = [
        [
            row["threshold"],
            f"{row['precision']:.2%}",
            f"{row['paraphrase_hit_rate']:.2%}",
            f"{row['false_hit_rate']:.2%}",
        ]
        for row in src("semantic_cache_squad.json")["thresholds"]
        if row["threshold"] in (0.85, 0.88, 0.9, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98)
    ]
    return table(["threshold", "precision", "rewording hit rate", "false hit rate"], rows)


def speech(src: Sources) -> str:
    s = src(FULL)["scenarios"]
    voice = src(VOICE)["scenarios"]
    stt = src("eval_stt_ljspeech.json")
    rows = [
        ["STT, LJSpeech (40 clips, 275 s)", f"WER {stt['wer']:.1%}", f"real-time factor {stt['rtf']:.3f}"],
        [
            f"STT, {voice['stt']['requests']} recorded questions of ~{voice['stt']['audio_seconds_mean']:.0f} s"
            f" ({VOICE})",
            f"p50 {ms(voice['stt']['p50_ms'])}; Whisper's whole 30 s window {ms(voice['stt_full_window']['p50_ms'])}",
            f"real-time factor {voice['stt']['rtf']:.3f}",
        ],
        [
            "TTS, time to first audio",
            f"p50 {ms(s['tts_first_audio']['p50_ms'])}",
            f"max {ms(s['tts_first_audio']['max_ms'])}",
        ],
        [
            "TTS, whole answer (2 sentences)",
            f"p50 {ms(s['tts_total']['p50_ms'])}",
            f"real-time factor {s['tts_total']['rtf']:.3f}",
        ],
        [
            f"voice to voice (websocket, uncached, {VOICE}): the client's `end` to the first answer audio",
            f"p50 {ms(voice['voice_to_voice_ptt']['p50_ms'])}",
            f"max {ms(voice['voice_to_voice_ptt']['max_ms'])}",
        ],
        [
            "voice to voice: the end of speech to the first answer audio, the turn ended by silence",
            f"p50 {ms(voice['voice_to_voice_silence']['p50_ms'])}",
            f"max {ms(voice['voice_to_voice_silence']['max_ms'])}",
        ],
    ]
    return table(["what", "latency / quality", "speed"], rows)


def machine(src: Sources) -> str:
    full = src(FULL)
    m, c = full["machine"], full["config"]
    return (
        f"Measured by `make bench` (`voicerag bench --profile {c['profile']}`) on {m['cpus']} CPUs ({m['cpu_model']}), "
        f"{m['memory_gb']} GB RAM, Python {m['python']}; corpus {c['corpus']}, Zipf {c['zipf']}; "
        f"peak RSS of the bench process {m['peak_rss_mb']:.0f} MB. Source: `benchmarks/{FULL}`, "
        f"plot `benchmarks/bench_full.png`."
    )


BLOCKS: dict[str, Callable[[Sources], str]] = {
    "measured": measured,
    "answers": answers,
    "machine": machine,
    "scenarios": scenarios,
    "ingest": ingest,
    "index_kinds": index_kinds,
    "performance_layer": performance_layer,
    "concurrency": concurrency,
    "cache_rates": cache_rates,
    "semantic": semantic,
    "speech": speech,
}
_BLOCK = re.compile(r"(<!-- bench:(\w+) -->\n)(.*?)(<!-- /bench:\2 -->)", re.S)


def render(text: str, src: Sources) -> str:
    """``text`` with every bench block re-rendered from the JSON."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(2)
        if name not in BLOCKS:
            raise KeyError(f"unknown bench block {name!r}; one of {', '.join(BLOCKS)}")
        return f"{match.group(1)}{BLOCKS[name](src)}\n{match.group(4)}"

    return _BLOCK.sub(fill, text)


def render_all(root: Path) -> dict[Path, str]:
    """Each document with bench blocks, as it should read."""
    src = Sources(root / "benchmarks")
    return {root / name: render((root / name).read_text(), src) for name in DOCUMENTS if (root / name).is_file()}
