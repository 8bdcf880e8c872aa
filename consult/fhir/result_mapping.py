"""Laboratory and imaging results as FHIR R4: a DiagnosticReport with the Observations it
lists (values, units, reference ranges, the laboratory's interpretation), the report's PDF by
URL; and the answer to a bundle the intake took, as a transaction-response Bundle. Pure."""

from __future__ import annotations

from typing import Any

from consult.fhir import codes as c
from consult.results.flags import INTERPRETATION_SYSTEM
from consult.results.intake import PDF, REPORT
from consult.results.schemas import ResultCodeOut, ResultObservationOut, ResultOut
from consult.results.service import Delivery


def observation_key(observation_id: int) -> str:
    return f"result-{observation_id}"  # beside sick leave's "sick-leave-<id>" Observations


def _concept(coded: ResultCodeOut | None) -> dict[str, Any] | None:
    if coded is None:
        return None
    coding = {"system": coded.system, "code": coded.code} if coded.code else None
    return {"coding": [coding], "text": coded.display}


def diagnostic_report(result: ResultOut, patient_id: int, origin: str) -> c.Resource:
    """The report as the laboratory sent it (its identifier, status, category, code, dates,
    conclusion), its Observations by reference, its PDF by URL (never inlined), the performer
    by name."""
    pdf = result.pdf
    form = {
        "contentType": PDF,
        "url": origin + pdf.url if pdf else None,
        "size": pdf.size if pdf else None,
        "title": f"{result.code.display}.pdf",
    }
    return c.resource(
        "DiagnosticReport",
        result.id,
        {
            "identifier": [{"system": result.identifier.system, "value": result.identifier.value}],
            "status": result.status,
            "category": [_concept(result.category)],
            "code": _concept(result.code),
            "subject": c.reference("Patient", patient_id),
            "effectiveDateTime": c.instant(result.effective_at),
            "issued": c.instant(result.issued_at),
            "performer": [{"display": result.performer}],
            "result": [
                c.reference("Observation", observation_key(o.id)) for o in result.observations
            ],
            "conclusion": result.conclusion,
            "presentedForm": [form] if pdf else [],
        },
    )


def _value(o: ResultObservationOut) -> dict[str, Any]:
    if o.value_kind == "quantity":
        quantity = {"value": o.value_number, "comparator": o.comparator, "unit": o.unit}
        return {"valueQuantity": quantity}
    if o.value_kind == "integer" and o.value_number is not None:
        return {"valueInteger": int(o.value_number)}
    if o.value_kind == "string":
        return {"valueString": o.value}
    if o.value_kind == "concept":
        return {"valueCodeableConcept": c.text(o.value)}
    return {"dataAbsentReason": c.text(o.value or "unknown")}


def observation(o: ResultObservationOut, result: ResultOut, patient_id: int) -> c.Resource:
    interpretation = {"coding": [{"system": INTERPRETATION_SYSTEM, "code": o.interpretation}]}
    ranges = {
        "low": {"value": o.low, "unit": o.unit} if o.low is not None else None,
        "high": {"value": o.high, "unit": o.unit} if o.high is not None else None,
        "text": o.range,
    }
    return c.resource(
        "Observation",
        observation_key(o.id),
        {
            "status": o.status,
            "code": _concept(o.code),
            "subject": c.reference("Patient", patient_id),
            "effectiveDateTime": c.instant(o.effective_at),
            "issued": c.instant(result.issued_at),
            **_value(o),
            "interpretation": [interpretation] if o.interpretation else [],
            "referenceRange": [ranges],
        },
    )


def resources(result: ResultOut, patient_id: int, origin: str) -> list[c.Resource]:
    return [diagnostic_report(result, patient_id, origin)] + [
        observation(o, result, patient_id) for o in result.observations
    ]


def intake_response(delivery: Delivery) -> c.Resource:
    """The answer to a bundle: one entry per entry sent, in order. The report and its
    Observations: ``201 Created`` (``200 OK`` when sent before) with where they are now; the
    rest (the Patient, an Organization): ``200 OK``, read and not kept on its own."""
    result = delivery.result
    status = "201 Created" if delivery.outcome == "created" else "200 OK"
    modified = c.instant(result.changed_at or result.received_at)
    entries = []
    for kind in delivery.entries:
        response: dict[str, Any] = {"status": "200 OK"}
        if kind == REPORT:
            location = f"DiagnosticReport/{c.resource_id('DiagnosticReport', result.id)}"
            response = {"status": status, "location": location, "lastModified": modified}
        elif isinstance(kind, int):
            key = observation_key(result.observations[kind].id)
            location = f"Observation/{c.resource_id('Observation', key)}"
            response = {"status": status, "location": location, "lastModified": modified}
        entries.append({"response": response})
    return {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}
