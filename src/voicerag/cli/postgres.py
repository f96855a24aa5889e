"""`voicerag postgres`: a local PostgreSQL with pgvector under the data dir; `voicerag db`: the store's schema."""

from __future__ import annotations

import typer

from voicerag.cli.common import (
    JsonFlag,
    console,
    db_app,
    out,
    postgres_app,
    print_json,
    settings_or_exit,
)
from voicerag.errors import VoiceRAGError

# ---- postgres ------------------------------------------------------------------------------------------------


def _postgres(action: str, as_json: bool) -> None:
    from voicerag import postgres

    settings = settings_or_exit()
    try:
        info = getattr(postgres, action)(settings.data_dir)
    except VoiceRAGError as exc:
        console.print(exc.detail)
        raise typer.Exit(1) from None
    if as_json:
        print_json({"url": info["url"], "running": info["running"], "pgdata": info["pgdata"]})
        return
    if info["running"]:
        out.print(f"PostgreSQL with pgvector runs in {info['pgdata']} (pid {info['pid']})")
        out.print(f"export VOICERAG_DATABASE_URL='{info['url']}'  # add VOICERAG_VECTOR_BACKEND=pgvector to use it")
    elif action == "stop":
        out.print(f"PostgreSQL in {info['pgdata']} {'stopped' if info['stopped'] else 'was not running'}")
    else:
        out.print(f"PostgreSQL in {info['pgdata']} is not running")


@postgres_app.command("start")
def postgres_start(as_json: JsonFlag = False) -> None:
    """Start it (created on first use); prints the URL for VOICERAG_DATABASE_URL."""
    _postgres("start", as_json)


@postgres_app.command("status")
def postgres_status(as_json: JsonFlag = False) -> None:
    """Whether it runs, and its URL."""
    _postgres("status", as_json)


@postgres_app.command("stop")
def postgres_stop(as_json: JsonFlag = False) -> None:
    """Stop it (its data stays for the next start)."""
    _postgres("stop", as_json)


@db_app.command("upgrade")
def db_upgrade(as_json: JsonFlag = False) -> None:
    """Migrate the store (VOICERAG_DATABASE_URL, or the SQLite file in the data dir) to this release's schema.
    Serving does it at start-up too; run it first to migrate once, before many replicas start."""
    import asyncio

    from voicerag.documents.store import SQLDocumentStore
    from voicerag.pools import create_engine

    settings = settings_or_exit()

    async def upgrade() -> tuple[str | None, str]:
        engine = create_engine(settings)
        try:
            store = SQLDocumentStore(engine)
            before = (await store.schema_revision())["revision"]
            return before, await store.create_schema()
        finally:
            await engine.dispose()

    before, after = asyncio.run(upgrade())
    if as_json:
        print_json({"before": before, "revision": after})
    elif before == after:
        out.print(f"the store's schema is up to date (revision {after})")
    else:
        out.print(f"the store's schema was migrated from revision {before or '(none)'} to {after}")
