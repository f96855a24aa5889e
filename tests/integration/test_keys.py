"""API keys are verified from an in-memory snapshot of the key table: no SQL per request once loaded; a key
made by another process works at once; a revocation elsewhere arrives with the next background reload."""

from __future__ import annotations

import asyncio

from tests.helpers import count_statements
from voicerag import VoiceRAG


async def test_keys_verified_from_memory_revocations_arrive(backend_settings) -> None:
    settings = backend_settings(api_key_cache_s=60)
    async with await VoiceRAG.open(settings) as one, await VoiceRAG.open(settings) as other:
        alice = (await one.keys.create("alice", ["read:kb"]))[0]
        assert (await one.keys.verify(alice)).name == "alice"
        assert await one.keys.verify("vr_unknown") is None
        with count_statements(one) as statements:
            for _ in range(50):
                assert (await one.keys.verify(alice)).name == "alice"
                assert await one.keys.any_active()
                assert await one.keys.verify("vr_unknown") is None  # a bad key is remembered too
        assert statements == []
        bob = (await other.keys.create("bob", ["admin"]))[0]  # made by another process
        assert (await one.keys.verify(bob)).name == "bob"  # found at once (one lookup)
        await other.keys.revoke("alice")
        assert await other.keys.verify(alice) is None  # the revoking process: at once
        one.keys.cache_s = 0.05
        refresh = asyncio.create_task(one.keys.run_refresh())
        try:
            async with asyncio.timeout(30):  # bounded only to catch a hang
                while await one.keys.verify(alice) is not None:
                    await asyncio.sleep(0.01)
        finally:
            refresh.cancel()
        assert (await one.keys.verify(bob)).name == "bob"
