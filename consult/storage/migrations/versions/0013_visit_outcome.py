"""the visit's outcome: products, drafts, outcomes issued once, e-prescription packages,
referrals (and the bookings that use them), sick leave, renewal requests; PESEL and licence
numbers on users

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    referred, key = target.split(".")
    return sa.ForeignKeyConstraint([column], [target], name=op.f(f"fk_{table}_{column}_{referred}"))


def _cancelled() -> list[sa.Column]:
    return [
        sa.Column("cancelled_at", Timestamp, nullable=True),
        sa.Column("cancel_reason", sa.String(500), nullable=True),
    ]


def _products() -> None:
    op.create_table(
        "products",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("substance", sa.String(200), nullable=False),
        sa.Column("strength", sa.String(200), nullable=False),
        sa.Column("form", sa.String(200), nullable=False),
        sa.Column("pack_sizes", sa.JSON(), nullable=False),
        sa.Column("antibiotic", sa.Boolean(), nullable=False),
        sa.Column("psychotropic_narcotic", sa.Boolean(), nullable=False),
        sa.Column("immunological", sa.Boolean(), nullable=False),
        sa.Column("long_term_eligible", sa.Boolean(), nullable=False),
        sa.Column("withdrawn", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
    )


def _drafts_and_outcomes() -> None:
    op.create_table(
        "outcome_drafts",
        sa.Column("consultation_id", sa.Integer(), nullable=False),
        sa.Column("doctor_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        _fk("outcome_drafts", "consultation_id", "consultations.id"),
        _fk("outcome_drafts", "doctor_id", "users.id"),
        sa.PrimaryKeyConstraint("consultation_id", name=op.f("pk_outcome_drafts")),
    )
    op.create_table(
        "outcomes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consultation_id", sa.Integer(), nullable=False),
        sa.Column("doctor_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("issued_at", Timestamp, nullable=False),
        sa.Column("recommendation_id", sa.Integer(), nullable=True),
        _fk("outcomes", "consultation_id", "consultations.id"),
        _fk("outcomes", "doctor_id", "users.id"),
        _fk("outcomes", "patient_id", "users.id"),
        _fk("outcomes", "recommendation_id", "recommendations.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outcomes")),
        sa.UniqueConstraint("consultation_id", name=op.f("uq_outcomes_consultation_id")),
        sa.UniqueConstraint("doctor_id", "idempotency_key", name="uq_outcomes_doctor_key"),
    )
    op.create_index("ix_outcomes_patient_id", "outcomes", ["patient_id"])


def _packages_and_prescriptions() -> None:
    op.create_table(
        "prescription_packages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(44), nullable=False),
        sa.Column("access_code", sa.String(4), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("doctor_id", sa.Integer(), nullable=False),
        sa.Column("consultation_id", sa.Integer(), nullable=True),
        sa.Column("outcome_id", sa.Integer(), nullable=True),
        sa.Column("renewal_id", sa.Integer(), nullable=True),
        sa.Column("issued_at", Timestamp, nullable=False),
        _fk("prescription_packages", "patient_id", "users.id"),
        _fk("prescription_packages", "doctor_id", "users.id"),
        _fk("prescription_packages", "consultation_id", "consultations.id"),
        _fk("prescription_packages", "outcome_id", "outcomes.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prescription_packages")),
        sa.UniqueConstraint("key", name=op.f("uq_prescription_packages_key")),
    )
    op.create_index("ix_prescription_packages_patient_id", "prescription_packages", ["patient_id"])
    op.create_index("ix_prescription_packages_outcome_id", "prescription_packages", ["outcome_id"])
    op.create_table(
        "prescriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("doctor_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("product_name", sa.String(200), nullable=False),
        sa.Column("substance", sa.String(200), nullable=False),
        sa.Column("strength", sa.String(200), nullable=False),
        sa.Column("form", sa.String(200), nullable=False),
        sa.Column("category", sa.String(24), nullable=False),
        sa.Column("long_term_eligible", sa.Boolean(), nullable=False),
        sa.Column("pack_size", sa.Integer(), nullable=False),
        sa.Column("packs", sa.Integer(), nullable=False),
        sa.Column("dosage_instruction", sa.String(500), nullable=False),
        sa.Column("payment_level", sa.String(4), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("dispense_from", sa.Date(), nullable=True),
        sa.Column("validity_days", sa.Integer(), nullable=False),
        sa.Column("therapy_days", sa.Integer(), nullable=True),
        sa.Column("valid_until", sa.Date(), nullable=False),
        *_cancelled(),
        _fk("prescriptions", "package_id", "prescription_packages.id"),
        _fk("prescriptions", "patient_id", "users.id"),
        _fk("prescriptions", "doctor_id", "users.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prescriptions")),
    )
    op.create_index("ix_prescriptions_package_id", "prescriptions", ["package_id"])
    op.create_index("ix_prescriptions_patient_id", "prescriptions", ["patient_id"])


def _referrals_and_sick_leaves() -> None:
    op.create_table(
        "referrals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(44), nullable=False),
        sa.Column("access_code", sa.String(4), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("doctor_id", sa.Integer(), nullable=False),
        sa.Column("consultation_id", sa.Integer(), nullable=False),
        sa.Column("outcome_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("diagnosis_code", sa.String(8), nullable=False),
        sa.Column("diagnosis_title", sa.String(300), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("priority", sa.String(8), nullable=False),
        sa.Column("issued_at", Timestamp, nullable=False),
        *_cancelled(),
        _fk("referrals", "patient_id", "users.id"),
        _fk("referrals", "doctor_id", "users.id"),
        _fk("referrals", "consultation_id", "consultations.id"),
        _fk("referrals", "outcome_id", "outcomes.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referrals")),
        sa.UniqueConstraint("key", name=op.f("uq_referrals_key")),
    )
    op.create_index("ix_referrals_patient_id", "referrals", ["patient_id"])
    op.create_index("ix_referrals_outcome_id", "referrals", ["outcome_id"])
    op.create_table(
        "sick_leaves",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("doctor_id", sa.Integer(), nullable=False),
        sa.Column("consultation_id", sa.Integer(), nullable=False),
        sa.Column("outcome_id", sa.Integer(), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("end", sa.Date(), nullable=False),
        sa.Column("backdating_reason", sa.String(500), nullable=True),
        sa.Column("recommendation", sa.SmallInteger(), nullable=False),
        sa.Column("diagnosis_code", sa.String(8), nullable=False),
        sa.Column("diagnosis_title", sa.String(300), nullable=False),
        sa.Column("letter_codes", sa.JSON(), nullable=False),
        sa.Column("employer_nip", sa.String(10), nullable=True),
        sa.Column("issued_at", Timestamp, nullable=False),
        *_cancelled(),
        _fk("sick_leaves", "patient_id", "users.id"),
        _fk("sick_leaves", "doctor_id", "users.id"),
        _fk("sick_leaves", "consultation_id", "consultations.id"),
        _fk("sick_leaves", "outcome_id", "outcomes.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sick_leaves")),
        sa.UniqueConstraint("outcome_id", name=op.f("uq_sick_leaves_outcome_id")),
    )
    op.create_index("ix_sick_leaves_patient_id", "sick_leaves", ["patient_id"])


def _renewal_requests() -> None:
    op.create_table(
        "renewal_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("prescription_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("doctor_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("note", sa.String(500), nullable=False),
        sa.Column("requested_at", Timestamp, nullable=False),
        sa.Column("decided_at", Timestamp, nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decline_reason", sa.String(500), nullable=True),
        sa.Column("package_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "status IN ('open', 'approved', 'declined')", name="ck_renewal_requests_status"
        ),
        _fk("renewal_requests", "prescription_id", "prescriptions.id"),
        _fk("renewal_requests", "patient_id", "users.id"),
        _fk("renewal_requests", "doctor_id", "users.id"),
        _fk("renewal_requests", "decided_by", "users.id"),
        _fk("renewal_requests", "package_id", "prescription_packages.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_renewal_requests")),
    )
    op.create_index("ix_renewal_requests_patient_id", "renewal_requests", ["patient_id"])
    op.create_index(
        "ix_renewal_requests_inbox", "renewal_requests", ["doctor_id", "status", "requested_at"]
    )
    op.create_index(
        "uq_renewal_requests_one_open",
        "renewal_requests",
        ["prescription_id"],
        unique=True,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    )


def upgrade() -> None:
    # Plain ALTER TABLE ADD COLUMN on both engines: a batch copy of these tables would break
    # SQLite's foreign keys that point at them.
    op.add_column("users", sa.Column("pesel", sa.String(11), nullable=True))
    op.add_column("users", sa.Column("licence_number", sa.String(7), nullable=True))
    op.add_column(
        "specialties",
        sa.Column("referral_required", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    _products()
    _drafts_and_outcomes()
    _packages_and_prescriptions()
    _referrals_and_sick_leaves()
    _renewal_requests()
    with op.batch_alter_table("bookings") as batch:
        batch.add_column(sa.Column("referral_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_bookings_referral_id_referrals"), "referrals", ["referral_id"], ["id"]
        )
        batch.create_index(
            "uq_bookings_one_active_per_referral",
            ["referral_id"],
            unique=True,
            sqlite_where=sa.text("status = 'active' AND referral_id IS NOT NULL"),
            postgresql_where=sa.text("status = 'active' AND referral_id IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("bookings") as batch:
        batch.drop_index("uq_bookings_one_active_per_referral")
        batch.drop_constraint(op.f("fk_bookings_referral_id_referrals"), type_="foreignkey")
        batch.drop_column("referral_id")
    for table in (
        "renewal_requests",
        "sick_leaves",
        "referrals",
        "prescriptions",
        "prescription_packages",
        "outcomes",
        "outcome_drafts",
        "products",
    ):
        op.drop_table(table)
    with op.batch_alter_table("specialties") as batch:
        batch.drop_column("referral_required")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("licence_number")
        batch.drop_column("pesel")
