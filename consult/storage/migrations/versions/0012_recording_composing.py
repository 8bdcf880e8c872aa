"""recordings: a "composing" status, while the call's tracks are composed into the file served

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_NEW = "status IN ('recording', 'composing', 'ready', 'failed')"
_OLD = "status IN ('recording', 'ready', 'failed')"


def upgrade() -> None:
    with op.batch_alter_table("recordings") as batch:
        batch.drop_constraint("ck_recordings_status", type_="check")
        batch.create_check_constraint("ck_recordings_status", _NEW)


def downgrade() -> None:
    # A recording still being composed is one that did not finish.
    op.execute("UPDATE recordings SET status = 'failed' WHERE status = 'composing'")
    with op.batch_alter_table("recordings") as batch:
        batch.drop_constraint("ck_recordings_status", type_="check")
        batch.create_check_constraint("ck_recordings_status", _OLD)
