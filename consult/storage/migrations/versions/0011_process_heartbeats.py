"""presence that survives a crash: server processes with a heartbeat, connections per process

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "server_processes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_server_processes")),
    )
    op.create_table(
        "socket_connections",
        sa.Column("sid", sa.String(length=64), nullable=False),
        sa.Column("process_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("connected_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_socket_connections_user_id_users")
        ),
        sa.PrimaryKeyConstraint("sid", name=op.f("pk_socket_connections")),
    )
    op.create_index(op.f("ix_socket_connections_process_id"), "socket_connections", ["process_id"])
    op.create_index(op.f("ix_socket_connections_user_id"), "socket_connections", ["user_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_socket_connections_user_id"), table_name="socket_connections")
    op.drop_index(op.f("ix_socket_connections_process_id"), table_name="socket_connections")
    op.drop_table("socket_connections")
    op.drop_table("server_processes")
