"""`voicerag bench` runs end to end on the quick profile (a smoke test: no timing assertions), writes its JSON,
plot and baseline, and `bench-check` passes an unchanged report and names a figure that regressed."""

import json
import os
import subprocess
import sys


def run(tmp_path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICERAG_")}
    return subprocess.run(
        [sys.executable, "-m", "voicerag.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        cwd=tmp_path,
    )


def test_bench_quick_profile_and_regression_check(tmp_path) -> None:
    result = run(
        tmp_path,
        "bench",
        "--profile",
        "quick",
        "--out",
        "bench.json",
        "--plot",
        "bench.png",
        "--save-baseline",
        "baseline.json",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert json.loads((tmp_path / "bench.json").read_text()) == report
    assert (tmp_path / "bench.png").read_bytes()[:4] == b"\x89PNG"
    scenarios = report["scenarios"]
    for name in (
        "ask_uncached",
        "ask_cached",
        "ask_semantic_cached",
        "faiss_raw",
        "search_hybrid_cold",
        "search_hybrid_warm",
        "search_batched",
        "bm25_after_change",
        "bm25_warm",
        "index_hnsw",
        "stt",
        "tts_first_audio",
        "voice_to_voice_ptt",
        "voice_to_voice_silence",
        "http_ask",
        "http_ask_layer_off",
    ):
        s = scenarios[name]
        assert s["errors"] == 0 and s["requests"] > 0 and s["p50_ms"] <= s["p99_ms"] <= s["max_ms"], name
    assert scenarios["ingest"]["chunks_per_s"] > 0 and scenarios["ingest"]["peak_rss_mb"] > 0
    sync = scenarios["replica_sync"]  # two serve processes: every write on one was found on the other
    assert sync["requests"] == 20 and sync["errors"] == 0 and sync["server_lag_ms"]["syncs"] >= 1
    assert sync["queries_during"] > 0 and sync["max_query_ms"] > 0 and sync["max_query_ms_without_writes"] > 0
    for name in ("false_turn_end_rate", "false_turn_end_rate_silence_only"):  # the same spliced clips, both ways
        turns = scenarios[name]
        assert turns["turns"] == scenarios["voice_to_voice_ptt"]["requests"] and 0 <= turns["rate"] <= 1, name
        assert all(0.3 <= pause <= 0.7 for pause in turns["pauses_s"]), name
    assert scenarios["ask_cached"]["answer_hit_rate"] > 0  # the Zipf mix repeats questions
    assert scenarios["index_hnsw"]["recall_at_10"] >= 0.95
    assert scenarios["http_ask"]["peak_in_flight"] == report["config"]["concurrency"]
    assert {"search_overhead_vs_faiss", "cached_ask_speedup", "performance_layer_throughput_gain"} <= set(
        report["ratios"]
    )
    assert report["tables"]["performance_layer"] and report["tables"]["throughput_vs_concurrency"]
    assert report["machine"]["cpus"] >= 1 and "cache_memory_mb" in report["settings"]

    unchanged = run(tmp_path, "bench-check", "bench.json", "--baseline", "baseline.json")
    assert unchanged.returncode == 0, unchanged.stderr
    slowed = json.loads((tmp_path / "bench.json").read_text())
    hybrid = slowed["scenarios"]["search_hybrid_cold"]
    hybrid["p50_ms"] = hybrid["p50_ms"] * 3 + 5  # an injected slowdown
    (tmp_path / "slow.json").write_text(json.dumps(slowed))
    flagged = run(tmp_path, "bench-check", "slow.json", "--baseline", "baseline.json")
    assert flagged.returncode == 1 and "regression: scenarios.search_hybrid_cold.p50_ms" in flagged.stderr


def test_bench_speech_scenarios_take_recorded_clips_and_a_docs_set(tmp_path, shared_data) -> None:
    clips = shared_data / "speech"
    docs = tmp_path / "docs-set"  # a documentation set's layout: corpus/ and questions.jsonl
    (docs / "corpus").mkdir(parents=True)
    (docs / "corpus" / "museum.md").write_text(
        "# Visiting\n\nThe city museum opens at nine in the morning. Tickets are sold at the main entrance.\n\n"
        "## Parking\n\nThe car park behind the museum has two hundred spaces and closes at midnight.\n"
    )
    questions = [
        {"id": "q1", "question": "When does the city museum open?", "answerable": True, "must_contain": ["nine"]},
        {
            "id": "q2",
            "question": "How many spaces does the car park have?",
            "answerable": True,
            "must_contain": ["two hundred"],
        },
    ]
    (docs / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))
    result = run(
        tmp_path, "bench", "--scenarios", "stt,voice", "--speech", str(clips), "--clips", "2", "--docs-qa", str(docs),
        "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    scenarios = json.loads(result.stdout.strip().splitlines()[-1])["scenarios"]
    for name in ("voice_to_voice_docs_ptt", "voice_to_voice_docs_silence"):  # the set's questions, spoken by Piper
        turns = scenarios[name]
        assert turns["requests"] == 2 and turns["errors"] == 0, name
        assert all("museum" in heard.lower() or "car park" in heard.lower() for heard in turns["transcripts"]), name
        assert 0 <= turns["answers_right"] <= 2 and turns["answers_right_typed"] == 2 and turns["question_wer"] < 0.5
        assert "answer" in turns["stages_ms"] and "stt" in turns["stages_ms"], name
    assert scenarios["stt"]["clips"] == 2 and scenarios["stt"]["wer"] < 0.2  # LJSpeech, not the synthetic question
    full = scenarios["stt_full_window"]  # the same clips through Whisper's whole 30 s window, side by side
    assert full["clips"] == 2 and full["model"].endswith("window30+3") and full["wer"] < 0.2
    for name in ("voice_to_voice_ptt", "voice_to_voice_silence"):
        assert scenarios[name]["requests"] == 2 and scenarios[name]["errors"] == 0, name
        assert scenarios[name]["turns_ended_at_inner_pause"] in (0, 1, 2)


def test_bench_refuses_a_speech_folder_without_transcripts_before_it_starts(tmp_path) -> None:
    (tmp_path / "clips").mkdir()
    result = run(tmp_path, "bench", "--speech", "clips")
    assert result.returncode == 2 and "transcripts.tsv" in result.stdout + result.stderr
    assert "bench run 1" not in result.stdout  # nothing ran


def test_bench_times_queued_ingestion_by_one_and_two_workers(tmp_path) -> None:
    from tests.helpers import need_service

    need_service("Redis", "127.0.0.1", 6379)
    redis = "redis://127.0.0.1:6379/13"  # a database of its own: no other test's jobs are queued there
    result = run(tmp_path, "bench", "--scenarios", "jobs", "--redis-url", redis, "--data-dir", "bench", "--json")
    assert result.returncode == 0, result.stderr
    jobs = json.loads(result.stdout.strip().splitlines()[-1])["scenarios"]["ingest_jobs"]
    assert jobs["documents"] == 60 and jobs["jobs"] == 8
    for workers in (1, 2):
        figures = jobs[f"workers_{workers}"]
        assert figures["docs_per_s"] > 0 and figures["chunks_per_s"] >= figures["docs_per_s"] * 0.99
