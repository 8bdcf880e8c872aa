"""chat read receipts and limits

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

OPEN_NOW = "status IN ('waiting', 'offered', 'active')"


def upgrade() -> None:
    # Read receipts: the highest sequence number each side has read. Adding columns needs no
    # table copy on SQLite, so the partial unique index can stay.
    with op.batch_alter_table("consultations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("patient_read_seq", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("doctor_read_seq", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    # Dropping columns copies the table on SQLite; the partial index is dropped around the copy
    # and recreated, as in 0003.
    op.drop_index("uq_consultations_one_open_per_patient", table_name="consultations")
    with op.batch_alter_table("consultations", schema=None) as batch_op:
        batch_op.drop_column("doctor_read_seq")
        batch_op.drop_column("patient_read_seq")
    op.create_index(
        "uq_consultations_one_open_per_patient",
        "consultations",
        ["patient_id"],
        unique=True,
        sqlite_where=sa.text(OPEN_NOW),
        postgresql_where=sa.text(OPEN_NOW),
    )
