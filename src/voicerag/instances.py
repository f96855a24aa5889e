"""Who else runs VoiceRAG on this machine, and on which store: each process that opens VoiceRAG registers its
store and the collections in it under a per-user runtime directory, so a second process serving a collection of
the same name from a *different* SQLite file can say so (they share nothing: documents ingested into one are
not seen by the other) instead of failing silently. Processes on unrelated stores (another project's) are not
reported."""

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


def register(database_url: str, role: str, collections: list[str] | None = None) -> Path | None:
    """Record this process's store and its collections; returns the file to remove on close (None when it could
    not be written)."""
    directory = registry_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{os.getpid()}.json"
        entry = {"pid": os.getpid(), "database_url": database_url, "role": role, "collections": collections or []}
        path.write_text(json.dumps(entry))
        return path
    except OSError:
        return None


def others(database_url: str, collections: list[str] | None = None) -> list[dict[str, object]]:
    """Other live processes whose SQLite store differs from ``database_url`` and (when ``collections`` is
    given) holds a collection of one of those names (PostgreSQL stores are shared by design, so they are never
    reported)."""
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
        shared = collections is None or set(collections) & set(entry.get("collections") or [])
        if url.startswith("sqlite") and database_url.startswith("sqlite") and url != database_url and shared:
            found.append(entry)
    return found


def warn_about_others(database_url: str, collections: list[str]) -> list[str]:
    """One short warning (logged at INFO, returned for the CLI to show) when other processes serve collections
    of the same names from other SQLite stores; none otherwise."""
    found = others(database_url, collections)
    if not found:
        return []
    names = sorted({c for o in found for c in o.get("collections") or [] if c in collections})  # type: ignore[union-attr]
    pids = ", ".join(str(o["pid"]) for o in found)
    message = (
        f"collection(s) {', '.join(names)} also exist in another store, served by pid {pids}: the two share no "
        "documents (VOICERAG_DATA_DIR points both at one store)"
    )
    log.info(message)
    return [message]
