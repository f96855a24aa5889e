"""API keys and scopes against a real server: 401 without or with a bad key, 403 outside a key's scope, each
collection's documents, answers and names visible only to keys that may read it."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.helpers import serve
from voicerag import VoiceRAG
from voicerag.api.app import create_app


@pytest.fixture
async def keyed(backend_settings, facts):
    """Collections and keys made by one process; a server (its own process's worth) serving them."""
    settings = backend_settings(api_key_cache_s=0)
    async with await VoiceRAG.open(settings) as rag:
        await rag.ingest("kb", facts)
        await rag.ingest("other", facts[:1])
        keys = {
            "alice": (await rag.keys.create("alice", ["read:kb", "write:kb"]))[0],
            "bob": (await rag.keys.create("bob", ["read:other"]))[0],
            "root": (await rag.keys.create("root", ["admin"]))[0],
        }
    with serve(create_app(settings)) as url:
        yield settings, url, keys


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_keys_and_scopes_over_http(keyed) -> None:
    settings, url, keys = keyed
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        assert (await client.get("/healthz")).status_code == 200  # probes need no key
        missing = await client.post("/v1/search", json={"query": "cats", "collection": "kb"})
        assert missing.status_code == 401 and missing.headers["content-type"] == "application/problem+json"
        assert "voicerag keys create" in missing.json()["detail"]
        wrong = await client.post("/v1/search", json={"query": "cats", "collection": "kb"}, headers=bearer("vr_nope"))
        assert wrong.status_code == 401 and "unknown, revoked or expired" in wrong.json()["detail"]

        alice, bob, root = bearer(keys["alice"]), bearer(keys["bob"]), bearer(keys["root"])
        found = await client.post("/v1/search", json={"query": "cats", "collection": "kb"}, headers=alice)
        assert found.status_code == 200 and found.json()["results"]
        for path, body in (
            ("/v1/search", {"query": "cats", "collection": "kb"}),
            ("/v1/ask", {"question": "cats?", "collections": ["other", "kb"]}),
        ):
            refused = await client.post(path, json=body, headers=bob)
            assert refused.status_code == 403 and "no read access to collection 'kb'" in refused.json()["detail"]
        names = [c["name"] for c in (await client.get("/v1/collections", headers=bob)).json()["collections"]]
        assert names == ["other"]
        models = [m["id"] for m in (await client.get("/v1/models", headers=bob)).json()["data"]]
        assert "kb" not in models and "other" in models
        assert (await client.get("/v1/collections/kb/documents", headers=bob)).status_code == 403
        assert (await client.get("/v1/collections/kb/documents/cats", headers=bob)).status_code == 403
        written = await client.post(
            "/v1/collections/other/documents", json={"documents": [{"id": "x", "text": "New text."}]}, headers=bob
        )
        assert written.status_code == 403 and "no write access" in written.json()["detail"]
        assert (await client.delete("/v1/collections/kb", headers=bob)).status_code == 403
        assert (await client.get("/metrics", headers=alice)).status_code == 403
        assert (await client.get("/metrics", headers=root)).status_code == 200
        assert (await client.post("/v1/admin/maintenance", headers=alice)).status_code == 403
        maintained = await client.post("/v1/admin/maintenance", headers=root)
        assert maintained.status_code == 200 and maintained.json()["indexes"]
        assert (await client.get("/v1/admin/memory", headers=alice)).status_code == 403
        memory = (await client.get("/v1/admin/memory", headers=root)).json()
        assert memory["rss_mb"] > 0 and memory["read_model"]["collections"]["kb"]["chunks"] > 0
        assert memory["read_model"]["text_mb"] <= memory["read_model"]["text_budget_mb"]
        assert (await client.delete("/v1/cache", headers=alice)).status_code == 403
        async with await VoiceRAG.open(settings) as admin:  # revoked elsewhere: seen at once (cache_s = 0)
            await admin.keys.revoke("alice")
        revoked = await client.post("/v1/search", json={"query": "cats", "collection": "kb"}, headers=alice)
        assert revoked.status_code == 401


def test_official_openai_client_uses_the_key(keyed) -> None:
    from openai import OpenAI, PermissionDeniedError

    _, url, keys = keyed
    client = OpenAI(base_url=f"{url}/v1", api_key=keys["alice"])
    reply = client.chat.completions.create(
        model="kb", messages=[{"role": "user", "content": "How long does a cat sleep?"}]
    )
    assert "15 hours" in reply.choices[0].message.content
    with pytest.raises(PermissionDeniedError):
        client.chat.completions.create(model="other", messages=[{"role": "user", "content": "cats?"}])


async def test_websocket_authenticates_in_its_start_message(keyed) -> None:
    import websockets

    _, url, keys = keyed
    ws_url = url.replace("http://", "ws://") + "/v1/voice/stream"
    async with websockets.connect(ws_url) as ws:
        await ws.send(json.dumps({"type": "ask", "text": "cats?"}))
        assert json.loads(await ws.recv())["status"] == 401
        await ws.send(json.dumps({"type": "start", "collection": "kb"}))
        assert json.loads(await ws.recv())["status"] == 401
        await ws.send(json.dumps({"type": "start", "collection": "kb", "api_key": keys["bob"]}))
        assert json.loads(await ws.recv())["status"] == 403
        await ws.send(json.dumps({"type": "start", "collection": "kb", "api_key": keys["alice"], "speak": False}))
        assert json.loads(await ws.recv())["type"] == "ready"


async def test_spoken_sentences_are_cached_per_key(keyed) -> None:
    """One key's cached speech never answers another key (whose faster reply would tell it what was said)."""
    _, url, keys = keyed
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        text = {"text": "The vault code changes every Tuesday.", "format": "wav"}
        for who in ("alice", "bob", "alice"):
            spoken = await client.get("/v1/voice/speech", params=text, headers=bearer(keys[who]))
            assert spoken.status_code == 200
        tts = (await client.get("/v1/cache/stats", headers=bearer(keys["root"]))).json()["tts"]
        assert (tts["hits"], tts["misses"]) == (1, 2)  # alice's second request; bob computed his own


async def test_answer_audio_plays_only_for_the_key_that_asked(keyed) -> None:
    from tests.helpers import spoken_wav

    settings, url, keys = keyed
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        asked = await client.post(
            "/v1/voice/ask",
            files={"file": ("q.wav", spoken_wav("When was the Eiffel Tower completed?"), "audio/wav")},
            data={"collection": "kb"},
            headers=bearer(keys["alice"]),
        )
        assert asked.status_code == 200, asked.text
        link = asked.json()["audio"]["url"]
        assert (await client.get(link, headers=bearer(keys["alice"]))).status_code == 200
        for other in ("bob", "root"):  # another tenant's key, even an admin's, gets nothing
            stranger = await client.get(link, headers=bearer(keys[other]))
            assert stranger.status_code == 404 and "for the key that asked" in stranger.json()["detail"]


async def test_what_holds_no_document_data_is_open_and_every_api_route_is_not(keyed) -> None:
    settings, url, keys = keyed
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        for path in ("/", "/docs", "/openapi.json", "/docs-assets/swagger-ui.css", "/healthz"):
            assert (await client.get(path)).status_code == 200, path  # by design: README and SECURITY.md say so
        schema = (await client.get("/openapi.json")).json()
        closed = []
        for path, operations in schema["paths"].items():
            if path.startswith("/v1/") and "get" in operations and "{" not in path:
                closed.append((path, (await client.get(path)).status_code))
        assert closed and all(status == 401 for _, status in closed), closed
