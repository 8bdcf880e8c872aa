"""The record as FHIR R4 over real HTTP, on each backend: after a visit's outcome (two
prescriptions, one cancelled since, a referral, sick leave) and a renewal, the patient's
Bundle validates with fhir.resources (R4B), every reference resolves inside it, and it holds
the prescriptions with their package key and validity, the referral with its ICD-10 code, the
sick leave, and the shared document by a URL that downloads it; the MedicationRequest search
leaves out the cancelled one; a doctor who took the patient reads the same; a stranger doctor
gets 404 (audited); every read is audited as record.fhir.read."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import aiohttp
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from consult.app import create_app
from consult.domain import Actor, Identity, Role
from consult.fhir.bundles import unresolved
from consult.fhir.codes import ICD10_SYSTEM, NPWZ_SYSTEM, PESEL_SYSTEM
from consult.http.routing import SERVICES
from consult.storage import tables as t
from tests.integration.conftest import settings_for
from tests.integration.test_outcome import consulting, issue, outcome_body, today_of
from tests.integration.test_paging import house_and_anna, seed_record
from tests.integration.test_renewals import ask
from tests.support import ApiClient, pdf, rows

_A = t.audit_log.c


async def fhir(client: ApiClient, path: str, expect: int = 200) -> tuple[Any, str]:
    """The answer's JSON body and its Content-Type."""
    headers = {"Authorization": f"Bearer {client.token}"}
    async with client.session.get(client.base_url + path, headers=headers) as response:
        body = await response.json(content_type=None)
        assert response.status == expect, (response.status, body)
        return body, response.headers["Content-Type"]


def valid(bundle: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The bundle checked (fhir.resources' R4B models, references inside it); its resources by
    type."""
    Bundle.model_validate(bundle)
    assert unresolved(bundle) == set()
    by_type: dict[str, list[dict[str, Any]]] = {}
    for entry in bundle["entry"]:
        resource = entry["resource"]
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        by_type.setdefault(resource["resourceType"], []).append(resource)
    return by_type


def files(found: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The DocumentReferences of documents and recordings (not the printouts')."""
    return [d for d in found.get("DocumentReference", []) if d["type"]["text"] != "printout"]


SAID = "Chest pain since Monday, worse when climbing stairs."


async def visit_with_outcome(api, sockets, clock) -> tuple[ApiClient, ApiClient, dict[str, Any]]:
    """Anna's finished visit with Dr House: a PDF shared into it, a word each in the chat, two
    prescriptions (the antibiotic cancelled since), a referral, sick leave, and the aspirin
    renewed."""
    patient, patient_ws, doctor, doctor_ws, cid = await consulting(api, sockets)
    form = aiohttp.FormData()
    form.add_field("description", "ECG from last week")
    form.add_field("file", pdf(), filename="ecg.pdf", content_type="application/octet-stream")
    doc = await patient.call("POST", "/api/documents", data=form, expect=201)
    share = {"document_id": doc["id"], "client_id": "share-1"}
    await patient.call("POST", f"/api/consultations/{cid}/documents", share, expect=201)
    for ws, (client_id, said) in (
        (patient_ws, ("say-1", SAID)),
        (doctor_ws, ("say-2", "Take care.")),
    ):
        ack = await ws.emit(
            "chat:send", {"consultation_id": cid, "client_id": client_id, "body": said}
        )
        assert ack["ok"], ack
    out = await issue(doctor, cid, outcome_body(today_of(clock)))
    aspirin, antibiotic = out["packages"][0]["prescriptions"]
    await doctor.call("POST", f"/api/prescriptions/{antibiotic['id']}/cancel", {"reason": "No"})
    status, renewal = await ask(patient, aspirin["id"])
    assert status == 201
    await doctor.call("POST", f"/api/renewals/{renewal['id']}/approve", {})
    return patient, doctor, {**out, "document": doc}


async def test_the_patients_bundle_holds_the_outcome_and_validates(
    api, sockets, clock, database_url, base_url
):
    patient, _, out = await visit_with_outcome(api, sockets, clock)
    bundle, content_type = await fhir(patient, "/api/patients/me/fhir")
    assert content_type == "application/fhir+json; charset=utf-8"
    assert bundle["type"] == "collection"
    found = valid(bundle)

    (me,) = found["Patient"]
    assert me["identifier"] == [{"use": "official", "system": PESEL_SYSTEM, "value": "85031412361"}]
    (house,) = found["Practitioner"]
    assert house["identifier"][0] == {"use": "official", "system": NPWZ_SYSTEM, "value": "3123456"}
    (visit,) = found["Encounter"]
    assert visit["status"] == "finished" and visit["class"]["code"] == "VR"

    package = out["packages"][0]
    aspirin, antibiotic = package["prescriptions"]
    renewed, first, cancelled = found["MedicationRequest"]
    assert first["identifier"][0]["value"] == package["key"]
    assert first["groupIdentifier"]["value"] == package["key"]
    assert first["dispenseRequest"]["validityPeriod"] == {
        "start": aspirin["issued_on"],
        "end": aspirin["valid_until"],
    }
    assert first["dispenseRequest"]["quantity"] == {"value": 120}
    assert first["dispenseRequest"]["expectedSupplyDuration"]["value"] == 120
    assert (first["status"], cancelled["status"]) == ("active", "cancelled")
    assert cancelled["identifier"][0]["value"] == package["key"]
    assert renewed["identifier"][0]["value"] != package["key"]
    assert renewed["priorPrescription"]["reference"] == f"urn:uuid:{first['id']}"

    (referral,) = found["ServiceRequest"]
    assert referral["identifier"][0]["value"] == out["referrals"][0]["key"]
    assert referral["reasonCode"][0]["coding"][0] == {
        "system": ICD10_SYSTEM,
        "code": "I10",
        "display": "Essential (primary) hypertension",
    }
    # The sick leave; the others are the demo's laboratory results (test_results.py).
    (leave,) = [o for o in found["Observation"] if "effectivePeriod" in o]
    today = today_of(clock)
    assert leave["effectivePeriod"] == {
        "start": (today - timedelta(days=1)).isoformat(),
        "end": (today + timedelta(days=4)).isoformat(),
    }
    assert leave["component"][0]["valueCodeableConcept"]["coding"][0]["code"] == "J06.9"
    (advice,) = found["Communication"]
    assert advice["payload"][0]["contentString"].startswith("Rest, fluids")

    (document,) = files(found)
    attachment = document["content"][0]["attachment"]
    assert attachment["url"] == f"{base_url}/api/documents/{out['document']['id']}/content"
    headers = {"Authorization": f"Bearer {patient.token}"}
    async with patient.session.get(attachment["url"], headers=headers) as download:
        assert download.status == 200 and await download.read() == pdf()

    # Each issued document's printout by its URL: both packages, the referral, the sick leave.
    printouts = [d for d in found["DocumentReference"] if d["type"]["text"] == "printout"]
    urls = [p["content"][0]["attachment"]["url"] for p in printouts]
    renewal_package = urls[0].removeprefix(f"{base_url}/api/packages/").split("/")[0]
    assert renewal_package != str(package["id"])
    assert urls == [
        f"{base_url}/api/packages/{renewal_package}/printout.pdf",
        f"{base_url}/api/packages/{package['id']}/printout.pdf",
        f"{base_url}/api/referrals/{out['referrals'][0]['id']}/printout.pdf",
        f"{base_url}/api/sick-leaves/{out['sick_leave']['id']}/printout.pdf",
    ]
    async with patient.session.get(urls[1], headers=headers) as download:
        assert download.status == 200 and download.content_type == "application/pdf"
        name = printouts[1]["content"][0]["attachment"]["title"]
        assert f'filename="{name}"' in download.headers["Content-Disposition"]

    reads = await rows(database_url, t.audit_log, _A.action == "record.fhir.read")
    assert [(r.actor_id, r.patient_id, r.allowed) for r in reads] == [
        (patient.user["id"], patient.user["id"], True)
    ]


async def test_the_active_prescriptions_leave_out_the_cancelled_one(
    api, sockets, clock, database_url, base_url
):
    patient, doctor, out = await visit_with_outcome(api, sockets, clock)
    path = "/api/patients/me/fhir/MedicationRequest?status=active"
    found, content_type = await fhir(patient, path)
    assert content_type.startswith("application/fhir+json")
    assert found["type"] == "searchset" and found["total"] == 2
    assert found["link"] == [{"relation": "self", "url": base_url + path}]
    valid(found)
    matches = [e["resource"] for e in found["entry"] if e["search"]["mode"] == "match"]
    aspirin, antibiotic = out["packages"][0]["prescriptions"]
    assert {r["status"] for r in matches} == {"active"}
    names = {r["medicationCodeableConcept"]["text"] for r in matches}
    assert names == {"Acard 75 mg, tabletki dojelitowe"}

    pid = patient.user["id"]
    search = f"/api/patients/{pid}/fhir/MedicationRequest"
    cancelled, _ = await fhir(doctor, f"{search}?status=cancelled")
    (only,) = [e["resource"] for e in cancelled["entry"] if e["search"]["mode"] == "match"]
    assert only["statusReason"] == {"text": "No"}
    every, _ = await fhir(patient, "/api/patients/me/fhir/MedicationRequest")
    assert every["total"] == 3

    for query, problem in [("status=activ", "activ"), ("status=active&status=completed", "once")]:
        refused, _ = await fhir(patient, f"/api/patients/me/fhir/MedicationRequest?{query}", 400)
        assert refused["error"]["code"] == "invalid_query"
        assert problem in refused["error"]["message"]
    unknown, _ = await fhir(patient, "/api/patients/me/fhir/MedicationRequest?code=x", 400)
    assert unknown["error"]["code"] == "invalid_query"
    searched = await rows(
        database_url, t.audit_log, _A.action == "record.fhir.read", _A.actor_id == pid
    )
    assert [r.detail for r in searched] == [
        "MedicationRequest?status=active",
        "MedicationRequest",
    ]


async def test_a_doctor_of_the_patient_reads_it_and_a_stranger_gets_nothing(
    api, sockets, clock, database_url
):
    patient, doctor, out = await visit_with_outcome(api, sockets, clock)
    pid = patient.user["id"]
    bundle, _ = await fhir(doctor, f"/api/patients/{pid}/fhir")
    found = valid(bundle)
    assert len(found["MedicationRequest"]) == 3
    # Shared into a consultation Dr House took: he may open it, so he sees it.
    assert len(files(found)) == 1

    stranger = await api("dr.grey@demo.test")
    for path in (f"/api/patients/{pid}/fhir", f"/api/patients/{pid}/fhir/MedicationRequest"):
        refused, _ = await fhir(stranger, path, 404)
        assert refused["error"]["code"] == "patient_not_found"
    other_patient = await api("piotr@demo.test")
    refused, _ = await fhir(other_patient, f"/api/patients/{pid}/fhir", 404)
    assert refused["error"]["code"] == "patient_not_found"
    nobody, _ = await fhir(doctor, "/api/patients/999999/fhir", 404)
    assert nobody["error"]["code"] == "patient_not_found"
    scheduler = await api("scheduler@demo.test")
    mine, _ = await fhir(scheduler, "/api/patients/me/fhir", 404)
    assert mine["error"]["code"] == "patient_not_found"

    audited = await rows(database_url, t.audit_log, _A.action == "record.fhir.read")
    denied = [(r.actor_id, r.patient_id) for r in audited if not r.allowed]
    assert denied == [
        (stranger.user["id"], pid),
        (stranger.user["id"], pid),
        (other_patient.user["id"], pid),
        (doctor.user["id"], 999999),
        (scheduler.user["id"], scheduler.user["id"]),
    ]
    assert [(r.actor_id, r.patient_id) for r in audited if r.allowed] == [(doctor.user["id"], pid)]


async def test_a_doctor_sees_only_the_documents_they_may_open(api, sockets, clock):
    """A document never shared with Dr House, once his consultation has ended, is not in his
    bundle (documents/service.py's rule); the patient sees it."""
    patient, doctor, _ = await visit_with_outcome(api, sockets, clock)
    form = aiohttp.FormData()
    form.add_field("description", "Private notes")
    form.add_field("file", pdf(), filename="notes.pdf", content_type="application/octet-stream")
    await patient.call("POST", "/api/documents", data=form, expect=201)
    mine, _ = await fhir(patient, "/api/patients/me/fhir")
    assert len(files(valid(mine))) == 2
    his, _ = await fhir(doctor, f"/api/patients/{patient.user['id']}/fhir")
    (seen,) = files(valid(his))
    assert seen["description"] == "ECG from last week"


async def test_file_urls_use_the_origin_the_client_reached(
    aiohttp_server, database_url, tmp_path, clock
):
    """CONSULT_PUBLIC_ORIGIN when set; else the origin a trusted proxy forwarded; else the
    request's own."""

    async def document_url(headers: dict[str, str] | None = None, **settings: str) -> str:
        app = create_app(settings_for(database_url, tmp_path, **settings), clock=clock)
        base = str((await aiohttp_server(app)).make_url("/")).rstrip("/")
        anna = await ApiClient(base, headers).login("anna@demo.test")
        try:
            if not (await anna.call("GET", "/api/documents"))["documents"]:
                form = aiohttp.FormData()
                form.add_field("description", "Scan")
                form.add_field("file", pdf(), filename="s.pdf", content_type="application/pdf")
                await anna.call("POST", "/api/documents", data=form, expect=201)
            bundle, _ = await fhir(anna, "/api/patients/me/fhir")
            (document,) = valid(bundle)["DocumentReference"]
            url: str = document["content"][0]["attachment"]["url"]
            return url.replace(base, "BASE")
        finally:
            await anna.close()

    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "consult.example.org"}
    path = "/api/documents/1/content"
    assert await document_url() == f"BASE{path}"
    assert await document_url(proxied) == f"BASE{path}"  # an untrusted peer names no origin
    assert await document_url(proxied, trusted_proxies="127.0.0.1") == (
        f"https://consult.example.org{path}"
    )
    public = "https://staff.example.org:8443, https://consult.example.org"
    assert await document_url(public_origin=public) == f"https://consult.example.org{path}"


async def bundle_statements(server, actor: Actor, patient_id: int) -> tuple[list[str], int]:
    """The statements one export runs (this task's only), and the bundle's Encounters."""
    services = server.app[SERVICES]
    me = asyncio.current_task()
    seen: list[str] = []

    def observe(name: str, _seconds: float) -> None:
        if asyncio.current_task() is me:
            seen.append(name)

    services.db.statements.observers.append(observe)
    try:
        bundle = await services.fhir.record(actor, patient_id, "http://consult.test")
    finally:
        services.db.statements.observers.remove(observe)
    assert unresolved(bundle) == set()
    return seen, len([e for e in bundle["entry"] if e["resource"]["resourceType"] == "Encounter"])


async def test_the_bundle_runs_the_same_statements_for_5_and_for_500_consultations(
    api, sockets, server, database_url
):
    house, _, anna, _ = await house_and_anna(api, sockets)
    pid, did = anna.user["id"], house.user["id"]
    patient = Actor(pid, Role.PATIENT, Identity.VERIFIED, "Anna")
    doctor = Actor(did, Role.DOCTOR, Identity.VERIFIED, "House")
    await seed_record(database_url, pid, did, 4)
    few = [await bundle_statements(server, who, pid) for who in (patient, doctor)]
    await seed_record(database_url, pid, did, 495)
    many = [await bundle_statements(server, who, pid) for who in (patient, doctor)]
    assert [statements for statements, _ in many] == [statements for statements, _ in few]
    assert [encounters for _, encounters in few] == [5, 5]
    assert [encounters for _, encounters in many] == [500, 500]
    assert len(few[1][0]) <= 20, few[1][0]
