"""calls, forms used and recording consent

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _consultation_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["consultation_id"],
        ["consultations.id"],
        name=op.f(f"fk_{table}_consultation_id_consultations"),
    )


def upgrade() -> None:
    op.create_table(
        "consultation_forms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consultation_id", sa.Integer(), nullable=False),
        sa.Column("form", sa.String(length=8), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("requested_by", sa.Integer(), nullable=True),
        sa.CheckConstraint("form IN ('chat', 'voice', 'video')", name="ck_consultation_forms_form"),
        _consultation_fk("consultation_forms"),
        sa.ForeignKeyConstraint(
            ["requested_by"], ["users.id"], name=op.f("fk_consultation_forms_requested_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consultation_forms")),
    )
    op.create_index(
        op.f("ix_consultation_forms_consultation_id"),
        "consultation_forms",
        ["consultation_id"],
        unique=False,
    )

    op.create_table(
        "recording_consents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consultation_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("consent", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        _consultation_fk("recording_consents"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_recording_consents_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording_consents")),
    )
    op.create_index(
        op.f("ix_recording_consents_consultation_id"),
        "recording_consents",
        ["consultation_id"],
        unique=False,
    )

    op.create_table(
        "recordings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consultation_id", sa.Integer(), nullable=False),
        sa.Column("stored_name", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "status IN ('recording', 'ready', 'failed')", name="ck_recordings_status"
        ),
        _consultation_fk("recordings"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recordings")),
        sa.UniqueConstraint("stored_name", name=op.f("uq_recordings_stored_name")),
    )
    op.create_index(
        op.f("ix_recordings_consultation_id"), "recordings", ["consultation_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_recordings_consultation_id"), table_name="recordings")
    op.drop_table("recordings")
    op.drop_index(op.f("ix_recording_consents_consultation_id"), table_name="recording_consents")
    op.drop_table("recording_consents")
    op.drop_index(op.f("ix_consultation_forms_consultation_id"), table_name="consultation_forms")
    op.drop_table("consultation_forms")
