"""The schema. Alembic migrations in ``migrations/versions`` must build exactly this
(``tests/integration/test_migrations.py`` compares them). The outcome's tables are in
outcome_tables.py, the ratings' in rating_tables.py, results' in result_tables.py, all
re-exported here, so that every table is ``tables.<name>``."""

from __future__ import annotations

import sqlalchemy as sa

# Calls (migration 0006), the visit's outcome (0013), ratings (0014) and results (0016) have
# modules of their own; their tables are ``tables.<name>`` as every other (each module's
# __all__ names them).
from consult.storage.account_tables import *  # noqa: F403
from consult.storage.call_tables import *  # noqa: F403
from consult.storage.metadata import Timestamp, metadata
from consult.storage.outcome_tables import *  # noqa: F403
from consult.storage.rating_tables import *  # noqa: F403
from consult.storage.result_tables import *  # noqa: F403

specialties = sa.Table(
    "specialties",
    metadata,
    sa.Column("code", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(120), nullable=False),
    # Its visits are booked only with the patient's unused referral to it (migration 0013).
    sa.Column("referral_required", sa.Boolean, nullable=False, server_default=sa.false()),
)

plans = sa.Table(
    "plans",
    metadata,
    sa.Column("code", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(120), nullable=False),
)

plan_specialties = sa.Table(
    "plan_specialties",
    metadata,
    sa.Column("plan_code", sa.ForeignKey("plans.code"), primary_key=True),
    sa.Column("specialty_code", sa.ForeignKey("specialties.code"), primary_key=True),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(254), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("identity", sa.String(16), nullable=False),
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("plan_code", sa.ForeignKey("plans.code"), nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    # Migration 0013: a patient's PESEL (an e-prescription and sick leave need it), a doctor's
    # licence number (on every document they issue).
    sa.Column("pesel", sa.String(11), nullable=True),
    sa.Column("licence_number", sa.String(7), nullable=True),
    # Migration 0020: sign-up's e-mail confirmation (null: not confirmed, no booking), and
    # two-factor login (a TOTP secret, in force once ``totp_enabled_at`` is set).
    sa.Column("email_confirmed_at", Timestamp, nullable=True),
    sa.Column("totp_secret", sa.String(64), nullable=True),
    sa.Column("totp_enabled_at", Timestamp, nullable=True),
)

doctor_specialties = sa.Table(
    "doctor_specialties",
    metadata,
    sa.Column("doctor_id", sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("specialty_code", sa.ForeignKey("specialties.code"), primary_key=True),
)

sessions = sa.Table(
    "sessions",
    metadata,
    # Only a hash of the token is stored: a database dump gives no usable sessions.
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=False),
    # Migration 0020: where the login came from (the sessions list shows it).
    sa.Column("ip", sa.String(45), nullable=True),
)

doctor_presence = sa.Table(
    "doctor_presence",
    metadata,
    sa.Column("doctor_id", sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("specialties", sa.JSON, nullable=False),
    sa.Column("forms", sa.JSON, nullable=False),
    sa.Column("capacity", sa.Integer, nullable=False),
    sa.Column("since", Timestamp, nullable=False),
    # Languages the doctor consults in now; empty means any.
    sa.Column("languages", sa.JSON, nullable=False, server_default="[]"),
    # Set when the console's last connection dropped; the lease runs out after the grace period.
    sa.Column("disconnected_at", Timestamp, nullable=True),
)

consultations = sa.Table(
    "consultations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("patient_id", sa.ForeignKey("users.id"), nullable=False),
    sa.Column("doctor_id", sa.ForeignKey("users.id"), nullable=True, index=True),
    sa.Column("specialty_code", sa.ForeignKey("specialties.code"), nullable=False),
    sa.Column("form", sa.String(8), nullable=False),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("started_at", Timestamp, nullable=True),
    sa.Column("ended_at", Timestamp, nullable=True),
    sa.Column("ended_by", sa.ForeignKey("users.id"), nullable=True),
    # The last chat sequence number handed out; bumped under the row lock.
    sa.Column("last_seq", sa.Integer, nullable=False, server_default="0"),
    # Read receipts (migration 0005): the highest seq each side has read; it only moves forward.
    sa.Column("patient_read_seq", sa.Integer, nullable=False, server_default="0"),
    sa.Column("doctor_read_seq", sa.Integer, nullable=False, server_default="0"),
    # Queue order: the ticket with the earliest rank_at goes first. rank_at is the arrival time
    # moved earlier by the ticket's priority, so waiting time raises everyone's priority alike.
    sa.Column("rank_at", Timestamp, nullable=True),
    sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
    sa.Column("language", sa.String(8), nullable=True),
    sa.Column("preferred_doctor_id", sa.ForeignKey("users.id"), nullable=True),
    # The estimate shown at join, kept to compare with the real wait.
    sa.Column("eta_low_s", sa.Integer, nullable=True),
    sa.Column("eta_high_s", sa.Integer, nullable=True),
    # An offered ticket's deadline; NULL in every other status (migration 0009).
    sa.Column("offer_expires_at", Timestamp, nullable=True),
    # The last doctor who declined the ticket or let its offer lapse, for the record only:
    # who is excluded from it, and until when, is in ``ticket_exclusions``.
    sa.Column("declined_by", sa.Integer, nullable=True),
    # Set when the patient's last connection dropped; the ticket is dropped after the grace.
    sa.Column("patient_disconnected_at", Timestamp, nullable=True),
    sa.Index("ix_consultations_patient_id", "patient_id"),
    sa.Index("ix_consultations_timeline", "patient_id", "created_at", "id"),  # (0017)
    sa.Index("ix_consultations_queue", "status", "specialty_code", "form", "rank_at"),
    # A patient has at most one open consultation or ticket, enforced by the database.
    sa.Index(
        "uq_consultations_one_open_per_patient",
        "patient_id",
        unique=True,
        sqlite_where=sa.text("status IN ('waiting', 'offered', 'active')"),
        postgresql_where=sa.text("status IN ('waiting', 'offered', 'active')"),
    ),
)

# A doctor who declined a queued ticket, or let its offer lapse while online, is not offered it
# again until ``ends_at`` (CONSULT_DECLINE_EXCLUSION after it); one row per doctor and ticket, so
# every recent decliner stays excluded (migration 0009). Rows that ran out are deleted by the
# sweep; a doctor declining again moves their row's end.
ticket_exclusions = sa.Table(
    "ticket_exclusions",
    metadata,
    sa.Column("consultation_id", sa.ForeignKey("consultations.id"), primary_key=True),
    sa.Column("doctor_id", sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("ends_at", Timestamp, nullable=False),
)

# Every doctor who accepted a consultation, kept after it is interrupted and taken by another
# (migration 0010): clinical access (transcript, documents, record, recordings) rests on this,
# never on ``consultations.doctor_id``, which also names a doctor only offered the ticket.
consultation_doctors = sa.Table(
    "consultation_doctors",
    metadata,
    sa.Column("consultation_id", sa.ForeignKey("consultations.id"), primary_key=True),
    sa.Column("doctor_id", sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("accepted_at", Timestamp, nullable=False),
    sa.Index("ix_consultation_doctors_doctor_id", "doctor_id"),
)

_SHARED = sa.text("document_id IS NOT NULL")
messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("consultation_id", sa.ForeignKey("consultations.id"), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("sender_id", sa.ForeignKey("users.id"), nullable=False),
    sa.Column("client_id", sa.String(64), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    # A document the patient shared into the chat (migration 0004).
    sa.Column("document_id", sa.ForeignKey("documents.id"), nullable=True),
    sa.UniqueConstraint("consultation_id", "seq", name="uq_messages_consultation_seq"),
    sa.UniqueConstraint("consultation_id", "sender_id", "client_id", name="uq_messages_client_id"),
    # Where a document was shared: only the few messages that share one (migration 0017).
    sa.Index(
        "ix_messages_document_id", "document_id", sqlite_where=_SHARED, postgresql_where=_SHARED
    ),
)

recommendations = sa.Table(
    "recommendations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("consultation_id", sa.ForeignKey("consultations.id"), nullable=False, index=True),
    sa.Column("patient_id", sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("doctor_id", sa.ForeignKey("users.id"), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Index("ix_recommendations_timeline", "patient_id", "created_at", "id"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", Timestamp, nullable=False),
    sa.Column("actor_id", sa.Integer, nullable=True),
    sa.Column("actor_role", sa.String(16), nullable=True),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("patient_id", sa.Integer, nullable=True),
    sa.Column("consultation_id", sa.Integer, nullable=True),
    sa.Column("ip", sa.String(64), nullable=True),
    sa.Column("allowed", sa.Boolean, nullable=False),
    sa.Column("detail", sa.String(300), nullable=True),
    # "page", "api" or "socket" (consult.domain.Client); NULL before 0015 and for logins.
    sa.Column("client", sa.String(8), nullable=True),
    # A patient's rows newest first, in one scan: their access history (0015; it replaced the
    # index on patient_id alone, so a row costs no more index entries than before).
    sa.Index("ix_audit_log_patient_id_id", "patient_id", "id"),
)

# --- booking (migration 0002) ------------------------------------------------------------------

schedules = sa.Table(
    "schedules",
    metadata,
    # A doctor's weekly hours for one specialty and kind of visit; slots are generated from it.
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("doctor_id", sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("specialty_code", sa.ForeignKey("specialties.code"), nullable=False),
    sa.Column("kind", sa.String(12), nullable=False),
    sa.Column("weekday", sa.SmallInteger, nullable=False),
    # Minutes after local midnight in ``timezone`` (the clinic's wall clock, DST included).
    sa.Column("start_minute", sa.SmallInteger, nullable=False),
    sa.Column("end_minute", sa.SmallInteger, nullable=False),
    sa.Column("slot_minutes", sa.SmallInteger, nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
    sa.CheckConstraint("kind IN ('stationary', 'phone', 'online')", name="ck_schedules_kind"),
    sa.CheckConstraint("weekday BETWEEN 0 AND 6", name="ck_schedules_weekday"),
    sa.CheckConstraint(
        "0 <= start_minute AND start_minute < end_minute AND end_minute <= 1440",
        name="ck_schedules_hours",
    ),
    sa.CheckConstraint("slot_minutes > 0", name="ck_schedules_slot_minutes"),
)

slots = sa.Table(
    "slots",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("doctor_id", sa.ForeignKey("users.id"), nullable=False),
    sa.Column("specialty_code", sa.ForeignKey("specialties.code"), nullable=False),
    sa.Column("kind", sa.String(12), nullable=False),
    sa.Column("starts_at", Timestamp, nullable=False),
    sa.Column("ends_at", Timestamp, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    # The weekly hours that gave the slot (NULL: opened by a scheduler, or its hours were
    # removed). No foreign key: removing hours clears it on the slots that stay (0007).
    sa.Column("schedule_id", sa.Integer, nullable=True, index=True),
    # Set when the doctor's hours were removed while the slot had bookings: an active one
    # stays, but the slot is not offered again, even once it is cancelled (unless the same
    # hours are added back, which clears it).
    sa.Column("withdrawn_at", Timestamp, nullable=True),
    # Generating slots twice (or from two processes) never duplicates one.
    sa.UniqueConstraint("doctor_id", "starts_at", name="uq_slots_doctor_starts_at"),
    sa.Index("ix_slots_specialty_starts_at", "specialty_code", "starts_at"),
    sa.CheckConstraint("kind IN ('stationary', 'phone', 'online')", name="ck_slots_kind"),
    sa.CheckConstraint("starts_at < ends_at", name="ck_slots_times"),
)

bookings = sa.Table(
    "bookings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("slot_id", sa.ForeignKey("slots.id"), nullable=False),
    sa.Column("patient_id", sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("cancelled_at", Timestamp, nullable=True),
    # The referral the booking uses (migration 0013): used while the booking is active.
    sa.Column("referral_id", sa.ForeignKey("referrals.id"), nullable=True),
    sa.CheckConstraint("status IN ('active', 'cancelled')", name="ck_bookings_status"),
    # A slot is booked at most once, enforced by the database: of concurrent attempts one wins.
    sa.Index(
        "uq_bookings_one_active_per_slot",
        "slot_id",
        unique=True,
        sqlite_where=sa.text("status = 'active'"),
        postgresql_where=sa.text("status = 'active'"),
    ),
    # A referral is used by at most one active booking.
    sa.Index(
        "uq_bookings_one_active_per_referral",
        "referral_id",
        unique=True,
        sqlite_where=sa.text("status = 'active' AND referral_id IS NOT NULL"),
        postgresql_where=sa.text("status = 'active' AND referral_id IS NOT NULL"),
    ),
)

# --- documents and follow-up questions (migration 0004; client ids 0008) -----------------------

documents = sa.Table(
    "documents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("patient_id", sa.ForeignKey("users.id"), nullable=False, index=True),
    # The file's generated name in the documents directory; the upload's name is metadata only.
    sa.Column("stored_name", sa.String(64), nullable=False, unique=True),
    sa.Column("filename", sa.String(200), nullable=False),
    sa.Column("description", sa.String(500), nullable=False),
    sa.Column("content_type", sa.String(40), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    # Deleted by the patient: the file is gone, the row stays for the chat messages that name it.
    sa.Column("deleted_at", Timestamp, nullable=True),
    sa.CheckConstraint(
        "content_type IN ('image/jpeg', 'image/png', 'application/pdf')",
        name="ck_documents_content_type",
    ),
    sa.Index("ix_documents_timeline", "patient_id", "created_at", "id"),
)

follow_ups = sa.Table(
    "follow_ups",
    metadata,
    # "Ask the doctor": a question after a finished consultation, to that consultation's doctor.
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("consultation_id", sa.ForeignKey("consultations.id"), nullable=False, index=True),
    sa.Column("patient_id", sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("doctor_id", sa.ForeignKey("users.id"), nullable=False),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("asked_at", Timestamp, nullable=False),
    sa.Column("answer", sa.Text, nullable=True),
    sa.Column("answered_at", Timestamp, nullable=True),
    # Client-chosen ids (migration 0008), so that a repeated request is stored once: the
    # patient's for the question, the doctor's for the answer. NULL on rows from before 0008.
    sa.Column("client_id", sa.String(64), nullable=True),
    sa.Column("answer_client_id", sa.String(64), nullable=True),
    # The doctor's inbox: their unanswered questions, oldest first.
    sa.Index("ix_follow_ups_inbox", "doctor_id", "answered_at", "asked_at"),
    # A question is stored once per patient, consultation and client id, however many times it
    # is sent, also concurrently. A unique index (NULLs are distinct) needs no table copy on
    # SQLite, where adding a UNIQUE constraint would.
    sa.Index("uq_follow_ups_client_id", "consultation_id", "patient_id", "client_id", unique=True),
    sa.Index("ix_follow_ups_timeline", "patient_id", "asked_at", "id"),
)

# Presence that survives a crash (migration 0011, consult/presence/processes.py): each server
# process keeps a row with a heartbeat, and each Socket.IO connection a row naming its process.
# A user is connected while they hold a connection in a live process; the connections of a
# process whose heartbeat is older than CONSULT_PROCESS_DEAD_AFTER count as closed.
server_processes = sa.Table(
    "server_processes",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("started_at", Timestamp, nullable=False),
    sa.Column("heartbeat_at", Timestamp, nullable=False),
)

socket_connections = sa.Table(
    "socket_connections",
    metadata,
    sa.Column("sid", sa.String(64), primary_key=True),
    sa.Column("process_id", sa.String(32), nullable=False, index=True),
    sa.Column("user_id", sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("connected_at", Timestamp, nullable=False),
)
