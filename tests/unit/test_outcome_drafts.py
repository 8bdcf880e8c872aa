"""The outcome's draft payloads (their shape) and the rules "Issue and end" checks before it
writes: products and pack sizes, validity, ICD-10, the sick leave period, the PESEL."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from consult.errors import Conflict, Invalid
from consult.outcome.checks import check_outcome, same_substance
from consult.outcome.pesel import make_pesel
from consult.outcome.products import Product, shipped_catalogue
from consult.outcome.schemas import (
    OutcomeDraft,
    PaymentLevel,
    PrescriptionDraft,
    ReferralDraft,
    SickLeaveDraft,
)

TODAY = date(2026, 12, 7)
PESEL = make_pesel(date(1980, 5, 17), 12, "female")


def _product(name: str, strength: str) -> Product:
    return next(p for p in shipped_catalogue() if (p.name, p.strength) == (name, strength))


AMOTAKS = _product("Amotaks", "500 mg")
LORISTA = _product("Lorista", "50 mg")


def _prescription(product: Product = LORISTA, **fields: Any) -> dict[str, Any]:
    return {
        "product_id": product.id,
        "pack_size": product.pack_sizes[0],
        "dosage_instruction": "1 tablet in the morning",
        **fields,
    }


SICK_LEAVE = {"start": "2026-12-07", "end": "2026-12-11", "recommendation": 2, "diagnosis": "J06.9"}
REFERRAL = {"kind": "specialist_consultation", "target": "cardiology", "diagnosis": "I10"}


def test_a_prescription_defaults_to_one_pack_at_full_price() -> None:
    draft = PrescriptionDraft.model_validate(_prescription())
    assert (draft.packs, draft.payment_level) == (1, PaymentLevel.FULL)
    assert draft.dispense_from is None and draft.validity_days is None
    assert PrescriptionDraft.model_validate(_prescription(packs=2.0, payment_level="R")).packs == 2


@pytest.mark.parametrize(
    "fields",
    [
        {"dosage_instruction": "   "},
        {"payment_level": "20%"},
        {"payment_level": "100 %"},
        {"packs": 0},
        {"packs": True},
        {"packs": "2"},
        {"pack_size": 0},
        {"validity_days": 366},
        {"therapy_days": 361},
        {"product_id": 0},
        {"unknown_field": 1},
    ],
)
def test_a_malformed_prescription_is_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        PrescriptionDraft.model_validate(_prescription(**fields))


def test_dosage_is_required() -> None:
    body = _prescription()
    del body["dosage_instruction"]
    with pytest.raises(ValidationError):
        PrescriptionDraft.model_validate(body)


def test_a_package_holds_up_to_five_prescriptions() -> None:
    assert (
        len(OutcomeDraft.model_validate({"prescriptions": [_prescription()] * 5}).prescriptions)
        == 5
    )
    with pytest.raises(ValidationError):
        OutcomeDraft.model_validate({"prescriptions": [_prescription()] * 6})


@pytest.mark.parametrize(
    "fields",
    [
        {"recommendation": 3},
        {"letter_codes": ["B", "B"]},
        {"letter_codes": ["A"]},
        {"diagnosis": "J0"},
        {"end": None},
    ],
)
def test_a_malformed_sick_leave_is_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SickLeaveDraft.model_validate({**SICK_LEAVE, **fields})


def test_a_referral_is_routine_unless_urgent() -> None:
    assert ReferralDraft.model_validate(REFERRAL).priority == "routine"
    for kind in ("diagnostic_test", "hospital", "rehabilitation"):
        assert ReferralDraft.model_validate({**REFERRAL, "kind": kind, "priority": "urgent"})
    with pytest.raises(ValidationError):
        ReferralDraft.model_validate({**REFERRAL, "diagnosis": None})
    with pytest.raises(ValidationError):
        ReferralDraft.model_validate({**REFERRAL, "kind": "dentist"})


def test_the_drafts_describe_themselves_for_openapi() -> None:
    schema = OutcomeDraft.model_json_schema()
    assert {"recommendation", "prescriptions", "referrals", "sick_leave"} <= set(
        schema["properties"]
    )


def _check(pesel: str | None = PESEL, **draft: Any) -> Any:
    return check_outcome(OutcomeDraft.model_validate(draft), shipped_catalogue(), TODAY, pesel)


def test_a_whole_outcome_passes_with_its_validity_and_diagnoses() -> None:
    checked = _check(
        prescriptions=[
            _prescription(AMOTAKS),
            _prescription(validity_days=360, therapy_days=360),
            _prescription(dispense_from="2026-12-20"),
        ],
        referrals=[REFERRAL],
        sick_leave={**SICK_LEAVE, "employer_nip": "526-025-02-74", "letter_codes": ["E"]},
    )
    assert [(p.validity_days, p.valid_until) for p in checked.prescriptions] == [
        (7, TODAY + timedelta(days=7)),
        (360, TODAY + timedelta(days=360)),
        (30, date(2027, 1, 19)),
    ]
    assert [d.code for d in checked.referral_diagnoses] == ["I10"]
    assert checked.sick_leave_diagnosis.code == "J06.9"
    assert checked.employer_nip == "5260250274"


@pytest.mark.parametrize(
    ("draft", "code"),
    [
        ({"prescriptions": [_prescription(product_id=2**31 - 1)]}, "product_unknown"),
        ({"prescriptions": [_prescription(pack_size=7)]}, "pack_size_unknown"),
        ({"prescriptions": [_prescription(AMOTAKS, validity_days=90)]}, "long_term_not_allowed"),
        ({"prescriptions": [_prescription(validity_days=90)]}, "therapy_days_required"),
        (
            {"prescriptions": [_prescription(dispense_from="2026-12-06")]},
            "dispense_from_before_issue",
        ),
        ({"referrals": [{**REFERRAL, "diagnosis": "A00.5"}]}, "icd10_unknown"),
        ({"sick_leave": {**SICK_LEAVE, "diagnosis": "J06.99"}}, "icd10_unknown"),
        (
            {"sick_leave": {**SICK_LEAVE, "start": "2026-12-05"}},
            "sick_leave_backdating_reason_required",
        ),
        ({"sick_leave": {**SICK_LEAVE, "start": "2026-12-03"}}, "sick_leave_backdated_too_far"),
        ({"sick_leave": {**SICK_LEAVE, "end": "2026-12-06"}}, "sick_leave_period_reversed"),
        ({"sick_leave": {**SICK_LEAVE, "employer_nip": "1234563217"}}, "nip_bad_checksum"),
    ],
)
def test_a_broken_rule_is_refused_with_its_code(draft: dict[str, Any], code: str) -> None:
    with pytest.raises(Invalid) as refused:
        _check(**draft)
    assert refused.value.code == code


def test_a_prescription_or_sick_leave_needs_the_patients_pesel() -> None:
    for draft in ({"prescriptions": [_prescription()]}, {"sick_leave": SICK_LEAVE}):
        with pytest.raises(Conflict) as refused:
            _check(pesel=None, **draft)
        assert refused.value.code == "pesel_required"
    # A referral and a recommendation need none.
    assert _check(pesel=None, referrals=[REFERRAL], recommendation="Rest").prescriptions == []


def test_an_active_prescription_for_the_same_substance_is_a_warning() -> None:
    ibuprom = _product("Ibuprom", "400 mg")
    assert same_substance([ibuprom, LORISTA], ["Ibuprofen", "metformina"]) == ["ibuprofen"]
    assert same_substance([LORISTA], []) == []
