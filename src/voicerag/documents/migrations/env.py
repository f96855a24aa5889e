"""Alembic's environment: migrations run on the connection VoiceRAG hands in (``config.attributes``)."""

from __future__ import annotations

from alembic import context

from voicerag.documents.migrations import VERSION_TABLE

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("VoiceRAG's migrations run through voicerag.documents.migrations.upgrade (voicerag db upgrade)")
context.configure(connection=connection, version_table=VERSION_TABLE, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
