"""audit_log.client (page, api or socket) and the index of a patient's rows newest first, for
the patient's access history

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-16
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


# Plain ALTER TABLE on both engines, never a batch copy: on SQLite a copy of audit_log would
# drop its append-only triggers (migration 0001) with the old table.


def upgrade() -> None:
    # Nullable: rows written before this revision do not know their client.
    op.add_column("audit_log", sa.Column("client", sa.String(8), nullable=True))
    # (patient_id, id) serves every lookup the index on patient_id alone served, and reads a
    # patient's rows newest first without a sort; one index instead of two keeps each audit
    # write as cheap as before.
    op.create_index("ix_audit_log_patient_id_id", "audit_log", ["patient_id", "id"])
    op.drop_index("ix_audit_log_patient_id", table_name="audit_log")


def downgrade() -> None:
    op.create_index("ix_audit_log_patient_id", "audit_log", ["patient_id"])
    op.drop_index("ix_audit_log_patient_id_id", table_name="audit_log")
    # SQLite 3.35+ drops a column in place (no copy: the triggers stay).
    op.drop_column("audit_log", "client")
