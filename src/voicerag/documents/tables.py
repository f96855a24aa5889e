"""The tables of the store, as SQLAlchemy Core sees them (one ``metadata`` for every table: the document
store's here, the API keys', the jobs' and the SQL cache tier's in their own modules). The migrations in
``documents/migrations`` make them; a change to a table here comes with a new migration."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

ChunkId = BigInteger().with_variant(Integer, "sqlite")

collections = Table(
    "vr_collections",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("generation", BigInteger, nullable=False, default=1),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

documents = Table(
    "vr_documents",
    metadata,
    Column("collection", String(128), ForeignKey("vr_collections.name", ondelete="CASCADE"), primary_key=True),
    Column("doc_id", String(1024), primary_key=True),
    Column("title", Text, nullable=False, default=""),
    Column("content_hash", String(64), nullable=False),
    Column("meta", JSON, nullable=False, default=dict),
    Column("chars", Integer, nullable=False),
    Column("chunk_count", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

chunks = Table(
    "vr_chunks",
    metadata,
    Column("id", ChunkId, primary_key=True, autoincrement=True),
    Column("collection", String(128), nullable=False),
    Column("doc_id", String(1024), nullable=False),
    Column("ordinal", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("start", Integer, nullable=False),
    Column("end", Integer, nullable=False),
    Column("vector", LargeBinary, nullable=False),
    Index("vr_chunks_doc", "collection", "doc_id"),
    sqlite_autoincrement=True,  # ids are never reused: a vector index tombstone can never hide a new chunk
)

# The answer units' vectors of each chunk (answer/units.py), made in the chunk's own embedding pass and packed
# int8 (retrieval/quantize.py): answering a question reads them instead of embedding its candidate units. Its own
# table (migration 0002); ``recipe`` names how the units were cut.
chunk_units = Table(
    "vr_chunk_units",
    metadata,
    Column("chunk_id", ChunkId, primary_key=True),
    Column("collection", String(128), nullable=False),
    Column("recipe", Integer, nullable=False),
    Column("vectors", LargeBinary, nullable=False),
    Index("vr_chunk_units_collection", "collection"),
)

changes = Table(
    "vr_changes",
    metadata,
    Column("collection", String(128), primary_key=True),
    Column("generation", BigInteger, primary_key=True),
    Column("added", JSON, nullable=False),
    Column("removed", JSON, nullable=False),
    Column("committed_at", Float, nullable=False),  # wall clock of the write, for replicas' sync lag
)
