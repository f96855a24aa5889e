"""Maintenance while serving: expired cache entries go, the store is optimised, removed chunks are compacted out
of the lexical index, answers stay the same (SQLite and the real PostgreSQL)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from voicerag import Document, VoiceRAG
from voicerag.cache.tiered import make_key


async def test_maintenance_purges_compacts_and_advises(backend_settings) -> None:
    docs = [Document(f"d{i}", f"Record {i} is about topic number {i} and item {i}.", f"R{i}") for i in range(30)]
    async with await VoiceRAG.open(backend_settings()) as rag:
        await rag.ingest("kb", docs)
        await rag.delete_documents("kb", [f"d{i}" for i in range(20)])
        before = [s.document_id for s in await rag.search("topic number 25", ["kb"], mode="lexical", k=3)]
        sql = next(t for t in rag.cache.tiers if t.name == "sql")
        await sql.set(make_key("stt", ("old",)), b"x", -10, "stt", ())  # already expired
        await sql.set(make_key("stt", ("new",)), b"y", 600, "stt", ())
        report = await rag.maintain()
        assert report["cache_entries_removed"]["sql"] == 1
        assert await sql.get(make_key("stt", ("new",))) == b"y"
        assert report["store"]  # statistics refreshed
        [entry] = report["indexes"]
        assert entry["collection"] == "kb" and any("20 removed chunks dropped" in a for a in entry["actions"])
        assert report["pool_advice"]
        after = [s.document_id for s in await rag.search("topic number 25", ["kb"], mode="lexical", k=3)]
        assert after == before and after[0] == "d25"
        again = await rag.maintain()  # nothing left to do the second time
        assert again["indexes"][0]["actions"] == [] and again["cache_entries_removed"]["sql"] == 0


def test_maintenance_command(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICERAG_")} | {
        "VOICERAG_DATA_DIR": str(tmp_path / "state")
    }
    result = subprocess.run(
        [sys.executable, "-m", "voicerag.cli", "maintenance", "--json"], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"cache_entries_removed", "store", "indexes", "pool_advice", "memory_released_mb", "seconds"}
    assert report["memory_released_mb"] is None or report["memory_released_mb"] >= 0
    assert "PRAGMA optimize" in report["store"]
