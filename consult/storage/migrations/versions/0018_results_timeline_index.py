"""results in the timeline: the results' index by patient and time gains the id

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-22

The timeline's part for results reads the patient's newest results older than the cursor, at
most a page of them, ordered by (effective_at, id) as the other kinds by their time and id
(migration 0017). ``ix_results_patient`` (0016) holds (patient_id, effective_at) only: on
PostgreSQL the results of one moment would be sorted after the scan. It is replaced by
``ix_results_timeline`` on (patient_id, effective_at, id), which serves everything it served
(the results' pages too). Indexes only: no table copy.
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_results_timeline", "results", ["patient_id", "effective_at", "id"])
    op.drop_index("ix_results_patient", table_name="results")


def downgrade() -> None:
    op.create_index("ix_results_patient", "results", ["patient_id", "effective_at"])
    op.drop_index("ix_results_timeline", table_name="results")
