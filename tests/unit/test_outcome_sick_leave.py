"""Sick leave (e-ZLA): the period may start at most 3 days before the day of issue, with a
stated reason when it starts before it."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from consult.errors import Invalid
from consult.outcome.sick_leave import check_period

TODAY = date(2026, 12, 7)


def _days(n: int) -> date:
    return TODAY + timedelta(days=n)


def test_a_period_from_today_needs_no_reason() -> None:
    assert check_period(TODAY, TODAY, TODAY, None) == 1
    assert check_period(TODAY, _days(6), TODAY, None) == 7
    assert check_period(_days(1), _days(3), TODAY, None) == 3


def test_a_period_may_start_up_to_3_days_back_with_a_reason() -> None:
    for back in (1, 2, 3):
        assert check_period(_days(-back), _days(2), TODAY, "fever since Friday") == back + 3


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_a_backdated_period_without_a_reason_is_refused(reason: str | None) -> None:
    with pytest.raises(Invalid) as refused:
        check_period(_days(-1), _days(2), TODAY, reason)
    assert refused.value.code == "sick_leave_backdating_reason_required"


def test_a_period_starting_4_days_back_is_refused_even_with_a_reason() -> None:
    with pytest.raises(Invalid) as refused:
        check_period(_days(-4), _days(2), TODAY, "fever since Thursday")
    assert refused.value.code == "sick_leave_backdated_too_far"


def test_a_period_ending_before_it_starts_is_refused() -> None:
    with pytest.raises(Invalid) as refused:
        check_period(_days(2), _days(1), TODAY, None)
    assert refused.value.code == "sick_leave_period_reversed"


def test_one_certificate_covers_at_most_182_days() -> None:
    assert check_period(TODAY, _days(181), TODAY, None) == 182
    with pytest.raises(Invalid) as refused:
        check_period(TODAY, _days(182), TODAY, None)
    assert refused.value.code == "sick_leave_too_long"
