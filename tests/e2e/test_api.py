"""The HTTP API under a real uvicorn server, driven by a real HTTP client."""

from __future__ import annotations

import gc
import json
import time

import httpx
import pytest

from tests.helpers import make_pdf, serve
from voicerag.api.app import create_app


@pytest.fixture
def server(backend_settings):
    with serve(create_app(backend_settings(max_upload_mb=1))) as url:
        yield url


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server, timeout=60) as c:
        yield c


def ingest_facts(client: httpx.Client, facts) -> dict:
    body = {"documents": [{"id": d.id, "text": d.text, "title": d.title} for d in facts]}
    response = client.post("/v1/collections/kb/documents", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_health_and_readiness(client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    deadline = time.monotonic() + 60  # the indexes load in the background; /readyz says "warming" until then
    while (response := client.get("/readyz")).status_code == 503 and time.monotonic() < deadline:
        assert response.json()["status"] == "warming"
        time.sleep(0.01)
    ready = response.json()
    assert ready["status"] == "ready" and ready["checks"]["database"]["ok"] is True
    assert ready["checks"]["indexes"]["ok"] is True
    assert "database" in ready["pools"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in docs.text and "cdn" not in docs.text
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200  # offline: from the package


def test_ingest_search_ask(client, facts) -> None:
    report = ingest_facts(client, facts)
    assert report["added"] == 3 and report["chunks"] == 3
    results = client.post("/v1/search", json={"query": "Guido van Rossum", "collection": "kb", "k": 2}).json()
    assert results["results"][0]["document_id"] == "python" and len(results["results"]) == 2
    answer = client.post("/v1/ask", json={"question": "When was the Eiffel Tower completed?", "collection": "kb"})
    body = answer.json()
    assert "1889" in body["answer"] and body["generator"] == "extractive"
    top = body["sources"][0]
    assert {"document_id", "chunk_id", "title", "score", "text", "start", "end"} <= set(top)
    assert "1889" in top["quote"] and top["quote_start"] >= top["start"]
    again = client.post("/v1/ask", json={"question": "when was the eiffel tower  completed?", "collection": "kb"})
    assert again.json()["cached"] is True and again.json()["answer"] == body["answer"]
    listed = client.get("/v1/collections/kb/documents").json()["documents"]
    assert sorted(d["id"] for d in listed) == ["cats", "paris", "python"]


def test_ask_stream_sse(client, facts) -> None:
    ingest_facts(client, facts)
    with client.stream(
        "POST", "/v1/ask", json={"question": "Who created Python?", "collection": "kb", "stream": True}
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = []
        name = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
    names = [n for n, _ in events]
    assert names[0] == "sources" and "delta" in names and names[-1] == "done"
    assert "Guido" in events[-1][1]["answer"]


def test_upload_pdf_then_delete(client) -> None:
    pdf = make_pdf(["The secret ingredient is cardamom.", "It was added in 1921."])
    response = client.post("/v1/collections/files/files", files={"files": ("recipe.pdf", pdf, "application/pdf")})
    assert response.status_code == 200, response.text
    answer = client.post("/v1/ask", json={"question": "What is the secret ingredient?", "collection": "files"}).json()
    assert "cardamom" in answer["answer"] and answer["sources"][0]["document_id"] == "recipe.pdf"
    assert client.delete("/v1/collections/files/documents/recipe.pdf").status_code == 200
    answer = client.post("/v1/ask", json={"question": "What is the secret ingredient?", "collection": "files"}).json()
    assert "cardamom" not in answer["answer"] and answer["sources"] == []


def test_bad_input_is_a_clear_4xx_and_stores_nothing(client, facts) -> None:
    ingest_facts(client, facts)
    corrupt = client.post(
        "/v1/collections/kb/files",
        files=[
            ("files", ("good.txt", b"Fine text here.", "text/plain")),
            ("files", ("broken.pdf", b"%PDF-1.4 garbage", "application/pdf")),
        ],
    )
    assert corrupt.status_code == 422
    assert corrupt.headers["content-type"] == "application/problem+json"
    assert "broken.pdf: not a readable PDF" in corrupt.json()["detail"]
    empty = client.post("/v1/collections/kb/files", files={"files": ("empty.txt", b"", "text/plain")})
    assert empty.status_code == 422 and "empty" in empty.json()["detail"]
    exe = client.post("/v1/collections/kb/files", files={"files": ("x.exe", b"MZ", "application/octet-stream")})
    assert exe.status_code == 415 and "accepted: .txt" in exe.json()["detail"]
    docs = client.get("/v1/collections/kb/documents").json()["documents"]
    assert sorted(d["id"] for d in docs) == ["cats", "paris", "python"]  # nothing half-written, nothing lost

    big = client.post("/v1/collections/kb/files", files={"files": ("big.txt", b"a" * (2 * 1024 * 1024), "text/plain")})
    assert big.status_code == 413 and "at most 1048576 bytes" in big.json()["detail"]
    long_question = client.post("/v1/ask", json={"question": "x" * 100_000, "collection": "kb"})
    assert long_question.status_code == 422 and "at most 2000" in long_question.json()["detail"]
    unknown = client.post("/v1/ask", json={"question": "hi", "collection": "nope"})
    assert unknown.status_code == 404 and "collection 'nope' does not exist" in unknown.json()["detail"]
    bad_k = client.post("/v1/search", json={"query": "hi", "collection": "kb", "k": 5000})
    assert bad_k.status_code == 422 and "k must be between 1 and 100" in bad_k.json()["detail"]
    no_collection = client.post("/v1/search", json={"query": "hi"})
    assert no_collection.status_code == 422 and "name the collection" in no_collection.json()["detail"]
    malformed = client.post("/v1/ask", content=b"{not json", headers={"content-type": "application/json"})
    assert malformed.status_code == 422 and malformed.headers["content-type"] == "application/problem+json"


def test_cache_routes_and_metrics(client, facts) -> None:
    ingest_facts(client, facts)
    for _ in range(2):
        client.post("/v1/ask", json={"question": "Who created Python?", "collection": "kb"})
    stats = client.get("/v1/cache/stats").json()
    assert stats["answer"]["hits"] == 1 and stats["answer"]["misses"] == 1
    assert stats["answer"]["tiers"]["memory"]["hits"] == 1
    removed = client.delete("/v1/cache", params={"policy": "answer"}).json()["removed"]
    assert removed["memory"] == 1
    assert (
        client.post("/v1/ask", json={"question": "Who created Python?", "collection": "kb"}).json()["cached"] is False
    )
    assert client.delete("/v1/cache", params={"policy": "nope"}).status_code == 422
    gc.collect()  # a full collection: its pause is timed
    metrics = client.get("/metrics").text
    assert 'voicerag_gc_pause_seconds_count{generation="2"' in metrics
    assert 'voicerag_stage_seconds_count{stage="retrieve"' in metrics
    assert "voicerag_request_seconds_bucket" in metrics and "process_resident_memory_bytes" in metrics
    assert 'voicerag_cache_events_total{event="hits",policy="answer",tier="memory"' in metrics
    assert "# TYPE voicerag_cache_events_total counter" in metrics and 'state="overflow"' in metrics
    assert 'voicerag_pool_connections{pool="database",state="overflow",worker=' in metrics
    assert not [line for line in metrics.splitlines() if 'state="overflow"' in line and line.endswith(" -")]
    assert 'voicerag_errors_total{kind="http_4xx"' in metrics  # the 422 above was counted
