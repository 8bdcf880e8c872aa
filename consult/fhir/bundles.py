"""The record as a FHIR Bundle (type ``collection``), and the MedicationRequest search as a
``searchset`` Bundle: pure, from the resources mapping.py makes.

A search answer holds its matches (``search.mode`` ``match``) and, as ``include``, every
resource they refer to, and those refer to, so that its references resolve inside it too.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Final

from consult.errors import Invalid
from consult.fhir import codes as c
from consult.fhir import mapping as m
from consult.fhir import outcome_mapping as o
from consult.fhir import result_mapping as rm
from consult.fhir.facts import RecordFacts

# MedicationRequest.status's codes (R4): a search may name any of them; consult's prescriptions
# are only ever active, completed or cancelled (outcome_mapping.PRESCRIPTION_STATUS).
MEDICATION_REQUEST_STATUSES: Final = (
    "active",
    "on-hold",
    "cancelled",
    "completed",
    "entered-in-error",
    "stopped",
    "draft",
    "unknown",
)
STATUS_PATTERN: Final = "^({0})(,({0}))*$".format("|".join(MEDICATION_REQUEST_STATUSES))


def resources(facts: RecordFacts, origin: str) -> list[c.Resource]:
    """Every resource of the record: the patient, the doctors, the forms' locations, then the
    consultations and what they hold, the results (each DiagnosticReport followed by its
    Observations), newest first within each kind. ``origin`` (the server's ``scheme://host``)
    makes the files' URLs absolute."""
    pid = facts.patient.id
    encounters = {v.consultation.id for v in facts.visits}
    forms = sorted({s.form for v in facts.visits for s in v.forms}, key=list(m.FORMS).index)
    out = [m.patient(facts.patient)]
    out += [m.practitioner(facts.doctors[i]) for i in sorted(facts.doctors)]
    out += [m.location(form) for form in forms]
    out += [m.encounter(visit, pid) for visit in facts.visits]
    out += [
        o.medication_request(package, rx, pid, encounters)
        for package in facts.packages
        for rx in package.prescriptions
    ]
    out += [o.service_request(r, pid, encounters) for r in facts.referrals]
    out += [o.sick_leave(s, pid, encounters) for s in facts.sick_leaves]
    out += [made for result in facts.results for made in rm.resources(result, pid, origin)]
    out += [m.recommendation(r, pid, encounters) for r in facts.recommendations]
    out += [said for f in facts.follow_ups for said in m.follow_up(f, encounters)]
    out += [m.document(d, origin, encounters) for d in facts.documents]
    out += [m.recording(r, pid, origin, encounters) for r in facts.recordings]
    out += o.printouts(facts.packages, facts.referrals, facts.sick_leaves, pid, origin, encounters)
    return out


def collection(items: list[c.Resource], now: datetime) -> c.Resource:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": c.instant(now),
        "entry": [{"fullUrl": c.full_url(r), "resource": r} for r in items],
    }


def parse_statuses(raw: str | None) -> frozenset[str] | None:
    """``status`` of the MedicationRequest search: codes separated by commas (any of them
    matches); None when the search names none (every MedicationRequest matches)."""
    if raw is None:
        return None
    codes = raw.split(",")
    unknown = [c for c in codes if c not in MEDICATION_REQUEST_STATUSES]
    if unknown:
        raise Invalid(
            f"status {', '.join(repr(c) for c in unknown)} is not a MedicationRequest status: "
            f"give one or more of {', '.join(MEDICATION_REQUEST_STATUSES)}, separated by commas",
            code="invalid_query",
            details={"parameter": "status", "allowed": list(MEDICATION_REQUEST_STATUSES)},
        )
    return frozenset(codes)


def medication_requests(
    items: list[c.Resource], statuses: frozenset[str] | None, now: datetime, self_url: str
) -> c.Resource:
    """The search's answer: the matching MedicationRequests, and what they refer to."""
    matches = [
        r
        for r in items
        if r["resourceType"] == "MedicationRequest"
        and (statuses is None or r["status"] in statuses)
    ]
    included = _referred(matches, {c.full_url(r): r for r in items})
    entries = [_entry(r, "match") for r in matches] + [_entry(r, "include") for r in included]
    found: c.Resource = {
        "resourceType": "Bundle",
        "type": "searchset",
        "timestamp": c.instant(now),
        "total": len(matches),
        "link": [{"relation": "self", "url": self_url}],
    }
    if entries:  # FHIR has no empty arrays: no match, no entry
        found["entry"] = entries
    return found


def _entry(resource: c.Resource, mode: str) -> c.Resource:
    return {"fullUrl": c.full_url(resource), "resource": resource, "search": {"mode": mode}}


def _referred(start: list[c.Resource], by_url: dict[str, c.Resource]) -> list[c.Resource]:
    """What ``start`` refers to, directly or through each other, in the record's order."""
    seen = {c.full_url(r) for r in start}
    pending = list(start)
    found: set[str] = set()
    while pending:
        for url in references(pending.pop()):
            if url not in seen and url in by_url:
                seen.add(url)
                found.add(url)
                pending.append(by_url[url])
    return [r for url, r in by_url.items() if url in found]


def references(value: Any) -> Iterator[str]:
    """Every ``reference`` inside a resource (or a bundle)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                yield item
            else:
                yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def unresolved(bundle: c.Resource) -> set[str]:
    """The references of a bundle that no entry's fullUrl answers (none, in ours)."""
    urls = {entry["fullUrl"] for entry in bundle.get("entry", [])}
    return set(references(bundle.get("entry", []))) - urls
