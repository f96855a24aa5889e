"""GENERATOR=llm against a real model on this machine (opt-in: needs the optional local model installed;
voicerag/evaluation/local_llm.py says how). Skipped, with the reason, where it is not installed."""

from __future__ import annotations

import pytest

from voicerag import VoiceRAG
from voicerag.answer.extractive import NO_ANSWER
from voicerag.evaluation import local_llm


@pytest.fixture(scope="module")
def llm_url(tmp_path_factory):
    if missing := local_llm.available():
        pytest.skip(f"the optional local model is {missing}")
    server = local_llm.start_server(tmp_path_factory.mktemp("models"))
    yield f"{server.listening_address}/v1"
    del server


async def test_a_real_model_answers_from_numbered_sources(llm_url, make_settings, facts) -> None:
    settings = make_settings(
        generator="llm",
        llm_base_url=llm_url,
        llm_model="local",
        llm_timeout_s=120,
        llm_first_token_timeout_s=120,
        cache_enabled=False,
    )
    async with await VoiceRAG.open(settings) as rag:
        await rag.ingest("kb", facts)
        answer = await rag.ask("When was the Eiffel Tower completed?", ["kb"])
        assert not answer.fallback, answer.fallback_reason
        assert answer.generator == "llm" and answer.found and "1889" in answer.text, answer.text
        nothing = await rag.ask("What is the capital of Australia?", ["kb"])
        assert not nothing.found and nothing.text == NO_ANSWER  # nothing to ground it on: no model call
