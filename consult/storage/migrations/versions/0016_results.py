"""results: laboratory and imaging results (FHIR DiagnosticReports with their Observations)
posted by sending systems with integration credentials

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    referred = target.split(".")[0]
    return sa.ForeignKeyConstraint([column], [target], name=op.f(f"fk_{table}_{column}_{referred}"))


def _integrations() -> None:
    op.create_table(
        "integrations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("revoked_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integrations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_integrations_token_hash")),
    )


def _results() -> None:
    op.create_table(
        "results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=False),
        sa.Column("sender", sa.String(120), nullable=False),
        sa.Column("identifier_system", sa.String(200), nullable=False),
        sa.Column("identifier_value", sa.String(200), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("category_system", sa.String(200), nullable=True),
        sa.Column("category_code", sa.String(64), nullable=True),
        sa.Column("category", sa.String(300), nullable=True),
        sa.Column("code_system", sa.String(200), nullable=True),
        sa.Column("code", sa.String(64), nullable=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("effective_at", Timestamp, nullable=False),
        sa.Column("issued_at", Timestamp, nullable=True),
        sa.Column("received_at", Timestamp, nullable=False),
        sa.Column("changed_at", Timestamp, nullable=True),
        sa.Column("performer", sa.String(300), nullable=True),
        sa.Column("conclusion", sa.Text(), nullable=True),
        sa.Column("pdf_stored_name", sa.String(32), nullable=True),
        sa.Column("pdf_size", sa.Integer(), nullable=True),
        sa.Column("pdf_sha256", sa.String(64), nullable=True),
        _fk("results", "patient_id", "users.id"),
        _fk("results", "integration_id", "integrations.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_results")),
    )
    op.create_index(
        "uq_results_identifier",
        "results",
        ["sender", "identifier_system", "identifier_value"],
        unique=True,
    )
    op.create_index("ix_results_patient", "results", ["patient_id", "effective_at"])


def _observations() -> None:
    op.create_table(
        "result_observations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("result_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("code_system", sa.String(200), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("display", sa.String(300), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("value_kind", sa.String(12), nullable=False),
        sa.Column("value_number", sa.Float(), nullable=True),
        sa.Column("value_text", sa.String(1000), nullable=True),
        sa.Column("comparator", sa.String(2), nullable=True),
        sa.Column("unit", sa.String(60), nullable=True),
        sa.Column("low", sa.Float(), nullable=True),
        sa.Column("high", sa.Float(), nullable=True),
        sa.Column("range_text", sa.String(300), nullable=True),
        sa.Column("interpretation", sa.String(8), nullable=True),
        sa.Column("effective_at", Timestamp, nullable=False),
        sa.CheckConstraint(
            "value_kind IN ('quantity', 'integer', 'string', 'concept', 'absent')",
            name="ck_result_observations_value_kind",
        ),
        _fk("result_observations", "result_id", "results.id"),
        _fk("result_observations", "patient_id", "users.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_result_observations")),
    )
    op.create_index(
        "ix_result_observations_result", "result_observations", ["result_id", "position"]
    )
    op.create_index(
        "ix_result_observations_history",
        "result_observations",
        ["patient_id", "code", "code_system", "effective_at"],
    )


def upgrade() -> None:
    _integrations()
    _results()
    _observations()


def downgrade() -> None:
    op.drop_table("result_observations")
    op.drop_table("results")
    op.drop_table("integrations")
