"""The official openai package against our OpenAI-compatible routes, unchanged."""

from __future__ import annotations

import numpy as np
import openai
import pytest

from tests.helpers import serve
from voicerag import VoiceRAG
from voicerag.api.app import create_app


@pytest.fixture
def base_url(make_settings, facts):
    with serve(create_app(make_settings())) as url:
        import httpx

        body = {"documents": [{"id": d.id, "text": d.text, "title": d.title} for d in facts]}
        httpx.post(f"{url}/v1/collections/kb/documents", json=body, timeout=60).raise_for_status()
        yield url


@pytest.fixture
def client(base_url):
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0)


def test_chat_completion_grounded_with_sources(client) -> None:
    reply = client.chat.completions.create(
        model="kb", messages=[{"role": "user", "content": "When was the Eiffel Tower completed?"}]
    )
    assert "1889" in reply.choices[0].message.content
    sources = reply.model_extra["sources"]
    assert sources[0]["document_id"] == "paris" and sources[0]["score"] > 0
    extra = reply.model_extra["voicerag"]  # whether the documents hold an answer travels beside the text
    assert extra["found"] is True and 0 < extra["confidence"] <= 1


def test_chat_completion_says_when_the_documents_hold_no_answer(client) -> None:
    for stream in (False, True):
        messages = [{"role": "user", "content": "What is the airspeed velocity of an unladen swallow?"}]
        if stream:
            chunks = list(client.chat.completions.create(model="kb", messages=messages, stream=True))
            extra = chunks[-1].model_extra["voicerag"]
        else:
            extra = client.chat.completions.create(model="kb", messages=messages).model_extra["voicerag"]
        assert extra["found"] is False and extra["confidence"] < 0.2, extra


def test_chat_completion_stream(client) -> None:
    stream = client.chat.completions.create(
        model="kb", messages=[{"role": "user", "content": "Who created Python?"}], stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert "Guido van Rossum" in text
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["sources"][0]["document_id"] == "python"
    assert chunks[-1].model_extra["voicerag"]["found"] is True


def test_unknown_collection_is_404(client) -> None:
    with pytest.raises(openai.NotFoundError, match="collection 'nope' does not exist"):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])


async def test_embeddings_match_the_library(client, make_settings) -> None:
    result = client.embeddings.create(model="all-MiniLM-L6-v2", input=["hello world", "good night"])
    got = np.array([d.embedding for d in result.data], dtype=np.float32)
    assert got.shape == (2, 384)
    async with await VoiceRAG.open(make_settings(data_dir=make_settings().data_dir.parent / "other")) as rag:
        expected = await rag.embed(["hello world", "good night"])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    models = {m.id for m in client.models.list()}
    assert {"kb", "all-MiniLM-L6-v2"} <= models
