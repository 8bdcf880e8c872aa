"""How long an e-prescription is valid per category, its status as the patient sees it, and
whether it may be renewed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from consult.errors import Conflict, Invalid
from consult.outcome.products import Product
from consult.outcome.renewal import check_renewable
from consult.outcome.validity import (
    Category,
    State,
    Validity,
    status,
    valid_until,
    validity_days,
)

ISSUED = date(2026, 3, 1)


def _noon(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 11, 0, tzinfo=UTC)  # 12:00 in Warsaw


@pytest.mark.parametrize(
    ("category", "days"),
    [
        (Category.STANDARD, 30),
        (Category.ANTIBIOTIC, 7),
        (Category.IMMUNOLOGICAL, 120),
        (Category.PSYCHOTROPIC_NARCOTIC, 30),
    ],
)
def test_each_category_has_its_validity(category: Category, days: int) -> None:
    assert validity_days(category, long_term_eligible=False) == days
    assert validity_days(category, long_term_eligible=False, chosen_days=days) == days


def test_validity_counts_from_the_issue_date_or_the_dispense_from_date() -> None:
    # Issued on 1 March with 30 days: dispensable through 31 March.
    assert valid_until(ISSUED, 30) == date(2026, 3, 31)
    assert valid_until(ISSUED, 7) == date(2026, 3, 8)
    assert valid_until(ISSUED, 30, dispense_from=date(2026, 4, 10)) == date(2026, 5, 10)
    with pytest.raises(Invalid) as refused:
        valid_until(ISSUED, 30, dispense_from=date(2026, 2, 28))
    assert refused.value.code == "dispense_from_before_issue"


def test_the_doctor_may_choose_up_to_365_days_for_long_term_treatment() -> None:
    chosen = validity_days(
        Category.STANDARD, long_term_eligible=True, chosen_days=365, therapy_days=360
    )
    assert chosen == 365
    assert valid_until(ISSUED, chosen) == date(2027, 3, 1)
    assert (
        validity_days(
            Category.IMMUNOLOGICAL, long_term_eligible=True, chosen_days=180, therapy_days=90
        )
        == 180
    )


@pytest.mark.parametrize(
    ("category", "eligible", "chosen", "therapy", "code"),
    [
        (Category.STANDARD, False, 90, 90, "long_term_not_allowed"),
        (Category.ANTIBIOTIC, True, 30, 30, "long_term_not_allowed"),
        (Category.PSYCHOTROPIC_NARCOTIC, True, 90, 90, "long_term_not_allowed"),
        (Category.STANDARD, True, 366, 360, "validity_out_of_range"),
        (Category.STANDARD, True, 20, 20, "validity_out_of_range"),
        (Category.IMMUNOLOGICAL, True, 100, 100, "validity_out_of_range"),
        (Category.STANDARD, True, 180, None, "therapy_days_required"),
        (Category.STANDARD, True, 365, 361, "therapy_too_long"),
        (Category.STANDARD, True, 365, 0, "therapy_too_long"),
    ],
)
def test_a_long_term_choice_that_breaks_a_rule_says_which(
    category: Category, eligible: bool, chosen: int, therapy: int | None, code: str
) -> None:
    with pytest.raises(Invalid) as refused:
        validity_days(
            category, long_term_eligible=eligible, chosen_days=chosen, therapy_days=therapy
        )
    assert refused.value.code == code


def test_the_status_follows_the_days() -> None:
    p = Validity(issued_on=ISSUED, valid_until=date(2026, 3, 31))
    assert status(p, _noon(ISSUED)).state is State.ACTIVE
    assert status(p, _noon(ISSUED)).expires_in_days == 30
    assert status(p, _noon(date(2026, 3, 23))).state is State.ACTIVE
    assert status(p, _noon(date(2026, 3, 24))).state is State.EXPIRING
    assert status(p, _noon(date(2026, 3, 24))).expires_in_days == 7
    assert status(p, _noon(date(2026, 3, 31))).expires_in_days == 0
    assert status(p, _noon(date(2026, 4, 1))).state is State.EXPIRED
    cancelled = Validity(ISSUED, date(2026, 3, 31), cancelled=True)
    assert status(cancelled, _noon(ISSUED)).state is State.CANCELLED


def test_a_prescription_is_dispensable_from_its_date() -> None:
    p = Validity(ISSUED, valid_until(ISSUED, 30, date(2026, 3, 10)), date(2026, 3, 10))
    before = status(p, _noon(date(2026, 3, 9)))
    assert before.state is State.DISPENSABLE_FROM
    assert before.dispensable_from == date(2026, 3, 10)
    assert status(p, _noon(date(2026, 3, 10))).state is State.ACTIVE


def test_the_day_is_the_polish_calendar_day() -> None:
    p = Validity(ISSUED, date(2026, 3, 31))
    # 23:30 UTC on 31 March is already 1 April in Warsaw (summer time: UTC+2).
    assert status(p, datetime(2026, 3, 31, 21, 30, tzinfo=UTC)).state is State.EXPIRING
    assert status(p, datetime(2026, 3, 31, 22, 30, tzinfo=UTC)).state is State.EXPIRED


def _product(**flags: bool) -> Product:
    return Product(1, "Lorista", "losartan", "50 mg", "tabletki powlekane", (28,), **flags)


LONG_TERM = _product(long_term_eligible=True)
ACTIVE = Validity(ISSUED, date(2026, 3, 31))


def test_an_active_or_lately_expired_long_term_prescription_may_be_renewed() -> None:
    check_renewable(LONG_TERM, ACTIVE, _noon(ISSUED))
    not_yet = Validity(ISSUED, date(2026, 5, 10), dispense_from=date(2026, 4, 10))
    check_renewable(LONG_TERM, not_yet, _noon(ISSUED))
    # Expired on 1 April; 119 days later it may still be renewed.
    check_renewable(LONG_TERM, ACTIVE, _noon(date(2026, 4, 1) + timedelta(days=119)))


@pytest.mark.parametrize(
    ("product", "prescription", "day", "code"),
    [
        (LONG_TERM, ACTIVE, date(2026, 4, 1) + timedelta(days=120), "renewal_expired_too_long"),
        (
            LONG_TERM,
            Validity(ISSUED, date(2026, 3, 31), cancelled=True),
            ISSUED,
            "renewal_cancelled",
        ),
        (_product(antibiotic=True), ACTIVE, ISSUED, "renewal_antibiotic"),
        (_product(psychotropic_narcotic=True), ACTIVE, ISSUED, "renewal_psychotropic_narcotic"),
        (_product(), ACTIVE, ISSUED, "renewal_not_long_term"),
        (_product(immunological=True), ACTIVE, ISSUED, "renewal_not_long_term"),
    ],
)
def test_a_prescription_that_may_not_be_renewed_says_why(
    product: Product, prescription: Validity, day: date, code: str
) -> None:
    with pytest.raises(Conflict) as refused:
        check_renewable(product, prescription, _noon(day))
    assert refused.value.code == code
