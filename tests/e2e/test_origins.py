"""What a web page on another site could make a browser do: open the voice websocket, post uploads."""

from __future__ import annotations

import json

import httpx
import pytest
import websockets

from tests.helpers import serve
from voicerag.api.app import create_app

EVIL = "http://evil.example"


@pytest.fixture
def server(make_settings, facts):
    with serve(create_app(make_settings(allowed_origins=["https://app.example"]))) as url:
        body = {"documents": [{"id": d.id, "text": d.text, "title": d.title} for d in facts]}
        assert httpx.post(f"{url}/v1/collections/kb/documents", json=body, timeout=60).status_code == 200
        yield url


async def test_websocket_refuses_other_origins(server) -> None:
    ws_url = server.replace("http://", "ws://") + "/v1/voice/stream"
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        async with websockets.connect(ws_url, origin=EVIL):
            pass
    assert refused.value.response.status_code == 403
    for origin in (server, "https://app.example", None):  # ours, an allowed one, a non-browser client
        async with websockets.connect(ws_url, origin=origin) as ws:
            await ws.send(json.dumps({"type": "start", "collection": "kb", "speak": False}))
            assert json.loads(await ws.recv())["type"] == "ready"


def test_cross_site_changes_are_refused_without_keys(server) -> None:
    upload = {"files": ("x.txt", b"Planted text from another site.", "text/plain")}
    for headers in ({"Origin": EVIL}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}):
        response = httpx.post(f"{server}/v1/collections/kb/files", files=upload, headers=headers, timeout=60)
        assert response.status_code == 403 and "cross-site request" in response.json()["detail"], headers
        deleted = httpx.delete(f"{server}/v1/collections/kb", headers=headers, timeout=60)
        assert deleted.status_code == 403
    documents = httpx.get(f"{server}/v1/collections/kb/documents", timeout=60).json()["documents"]
    assert sorted(d["id"] for d in documents) == ["cats", "paris", "python"]  # nothing planted, nothing lost
    same_site = httpx.post(
        f"{server}/v1/collections/kb/files", files=upload, headers={"Origin": server, "Sec-Fetch-Site": "same-origin"}
    )
    assert same_site.status_code == 200
    trusted = httpx.post(
        f"{server}/v1/ask", json={"question": "cats?", "collection": "kb"}, headers={"Origin": "https://app.example"}
    )
    assert trusted.status_code == 200


async def test_a_rebinding_page_naming_its_own_host_is_refused(server, make_settings) -> None:
    """A page on evil.example whose name resolves to 127.0.0.1 sends Host and Origin evil.example: it looks
    same-origin, so the Host itself must be one this server answers to."""
    rebound = {"Host": "evil.example", "Origin": EVIL}
    for method, path in (("GET", "/v1/collections/kb/documents"), ("DELETE", "/v1/collections/kb")):
        response = httpx.request(method, f"{server}{path}", headers=rebound, timeout=60)
        assert response.status_code == 400 and "VOICERAG_ALLOWED_HOSTS" in response.json()["detail"], path
    assert httpx.get(f"{server}/healthz", headers=rebound, timeout=60).status_code == 200  # probes still answer
    ws_url = server.replace("http://", "ws://") + "/v1/voice/stream"
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:  # Origin matches Host: only Host can tell
        async with websockets.connect(ws_url, origin=EVIL, additional_headers={"Host": "evil.example"}):
            pass
    assert refused.value.response.status_code == 403
    documents = httpx.get(f"{server}/v1/collections/kb/documents", timeout=60).json()["documents"]
    assert len(documents) == 3  # nothing was deleted
    with serve(create_app(make_settings(allowed_hosts=["docs.example"]))) as named:
        assert httpx.get(f"{named}/v1/collections", headers={"Host": "docs.example"}).status_code == 200
        assert httpx.get(f"{named}/v1/collections", headers={"Host": "evil.example"}).status_code == 400
