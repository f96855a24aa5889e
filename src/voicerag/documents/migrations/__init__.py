"""The store's schema, versioned with Alembic: one migration history for every table (documents, chunks and
their answer units, the change log, the SQL cache tier, API keys, ingest jobs). ``upgrade`` brings a store to
the newest revision (at start-up, or ``voicerag db upgrade``); a store made before migrations existed is first
stamped with the revision its tables match. A schema change is a new file in ``versions/`` (the next number, its
``down_revision`` the last one) with its ``upgrade``; the table definitions in code change with it."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

VERSION_TABLE = "vr_alembic_version"
_HERE = Path(__file__).resolve().parent


def _config(connection: Any = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_HERE))
    config.attributes["connection"] = connection
    return config


@lru_cache(maxsize=1)
def head() -> str:
    """The newest revision this release knows (read from the files once: /readyz asks on every probe)."""
    revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert revision is not None
    return revision


def current(connection: Any) -> str | None:
    """The store's revision (None: no version table, a new store or one made before migrations)."""
    return MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_revision()


def _matching_revision(connection: Any) -> str | None:
    """For a store made before migrations (its tables made by ``create_all``): the revision they match."""
    tables = set(inspect(connection).get_table_names())
    if "vr_collections" not in tables:
        return None  # a new store: every migration runs
    return "0002" if "vr_chunk_units" in tables else "0001"


def upgrade(connection: Any) -> str:
    """Bring the store on ``connection`` (a synchronous one, inside a transaction) to the newest revision."""
    config = _config(connection)
    revision = current(connection)
    if revision is None and (baseline := _matching_revision(connection)) is not None:
        command.stamp(config, baseline)
    elif revision is not None and _matching_revision(connection) is None:
        command.stamp(config, "base", purge=True)  # its tables were dropped by hand: build them anew
    command.upgrade(config, "head")
    return head()
