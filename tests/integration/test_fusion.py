"""Hybrid search on near-identical documents: a query for one document's unique word finds that document
first, with rank fusion and with convex score fusion alike."""

from __future__ import annotations

import pytest

from voicerag import Document

WORDS = ["kestrel", "marmot", "obsidian", "tamarind", "zeppelin", "quokka", "saffron", "basalt", "ocelot", "juniper"]


@pytest.mark.parametrize("fusion", ["rrf", "convex"])
async def test_unique_word_among_near_duplicates(backend_settings, fusion) -> None:
    from voicerag import VoiceRAG

    base = "Assembly guide for the standard widget. Step one attaches the base plate. Step two fastens the cover."
    documents = [
        Document(f"guide-{i}", f"{base} Revision note: {word}.", "Widget guide") for i, word in enumerate(WORDS)
    ]
    async with await VoiceRAG.open(backend_settings(fusion=fusion)) as rag:
        await rag.ingest("kb", documents)
        for i, word in enumerate(WORDS):
            results = await rag.search(word, ["kb"], mode="hybrid", k=3)
            assert results[0].document_id == f"guide-{i}", (word, [r.document_id for r in results])
