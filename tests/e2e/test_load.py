"""The HTTP load generator against a real local server that counts requests in flight."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI

from tests.helpers import serve
from voicerag.bench.load import LoadPlan, run_load


@pytest.fixture(scope="module")
def slow_server():
    state = {"in_flight": 0, "peak": 0, "count": 0}
    app = FastAPI()

    @app.post("/v1/ask")
    async def ask(body: dict) -> dict:
        state["in_flight"] += 1
        state["peak"] = max(state["peak"], state["in_flight"])
        state["count"] += 1
        await asyncio.sleep(0.05)
        state["in_flight"] -= 1
        return {"answer": body["question"]}

    with serve(app) as url:
        yield url, state


def body(i: int) -> dict:
    return {"question": f"q{i}"}


async def test_load_respects_concurrency_and_request_count(slow_server) -> None:
    url, state = slow_server
    state.update(peak=0, count=0)
    result = await run_load(LoadPlan(f"{url}/v1/ask", body, concurrency=8, duration_s=None, requests=80))
    assert result["requests"] == 80 and result["errors"] == 0 and state["count"] == 80
    assert result["peak_in_flight"] == 8 and state["peak"] == 8  # exactly N at once, never more
    assert result["p50_ms"] >= 50  # each request waited for the server's 50 ms


async def test_load_respects_duration(slow_server) -> None:
    url, state = slow_server
    state.update(peak=0, count=0)
    result = await run_load(LoadPlan(f"{url}/v1/ask", body, concurrency=4, duration_s=1.0))
    assert 1.0 <= result["seconds"] < 3.0  # stops issuing at the deadline; in-flight requests finish
    assert 40 <= result["requests"] <= 4 * 1.0 / 0.05 + 4 and state["peak"] <= 4


async def test_load_holds_a_target_rate(slow_server) -> None:
    url, _ = slow_server
    result = await run_load(LoadPlan(f"{url}/v1/ask", body, concurrency=16, duration_s=1.0, rate=20))
    assert 15 <= result["requests"] <= 21 and result["target_rps"] == 20  # not the ~300/s 16 clients could do


async def test_errors_are_counted_by_status(slow_server) -> None:
    url, _ = slow_server
    result = await run_load(LoadPlan(f"{url}/v1/missing", body, concurrency=2, duration_s=None, requests=6))
    assert result["errors"] == 6 and result["statuses"] == {"404": 6} and result["requests"] == 0


def test_soak_reports_memory_and_whether_it_settles(tmp_path) -> None:
    import json
    import subprocess
    import sys

    import httpx

    from tests.conftest import FACTS
    from tests.helpers import serve
    from voicerag import Settings
    from voicerag.api.app import create_app

    with serve(create_app(Settings(data_dir=tmp_path / "data", preload_speech=False))) as url:
        body = {"documents": [{"id": d.id, "text": d.text, "title": d.title} for d in FACTS]}
        assert httpx.post(f"{url}/v1/collections/kb/documents", json=body, timeout=60).status_code == 200
        command = [sys.executable, "-m", "voicerag.cli", "soak", url, "-c", "kb", "-q", "Who created Python?"]
        result = subprocess.run(
            [*command, "-q", "How long does a cat sleep?", "--seconds", "5", "--concurrency", "2", "--json"],
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    kinds = {key.split()[0] for key in report["requests"]}
    assert kinds <= {"search", "ask", "speech"} and all(key.endswith(" 200") for key in report["requests"])
    assert report["rss_mb"]["max"] >= report["rss_mb"]["start"] > 0 and len(report["series"]) >= 2
    assert isinstance(report["plateau"], bool)
    breakdown = report["memory"]["series"]  # the server's own account, sampled from the first second
    assert breakdown and breakdown[0]["at_s"] < 5 and breakdown[0]["rss_mb"] > 0 and breakdown[0]["python_blocks"] > 0
    assert (
        report["memory"]["end"]["cache_mb"]["answer"] >= 0
        and "kb" in report["memory"]["end"]["read_model"]["collections"]
    )
