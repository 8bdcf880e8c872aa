"""decline exclusions in a table of their own: every recent decliner of a ticket stays excluded

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A new table: no copy of ``consultations`` on SQLite.
    op.create_table(
        "ticket_exclusions",
        sa.Column("consultation_id", sa.Integer(), nullable=False),
        sa.Column("doctor_id", sa.Integer(), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["consultation_id"],
            ["consultations.id"],
            name=op.f("fk_ticket_exclusions_consultation_id_consultations"),
        ),
        sa.ForeignKeyConstraint(
            ["doctor_id"], ["users.id"], name=op.f("fk_ticket_exclusions_doctor_id_users")
        ),
        sa.PrimaryKeyConstraint("consultation_id", "doctor_id", name=op.f("pk_ticket_exclusions")),
    )
    # Until now a waiting ticket kept one exclusion in its own row: the doctor in
    # ``declined_by`` and the end in ``offer_expires_at``. Those in flight move to the new
    # table (ones that already ran out are deleted by the first sweep); ``declined_by`` stays as
    # the record of the last decliner, and ``offer_expires_at`` is left to offers alone.
    op.execute(
        "INSERT INTO ticket_exclusions (consultation_id, doctor_id, ends_at) "
        "SELECT c.id, c.declined_by, c.offer_expires_at FROM consultations c "
        "JOIN users u ON u.id = c.declined_by "
        "WHERE c.status = 'waiting' AND c.offer_expires_at IS NOT NULL"
    )
    op.execute(
        "UPDATE consultations SET offer_expires_at = NULL "
        "WHERE status <> 'offered' AND offer_expires_at IS NOT NULL"
    )


def downgrade() -> None:
    # Before 0009 a waiting ticket excluded one doctor: it keeps the exclusion that ends last.
    latest = (
        "SELECT e.{column} FROM ticket_exclusions e WHERE e.consultation_id = consultations.id "
        "ORDER BY e.ends_at DESC, e.doctor_id LIMIT 1"
    )
    op.execute(
        f"UPDATE consultations SET declined_by = ({latest.format(column='doctor_id')}), "
        f"offer_expires_at = ({latest.format(column='ends_at')}) "
        "WHERE status = 'waiting' AND EXISTS "
        "(SELECT 1 FROM ticket_exclusions e WHERE e.consultation_id = consultations.id)"
    )
    op.drop_table("ticket_exclusions")
