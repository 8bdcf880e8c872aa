"""Bundles a laboratory sends (docs/protocol.md, "Laboratory and imaging results"): a blood
count as a transaction (the Patient by PESEL, the DiagnosticReport, two Observations: the
leukocytes flagged high by the laboratory, the haemoglobin with a range only), and an imaging
report with a conclusion and its PDF. The input of the intake's unit tests and of the
integration tests."""

from __future__ import annotations

import base64
import copy
from typing import Any

PESEL_SYSTEM = "urn:oid:2.16.840.1.113883.3.4424.1.1.616"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
V3_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
LAB_REPORTS = "https://lab.example.org/reports"
ANNA_PESEL = "85031412361"
UNKNOWN_PESEL = "44051401458"  # valid, nobody's

PATIENT_URL = "urn:uuid:8a1e3f52-5d0e-4a8e-9a57-2f4f3c1a0001"
REPORT_URL = "urn:uuid:8a1e3f52-5d0e-4a8e-9a57-2f4f3c1a0002"
WBC_URL = "urn:uuid:8a1e3f52-5d0e-4a8e-9a57-2f4f3c1a0003"
HGB_URL = "urn:uuid:8a1e3f52-5d0e-4a8e-9a57-2f4f3c1a0004"


def _quantity(value: float, unit: str, code: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": code}


def observation(
    loinc: str,
    name: str,
    value: float,
    unit: str,
    ucum: str,
    low: float,
    high: float,
    *,
    flag: str | None = None,
    when: str = "2026-12-18T07:30:00+01:00",
) -> dict[str, Any]:
    found: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": loinc, "display": name}]},
        "subject": {"reference": PATIENT_URL},
        "effectiveDateTime": when,
        "valueQuantity": _quantity(value, unit, ucum),
        "referenceRange": [
            {"low": _quantity(low, unit, ucum), "high": _quantity(high, unit, ucum)}
        ],
    }
    if flag:
        found["interpretation"] = [{"coding": [{"system": V3_INTERPRETATION, "code": flag}]}]
    return found


def blood_count(
    *,
    pesel: str = ANNA_PESEL,
    report_id: str = "CBC-2026-0042",
    wbc: float = 11.2,
    when: str = "2026-12-18T07:30:00+01:00",
    status: str = "final",
) -> dict[str, Any]:
    """A complete blood count, as a transaction."""
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": PATIENT_URL,
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": PESEL_SYSTEM, "value": pesel}],
                    "name": [{"family": "Kowalska", "given": ["Anna"]}],
                },
                "request": {
                    "method": "POST",
                    "url": "Patient",
                    "ifNoneExist": f"identifier={PESEL_SYSTEM}|{pesel}",
                },
            },
            {
                "fullUrl": REPORT_URL,
                "resource": {
                    "resourceType": "DiagnosticReport",
                    "identifier": [{"system": LAB_REPORTS, "value": report_id}],
                    "status": status,
                    "category": [
                        {"coding": [{"system": V2_0074, "code": "HM", "display": "Hematology"}]}
                    ],
                    "code": {
                        "coding": [
                            {
                                "system": LOINC,
                                "code": "58410-2",
                                "display": "CBC panel - Blood by Automated count",
                            }
                        ],
                        "text": "Complete blood count",
                    },
                    "subject": {"reference": PATIENT_URL},
                    "effectiveDateTime": when,
                    "issued": "2026-12-18T11:02:00+01:00",
                    "performer": [{"display": "Laboratorium Example"}],
                    "result": [{"reference": WBC_URL}, {"reference": HGB_URL}],
                    "conclusion": "Leukocytosis.",
                },
                "request": {
                    "method": "POST",
                    "url": "DiagnosticReport",
                    "ifNoneExist": f"identifier={LAB_REPORTS}|{report_id}",
                },
            },
            {
                "fullUrl": WBC_URL,
                "resource": observation(
                    "6690-2",
                    "Leukocytes",
                    wbc,
                    "10^9/L",
                    "10*9/L",
                    4.0,
                    10.0,
                    flag="H" if wbc > 10 else None,
                    when=when,
                ),
                "request": {"method": "POST", "url": "Observation"},
            },
            {
                "fullUrl": HGB_URL,
                "resource": observation(
                    "718-7", "Hemoglobin", 13.5, "g/dL", "g/dL", 12.0, 16.0, when=when
                ),
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }


def imaging_report(pdf: bytes, *, pesel: str = ANNA_PESEL) -> dict[str, Any]:
    """A chest X-ray's report: a conclusion and the PDF, the patient named in the subject's
    identifier (no Patient entry), as a collection."""
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": "urn:uuid:0c7d1c9e-6a43-4a2e-8d4c-7f1b2e3d0001",
                "resource": {
                    "resourceType": "DiagnosticReport",
                    "identifier": [
                        {"system": "https://rtg.example.org/studies", "value": "RTG-77"}
                    ],
                    "status": "final",
                    "category": [{"coding": [{"system": V2_0074, "code": "RAD"}]}],
                    "code": {
                        "coding": [{"system": LOINC, "code": "36643-5"}],
                        "text": "Chest X-ray, 2 views",
                    },
                    "subject": {"identifier": {"system": PESEL_SYSTEM, "value": pesel}},
                    "effectiveDateTime": "2026-12-19",
                    "conclusion": "No focal lesions in the lungs. Heart not enlarged.",
                    "presentedForm": [
                        {
                            "contentType": "application/pdf",
                            "data": base64.b64encode(pdf).decode(),
                            "title": "RTG-77.pdf",
                        }
                    ],
                },
            }
        ],
    }


def changed(bundle: dict[str, Any], entry: int, **fields: Any) -> dict[str, Any]:
    """A copy of the bundle with one entry's resource changed (a field None: removed)."""
    copied = copy.deepcopy(bundle)
    resource = copied["entry"][entry]["resource"]
    for name, value in fields.items():
        if value is None:
            resource.pop(name, None)
        else:
            resource[name] = value
    return copied
