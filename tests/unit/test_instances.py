"""Processes on different SQLite stores find each other and say so; PostgreSQL stores are shared by design."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from voicerag import instances


def test_another_process_on_a_different_sqlite_store_is_reported(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    other = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        directory = instances.registry_dir()
        directory.mkdir(parents=True)
        entry = {
            "pid": other.pid,
            "database_url": "sqlite+aiosqlite:////srv/a/voicerag.db",
            "role": "server",
            "collections": ["kb", "docs"],
        }
        (directory / f"{other.pid}.json").write_text(json.dumps(entry))
        (directory / "999999999.json").write_text(json.dumps(entry | {"pid": 999999999}))  # gone: pruned
        mine = instances.register("sqlite+aiosqlite:////home/me/data/voicerag.db", "cli", ["kb"])
        assert mine is not None and mine.name == f"{os.getpid()}.json"
        [message] = instances.warn_about_others("sqlite+aiosqlite:////home/me/data/voicerag.db", ["kb", "notes"])
        assert f"pid {other.pid}" in message and "kb" in message and "docs" not in message
        assert "share no documents" in message and len(message) < 200  # one short line
        # another project's store, none of whose collections this one serves: nothing to say
        assert instances.warn_about_others("sqlite+aiosqlite:////home/me/data/voicerag.db", ["notes"]) == []
        assert not (directory / "999999999.json").exists()
        assert instances.others("sqlite+aiosqlite:////srv/a/voicerag.db") == []  # the same store: fine
        assert instances.others("postgresql+asyncpg://db/x") == []
    finally:
        other.communicate(b"")
