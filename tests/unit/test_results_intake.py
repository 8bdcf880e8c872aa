"""Results intake (consult/results/intake.py): valid DiagnosticReport bundles read into a
submission (the PESEL and where it was, the report, its observations, the PDF), invalid ones
refused with an OperationOutcome naming each problem at its element (400 when the body is not
FHIR, 422 when it breaks consult's rules); the flag rule (flags.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome

from consult.json_limits import loads
from consult.results import intake
from consult.results.flags import ValueFlag, ValueFlagSource, flag
from consult.results.issues import BundleRefused, operation_outcome
from tests.support import pdf
from tests.unit.results_sample import (
    HGB_URL,
    PATIENT_URL,
    PESEL_SYSTEM,
    WBC_URL,
    blood_count,
    changed,
    imaging_report,
)


def read(bundle: Any) -> intake.Submission:
    return intake.read(bundle if isinstance(bundle, bytes) else json.dumps(bundle).encode(), loads)


def refusal(bundle: Any) -> BundleRefused:
    with pytest.raises(BundleRefused) as refused:
        read(bundle)
    outcome = operation_outcome(refused.value.issues)
    OperationOutcome.model_validate(outcome)  # a valid FHIR OperationOutcome
    return refused.value


def test_a_blood_count_is_read_with_its_patient_and_observations() -> None:
    found = read(blood_count())
    assert (found.pesel, found.pesel_at) == (
        "85031412361",
        "Bundle.entry[0].resource.identifier[0].value",
    )
    assert found.entries == ("other", "report", 0, 1)
    report = found.report
    assert (report.identifier_system, report.identifier_value) == (
        "https://lab.example.org/reports",
        "CBC-2026-0042",
    )
    assert (report.code.code, report.code.display) == ("58410-2", "Complete blood count")
    assert report.category is not None and report.category.display == "Hematology"
    assert report.effective_at == datetime(2026, 12, 18, 6, 30, tzinfo=UTC)  # +01:00 as UTC
    assert (report.performer, report.conclusion, report.pdf) == (
        "Laboratorium Example",
        "Leukocytosis.",
        None,
    )
    wbc, hgb = report.observations
    assert (wbc.code.code, wbc.value_kind, wbc.value_number, wbc.value_text) == (
        "6690-2",
        "quantity",
        11.2,
        "11.2",
    )
    assert (wbc.unit, wbc.low, wbc.high, wbc.range_text, wbc.interpretation) == (
        "10^9/L",
        4.0,
        10.0,
        "4.0–10.0",
        "H",
    )
    assert hgb.interpretation is None and hgb.code.display == "Hemoglobin"


def test_observations_come_in_the_reports_order_whatever_the_entries_order() -> None:
    bundle = blood_count()
    bundle["entry"][1]["resource"]["result"] = [{"reference": HGB_URL}, {"reference": WBC_URL}]
    found = read(bundle)
    assert [o.code.code for o in found.report.observations] == ["718-7", "6690-2"]
    assert found.entries == ("other", "report", 1, 0)


def test_an_imaging_report_with_a_conclusion_and_its_pdf() -> None:
    found = read(imaging_report(pdf()))
    assert found.pesel_at == "Bundle.entry[0].resource.subject.identifier.value"
    assert (
        found.report.pdf == pdf()
        and found.pdf_at == "Bundle.entry[0].resource.presentedForm[0].data"
    )
    assert found.report.observations == () and found.report.conclusion.startswith("No focal")
    assert found.report.code.display == "Chest X-ray, 2 views"
    assert found.report.effective_at == datetime(2026, 12, 19, tzinfo=UTC)  # a date: midnight


def test_the_fingerprint_is_the_contents() -> None:
    first = read(blood_count()).report.fingerprint()
    assert read(blood_count()).report.fingerprint() == first
    assert read(blood_count(wbc=9.9)).report.fingerprint() != first
    with_pdf = read(imaging_report(pdf())).report.fingerprint()
    assert read(imaging_report(pdf(4_000))).report.fingerprint() != with_pdf


def _nul(bundle: dict[str, Any]) -> dict[str, Any]:
    bundle["entry"][1]["resource"]["conclusion"] = "bad\x00"
    return bundle


BASE = blood_count()
REPORT = "Bundle.entry[1].resource"
WBC = "Bundle.entry[2].resource"

# (what is wrong, the bundle, status, consult's code, FHIR issue type, expression)
NOT_FHIR = [
    ("not JSON", b"{", 400, "invalid_bundle", "structure", None),
    ("too deep", b"[" * 40 + b"]" * 40, 400, "invalid_bundle", "structure", None),
    (
        "a Patient",
        {"resourceType": "Patient"},
        400,
        "invalid_bundle",
        "structure",
        "Bundle.resourceType",
    ),
    (
        "an unknown type",
        changed(BASE, 0, resourceType="Patinet"),
        400,
        "invalid_bundle",
        "structure",
        "Bundle.entry[0].resource.resourceType",
    ),
    ("a NUL", _nul(blood_count()), 400, "invalid_bundle", "value", f"{REPORT}.conclusion"),
    (
        "a decimal in words",
        changed(BASE, 2, valueQuantity={"value": "eleven"}),
        400,
        "invalid_bundle",
        "value",
        f"{WBC}.valueQuantity.value",
    ),
    (
        "an unknown element",
        changed(BASE, 1, bogus=1),
        400,
        "invalid_bundle",
        "structure",
        f"{REPORT}.bogus",
    ),
    (
        "no status",
        changed(BASE, 1, status=None),
        400,
        "invalid_bundle",
        "required",
        f"{REPORT}.status",
    ),
    (
        "a date without a zone",
        changed(BASE, 1, effectiveDateTime="2026-12-18T07:30:00"),
        400,
        "invalid_bundle",
        "value",
        f"{REPORT}.effectiveDateTime",
    ),
]
BREAKS_RULES = [
    ("a batch", {**BASE, "type": "batch"}, "value", "Bundle.type"),
    ("no identifier", changed(BASE, 1, identifier=None), "required", f"{REPORT}.identifier"),
    ("no subject", changed(BASE, 1, subject=None), "required", f"{REPORT}.subject"),
    (
        "a subject of nothing",
        changed(BASE, 1, subject={"reference": "urn:uuid:nothing"}),
        "not-found",
        f"{REPORT}.subject",
    ),
    (
        "no PESEL",
        changed(BASE, 0, identifier=[{"system": "urn:other", "value": "1"}]),
        "required",
        f"{REPORT}.subject",
    ),
    (
        "a PESEL with a typo",
        changed(BASE, 0, identifier=[{"system": PESEL_SYSTEM, "value": "85031412362"}]),
        "value",
        "Bundle.entry[0].resource.identifier[0].value",
    ),
    ("an unknown status", changed(BASE, 1, status="done"), "value", f"{REPORT}.status"),
    ("no date", changed(BASE, 1, effectiveDateTime=None, issued=None), "required", REPORT),
    (
        "a result of nothing",
        changed(BASE, 1, result=[{"reference": WBC_URL}, {"reference": "Observation/9"}]),
        "not-found",
        f"{REPORT}.result[1]",
    ),
    (
        "an Observation not listed",
        changed(BASE, 1, result=[{"reference": WBC_URL}]),
        "invariant",
        "Bundle.entry[3].resource",
    ),
    (
        "a code without coding",
        changed(BASE, 2, code={"text": "WBC"}),
        "required",
        f"{WBC}.code.coding",
    ),
    (
        "a boolean value",
        changed(BASE, 2, valueQuantity=None, valueBoolean=True),
        "not-supported",
        f"{WBC}.valueBoolean",
    ),
    (
        "components only",
        changed(
            BASE,
            2,
            valueQuantity=None,
            component=[{"code": {"text": "x"}, "valueString": "y"}],
        ),
        "not-supported",
        f"{WBC}.component",
    ),
    ("no value", changed(BASE, 2, valueQuantity=None), "required", WBC),
    ("an unknown Observation status", changed(BASE, 2, status="done"), "value", f"{WBC}.status"),
    (
        "a PDF by URL",
        changed(
            BASE, 1, presentedForm=[{"contentType": "application/pdf", "url": "https://x/r.pdf"}]
        ),
        "required",
        f"{REPORT}.presentedForm[0]",
    ),
    (
        "HTML",
        changed(BASE, 1, presentedForm=[{"contentType": "text/html", "data": "PGI+aGk8L2I+"}]),
        "not-supported",
        f"{REPORT}.presentedForm[0].contentType",
    ),
    (
        "a conclusion too long",
        changed(BASE, 1, conclusion="x" * 20_001),
        "too-costly",
        f"{REPORT}.conclusion",
    ),
]


@pytest.mark.parametrize(
    ("bundle", "status", "code", "kind", "at"),
    [case[1:] for case in NOT_FHIR],
    ids=[case[0] for case in NOT_FHIR],
)
def test_a_body_that_is_not_fhir_is_refused_with_400(bundle, status, code, kind, at) -> None:
    refused = refusal(bundle)
    assert refused.status == status and refused.code == code
    first = refused.issues[0]
    assert (first.kind, first.expression) == (kind, at)


@pytest.mark.parametrize(
    ("bundle", "kind", "at"),
    [case[1:] for case in BREAKS_RULES],
    ids=[case[0] for case in BREAKS_RULES],
)
def test_a_bundle_that_breaks_consults_rules_is_refused_with_422(bundle, kind, at) -> None:
    refused = refusal(bundle)
    assert (refused.status, refused.code) == (422, "invalid_report")
    assert (kind, at) in {(i.kind, i.expression) for i in refused.issues}


def test_a_report_with_nothing_in_it_and_two_reports() -> None:
    empty = changed(BASE, 1, result=None, conclusion=None)
    empty["entry"] = empty["entry"][:2]
    assert refusal(empty).issues[0].message.startswith("the report holds nothing")
    twice = json.loads(json.dumps(BASE))
    twice["entry"].append(twice["entry"][1])
    assert refusal(twice).issues[0].expression == "Bundle.entry"


def test_every_problem_is_named_at_once() -> None:
    bad = changed(BASE, 1, identifier=None, status="done", subject={"reference": "urn:x"})
    refused = refusal(bad)
    expressions = [i.expression for i in refused.issues]
    assert expressions == [f"{REPORT}.subject", f"{REPORT}.identifier", f"{REPORT}.status"]
    outcome = operation_outcome(refused.issues)
    assert outcome["issue"][0]["details"]["coding"] == [
        {"system": "urn:consult:error-code", "code": "invalid_report"}
    ]
    assert outcome["issue"][0]["expression"] == [f"{REPORT}.subject"]


def test_the_subject_may_name_the_patient_by_reference_or_by_identifier() -> None:
    by_identifier = changed(
        BASE, 1, subject={"identifier": {"system": PESEL_SYSTEM, "value": "85031412361"}}
    )
    assert read(by_identifier).pesel_at == f"{REPORT}.subject.identifier.value"
    by_id = json.loads(json.dumps(BASE))
    by_id["entry"][0]["resource"]["id"] = "anna"
    by_id["entry"][1]["resource"]["subject"] = {"reference": "Patient/anna"}
    assert read(by_id).pesel == "85031412361"
    assert PATIENT_URL in json.dumps(BASE)


@pytest.mark.parametrize(
    ("interpretation", "value", "comparator", "low", "high", "expected"),
    [
        ("H", 5.0, None, 4.0, 10.0, (ValueFlag.HIGH, ValueFlagSource.LABORATORY)),  # its word
        ("N", 11.0, None, 4.0, 10.0, (ValueFlag.NORMAL, ValueFlagSource.LABORATORY)),
        ("LL", 1.0, None, None, None, (ValueFlag.LOW, ValueFlagSource.LABORATORY)),
        ("AA", None, None, None, None, (ValueFlag.ABNORMAL, ValueFlagSource.LABORATORY)),
        (None, 11.0, None, 4.0, 10.0, (ValueFlag.HIGH, ValueFlagSource.RANGE)),
        (None, 3.9, None, 4.0, 10.0, (ValueFlag.LOW, ValueFlagSource.RANGE)),
        (None, 10.0, None, 4.0, 10.0, (ValueFlag.NORMAL, ValueFlagSource.RANGE)),  # bounds in
        (None, 201.0, None, None, 200.0, (ValueFlag.HIGH, ValueFlagSource.RANGE)),
        ("POS", 11.0, None, 4.0, 10.0, (ValueFlag.HIGH, ValueFlagSource.RANGE)),  # not a flag
        (None, 0.1, "<", 0.5, 3.0, (None, None)),  # a bound, not a value
        (None, 5.0, None, None, None, (None, None)),  # no range
        (None, None, None, 4.0, 10.0, (None, None)),  # a text value
    ],
)
def test_the_flag_is_the_laboratorys_else_the_ranges(
    interpretation, value, comparator, low, high, expected
) -> None:
    assert flag(interpretation, value, comparator, low, high) == expected
