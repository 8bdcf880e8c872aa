"""What every FHIR resource of the export is built with: the code systems and identifier
systems, the resources' ids and references, and the small data types. Pure.

Every resource's id is a UUID derived from what it stands for ("Encounter/7"), so the same
record exports the same ids every time, and the bundle's ``fullUrl`` is ``urn:uuid:<id>``:
references between resources are those URNs and resolve inside the bundle.
"""

from __future__ import annotations

import functools
import uuid
from datetime import date, datetime
from typing import Any, Final

from consult.clock import as_utc
from consult.outcome.issued import DiagnosisOut
from consult.outcome.pesel import PESEL_SYSTEM as PESEL_SYSTEM  # defined with the PESEL

Resource = dict[str, Any]

# The Polish register's OID for a doctor's or dentist's licence number (NPWZ), as the national
# e-health platform (P1) names doctors in e-prescriptions and e-referrals.
NPWZ_SYSTEM: Final = "urn:oid:2.16.840.1.113883.3.4424.1.6.2"
ICD10_SYSTEM: Final = "http://hl7.org/fhir/sid/icd-10"
ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PARTICIPATION_MODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"
PARTICIPATION_TYPE: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
COMMUNICATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/communication-category"
UCUM: Final = "http://unitsofmeasure.org"
UCUM_DAY: Final = "d"

# Fixed for good: the ids of one record's resources stay the same from one export to the next.
_NAMESPACE: Final = uuid.UUID("70079cba-d7b4-4d1c-9b0d-ef1dc873ebca")


# A record's references name the same few resources again and again (its patient, each
# encounter): remembered, each id is hashed once (a 300-consultation record asks 8,000
# times for 1,800 ids; record_bench.py).
@functools.lru_cache(maxsize=16384)
def resource_id(kind: str, key: object) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{kind}/{key}"))


def full_url(resource: Resource) -> str:
    return f"urn:uuid:{resource['id']}"


def reference(kind: str, key: object) -> dict[str, str]:
    return {"reference": f"urn:uuid:{resource_id(kind, key)}"}


def clean(value: Any) -> Any:
    """The value without empty parts: FHIR forbids null, "", [] and {} anywhere."""
    # A type check per value, not a call and four comparisons: a 300-consultation record's
    # bundle has 66,000 values, and this walk was most of the mapping's time (record_bench.py).
    if isinstance(value, dict):
        kept: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(item, (dict, list)):
                item = clean(item)
                if item:
                    kept[key] = item
            elif item is not None and item != "":
                kept[key] = item
        return kept
    if isinstance(value, list):
        items = []
        for item in value:
            if isinstance(item, (dict, list)):
                item = clean(item)
                if item:
                    items.append(item)
            elif item is not None and item != "":
                items.append(item)
        return items
    return value


def resource(kind: str, key: object, fields: dict[str, Any]) -> Resource:
    """A resource of ``kind`` standing for ``key`` (its id derived from both), emptiness
    removed."""
    return clean({"resourceType": kind, "id": resource_id(kind, key), **fields})


def instant(at: datetime | None) -> str | None:
    return None if at is None else as_utc(at).isoformat().replace("+00:00", "Z")


def day(on: date | None) -> str | None:
    return None if on is None else on.isoformat()


def text(value: str | None) -> dict[str, str] | None:
    """A CodeableConcept of text alone (none when there is no text)."""
    return {"text": value} if value else None


def notes(*texts: str | None) -> list[dict[str, str]]:
    return [{"text": t} for t in texts if t]


def coding(system: str, code: str, display: str) -> dict[str, str]:
    return {"system": system, "code": code, "display": display}


def concept(system: str, code: str, display: str, label: str | None = None) -> dict[str, Any]:
    return {"coding": [coding(system, code, display)], "text": label}


def diagnosis(found: DiagnosisOut) -> dict[str, Any]:
    return concept(ICD10_SYSTEM, found.code, found.title, found.title)


def days(count: int | None) -> dict[str, Any] | None:
    """A Duration or Quantity in days (UCUM)."""
    if count is None:
        return None
    return {"value": count, "unit": "days", "system": UCUM, "code": UCUM_DAY}
