"""Ratings in the schema (migration 0014): a patient's scores of their finished consultations,
their past booked visits, and the service as a whole."""

from __future__ import annotations

import sqlalchemy as sa

from consult.storage.metadata import Timestamp, metadata

__all__ = ["ratings"]

# What a rating is about: exactly one visit, a walk-in consultation or a booking. A
# consultation is rated as such ('consultation') and for the service ('service'); a booking for
# its booking process ('booking') and for the service. Each at most once per visit.
TARGET_RULE = (
    "(kind = 'consultation' AND consultation_id IS NOT NULL AND booking_id IS NULL)"
    " OR (kind = 'booking' AND booking_id IS NOT NULL AND consultation_id IS NULL)"
    " OR (kind = 'service' AND (consultation_id IS NULL) <> (booking_id IS NULL))"
)

ratings = sa.Table(
    "ratings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("patient_id", sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("kind", sa.String(12), nullable=False),
    sa.Column("consultation_id", sa.ForeignKey("consultations.id"), nullable=True),
    sa.Column("booking_id", sa.ForeignKey("bookings.id"), nullable=True),
    # The visit's doctor and specialty, copied (they no longer change once the visit is over):
    # the figures group by them without reading the visits.
    sa.Column("doctor_id", sa.ForeignKey("users.id"), nullable=False),
    sa.Column("specialty_code", sa.ForeignKey("specialties.code"), nullable=False),
    sa.Column("score", sa.SmallInteger, nullable=False),
    sa.Column("comment", sa.String(1000), nullable=False),
    # The first rating: it opens the days in which it may be changed, and dates it in figures.
    sa.Column("rated_at", Timestamp, nullable=False),
    sa.Column("changed_at", Timestamp, nullable=True),
    sa.CheckConstraint("score BETWEEN 1 AND 5", name="ck_ratings_score"),
    sa.CheckConstraint("kind IN ('consultation', 'booking', 'service')", name="ck_ratings_kind"),
    sa.CheckConstraint(TARGET_RULE, name="ck_ratings_target"),
    # Once each, also under concurrent requests (NULLs are distinct: the other visit kind's
    # rows never collide).
    sa.Index("uq_ratings_consultation", "consultation_id", "kind", unique=True),
    sa.Index("uq_ratings_booking", "booking_id", "kind", unique=True),
    # The figures read the last 30 days; a doctor reads their own.
    sa.Index("ix_ratings_rated_at", "rated_at"),
    sa.Index("ix_ratings_doctor", "doctor_id", "rated_at"),
    # The patient's timeline, newest first (migration 0017).
    sa.Index("ix_ratings_timeline", "patient_id", "rated_at", "id"),
)
