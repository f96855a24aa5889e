"""Who else runs VoiceRAG on this machine, and on which store: each process that opens VoiceRAG registers its
store under a per-user runtime directory, so a second process on a *different* SQLite file can say so (they
share nothing: documents ingested into one are not seen by the other) instead of failing silently."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)


def registry_dir() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"voicerag-{os.getuid()}" / "instances"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def register(database_url: str, role: str) -> Path | None:
    """Record this process's store; returns the file to remove on close (None when it could not be written)."""
    directory = registry_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{os.getpid()}.json"
        path.write_text(json.dumps({"pid": os.getpid(), "database_url": database_url, "role": role}))
        return path
    except OSError:
        return None


def others(database_url: str) -> list[dict[str, object]]:
    """Other live processes whose SQLite store differs from ``database_url`` (PostgreSQL stores are shared by
    design, so they are never reported)."""
    found = []
    for path in registry_dir().glob("*.json"):
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        pid = int(entry.get("pid", 0))
        if pid == os.getpid():
            continue
        if not _alive(pid):
            path.unlink(missing_ok=True)
            continue
        url = str(entry.get("database_url", ""))
        if url.startswith("sqlite") and database_url.startswith("sqlite") and url != database_url:
            found.append(entry)
    return found


def warn_about_others(database_url: str) -> list[str]:
    """Log (and return) one warning per other process on a different SQLite store."""
    messages = [
        f"another VoiceRAG process (pid {o['pid']}, {o['role']}) uses the SQLite store {o['database_url']}, and this "
        f"one uses {database_url}: they share no documents. Point both at the same VOICERAG_DATA_DIR, or use "
        "PostgreSQL (VOICERAG_DATABASE_URL) for several processes or machines"
        for o in others(database_url)
    ]
    for message in messages:
        log.warning(message)
    return messages
