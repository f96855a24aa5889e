"""`voicerag bench` runs end to end on a tiny profile (a smoke test: no timing assertions)."""

import json
import os
import subprocess
import sys


def test_bench_smoke(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICERAG_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "voicerag.cli",
            "bench",
            "--synthetic",
            "60",
            "--requests",
            "30",
            "--concurrency",
            "4",
            "--out",
            str(tmp_path / "bench.json"),
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert json.loads((tmp_path / "bench.json").read_text()) == report
    for name in ("ask_uncached", "ask_cached", "faiss_raw", "search_dense_uncached", "embed_microbatched"):
        scenario = report["scenarios"][name]
        assert scenario["errors"] == 0 and scenario["requests"] > 0 and scenario["p50_ms"] <= scenario["p99_ms"]
    assert report["scenarios"]["ask_cached"]["answer_hit_rate"] > 0  # the Zipf mix repeats questions
    assert set(report["ratios"]) >= {"search_overhead_vs_faiss", "cached_ask_speedup"}
    assert report["machine"]["cpus"] >= 1
