"""Answer units' vectors, pooled at ingest (the answer step is a lookup).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vr_chunk_units",
        sa.Column("chunk_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("collection", sa.String(length=128), nullable=False),
        sa.Column("recipe", sa.Integer(), nullable=False),
        sa.Column("vectors", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("chunk_id"),
    )
    op.create_index("vr_chunk_units_collection", "vr_chunk_units", ["collection"], unique=False)
