"""The schema. Alembic migrations in ``migrations/versions`` must build exactly this
(``tests/integration/test_migrations.py`` compares them)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Timestamp = sa.DateTime(timezone=True)

specialties = sa.Table(
    "specialties",
    metadata,
    sa.Column("code", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(120), nullable=False),
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
    sa.Index("ix_consultations_patient_id", "patient_id"),
    # A patient has at most one open (waiting or active) consultation, enforced by the database.
    sa.Index(
        "uq_consultations_one_open_per_patient",
        "patient_id",
        unique=True,
        sqlite_where=sa.text("status IN ('waiting', 'active')"),
        postgresql_where=sa.text("status IN ('waiting', 'active')"),
    ),
)

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
    sa.UniqueConstraint("consultation_id", "seq", name="uq_messages_consultation_seq"),
    sa.UniqueConstraint("consultation_id", "sender_id", "client_id", name="uq_messages_client_id"),
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
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", Timestamp, nullable=False),
    sa.Column("actor_id", sa.Integer, nullable=True),
    sa.Column("actor_role", sa.String(16), nullable=True),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("patient_id", sa.Integer, nullable=True, index=True),
    sa.Column("consultation_id", sa.Integer, nullable=True),
    sa.Column("ip", sa.String(64), nullable=True),
    sa.Column("allowed", sa.Boolean, nullable=False),
    sa.Column("detail", sa.String(300), nullable=True),
)
