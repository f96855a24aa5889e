"""The LLM and remote-embedding clients against a local server speaking the OpenAI wire format."""

from __future__ import annotations

import pytest

from tests.e2e.fake_openai import Behaviour, create_fake_openai
from tests.helpers import serve
from voicerag import VoiceRAG
from voicerag.answer.extractive import NO_ANSWER
from voicerag.events import Delta, Done


@pytest.fixture
def provider():
    behaviour = Behaviour()
    with serve(create_fake_openai(behaviour)) as url:
        yield behaviour, f"{url}/v1"


async def test_llm_answer_streams_and_is_grounded(provider, make_settings, facts) -> None:
    behaviour, url = provider
    settings = make_settings(generator="llm", llm_base_url=url, llm_api_key="sk-test", llm_model="tiny")
    async with await VoiceRAG.open(settings) as rag:
        await rag.ingest("kb", facts)
        events = [e async for e in rag.ask_stream("When was the Eiffel Tower completed?", ["kb"])]
        deltas = [e.text for e in events if isinstance(e, Delta)]
        assert len(deltas) > 3  # token by token
        done = events[-1]
        assert isinstance(done, Done)
        answer = done.answer
        assert answer.text == behaviour.reply and answer.generator == "llm" and not answer.fallback
        request = behaviour.requests[-1]
        assert request["model"] == "tiny" and request["stream"] is True
        assert "Eiffel Tower" in request["messages"][0]["content"]  # sources in the prompt
        assert behaviour.headers[-1]["authorization"] == "Bearer sk-test"
        cached = await rag.ask("When was the Eiffel Tower completed?", ["kb"])
        assert cached.cached and len(behaviour.requests) == 1


async def test_llm_citations_are_checked_and_its_not_found_is_an_abstention(provider, make_settings, facts) -> None:
    behaviour, url = provider
    settings = make_settings(generator="llm", llm_base_url=url, llm_model="tiny", cache_enabled=False)
    async with await VoiceRAG.open(settings) as rag:
        await rag.ingest("kb", facts)
        behaviour.reply = "The Eiffel Tower was completed in 1889 [1] [9]."  # there is no ninth source
        answer = await rag.ask("When was the Eiffel Tower completed?", ["kb"])
        assert answer.found and answer.text == "The Eiffel Tower was completed in 1889 [1]."
        behaviour.reply = "I could not find that in the provided sources."
        answer = await rag.ask("When was the Eiffel Tower completed?", ["kb"])
        assert not answer.found and answer.text == NO_ANSWER and answer.generator == "llm"


async def test_llm_timeout_falls_back_to_extractive(provider, make_settings, facts) -> None:
    behaviour, url = provider
    behaviour.delay_s = 5
    settings = make_settings(generator="llm", llm_base_url=url, llm_first_token_timeout_s=0.5, llm_timeout_s=1)
    async with await VoiceRAG.open(settings) as rag:
        await rag.ingest("kb", facts)
        answer = await rag.ask("When was the Eiffel Tower completed?", ["kb"])
        assert answer.fallback and answer.generator == "extractive"
        assert "timed out" in answer.fallback_reason or "longer than" in answer.fallback_reason
        assert "1889" in answer.text
        behaviour.delay_s = 0
        again = await rag.ask("When was the Eiffel Tower completed?", ["kb"])
        assert not again.cached and again.generator == "llm"  # fallbacks are never cached


async def test_llm_error_status_falls_back_and_retries_503(provider, make_settings, facts) -> None:
    behaviour, url = provider
    behaviour.status = 500
    settings = make_settings(generator="llm", llm_base_url=url)
    async with await VoiceRAG.open(settings) as rag:
        await rag.ingest("kb", facts)
        answer = await rag.ask("Who created Python?", ["kb"])
        assert answer.fallback and "answered 500" in answer.fallback_reason and "Guido" in answer.text


async def test_remote_embedder_retries_and_batches(provider, make_settings, facts) -> None:
    behaviour, url = provider
    behaviour.fail_times = 1  # one 503 with Retry-After: 0, then success
    settings = make_settings(
        embedder="openai", embedding_api_base=url, embedding_model="emb", embedding_dimensions=4, embed_batch_size=2
    )
    async with await VoiceRAG.open(settings) as rag:
        report = await rag.ingest("kb", facts)
        assert report.chunks == 3
        assert behaviour.fail_times == 0  # the 503 was answered...
        assert rag.pools.http_stats.retries >= 1  # ...and retried (a busy machine may add a connection retry)
        assert all(len(r["input"]) <= 2 for r in behaviour.requests)
        results = await rag.search("cats", ["kb"], mode="dense")
        assert len(results) == 3


async def test_one_http_policy_a_refused_connection_is_tried_retries_plus_one_times(make_settings) -> None:
    from tests.helpers import free_port
    from voicerag.errors import UpstreamError
    from voicerag.pools import Pools

    pools = Pools.create(make_settings(http_retries=2))
    try:
        with pytest.raises(UpstreamError, match="unreachable: ConnectError"):
            await pools.http.post(f"http://127.0.0.1:{free_port()}/v1/embeddings", json={"input": ["x"]})
        stats = pools.stats()["http"]
        assert (stats["requests"], stats["retries"], stats["errors"]) == (3, 2, 1)  # not 3 x 3 (transport + loop)
    finally:
        await pools.aclose()


async def test_one_http_policy_503s_are_retried_then_the_last_status_is_the_providers(provider, make_settings) -> None:
    from voicerag.pools import Pools

    behaviour, url = provider
    behaviour.fail_times = 5  # more 503s (Retry-After: 0) than the retries allow
    pools = Pools.create(make_settings(http_retries=2))
    try:
        body = {"model": "emb", "input": ["x"]}
        response = await pools.http.post(f"{url}/embeddings", json=body)
        assert response.status_code == 503 and "overloaded" in response.text
        assert behaviour.fail_times == 2  # three attempts reached the server
        assert pools.stats()["http"]["retries"] == 2
        response = await pools.http.post(f"{url}/embeddings", json=body)  # 2 more 503s, then the answer
        assert response.status_code == 200 and behaviour.fail_times == 0
    finally:
        await pools.aclose()
