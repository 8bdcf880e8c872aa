"""follow-up questions and answers carry client ids; a repeated question is stored once

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable columns and a unique index: no table copy on SQLite. Rows from before this
    # migration keep NULL client ids, which the unique index treats as distinct.
    op.add_column("follow_ups", sa.Column("client_id", sa.String(length=64), nullable=True))
    op.add_column("follow_ups", sa.Column("answer_client_id", sa.String(length=64), nullable=True))
    op.create_index(
        "uq_follow_ups_client_id",
        "follow_ups",
        ["consultation_id", "patient_id", "client_id"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_follow_ups_client_id", table_name="follow_ups")
    with op.batch_alter_table("follow_ups", schema=None) as batch_op:
        batch_op.drop_column("answer_client_id")
        batch_op.drop_column("client_id")
