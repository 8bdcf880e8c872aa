"""form switches waiting for consent, where every node reads them

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "form_switch_requests",
        sa.Column("consultation_id", sa.Integer(), nullable=False),
        sa.Column("form", sa.String(length=8), nullable=False),
        sa.Column("previous", sa.String(length=8), nullable=False),
        sa.Column("requested_by", sa.Integer(), nullable=False),
        sa.Column("to_user", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "form IN ('chat', 'voice', 'video') AND previous IN ('chat', 'voice', 'video')",
            name="ck_form_switch_requests_forms",
        ),
        sa.ForeignKeyConstraint(
            ["consultation_id"],
            ["consultations.id"],
            name=op.f("fk_form_switch_requests_consultation_id_consultations"),
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"], ["users.id"], name=op.f("fk_form_switch_requests_requested_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["to_user"], ["users.id"], name=op.f("fk_form_switch_requests_to_user_users")
        ),
        sa.PrimaryKeyConstraint("consultation_id", name=op.f("pk_form_switch_requests")),
    )


def downgrade() -> None:
    op.drop_table("form_switch_requests")
