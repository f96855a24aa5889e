"""Operations against real servers: live configuration (HTTP, the CLI, SIGHUP, Redis to other replicas) and
in-server alerts driven on and off."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests.helpers import TEST_REDIS, get_json, serve, voicerag_serve, wait_until
from voicerag import VoiceRAG
from voicerag.api.app import create_app
from voicerag.cli import app as cli
from voicerag.operations.live_config import REDIS_KEY


@pytest.fixture
async def admin_server(make_settings, facts):
    """A server with one collection, an admin key 'ops' and a reader key 'reader'."""
    settings = make_settings(api_key_cache_s=0)
    async with await VoiceRAG.open(settings) as rag:
        await rag.ingest("kb", facts)
        admin = (await rag.keys.create("ops", ["admin"]))[0]
        reader = (await rag.keys.create("reader", ["read:kb"]))[0]
    app = create_app(settings)
    with serve(app) as url:
        yield app, url, {"Authorization": f"Bearer {admin}"}, {"Authorization": f"Bearer {reader}"}, admin


async def test_live_configuration_over_http_and_the_cli(admin_server, caplog) -> None:
    app, url, admin, reader, admin_key = admin_server
    rag = app.state.rag
    caplog.set_level(logging.WARNING, logger="voicerag")
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        assert (await client.get("/v1/admin/config", headers=reader)).status_code == 403
        assert (
            await client.patch("/v1/admin/config", json={"settings": {"top_k": 2}}, headers=reader)
        ).status_code == 403
        shown = (await client.get("/v1/admin/config", headers=admin)).json()["settings"]
        assert shown["top_k"] == {
            "value": 5,
            "live": True,
            "changed_by": None,
            "changed_at": None,
            "started_with": None,
        }
        assert shown["db_pool_size"]["live"] is False
        assert shown["api_key_cache_s"]["value"] == 0  # a number about keys, not a credential: shown
        assert shown["llm_api_key"]["value"] is None  # a credential: only ever "(set)" or None

        changed = await client.patch(
            "/v1/admin/config",
            json={"settings": {"top_k": 2, "hnsw_ef_search": 64, "cache_memory_mb": 1, "log_level": "WARNING"}},
            headers=admin,
        )
        assert changed.status_code == 200
        assert changed.json()["changed"] == {
            "top_k": [5, 2],
            "hnsw_ef_search": [128, 64],
            "cache_memory_mb": [32.0, 1.0],
            "log_level": ["INFO", "WARNING"],
        }
        found = await client.post("/v1/search", json={"query": "Eiffel Tower", "collection": "kb"}, headers=reader)
        assert len(found.json()["results"]) == 2  # the new default, without a restart
        assert rag.retriever.backend.params.hnsw_ef_search == 64
        assert sum(rag.cache.tiers[0].budgets.values()) <= 1024 * 1024
        assert logging.getLogger("voicerag").level == logging.WARNING
        assert any(
            "configuration changed by key ops" in r.getMessage() and "top_k 5 -> 2" in r.getMessage()
            for r in caplog.records
        )

        for bad, reason in (
            ({"top_k": 0}, "top_k: Input should be greater than or equal to 1"),
            ({"db_pool_size": 3}, "db_pool_size: needs a restart"),
            ({"no_such_thing": 1}, "no_such_thing: no such setting"),
            ({"top_k": 3, "chunk_words": 10}, "chunk_words: needs a restart"),
            ({"top_k": 3, "rrf_k": "many"}, "rrf_k: Input should be a valid integer"),
            ({"cache_memory_mb": 1e308}, "cache_memory_mb must be a finite number"),
            ({"cache_memory_mb": 2**63}, "cache_memory_mb must be a finite number"),
            ({"rate_limit_per_s": 1e308}, "rate_limit_per_s must be a finite number"),
        ):
            refused = await client.patch("/v1/admin/config", json={"settings": bad}, headers=admin)
            assert refused.status_code == 422 and reason in refused.json()["detail"], refused.text
        assert rag.settings.top_k == 2  # a refused change changes nothing, not even its valid parts
        assert rag.settings.cache_memory_mb < 1e6 and rag.settings.rate_limit_per_s < 1e6

        marked = (await client.get("/v1/admin/config", headers=admin)).json()["settings"]["top_k"]
        assert marked["value"] == 2 and marked["changed_by"] == "key ops" and marked["started_with"] == 5
        back = await client.patch("/v1/admin/config", json={"settings": {"top_k": None}}, headers=admin)
        assert back.json()["changed"] == {"top_k": [2, 5]}
        assert (await client.get("/v1/admin/config", headers=admin)).json()["settings"]["top_k"]["changed_by"] is None

    runner = CliRunner()
    env = {"VOICERAG_API_KEY": admin_key}
    result = runner.invoke(cli, ["config", "set", "top_k=3", "rrf_k=30", "--url", url, "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"top_k": [5, 3], "rrf_k": [60, 30]}
    shown = runner.invoke(cli, ["config", "show", "--url", url, "--json"], env=env)
    assert json.loads(shown.stdout)["rrf_k"]["changed_by"] == "key ops"
    refused = runner.invoke(cli, ["config", "set", "hnsw_m=8", "--url", url], env=env)
    assert refused.exit_code == 1 and "hnsw_m: needs a restart" in refused.output


async def test_alert_goes_on_and_off(admin_server, caplog) -> None:
    _, url, admin, reader, _ = admin_server
    caplog.set_level(logging.WARNING, logger="voicerag")
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        assert (await client.get("/v1/admin/alerts", headers=reader)).status_code == 403
        assert (await client.get("/v1/admin/alerts", headers=admin)).json()["alerts"] == []
        await client.patch(
            "/v1/admin/config", json={"settings": {"alert_min_requests": 1, "alert_p95_ms": 0.001}}, headers=admin
        )
        assert (
            await client.post("/v1/search", json={"query": "cats", "collection": "kb"}, headers=reader)
        ).status_code == 200
        active = (await client.get("/v1/admin/alerts", headers=admin)).json()["alerts"]
        latency = [a for a in active if a["name"] == "latency_p95:/v1/search"]
        assert latency and latency[0]["threshold"] == 0.001 and latency[0]["value"] > 0.001
        ready = await client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "degraded"
        assert "latency_p95:/v1/search" in {a["name"] for a in ready.json()["alerts"]}
        assert any(r.getMessage().startswith("alert started: /v1/search: p95") for r in caplog.records)

        await client.patch("/v1/admin/config", json={"settings": {"alert_p95_ms": 0}}, headers=admin)  # off
        active = (await client.get("/v1/admin/alerts", headers=admin)).json()["alerts"]
        assert "latency_p95:/v1/search" not in {a["name"] for a in active}
        assert any(r.getMessage().startswith("alert resolved: latency_p95:/v1/search") for r in caplog.records)
        ready = await client.get("/readyz")
        assert ready.json()["status"] == ("degraded" if ready.json()["alerts"] else "ready")


async def test_a_change_reaches_every_replica_over_redis(redis_client, make_settings) -> None:
    shared = make_settings().data_dir.parent / "shared.db"
    base = {"database_url": f"sqlite+aiosqlite:///{shared}", "redis_url": TEST_REDIS}
    one = await VoiceRAG.open(make_settings(data_dir=make_settings().data_dir / "one", **base))
    two = await VoiceRAG.open(make_settings(data_dir=make_settings().data_dir / "two", **base))
    try:
        await one.live.change({"top_k": 3, "semantic_cache_threshold": 0.9}, by="key ops")
        async with asyncio.timeout(30):  # pub/sub: wait for the message, bounded only to catch a hang
            while two.settings.top_k != 3:
                await asyncio.sleep(0.01)
        assert two.settings.semantic_cache_threshold == 0.9
        assert two.live.changes["top_k"].by == "key ops (via another replica)"
        assert json.loads(await redis_client.hget(REDIS_KEY, "top_k"))["value"] == 3
        async with await VoiceRAG.open(make_settings(data_dir=make_settings().data_dir / "three", **base)) as three:
            assert three.settings.top_k == 3  # a replica started later takes the fleet's runtime changes
        await one.live.change({"top_k": None}, by="key ops")
        assert not await redis_client.hexists(REDIS_KEY, "top_k")
    finally:
        await one.aclose()
        await two.aclose()


def test_sighup_rereads_the_configuration_file(tmp_path: Path) -> None:
    config = tmp_path / "voicerag.toml"
    config.write_text("top_k = 4\nhnsw_m = 32\n")
    with voicerag_serve(tmp_path / "data", "--config", str(config), output=subprocess.PIPE) as (server, url):
        assert get_json(f"{url}/v1/admin/config")["settings"]["top_k"]["value"] == 4
        config.write_text("top_k = 7\nhnsw_m = 16\n")
        server.send_signal(signal.SIGHUP)
        wait_until(lambda: get_json(f"{url}/v1/admin/config")["settings"]["top_k"]["value"] == 7, server)
        assert get_json(f"{url}/v1/admin/config")["settings"]["hnsw_m"]["value"] == 32  # needs a restart
        server.terminate()
        output = server.communicate(timeout=60)[0]
    assert "needs a restart: hnsw_m" in output and "top_k 4 -> 7" in output
