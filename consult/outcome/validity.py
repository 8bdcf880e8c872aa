"""How long an e-prescription may be dispensed, and its status on a given day.

Validity counts from the issue date, or from the "to be dispensed from" date when the doctor
sets one: 30 days by default; 7 for antibiotics; 120 for immunological products; 30 for
psychotropic and narcotic products; for long-term treatment the doctor may choose up to 365
days, for a product eligible for it, covering at most 360 days of therapy.

Days are Polish calendar days (the pharmacy's), so "now" is read in Europe/Warsaw. A validity
of N days counts from the day after the start, as periods in days do in Polish civil law: a
prescription issued on 1 March with 30 days is dispensable through 31 March.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import Final
from zoneinfo import ZoneInfo

from consult.errors import Invalid

CLINIC_ZONE_NAME: Final = "Europe/Warsaw"
DEFAULT_DAYS: Final = 30
LONG_TERM_MAX_DAYS: Final = 365
THERAPY_MAX_DAYS: Final = 360
# "Expires in N days" once N is this small: the patient should go to a pharmacy now.
EXPIRING_WITHIN_DAYS: Final = 7


class Category(StrEnum):
    """A product's validity category (one per product; the strictest flag wins)."""

    STANDARD = "standard"
    ANTIBIOTIC = "antibiotic"
    IMMUNOLOGICAL = "immunological"
    PSYCHOTROPIC_NARCOTIC = "psychotropic_narcotic"


CATEGORY_DAYS: Final = {
    Category.STANDARD: DEFAULT_DAYS,
    Category.ANTIBIOTIC: 7,
    Category.IMMUNOLOGICAL: 120,
    Category.PSYCHOTROPIC_NARCOTIC: 30,
}


def validity_days(
    category: Category,
    *,
    long_term_eligible: bool,
    chosen_days: int | None = None,
    therapy_days: int | None = None,
) -> int:
    """The validity in days: the category's, or ``chosen_days`` for long-term treatment
    (``Invalid`` with ``long_term_not_allowed``, ``validity_out_of_range``,
    ``therapy_days_required`` or ``therapy_too_long`` when the choice breaks a rule)."""
    days = CATEGORY_DAYS[category]
    if chosen_days is None or chosen_days == days:
        return days
    if category in (Category.ANTIBIOTIC, Category.PSYCHOTROPIC_NARCOTIC) or not (
        long_term_eligible
    ):
        raise Invalid(
            f"this product's validity is {days} days: it is not for long-term treatment",
            code="long_term_not_allowed",
        )
    if not days < chosen_days <= LONG_TERM_MAX_DAYS:
        raise Invalid(
            f"a long-term prescription is valid {days + 1} to {LONG_TERM_MAX_DAYS} days",
            code="validity_out_of_range",
        )
    if therapy_days is None:
        raise Invalid(
            "a long-term prescription states how many days of therapy it covers",
            code="therapy_days_required",
        )
    if not 1 <= therapy_days <= THERAPY_MAX_DAYS:
        raise Invalid(
            f"a prescription covers at most {THERAPY_MAX_DAYS} days of therapy",
            code="therapy_too_long",
        )
    return chosen_days


def valid_until(issued_on: date, days: int, dispense_from: date | None = None) -> date:
    """The last day the prescription may be dispensed (``Invalid`` with
    ``dispense_from_before_issue`` when the "from" date is before the issue date)."""
    if dispense_from is not None and dispense_from < issued_on:
        raise Invalid(
            "the 'to be dispensed from' date cannot be before the issue date",
            code="dispense_from_before_issue",
        )
    return (dispense_from or issued_on) + timedelta(days=days)


class State(StrEnum):
    ACTIVE = "active"
    DISPENSABLE_FROM = "dispensable_from"
    EXPIRING = "expiring"  # "expires in N days"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Validity:
    """What the status needs of a prescription."""

    issued_on: date
    valid_until: date
    dispense_from: date | None = None
    cancelled: bool = False


@dataclass(frozen=True)
class Status:
    state: State
    # Days left to dispense it (0 on its last day), while it is not expired nor cancelled.
    expires_in_days: int | None = None
    # The first day it may be dispensed, while that is in the future.
    dispensable_from: date | None = None


def clinic_time(now: datetime) -> datetime:
    """``now`` (an aware datetime) on the clinic's clock: what a printed document shows."""
    return now.astimezone(_clinic_zone())


def clinic_day(now: datetime) -> date:
    return clinic_time(now).date()


def status(prescription: Validity, now: datetime) -> Status:
    """The prescription's status at ``now`` (an aware datetime), as the patient sees it."""
    if prescription.cancelled:
        return Status(State.CANCELLED)
    today = clinic_day(now)
    if today > prescription.valid_until:
        return Status(State.EXPIRED)
    left = (prescription.valid_until - today).days
    if prescription.dispense_from is not None and today < prescription.dispense_from:
        return Status(State.DISPENSABLE_FROM, left, prescription.dispense_from)
    return Status(State.EXPIRING if left <= EXPIRING_WITHIN_DAYS else State.ACTIVE, left)


@cache
def _clinic_zone() -> ZoneInfo:
    # Read on first use: ZoneInfo opens the tz database file, and nothing is done at import.
    return ZoneInfo(CLINIC_ZONE_NAME)
