"""The FHIR R4 mapping (consult/fhir/mapping.py, bundles.py) of a demo patient's record
(tests/unit/fhir_sample.py): every resource validates with fhir.resources' R4B models, every
reference resolves inside its bundle, each resource carries what a receiving system reads, and
the whole bundle matches the golden one (tests/unit/golden/fhir_record_bundle.json; rewrite it
with CONSULT_UPDATE_GOLDEN=1 after a deliberate change, and read the diff)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from pydantic_core import to_json

from consult.errors import Invalid
from consult.fhir import bundles
from consult.fhir import codes as c
from consult.fhir import mapping as m
from consult.fhir import outcome_mapping as o
from consult.fhir import result_mapping as rm
from consult.results.flags import INTERPRETATION_SYSTEM
from consult.results.service import Delivery
from tests.unit.fhir_sample import GREY, HOUSE, KEY, NOW, ORIGIN, REFERRAL_KEY, sample_record

GOLDEN = Path(__file__).parent / "golden" / "fhir_record_bundle.json"


@pytest.fixture
def bundle() -> dict[str, Any]:
    return bundles.collection(bundles.resources(sample_record(), ORIGIN), NOW)


def of_type(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def by_ref(bundle: dict[str, Any], ref: dict[str, str]) -> dict[str, Any]:
    (found,) = [e["resource"] for e in bundle["entry"] if e["fullUrl"] == ref["reference"]]
    return found


def test_every_resource_and_the_bundle_validate_with_fhir_resources(bundle) -> None:
    kinds = set()
    for entry in bundle["entry"]:
        resource = entry["resource"]
        kinds.add(resource["resourceType"])
        model = get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        # Nothing was dropped or renamed on the way: the model gives back the same JSON.
        assert json.loads(model.model_dump_json(exclude_none=True)) == resource
        assert entry["fullUrl"] == f"urn:uuid:{resource['id']}"
    Bundle.model_validate(bundle)
    assert kinds == {
        "Patient",
        "Practitioner",
        "Location",
        "Encounter",
        "MedicationRequest",
        "ServiceRequest",
        "Observation",
        "Communication",
        "DocumentReference",
        "DiagnosticReport",
    }


def test_every_reference_resolves_inside_the_bundle(bundle) -> None:
    refs = list(bundles.references(bundle["entry"]))
    assert len(refs) > 40
    assert bundles.unresolved(bundle) == set()
    assert all(r.startswith("urn:uuid:") for r in refs)


def test_the_same_record_exports_the_same_ids() -> None:
    first = bundles.resources(sample_record(), ORIGIN)
    again = bundles.resources(sample_record(), ORIGIN)
    assert [r["id"] for r in first] == [r["id"] for r in again]
    assert len({r["id"] for r in first}) == len(first)


def test_the_patient_by_pesel_and_the_doctors_by_licence_number(bundle) -> None:
    (patient,) = of_type(bundle, "Patient")
    assert patient["identifier"] == [
        {"use": "official", "system": c.PESEL_SYSTEM, "value": "85031412361"}
    ]
    assert patient["name"] == [{"text": "Anna Kowalska"}]
    assert (patient["gender"], patient["birthDate"]) == ("female", "1985-03-14")
    licences = {p["identifier"][0]["value"]: p for p in of_type(bundle, "Practitioner")}
    assert set(licences) == {HOUSE.licence_number, GREY.licence_number}
    assert licences["3123456"]["identifier"][0]["system"] == c.NPWZ_SYSTEM


def test_a_patient_without_a_pesel_and_a_doctor_without_a_number_have_no_identifier() -> None:
    facts = sample_record()
    patient = m.patient(type(facts.patient)(id=1, name="Nobody Yet", pesel=None))
    assert "identifier" not in patient and "gender" not in patient
    doctor = m.practitioner(type(facts.doctors[4])(4, "Dr New", None))
    assert "identifier" not in doctor
    get_fhir_model_class("Patient").model_validate(patient)


def test_a_consultation_is_a_virtual_encounter_with_its_doctors_and_forms(bundle) -> None:
    waiting, ended = of_type(bundle, "Encounter")
    assert ended["class"] == {"system": c.ACT_CODE, "code": "VR", "display": "virtual"}
    assert ended["status"] == "finished" and waiting["status"] == "arrived"
    assert ended["period"] == {"start": "2026-12-07T10:00:00Z", "end": "2026-12-07T10:40:00Z"}
    assert [t["coding"][0]["code"] for t in ended["type"]] == ["ONLINEWRIT", "VIDEOCONF"]
    doctors = [
        (by_ref(bundle, p["individual"])["name"][0]["text"], p["type"][0]["coding"][0]["code"])
        for p in ended["participant"]
    ]
    assert doctors == [("Dr Meredith Grey", "PART"), ("Dr Gregory House", "PPRF")]
    stretches = [
        (by_ref(bundle, s["location"])["name"], s["period"]["start"], s["period"]["end"])
        for s in ended["location"]
    ]
    assert stretches == [
        ("Chat", "2026-12-07T10:00:00Z", "2026-12-07T10:15:00Z"),
        ("Video call", "2026-12-07T10:15:00Z", "2026-12-07T10:40:00Z"),
    ]
    assert "participant" not in waiting and waiting["location"][0]["status"] == "planned"


def test_a_prescription_is_a_medication_request_with_its_key_and_validity(bundle) -> None:
    renewed, active, cancelled, expired = of_type(bundle, "MedicationRequest")
    assert active["identifier"][0]["value"] == KEY and active["groupIdentifier"]["value"] == KEY
    assert cancelled["groupIdentifier"]["value"] == KEY
    assert (active["status"], cancelled["status"], expired["status"]) == (
        "active",
        "cancelled",
        "completed",
    )
    assert cancelled["statusReason"] == {"text": "Wrong strength"}
    assert active["intent"] == "order"
    assert active["medicationCodeableConcept"] == {"text": "Acard 75 mg, tabletki dojelitowe"}
    assert active["dosageInstruction"] == [{"text": "1 tablet daily after a meal"}]
    dispense = active["dispenseRequest"]
    assert dispense["validityPeriod"] == {"start": "2026-12-07", "end": "2027-06-04"}
    assert dispense["quantity"] == {"value": 120}
    assert dispense["expectedSupplyDuration"] == {
        "value": 120,
        "unit": "days",
        "system": c.UCUM,
        "code": "d",
    }
    assert "expectedSupplyDuration" not in expired["dispenseRequest"]
    assert active["authoredOn"] == "2026-12-07T10:38:00Z"
    assert by_ref(bundle, active["requester"])["name"] == [{"text": "Dr Gregory House"}]
    assert by_ref(bundle, active["encounter"])["status"] == "finished"
    # A renewal's package: its own key, no consultation, the prescription it renews.
    assert "encounter" not in renewed
    assert by_ref(bundle, renewed["priorPrescription"]) == active


def test_a_referral_is_a_service_request_with_icd10_reasons(bundle) -> None:
    (referral,) = of_type(bundle, "ServiceRequest")
    assert referral["identifier"][0]["value"] == REFERRAL_KEY
    assert referral["status"] == "active" and referral["priority"] == "routine"
    assert referral["code"] == {"text": "Specialist consultation: cardiology"}
    assert referral["reasonCode"][0]["coding"] == [
        {"system": c.ICD10_SYSTEM, "code": "I10", "display": "Essential (primary) hypertension"}
    ]
    cancelled = (
        sample_record()
        .referrals[0]
        .model_copy(update={"cancelled_at": NOW, "cancel_reason": "Not needed"})
    )
    revoked = o.service_request(cancelled, 1, {7})
    assert revoked["status"] == "revoked"
    assert revoked["note"][-1] == {"text": "Cancelled: Not needed"}


def test_sick_leave_is_an_observation_over_its_period(bundle) -> None:
    (leave,) = [o for o in of_type(bundle, "Observation") if "effectivePeriod" in o]
    assert leave["status"] == "final"
    assert leave["effectivePeriod"] == {"start": "2026-12-06", "end": "2026-12-11"}
    assert leave["valueQuantity"]["value"] == 6
    diagnosis, advice, letter = leave["component"]
    assert diagnosis["valueCodeableConcept"]["coding"][0]["code"] == "J06.9"
    assert advice["valueCodeableConcept"] == {"text": "must lie down"}
    assert letter["valueCodeableConcept"] == {"text": "E"}
    assert leave["note"] == [
        {"text": "Starts before the day of issue: Fever since yesterday morning."}
    ]


def test_recommendations_and_follow_ups_are_communications(bundle) -> None:
    advice, question, answer = of_type(bundle, "Communication")
    assert advice["category"][0]["coding"][0]["code"] == "instruction"
    assert by_ref(bundle, advice["sender"])["resourceType"] == "Practitioner"
    assert advice["payload"] == [{"contentString": "Rest, fluids; come back if the fever stays."}]
    assert by_ref(bundle, question["sender"])["resourceType"] == "Patient"
    assert by_ref(bundle, answer["inResponseTo"][0]) == question
    assert answer["sent"] == "2026-12-08T12:00:00Z"


def test_documents_and_recordings_are_references_by_url(bundle) -> None:
    document, recording, *_ = of_type(bundle, "DocumentReference")
    attachment = document["content"][0]["attachment"]
    assert attachment["url"] == f"{ORIGIN}/api/documents/12/content"
    assert (attachment["contentType"], attachment["size"]) == ("application/pdf", 48_213)
    assert "data" not in attachment and "hash" not in attachment  # R4's hash is SHA-1
    assert by_ref(bundle, document["context"]["encounter"][0])["status"] == "finished"
    played = recording["content"][0]["attachment"]
    assert played["url"] == f"{ORIGIN}/api/consultations/7/recordings/2"
    assert played["contentType"] == "video/webm"


def test_each_issued_documents_printout_is_a_reference_by_url_to_its_pdf(bundle) -> None:
    printouts = [d for d in of_type(bundle, "DocumentReference") if d["type"]["text"] == "printout"]
    # Both packages (the renewal's too, which has no consultation), the referral, the leave.
    assert [p["content"][0]["attachment"]["url"] for p in printouts] == [
        f"{ORIGIN}/api/packages/4/printout.pdf",
        f"{ORIGIN}/api/packages/3/printout.pdf",
        f"{ORIGIN}/api/referrals/2/printout.pdf",
        f"{ORIGIN}/api/sick-leaves/1/printout.pdf",
    ]
    renewal, package, referral, leave = printouts
    attachment = package["content"][0]["attachment"]
    assert attachment == {
        "contentType": "application/pdf",
        "url": f"{ORIGIN}/api/packages/3/printout.pdf",
        "title": "e-prescription-2026-12-07-3.pdf",  # the download's name, the Warsaw day
        "creation": "2026-12-07T10:38:00Z",
    }
    assert "data" not in attachment  # never inlined
    assert package["category"] == [{"text": "e-prescription package"}]
    assert by_ref(bundle, package["author"][0])["name"] == [{"text": "Dr Gregory House"}]
    assert by_ref(bundle, package["subject"])["resourceType"] == "Patient"
    assert by_ref(bundle, package["context"]["encounter"][0])["status"] == "finished"
    # What each printout prints, in the bundle: the package's three MedicationRequests, ...
    printed = [by_ref(bundle, r) for r in package["context"]["related"]]
    assert [r["resourceType"] for r in printed] == ["MedicationRequest"] * 3
    assert {r["identifier"][0]["value"] for r in printed} == {KEY}
    assert "encounter" not in renewal["context"]
    (renewed,) = [by_ref(bundle, r) for r in renewal["context"]["related"]]
    assert renewed["priorPrescription"]
    # ... the ServiceRequest and the sick leave's Observation.
    (referred,) = [by_ref(bundle, r) for r in referral["context"]["related"]]
    assert referred["identifier"][0]["value"] == REFERRAL_KEY
    (certified,) = [by_ref(bundle, r) for r in leave["context"]["related"]]
    assert certified["code"]["text"].startswith("Sick leave")
    assert leave["content"][0]["attachment"]["title"] == "sick-leave-2026-12-07-1.pdf"
    for printout in printouts:
        get_fhir_model_class("DocumentReference").model_validate(printout)


def test_a_result_is_a_diagnostic_report_with_its_observations(bundle) -> None:
    blood, x_ray = of_type(bundle, "DiagnosticReport")
    assert blood["identifier"] == [{"system": "https://lab.example.org/reports", "value": "CBC-42"}]
    assert blood["status"] == "final"
    assert blood["code"] == {
        "coding": [{"system": "http://loinc.org", "code": "58410-2"}],
        "text": "Complete blood count",
    }
    assert blood["category"][0]["coding"][0]["code"] == "HM"
    assert (blood["effectiveDateTime"], blood["issued"]) == (
        "2026-12-18T06:30:00Z",
        "2026-12-18T10:02:00Z",
    )
    assert blood["performer"] == [{"display": "Laboratorium Example"}]
    assert by_ref(bundle, blood["subject"])["resourceType"] == "Patient"
    wbc, hgb, crp = (by_ref(bundle, ref) for ref in blood["result"])
    assert wbc["valueQuantity"] == {"value": 11.2, "unit": "10^9/L"}
    assert wbc["referenceRange"] == [
        {
            "low": {"value": 4.0, "unit": "10^9/L"},
            "high": {"value": 10.0, "unit": "10^9/L"},
            "text": "4.0–10.0",
        }
    ]
    assert wbc["interpretation"] == [{"coding": [{"system": INTERPRETATION_SYSTEM, "code": "H"}]}]
    assert "interpretation" not in hgb and hgb["code"]["coding"][0]["code"] == "718-7"
    assert crp["valueQuantity"] == {"value": 0.5, "comparator": "<", "unit": "mg/L"}
    # The imaging report: its conclusion, and its PDF by URL (never inlined).
    assert x_ray["conclusion"] == "No focal lesions in the lungs." and "result" not in x_ray
    assert x_ray["presentedForm"] == [
        {
            "contentType": "application/pdf",
            "url": f"{ORIGIN}/api/results/2/report.pdf",
            "size": 48_000,
            "title": "Chest X-ray, 2 views.pdf",
        }
    ]


def test_the_answer_to_a_bundle_names_what_was_stored_entry_by_entry() -> None:
    result = sample_record().results[0]
    # The Patient, the report, its second and first Observation, an Organization.
    delivery = Delivery(result, "created", ("other", "report", 1, 0, "other"))
    answer = rm.intake_response(delivery)
    Bundle.model_validate(answer)
    responses = [e["response"] for e in answer["entry"]]
    assert [r["status"] for r in responses] == ["200 OK", *["201 Created"] * 3, "200 OK"]
    report = f"DiagnosticReport/{c.resource_id('DiagnosticReport', result.id)}"
    second = f"Observation/{c.resource_id('Observation', 'result-6')}"
    assert (responses[1]["location"], responses[2]["location"]) == (report, second)
    assert responses[1]["lastModified"] == "2026-12-18T10:03:00Z"
    again = rm.intake_response(Delivery(result, "unchanged", delivery.entries))
    assert {e["response"]["status"] for e in again["entry"]} == {"200 OK"}


def test_the_active_prescriptions_as_a_searchset_with_what_they_refer_to(bundle) -> None:
    items = bundles.resources(sample_record(), ORIGIN)
    url = f"{ORIGIN}/api/patients/me/fhir/MedicationRequest?status=active"
    found = bundles.medication_requests(items, frozenset({"active"}), NOW, url)
    Bundle.model_validate(found)
    matches = [e["resource"] for e in found["entry"] if e["search"]["mode"] == "match"]
    assert found["type"] == "searchset" and found["total"] == len(matches) == 2
    assert {r["status"] for r in matches} == {"active"}
    included = {e["resource"]["resourceType"] for e in found["entry"]} - {"MedicationRequest"}
    assert included == {"Patient", "Practitioner", "Encounter", "Location"}
    assert bundles.unresolved(found) == set()
    assert found["link"] == [{"relation": "self", "url": url}]
    every = bundles.medication_requests(items, None, NOW, url)
    assert every["total"] == 4
    both = bundles.medication_requests(items, frozenset({"cancelled", "completed"}), NOW, url)
    assert both["total"] == 2
    none = bundles.medication_requests(items, frozenset({"on-hold"}), NOW, url)
    assert none["total"] == 0 and "entry" not in none  # FHIR allows no empty array
    Bundle.model_validate(none)


@pytest.mark.parametrize("raw", ["", "activ", "active,", "ACTIVE", "active, completed"])
def test_an_unknown_status_is_refused_naming_the_codes(raw: str) -> None:
    with pytest.raises(Invalid) as refused:
        bundles.parse_statuses(raw)
    assert refused.value.code == "invalid_query"
    assert "on-hold" in refused.value.message


def test_statuses_are_read_as_codes_separated_by_commas() -> None:
    assert bundles.parse_statuses(None) is None
    assert bundles.parse_statuses("active,stopped") == {"active", "stopped"}


def test_the_bundle_is_the_golden_one(bundle) -> None:
    text = json.dumps(bundle, indent=2, ensure_ascii=False) + "\n"
    if os.environ.get("CONSULT_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text)
    assert json.loads(GOLDEN.read_text()) == bundle


def test_the_served_bytes_are_json_dumps_bytes(bundle) -> None:
    # The route and the archive serialize with pydantic_core (a third of the time, record_bench):
    # the same bytes as json.dumps, compact and indented, non-ASCII letters as they are.
    bundle["entry"][0]["resource"]["name"][0]["text"] = "Zofia Żółć"
    compact = json.dumps(bundle, ensure_ascii=False, separators=(",", ":")).encode()
    assert to_json(bundle) == compact
    indented = json.dumps(bundle, indent=2, ensure_ascii=False).encode()
    assert to_json(bundle, indent=2) == indented
