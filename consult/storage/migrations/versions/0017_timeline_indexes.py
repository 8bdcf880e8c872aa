"""timeline: an index per kind of thing the patient's timeline lists, by patient and time

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-21

Each kind's part of a timeline page reads the patient's newest rows older than the cursor, at
most a page of them (consult/timeline/page.py): with (patient_id, <its time>, id) that is a
backward range scan of the index that stops after the page, whatever the length of the history.
A document's messages (where it was shared: a doctor may open it, the timeline says where)
get a partial index: only the few messages that carry a document are in it. Only additions:
nothing is rewritten, and no table is copied on SQLite.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

# (index, table, the time column): as consult/storage/*tables.py state them.
INDEXES = (
    ("ix_consultations_timeline", "consultations", "created_at"),
    ("ix_recommendations_timeline", "recommendations", "created_at"),
    ("ix_documents_timeline", "documents", "created_at"),
    ("ix_follow_ups_timeline", "follow_ups", "asked_at"),
    ("ix_prescription_packages_timeline", "prescription_packages", "issued_at"),
    ("ix_referrals_timeline", "referrals", "issued_at"),
    ("ix_sick_leaves_timeline", "sick_leaves", "issued_at"),
    ("ix_renewal_requests_timeline", "renewal_requests", "requested_at"),
    ("ix_ratings_timeline", "ratings", "rated_at"),
)


_SHARED = sa.text("document_id IS NOT NULL")


def upgrade() -> None:
    for name, table, at in INDEXES:
        op.create_index(name, table, ["patient_id", at, "id"])
    op.create_index(
        "ix_messages_document_id",
        "messages",
        ["document_id"],
        sqlite_where=_SHARED,
        postgresql_where=_SHARED,
    )


def downgrade() -> None:
    op.drop_index("ix_messages_document_id", table_name="messages")
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
