"""Accounts' own tables (migration 0020): single-use links, identity verification requests,
TOTP recovery codes, and the notifications outbox."""

from __future__ import annotations

import sqlalchemy as sa

from consult.storage.metadata import Timestamp, metadata

__all__ = ["account_tokens", "identity_requests", "recovery_codes", "notifications"]

# A single-use link or step: e-mail confirmation, password reset, a new account's first
# password, the second step of a login. Only the token's hash is kept.
account_tokens = sa.Table(
    "account_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("purpose", sa.String(24), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=False),
    sa.Column("used_at", Timestamp, nullable=True),
)

# A patient's request to become verified, and the staff decision on it.
identity_requests = sa.Table(
    "identity_requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("pesel", sa.String(11), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending, confirmed, rejected
    sa.Column("requested_at", Timestamp, nullable=False),
    sa.Column("decided_at", Timestamp, nullable=True),
    sa.Column("decided_by", sa.ForeignKey("users.id"), nullable=True),
    # What the staff member checked (document kind and number's last characters) or why not.
    sa.Column("note", sa.String(200), nullable=True),
)

# TOTP recovery codes, each usable once (hashes only).
recovery_codes = sa.Table(
    "recovery_codes",
    metadata,
    sa.Column("code_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("used_at", Timestamp, nullable=True),
)

# The transactional outbox: written in the transaction of what caused it, delivered by the
# worker (consult/notify/worker.py). ``id`` is a UUID: the e-mail's Message-ID, so a retry
# after a crash is recognisably the same message.
notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("user_id", sa.ForeignKey("users.id"), nullable=True, index=True),
    sa.Column("recipient", sa.String(254), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    # Dropped once delivered: it may hold a single-use link or an access code.
    sa.Column("body", sa.Text, nullable=True),
    sa.Column("attachment_name", sa.String(100), nullable=True),
    sa.Column("attachment_type", sa.String(100), nullable=True),
    sa.Column("attachment", sa.Text, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),  # pending, sent, failed
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", Timestamp, nullable=False),
    # A worker's claim: nobody else sends it before this time (a crashed worker's lapses).
    sa.Column("claimed_until", Timestamp, nullable=True),
    sa.Column("sent_at", Timestamp, nullable=True),
    sa.Column("last_error", sa.String(300), nullable=True),
    sa.Index("ix_notifications_due", "status", "next_attempt_at"),
)
