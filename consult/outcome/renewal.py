"""Whether the patient may ask to renew a prescription: it is active (or not yet dispensable),
or expired less than 120 days ago, and its product is eligible for long-term treatment, which
antibiotics and psychotropic or narcotic products never are."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Final

from consult.errors import Conflict
from consult.outcome.products import Product
from consult.outcome.validity import State, Validity, clinic_day, status

RENEWAL_WINDOW_DAYS: Final = 120


class RenewalStatus(StrEnum):
    """A renewal request's state: open until its doctor approves or declines it."""

    OPEN = "open"
    APPROVED = "approved"
    DECLINED = "declined"


def check_renewable(product: Product, prescription: Validity, now: datetime) -> None:
    """Nothing, or ``Conflict`` with the reason: ``renewal_cancelled``,
    ``renewal_antibiotic``, ``renewal_psychotropic_narcotic``, ``renewal_not_long_term``,
    ``renewal_expired_too_long``."""
    if prescription.cancelled:
        raise Conflict("a cancelled prescription cannot be renewed", code="renewal_cancelled")
    if product.antibiotic:
        raise Conflict("antibiotics are not renewed: see a doctor", code="renewal_antibiotic")
    if product.psychotropic_narcotic:
        raise Conflict(
            "psychotropic and narcotic products are not renewed: see a doctor",
            code="renewal_psychotropic_narcotic",
        )
    if not product.long_term_eligible:
        raise Conflict(
            "only products for long-term treatment are renewed", code="renewal_not_long_term"
        )
    if status(prescription, now).state is State.EXPIRED:
        # Expired "0 days ago" on the day after its last day.
        expired_days_ago = (clinic_day(now) - prescription.valid_until).days - 1
        if expired_days_ago >= RENEWAL_WINDOW_DAYS:
            raise Conflict(
                f"a prescription expired {RENEWAL_WINDOW_DAYS} days ago or more is not "
                "renewed: see a doctor",
                code="renewal_expired_too_long",
            )
