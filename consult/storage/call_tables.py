"""The calls' tables (migration 0006): the forms a consultation used, recording consent, and
recordings; and the form switches waiting for the other participant's consent (migration
0019). ``consult.storage.tables`` re-exports them."""

from __future__ import annotations

import sqlalchemy as sa

from consult.storage.metadata import Timestamp, metadata

__all__ = ["consultation_forms", "form_switch_requests", "recording_consents", "recordings"]


consultation_forms = sa.Table(
    "consultation_forms",
    metadata,
    # The forms a consultation went through (chat -> voice -> video and back), one row per stretch;
    # the open stretch has no ended_at. No rows: the whole consultation kept its first form.
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("consultation_id", sa.ForeignKey("consultations.id"), nullable=False, index=True),
    sa.Column("form", sa.String(8), nullable=False),
    sa.Column("started_at", Timestamp, nullable=False),
    sa.Column("ended_at", Timestamp, nullable=True),
    # Who asked for this form (null for the form the patient chose when joining).
    sa.Column("requested_by", sa.ForeignKey("users.id"), nullable=True),
    sa.CheckConstraint("form IN ('chat', 'voice', 'video')", name="ck_consultation_forms_form"),
)

recording_consents = sa.Table(
    "recording_consents",
    metadata,
    # Append-only: each participant's latest row is their consent now.
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("consultation_id", sa.ForeignKey("consultations.id"), nullable=False, index=True),
    sa.Column("user_id", sa.ForeignKey("users.id"), nullable=False),
    sa.Column("consent", sa.Boolean, nullable=False),
    sa.Column("at", Timestamp, nullable=False),
)

recordings = sa.Table(
    "recordings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("consultation_id", sa.ForeignKey("consultations.id"), nullable=False, index=True),
    # The file's generated name in the recordings directory (never under web/).
    sa.Column("stored_name", sa.String(64), nullable=False, unique=True),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("started_at", Timestamp, nullable=False),
    sa.Column("ended_at", Timestamp, nullable=True),
    sa.Column("size", sa.Integer, nullable=True),
    sa.Column("sha256", sa.String(64), nullable=True),
    sa.CheckConstraint(
        "status IN ('recording', 'composing', 'ready', 'failed')", name="ck_recordings_status"
    ),
)

form_switch_requests = sa.Table(
    "form_switch_requests",
    metadata,
    # A switch up to video waiting for the other participant's answer: at most one per
    # consultation (a new request replaces it), deleted when answered, switched or ended. In the
    # database rather than in a process's memory so that a request made through one node is
    # answered through any other.
    sa.Column("consultation_id", sa.ForeignKey("consultations.id"), primary_key=True),
    sa.Column("form", sa.String(8), nullable=False),
    sa.Column("previous", sa.String(8), nullable=False),
    sa.Column("requested_by", sa.ForeignKey("users.id"), nullable=False),
    sa.Column("to_user", sa.ForeignKey("users.id"), nullable=False),
    sa.Column("at", Timestamp, nullable=False),
    sa.CheckConstraint(
        "form IN ('chat', 'voice', 'video') AND previous IN ('chat', 'voice', 'video')",
        name="ck_form_switch_requests_forms",
    ),
)
