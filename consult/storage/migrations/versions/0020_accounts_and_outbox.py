"""accounts and the outbox: sign-up's e-mail confirmation, single-use links, identity
verification requests, TOTP two-factor login, and the notifications outbox

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-08

Accounts that exist already (seeded, demo) count as confirmed: their e-mail was given by the
clinic, not typed by a stranger.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    referred = target.split(".")[0]
    return sa.ForeignKeyConstraint([column], [target], name=op.f(f"fk_{table}_{column}_{referred}"))


def _columns() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("email_confirmed_at", Timestamp, nullable=True))
        batch.add_column(sa.Column("totp_secret", sa.String(64), nullable=True))
        batch.add_column(sa.Column("totp_enabled_at", Timestamp, nullable=True))
    op.execute("UPDATE users SET email_confirmed_at = created_at")
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("ip", sa.String(45), nullable=True))


def _account_tables() -> None:
    op.create_table(
        "account_tokens",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(24), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("expires_at", Timestamp, nullable=False),
        sa.Column("used_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_account_tokens")),
        _fk("account_tokens", "user_id", "users.id"),
    )
    op.create_index("ix_account_tokens_user_id", "account_tokens", ["user_id"])
    op.create_table(
        "identity_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("pesel", sa.String(11), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_at", Timestamp, nullable=False),
        sa.Column("decided_at", Timestamp, nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("note", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_requests")),
        _fk("identity_requests", "user_id", "users.id"),
        _fk("identity_requests", "decided_by", "users.id"),
    )
    op.create_index("ix_identity_requests_user_id", "identity_requests", ["user_id"])
    op.create_table(
        "recovery_codes",
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("used_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_recovery_codes")),
        _fk("recovery_codes", "user_id", "users.id"),
    )
    op.create_index("ix_recovery_codes_user_id", "recovery_codes", ["user_id"])


def _notifications() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("recipient", sa.String(254), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("attachment_name", sa.String(100), nullable=True),
        sa.Column("attachment_type", sa.String(100), nullable=True),
        sa.Column("attachment", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", Timestamp, nullable=False),
        sa.Column("claimed_until", Timestamp, nullable=True),
        sa.Column("sent_at", Timestamp, nullable=True),
        sa.Column("last_error", sa.String(300), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        _fk("notifications", "user_id", "users.id"),
    )
    op.create_index("ix_notifications_user_id", "notifications", ["user_id"])
    op.create_index("ix_notifications_due", "notifications", ["status", "next_attempt_at"])


def upgrade() -> None:
    _columns()
    _account_tables()
    _notifications()


def downgrade() -> None:
    op.drop_table("notifications")
    op.drop_table("recovery_codes")
    op.drop_table("identity_requests")
    op.drop_table("account_tokens")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("ip")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("totp_enabled_at")
        batch.drop_column("totp_secret")
        batch.drop_column("email_confirmed_at")
