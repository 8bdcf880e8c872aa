"""Which referral books which visit (consult/booking/referrals.py)."""

from __future__ import annotations

from typing import Any

import pytest

from consult.booking import referrals as r
from consult.errors import Conflict
from consult.outcome.referrals import ReferralKind


def referral(kind: str = "rehabilitation", target: str = "rehabilitation", **kw: object) -> Any:
    values: dict[str, Any] = {"id": 7, "kind": kind, "target": target, "cancelled": False}
    values["used_by_booking"] = None
    values.update(kw)
    return r.ReferralState(**values)


def code(fn, *args) -> str:
    with pytest.raises(Conflict) as raised:
        fn(*args)
    return raised.value.code


def test_the_bookable_kinds_are_referral_kinds():
    assert r.BOOKABLE_KINDS == {ReferralKind.SPECIALIST_CONSULTATION, ReferralKind.REHABILITATION}


def test_a_referral_matches_the_specialty_it_targets_by_code():
    assert r.matches(referral(), "rehabilitation")
    assert r.matches(referral("specialist_consultation", "cardiology"), "cardiology")
    assert not r.matches(referral("specialist_consultation", "cardiology"), "rehabilitation")
    assert not r.matches(referral(target="Rehabilitation"), "rehabilitation")
    assert not r.matches(referral("diagnostic_test", "rehabilitation"), "rehabilitation")
    assert not r.matches(referral("hospital", "cardiology"), "cardiology")


def test_refusals_name_the_problem():
    assert code(r.check_required, True, "Rehabilitation") == "referral_required"
    r.check_required(False, "Cardiology")
    assert code(r.check_for_slot, referral(cancelled=True), "rehabilitation", "R") == (
        "referral_cancelled"
    )
    assert code(r.check_for_slot, referral(used_by_booking=3), "rehabilitation", "R") == (
        "referral_used"
    )
    assert code(r.check_for_slot, referral(), "cardiology", "Cardiology") == (
        "referral_other_target"
    )
    r.check_for_slot(referral(), "rehabilitation", "Rehabilitation")
    assert code(r.check_opens_bookings, referral("hospital"), True) == "referral_not_bookable"
    assert code(r.check_opens_bookings, referral(target="yoga"), False) == "referral_not_bookable"
    r.check_opens_bookings(referral(), True)
