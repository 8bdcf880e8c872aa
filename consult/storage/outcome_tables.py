"""The visit's outcome in the schema (migration 0013): the products catalogue, drafts,
outcomes issued once, e-prescription packages, referrals, sick leave, renewal requests."""

from __future__ import annotations

import sqlalchemy as sa

from consult.storage.metadata import Timestamp, metadata

__all__ = [
    "products",
    "outcome_drafts",
    "outcomes",
    "prescription_packages",
    "prescriptions",
    "referrals",
    "sick_leaves",
    "renewal_requests",
]

# Shaped for FHIR R4: a prescription is a MedicationRequest (dosage, dispense validity period,
# quantity, the package key as identifier), a referral a ServiceRequest (ICD-10 reason), sick
# leave a document of its own. Issued rows are never deleted: cancelling sets ``cancelled_*``.

products = sa.Table(
    "products",
    metadata,
    # The catalogue the doctor prescribes from: the shipped CSV, or `consult import-products`.
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("substance", sa.String(200), nullable=False),
    sa.Column("strength", sa.String(200), nullable=False),
    sa.Column("form", sa.String(200), nullable=False),
    sa.Column("pack_sizes", sa.JSON, nullable=False),
    sa.Column("antibiotic", sa.Boolean, nullable=False),
    sa.Column("psychotropic_narcotic", sa.Boolean, nullable=False),
    sa.Column("immunological", sa.Boolean, nullable=False),
    sa.Column("long_term_eligible", sa.Boolean, nullable=False),
    # Absent from the last imported file: not offered any more; issued prescriptions keep it.
    sa.Column("withdrawn", sa.Boolean, nullable=False, server_default=sa.false()),
)

outcome_drafts = sa.Table(
    "outcome_drafts",
    metadata,
    # The doctor's Outcome panel as they type: saved, so that it survives a reload.
    sa.Column("consultation_id", sa.ForeignKey("consultations.id"), primary_key=True),
    sa.Column("doctor_id", sa.ForeignKey("users.id"), nullable=False),
    sa.Column("body", sa.JSON, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

outcomes = sa.Table(
    "outcomes",
    metadata,
    # "Issue and end", done once per consultation; the Idempotency-Key and a hash of the body
    # answer a repeat with the stored outcome.
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("consultation_id", sa.ForeignKey("consultations.id"), nullable=False, unique=True),
    sa.Column("doctor_id", sa.ForeignKey("users.id"), nullable=False),
    sa.Column("patient_id", sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("idempotency_key", sa.String(200), nullable=False),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("issued_at", Timestamp, nullable=False),
    sa.Column("recommendation_id", sa.ForeignKey("recommendations.id"), nullable=True),
    sa.UniqueConstraint("doctor_id", "idempotency_key", name="uq_outcomes_doctor_key"),
)

prescription_packages = sa.Table(
    "prescription_packages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("key", sa.String(44), nullable=False, unique=True),
    sa.Column("access_code", sa.String(4), nullable=False),
    sa.Column("patient_id", sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("doctor_id", sa.ForeignKey("users.id"), nullable=False),
    # Issued at the end of a consultation (its outcome), or by approving a renewal request.
    sa.Column("consultation_id", sa.ForeignKey("consultations.id"), nullable=True),
    sa.Column("outcome_id", sa.ForeignKey("outcomes.id"), nullable=True, index=True),
    sa.Column("renewal_id", sa.Integer, nullable=True),
    sa.Column("issued_at", Timestamp, nullable=False),
    # The patient's timeline, newest first (this and the other *_timeline: migration 0017).
    sa.Index("ix_prescription_packages_timeline", "patient_id", "issued_at", "id"),
)

prescriptions = sa.Table(
    "prescriptions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("package_id", sa.ForeignKey("prescription_packages.id"), nullable=False, index=True),
    sa.Column("patient_id", sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("doctor_id", sa.ForeignKey("users.id"), nullable=False),
    sa.Column("position", sa.SmallInteger, nullable=False),
    # The product as prescribed: copied, so that a later catalogue import changes nothing.
    sa.Column("product_id", sa.Integer, nullable=False),
    sa.Column("product_name", sa.String(200), nullable=False),
    sa.Column("substance", sa.String(200), nullable=False),
    sa.Column("strength", sa.String(200), nullable=False),
    sa.Column("form", sa.String(200), nullable=False),
    sa.Column("category", sa.String(24), nullable=False),
    sa.Column("long_term_eligible", sa.Boolean, nullable=False),
    sa.Column("pack_size", sa.Integer, nullable=False),
    sa.Column("packs", sa.Integer, nullable=False),
    sa.Column("dosage_instruction", sa.String(500), nullable=False),
    sa.Column("payment_level", sa.String(4), nullable=False),
    sa.Column("issued_on", sa.Date, nullable=False),
    sa.Column("dispense_from", sa.Date, nullable=True),
    sa.Column("validity_days", sa.Integer, nullable=False),
    sa.Column("therapy_days", sa.Integer, nullable=True),
    sa.Column("valid_until", sa.Date, nullable=False),
    sa.Column("cancelled_at", Timestamp, nullable=True),
    sa.Column("cancel_reason", sa.String(500), nullable=True),
)

referrals = sa.Table(
    "referrals",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("key", sa.String(44), nullable=False, unique=True),
    sa.Column("access_code", sa.String(4), nullable=False),
    sa.Column("patient_id", sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("doctor_id", sa.ForeignKey("users.id"), nullable=False),
    sa.Column("consultation_id", sa.ForeignKey("consultations.id"), nullable=False),
    sa.Column("outcome_id", sa.ForeignKey("outcomes.id"), nullable=False, index=True),
    sa.Column("position", sa.SmallInteger, nullable=False),
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("target", sa.String(200), nullable=False),
    sa.Column("diagnosis_code", sa.String(8), nullable=False),
    sa.Column("diagnosis_title", sa.String(300), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("priority", sa.String(8), nullable=False),
    sa.Column("issued_at", Timestamp, nullable=False),
    sa.Column("cancelled_at", Timestamp, nullable=True),
    sa.Column("cancel_reason", sa.String(500), nullable=True),
    sa.Index("ix_referrals_timeline", "patient_id", "issued_at", "id"),
)

sick_leaves = sa.Table(
    "sick_leaves",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("patient_id", sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("doctor_id", sa.ForeignKey("users.id"), nullable=False),
    sa.Column("consultation_id", sa.ForeignKey("consultations.id"), nullable=False),
    sa.Column("outcome_id", sa.ForeignKey("outcomes.id"), nullable=False, unique=True),
    sa.Column("start", sa.Date, nullable=False),
    sa.Column("end", sa.Date, nullable=False),
    sa.Column("backdating_reason", sa.String(500), nullable=True),
    sa.Column("recommendation", sa.SmallInteger, nullable=False),
    sa.Column("diagnosis_code", sa.String(8), nullable=False),
    sa.Column("diagnosis_title", sa.String(300), nullable=False),
    sa.Column("letter_codes", sa.JSON, nullable=False),
    sa.Column("employer_nip", sa.String(10), nullable=True),
    sa.Column("issued_at", Timestamp, nullable=False),
    sa.Column("cancelled_at", Timestamp, nullable=True),
    sa.Column("cancel_reason", sa.String(500), nullable=True),
    sa.Index("ix_sick_leaves_timeline", "patient_id", "issued_at", "id"),
)

renewal_requests = sa.Table(
    "renewal_requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("prescription_id", sa.ForeignKey("prescriptions.id"), nullable=False),
    sa.Column("patient_id", sa.ForeignKey("users.id"), nullable=False, index=True),
    # The doctor it waits for: the issuing doctor, or the one a scheduler handed it to.
    sa.Column("doctor_id", sa.ForeignKey("users.id"), nullable=False),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("note", sa.String(500), nullable=False),
    sa.Column("requested_at", Timestamp, nullable=False),
    sa.Column("decided_at", Timestamp, nullable=True),
    sa.Column("decided_by", sa.ForeignKey("users.id"), nullable=True),
    sa.Column("decline_reason", sa.String(500), nullable=True),
    sa.Column("package_id", sa.ForeignKey("prescription_packages.id"), nullable=True),
    sa.CheckConstraint(
        "status IN ('open', 'approved', 'declined')", name="ck_renewal_requests_status"
    ),
    sa.Index("ix_renewal_requests_inbox", "doctor_id", "status", "requested_at"),
    sa.Index("ix_renewal_requests_timeline", "patient_id", "requested_at", "id"),
    # One open request per prescription, however often and concurrently it is asked.
    sa.Index(
        "uq_renewal_requests_one_open",
        "prescription_id",
        unique=True,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    ),
)
