"""The store's schema, versioned with Alembic: one migration history for every table (documents, chunks and
their answer units, the change log, the SQL cache tier, API keys, ingest jobs). ``upgrade`` brings a store to
the newest revision (at start-up, or ``voicerag db upgrade``); a store made before migrations existed is first
stamped with the revision its tables match. A schema change is a new file in ``versions/`` (the next number, its
``down_revision`` the last one) with its ``upgrade``; the table definitions in code change with it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

VERSION_TABLE = "vr_alembic_version"
# The newest revision this release knows: the last file in versions/ (a test checks it against Alembic's own
# reading). A store already there starts with one query and without loading Alembic.
HEAD = "0002"
_HERE = Path(__file__).resolve().parent


def _config(connection: Any = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_HERE))
    config.attributes["connection"] = connection
    return config


def alembic_head() -> str | None:
    """The newest revision as Alembic reads it from versions/ (what ``HEAD`` must say)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config()).get_current_head()


def current(connection: Any) -> str | None:
    """The store's revision (None: no version table, a new store or one made before migrations)."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    return connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def _matching_revision(connection: Any) -> str | None:
    """For a store made before migrations (its tables made by ``create_all``): the revision they match."""
    tables = set(inspect(connection).get_table_names())
    if "vr_collections" not in tables:
        return None  # a new store: every migration runs
    return "0002" if "vr_chunk_units" in tables else "0001"


def upgrade(connection: Any) -> str:
    """Bring the store on ``connection`` (a synchronous one, inside a transaction) to the newest revision."""
    revision = current(connection)
    if revision == HEAD and _matching_revision(connection) is not None:
        return HEAD
    from alembic import command

    config = _config(connection)
    if revision is None and (baseline := _matching_revision(connection)) is not None:
        command.stamp(config, baseline)
    elif revision is not None and _matching_revision(connection) is None:
        command.stamp(config, "base", purge=True)  # its tables were dropped by hand: build them anew
    command.upgrade(config, "head")
    return HEAD
