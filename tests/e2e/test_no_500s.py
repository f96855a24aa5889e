"""Inputs that used to end in a 500 (issue "Trust", F1-F6): each now gets a 4xx that says what was wrong, or a
normal answer, and leaves what is stored intact."""

from __future__ import annotations

import io
import zipfile

import httpx
import pytest

from tests.helpers import make_docx, serve
from voicerag.api.app import create_app


@pytest.fixture
def client(backend_settings, facts):
    with serve(create_app(backend_settings(max_upload_mb=5))) as url, httpx.Client(base_url=url, timeout=120) as c:
        body = {"documents": [{"id": d.id, "text": d.text, "title": d.title} for d in facts]}
        assert c.post("/v1/collections/kb/documents", json=body).status_code == 200
        yield c


def test_f1_offset_past_int64(client) -> None:
    response = client.get("/v1/collections/kb/documents", params={"offset": 9223372036854775808})
    assert response.status_code == 422 and "offset" in response.json()["detail"]


def test_f2_nul_in_text_to_speak(client) -> None:
    spoken = client.get("/v1/voice/speech", params={"text": "abc\x00"})
    assert spoken.status_code == 422 and "control character (U+0000)" in spoken.json()["detail"]
    openai_style = client.post("/v1/audio/speech", json={"model": "tts-1", "input": "abc\u0000", "voice": "alloy"})
    assert openai_style.status_code == 422 and "U+0000" in openai_style.json()["detail"]


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "m4a", "webm", "flac", "wav"])
def test_f3_text_the_voice_says_nothing_for_still_encodes(client, fmt: str) -> None:
    response = client.get("/v1/voice/speech", params={"text": ")\u00b9", "format": fmt})
    assert response.status_code == 200 and len(response.content) > 0


def test_f4_lone_surrogate_in_a_question_or_document(client) -> None:
    raw = b'{"question": "\\ud800 keeper", "collection": "kb"}'
    asked = client.post("/v1/ask", content=raw, headers={"content-type": "application/json"})
    assert asked.status_code == 422 and "surrogate" in asked.json()["detail"]
    doc = b'{"documents": [{"id": "bad", "text": "half \\udc00 a character"}]}'
    stored = client.post("/v1/collections/kb/documents", content=doc, headers={"content-type": "application/json"})
    assert stored.status_code == 422 and "documents.0.text" in stored.json()["detail"]
    nul = client.post("/v1/collections/kb/documents", json={"documents": [{"id": "nul", "text": "a\u0000b text"}]})
    assert nul.status_code == 200  # stray NULs (common in extracted PDF text) become spaces
    assert client.get("/v1/collections/kb/documents/nul").json()["chunk_texts"] == ["a b text"]


@pytest.mark.parametrize("question", ["the", "x", "???"])
@pytest.mark.parametrize("mode", ["hybrid", "lexical", "dense"])
def test_f5_a_question_with_no_searchable_words(client, question: str, mode: str) -> None:
    response = client.post("/v1/ask", json={"question": question, "collection": "kb", "mode": mode})
    assert response.status_code == 200, response.text
    if mode == "lexical":
        assert response.json()["sources"] == []
    chat = client.post(
        "/v1/chat/completions", json={"model": "kb", "messages": [{"role": "user", "content": question}]}
    )
    assert chat.status_code == 200


def test_f6_docx_zip_bomb_is_refused_and_nothing_is_lost(client) -> None:
    real = io.BytesIO(make_docx(["A real paragraph."]))
    bomb = io.BytesIO()
    with zipfile.ZipFile(real) as source, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as out:
        for item in source.infolist():
            out.writestr(item, source.read(item.filename))
        out.writestr("word/media/padding.bin", b"\0" * (300 * 1024 * 1024))  # ~300 KB compressed
    response = client.post(
        "/v1/collections/kb/files", files={"files": ("bomb.docx", bomb.getvalue(), "application/octet-stream")}
    )
    assert response.status_code == 413 and "expands to" in response.json()["detail"]
    docs = client.get("/v1/collections/kb/documents").json()["documents"]
    assert sorted(d["id"] for d in docs) == ["cats", "paris", "python"]


def test_streamed_upload_without_length_gets_413_and_work_is_bounded(client) -> None:
    def chunks():
        yield b'--b\r\nContent-Disposition: form-data; name="files"; filename="big.txt"\r\n\r\n'
        for _ in range(8):
            yield b"a" * (1024 * 1024)  # 8 MB against a 5 MB limit, with no Content-Length
        yield b"\r\n--b--\r\n"

    response = client.post(
        "/v1/collections/kb/files", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert response.status_code == 413 and "VOICERAG_MAX_UPLOAD_MB" in response.json()["detail"]
    many = client.post("/v1/embeddings", json={"input": ["word"] * 257})
    assert many.status_code == 413 and "at most 256" in many.json()["detail"]
    long = client.post("/v1/embeddings", json={"input": ["word " * 50_000]})
    assert long.status_code == 413 and "characters" in long.json()["detail"]
    speech = client.get("/v1/voice/speech", params={"text": "Words to say. " * 300})
    assert speech.status_code == 413 and "VOICERAG_MAX_SPEECH_CHARS" in speech.json()["detail"]


def test_an_unforeseen_fault_is_problem_json_and_a_503_while_shutting_down(make_settings) -> None:
    app = create_app(make_settings())

    @app.get("/v1/test-fault", include_in_schema=False)
    async def fault() -> None:
        raise RuntimeError("a fault no handler foresaw")

    app.router.routes.insert(0, app.router.routes.pop())  # before the web page's catch-all mount
    with serve(app) as url:
        broken = httpx.get(f"{url}/v1/test-fault", timeout=60)
        assert broken.status_code == 500 and broken.headers["content-type"] == "application/problem+json"
        assert "a fault no handler foresaw" not in broken.text  # logged, not shown
        app.state.closing = True  # what SIGTERM's shutdown sets before the store closes under running requests
        closing = httpx.get(f"{url}/v1/test-fault", timeout=60)
        assert closing.status_code == 503 and closing.headers["retry-after"] == "1"
        assert closing.json()["title"] == "Shutting down"
