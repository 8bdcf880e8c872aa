"""walk-in queue

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


OPEN_BEFORE = "status IN ('waiting', 'active')"
OPEN_NOW = "status IN ('waiting', 'offered', 'active')"


def _one_open_per_patient(where: str) -> None:
    op.create_index(
        "uq_consultations_one_open_per_patient",
        "consultations",
        ["patient_id"],
        unique=True,
        sqlite_where=sa.text(where),
        postgresql_where=sa.text(where),
    )


def upgrade() -> None:
    # The partial index is dropped around the batch copy (SQLite rebuilds the table) and
    # recreated to cover the new "offered" status.
    op.drop_index("uq_consultations_one_open_per_patient", table_name="consultations")
    with op.batch_alter_table("consultations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rank_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("priority", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("language", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("preferred_doctor_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("eta_low_s", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("eta_high_s", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("offer_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("declined_by", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("patient_disconnected_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(
            "ix_consultations_queue", ["status", "specialty_code", "form", "rank_at"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_consultations_preferred_doctor_id_users"),
            "users",
            ["preferred_doctor_id"],
            ["id"],
        )

    with op.batch_alter_table("doctor_presence", schema=None) as batch_op:
        batch_op.add_column(sa.Column("languages", sa.JSON(), server_default="[]", nullable=False))
        batch_op.add_column(sa.Column("disconnected_at", sa.DateTime(timezone=True), nullable=True))

    # Tickets already waiting keep their arrival order.
    op.execute("UPDATE consultations SET rank_at = created_at WHERE rank_at IS NULL")
    _one_open_per_patient(OPEN_NOW)


def downgrade() -> None:
    op.execute("UPDATE consultations SET status = 'waiting' WHERE status = 'offered'")
    op.drop_index("uq_consultations_one_open_per_patient", table_name="consultations")
    with op.batch_alter_table("doctor_presence", schema=None) as batch_op:
        batch_op.drop_column("disconnected_at")
        batch_op.drop_column("languages")

    with op.batch_alter_table("consultations", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_consultations_preferred_doctor_id_users"), type_="foreignkey"
        )
        batch_op.drop_index("ix_consultations_queue")
        batch_op.drop_column("patient_disconnected_at")
        batch_op.drop_column("declined_by")
        batch_op.drop_column("offer_expires_at")
        batch_op.drop_column("eta_high_s")
        batch_op.drop_column("eta_low_s")
        batch_op.drop_column("preferred_doctor_id")
        batch_op.drop_column("language")
        batch_op.drop_column("priority")
        batch_op.drop_column("rank_at")

    _one_open_per_patient(OPEN_BEFORE)
