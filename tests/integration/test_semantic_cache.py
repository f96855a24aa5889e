"""The semantic answer cache: rewordings hit, different questions about the same text do not, writes reset it."""

from __future__ import annotations

from voicerag import Document, VoiceRAG


async def test_semantic_cache_hits_rewordings_only(make_settings, facts) -> None:
    async with await VoiceRAG.open(make_settings(semantic_cache=True, semantic_cache_threshold=0.95)) as rag:
        await rag.ingest("kb", facts)
        first = await rag.ask("When was the Eiffel Tower completed?", ["kb"])
        assert not first.cached
        reworded = await rag.ask("Can you tell me when was the Eiffel Tower completed?", ["kb"])
        assert reworded.cached and reworded.semantic_similarity >= 0.95 and reworded.text == first.text
        other = await rag.ask("What is the capital of France?", ["kb"])
        assert not other.cached and other.semantic_similarity is None
        await rag.ingest("kb", [Document("new", "Mount Everest is the highest mountain on Earth.", "Everest")])
        after_write = await rag.ask("Can you tell me when was the Eiffel Tower completed?", ["kb"])
        assert not after_write.cached  # a new generation: no semantic reuse across it
