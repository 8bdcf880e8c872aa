"""ratings: a patient's scores of their finished consultations, past booked visits and the
service

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-14
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True)

# As consult/storage/rating_tables.py states it (a migration keeps its own copy: history).
TARGET_RULE = (
    "(kind = 'consultation' AND consultation_id IS NOT NULL AND booking_id IS NULL)"
    " OR (kind = 'booking' AND booking_id IS NOT NULL AND consultation_id IS NULL)"
    " OR (kind = 'service' AND (consultation_id IS NULL) <> (booking_id IS NULL))"
)


def _fk(column: str, target: str) -> sa.ForeignKeyConstraint:
    referred = target.split(".")[0]
    return sa.ForeignKeyConstraint([column], [target], name=op.f(f"fk_ratings_{column}_{referred}"))


def upgrade() -> None:
    op.create_table(
        "ratings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("consultation_id", sa.Integer(), nullable=True),
        sa.Column("booking_id", sa.Integer(), nullable=True),
        sa.Column("doctor_id", sa.Integer(), nullable=False),
        sa.Column("specialty_code", sa.String(40), nullable=False),
        sa.Column("score", sa.SmallInteger(), nullable=False),
        sa.Column("comment", sa.String(1000), nullable=False),
        sa.Column("rated_at", Timestamp, nullable=False),
        sa.Column("changed_at", Timestamp, nullable=True),
        sa.CheckConstraint("score BETWEEN 1 AND 5", name="ck_ratings_score"),
        sa.CheckConstraint(
            "kind IN ('consultation', 'booking', 'service')", name="ck_ratings_kind"
        ),
        sa.CheckConstraint(TARGET_RULE, name="ck_ratings_target"),
        _fk("patient_id", "users.id"),
        _fk("consultation_id", "consultations.id"),
        _fk("booking_id", "bookings.id"),
        _fk("doctor_id", "users.id"),
        _fk("specialty_code", "specialties.code"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ratings")),
    )
    op.create_index("ix_ratings_patient_id", "ratings", ["patient_id"])
    op.create_index("uq_ratings_consultation", "ratings", ["consultation_id", "kind"], unique=True)
    op.create_index("uq_ratings_booking", "ratings", ["booking_id", "kind"], unique=True)
    op.create_index("ix_ratings_rated_at", "ratings", ["rated_at"])
    op.create_index("ix_ratings_doctor", "ratings", ["doctor_id", "rated_at"])


def downgrade() -> None:
    op.drop_table("ratings")
