"""Laboratory and imaging results in the schema (migration 0016; the results' index by time:
0018): the sending systems' integration credentials, the results (a FHIR DiagnosticReport
each) and their observations."""

from __future__ import annotations

import sqlalchemy as sa

from consult.storage.metadata import Timestamp, metadata

__all__ = ["integrations", "results", "result_observations"]

# The kinds of an observation's value (FHIR's value[x] consult takes), and a value absent with
# the laboratory's reason (dataAbsentReason).
VALUE_KINDS = ("quantity", "integer", "string", "concept", "absent")

integrations = sa.Table(
    "integrations",
    metadata,
    # One credential of a sending system (`consult add-integration NAME`): it posts results and
    # reads nothing. Only the SHA-256 of its token is kept, as for sessions.
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("revoked_at", Timestamp, nullable=True),
)

results = sa.Table(
    "results",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("patient_id", sa.ForeignKey("users.id"), nullable=False),
    sa.Column("integration_id", sa.ForeignKey("integrations.id"), nullable=False),
    # The sending system's name (the credential's, copied) and the report's identifier in it:
    # a resend is found by the three, whichever credential of the system sent it.
    sa.Column("sender", sa.String(120), nullable=False),
    sa.Column("identifier_system", sa.String(200), nullable=False),
    sa.Column("identifier_value", sa.String(200), nullable=False),
    # SHA-256 of what was stored (report, observations, PDF): a resend that says the same
    # changes nothing.
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("category_system", sa.String(200), nullable=True),
    sa.Column("category_code", sa.String(64), nullable=True),
    sa.Column("category", sa.String(300), nullable=True),
    sa.Column("code_system", sa.String(200), nullable=True),
    sa.Column("code", sa.String(64), nullable=True),
    sa.Column("title", sa.String(300), nullable=False),
    # When the sample was taken or the study made (else when the report was issued).
    sa.Column("effective_at", Timestamp, nullable=False),
    sa.Column("issued_at", Timestamp, nullable=True),
    sa.Column("received_at", Timestamp, nullable=False),
    # A correction (status amended, corrected, ...) replaced what was first received.
    sa.Column("changed_at", Timestamp, nullable=True),
    sa.Column("performer", sa.String(300), nullable=True),
    sa.Column("conclusion", sa.Text, nullable=True),
    # The report as a PDF (presentedForm), in the documents folder's results/ under this name.
    sa.Column("pdf_stored_name", sa.String(32), nullable=True),
    sa.Column("pdf_size", sa.Integer, nullable=True),
    sa.Column("pdf_sha256", sa.String(64), nullable=True),
    sa.Index(
        "uq_results_identifier", "sender", "identifier_system", "identifier_value", unique=True
    ),
    # A page of the patient's results, and the timeline's part for them (migration 0018).
    sa.Index("ix_results_timeline", "patient_id", "effective_at", "id"),
)

result_observations = sa.Table(
    "result_observations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("result_id", sa.ForeignKey("results.id"), nullable=False),
    # The result's patient, copied: a value's history is read by patient and code.
    sa.Column("patient_id", sa.ForeignKey("users.id"), nullable=False),
    sa.Column("position", sa.SmallInteger, nullable=False),
    sa.Column("code_system", sa.String(200), nullable=False),
    sa.Column("code", sa.String(64), nullable=False),
    sa.Column("display", sa.String(300), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("value_kind", sa.String(12), nullable=False),
    sa.Column("value_number", sa.Float, nullable=True),
    sa.Column("value_text", sa.String(1000), nullable=True),
    sa.Column("comparator", sa.String(2), nullable=True),
    sa.Column("unit", sa.String(60), nullable=True),
    sa.Column("low", sa.Float, nullable=True),
    sa.Column("high", sa.Float, nullable=True),
    sa.Column("range_text", sa.String(300), nullable=True),
    # The laboratory's flag: an HL7 v3 ObservationInterpretation code (H, L, HH, N, ...).
    sa.Column("interpretation", sa.String(8), nullable=True),
    sa.Column("effective_at", Timestamp, nullable=False),
    sa.CheckConstraint(
        "value_kind IN ('quantity', 'integer', 'string', 'concept', 'absent')",
        name="ck_result_observations_value_kind",
    ),
    sa.Index("ix_result_observations_result", "result_id", "position"),
    sa.Index("ix_result_observations_history", "patient_id", "code", "code_system", "effective_at"),
)
