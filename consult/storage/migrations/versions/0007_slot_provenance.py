"""slots remember their schedule; withdrawn slots

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Adding nullable columns needs no table copy on SQLite. schedule_id has no foreign key on
    # purpose: removing a schedule clears it on the slots that stay (booked ones), and a
    # foreign key added to an existing SQLite table would force a copy of it.
    op.add_column("slots", sa.Column("schedule_id", sa.Integer(), nullable=True))
    op.add_column("slots", sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f("ix_slots_schedule_id"), "slots", ["schedule_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_slots_schedule_id"), table_name="slots")
    with op.batch_alter_table("slots", schema=None) as batch_op:
        batch_op.drop_column("withdrawn_at")
        batch_op.drop_column("schedule_id")
