"""every doctor who accepted a consultation, in a table of its own: access rests on it

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consultation_doctors",
        sa.Column("consultation_id", sa.Integer(), nullable=False),
        sa.Column("doctor_id", sa.Integer(), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["consultation_id"],
            ["consultations.id"],
            name=op.f("fk_consultation_doctors_consultation_id_consultations"),
        ),
        sa.ForeignKeyConstraint(
            ["doctor_id"], ["users.id"], name=op.f("fk_consultation_doctors_doctor_id_users")
        ),
        sa.PrimaryKeyConstraint(
            "consultation_id", "doctor_id", name=op.f("pk_consultation_doctors")
        ),
    )
    op.create_index(
        "ix_consultation_doctors_doctor_id", "consultation_doctors", ["doctor_id"], unique=False
    )
    # Who accepted: the doctor of an active or ended consultation, and every doctor whose
    # accept the audit log holds (a consultation interrupted since names nobody, or the doctor
    # it is offered to now). The earliest accept of each is kept.
    op.execute(
        "INSERT INTO consultation_doctors (consultation_id, doctor_id, accepted_at) "
        "SELECT consultation_id, doctor_id, MIN(accepted_at) FROM ("
        " SELECT c.id AS consultation_id, c.doctor_id AS doctor_id,"
        "  COALESCE(c.started_at, c.created_at) AS accepted_at"
        " FROM consultations c"
        " WHERE c.status IN ('active', 'ended') AND c.doctor_id IS NOT NULL"
        " UNION ALL"
        " SELECT a.consultation_id, a.actor_id, a.at FROM audit_log a"
        " JOIN consultations c ON c.id = a.consultation_id"
        " JOIN users u ON u.id = a.actor_id AND u.role = 'doctor'"
        " WHERE a.action = 'consultation.accept' AND a.allowed"
        ") accepted GROUP BY consultation_id, doctor_id"
    )


def downgrade() -> None:
    op.drop_index("ix_consultation_doctors_doctor_id", table_name="consultation_doctors")
    op.drop_table("consultation_doctors")
