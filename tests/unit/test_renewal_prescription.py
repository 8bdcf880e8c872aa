"""An approved renewal's prescription: the original's product issued again today, the doctor's
changes applied, its validity worked out again from the category."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace
from typing import Any

import pytest

from consult.errors import Invalid
from consult.outcome.renewal_payloads import ApproveIn
from consult.outcome.renewals import renewed_prescription

TODAY = date(2026, 6, 10)


def _original(**overrides: Any) -> SimpleNamespace:
    values: dict[str, Any] = {
        "patient_id": 2,
        "doctor_id": 4,
        "product_id": 241,
        "product_name": "Acard",
        "substance": "kwas acetylosalicylowy",
        "strength": "75 mg",
        "form": "tabletki dojelitowe",
        "category": "standard",
        "long_term_eligible": True,
        "pack_size": 60,
        "packs": 2,
        "dosage_instruction": "1 tablet daily",
        "payment_level": "50%",
        "issued_on": date(2026, 1, 5),
        "dispense_from": date(2026, 1, 20),
        "validity_days": 180,
        "therapy_days": 120,
    }
    values.update(overrides)
    return SimpleNamespace(**values)


def test_by_default_the_original_is_issued_again_today() -> None:
    row = renewed_prescription(_original(), ApproveIn(), TODAY, doctor_id=5)
    assert row["issued_on"] == TODAY and row["dispense_from"] is None
    assert (row["validity_days"], row["therapy_days"]) == (180, 120)
    assert row["valid_until"] == date(2026, 12, 7)  # TODAY + 180 days
    assert (row["packs"], row["dosage_instruction"], row["payment_level"]) == (
        2,
        "1 tablet daily",
        "50%",
    )
    assert (row["doctor_id"], row["patient_id"], row["position"]) == (5, 2, 1)


def test_the_doctor_changes_dosage_packs_and_validity() -> None:
    body = ApproveIn(dosage_instruction="1 every other day", packs=1, validity_days=30)
    row = renewed_prescription(_original(), body, TODAY, doctor_id=4)
    assert (row["dosage_instruction"], row["packs"], row["validity_days"]) == (
        "1 every other day",
        1,
        30,
    )
    assert row["valid_until"] == date(2026, 7, 10)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (ApproveIn(validity_days=20), "validity_out_of_range"),
        (ApproveIn(validity_days=200, therapy_days=None), None),
    ],
)
def test_a_long_term_choice_keeps_the_rules(body: ApproveIn, code: str | None) -> None:
    if code is None:  # no therapy days given: the original's 120 stand
        assert renewed_prescription(_original(), body, TODAY, 4)["validity_days"] == 200
        return
    with pytest.raises(Invalid) as refused:
        renewed_prescription(_original(), body, TODAY, 4)
    assert refused.value.code == code


def test_without_therapy_days_on_the_original_a_long_term_choice_needs_them() -> None:
    original = _original(validity_days=30, therapy_days=None)
    with pytest.raises(Invalid) as refused:
        renewed_prescription(original, ApproveIn(validity_days=90), TODAY, 4)
    assert refused.value.code == "therapy_days_required"
    row = renewed_prescription(original, ApproveIn(validity_days=90, therapy_days=90), TODAY, 4)
    assert row["validity_days"] == 90
