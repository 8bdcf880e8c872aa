"""The visit's outcome over real HTTP and Socket.IO, on each backend: the doctor drafts and
issues a package of e-prescriptions, a referral and sick leave and ends the consultation in one
request; the patient is told live and finds them in their documents; issued once under an
Idempotency-Key; a fault between any two writes leaves nothing; only the accepted doctor
issues; strangers get nothing (audited); the issuing doctor cancels."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from consult.app import SERVICES
from consult.clock import ManualClock
from consult.outcome.validity import clinic_day
from consult.storage import tables as t
from tests.support import ApiClient, SocketClient, count, execute, rows, start_and_accept

INSULIN = 358  # standard, long-term eligible, packs of 5
ASPIRIN = 241  # standard, long-term eligible, packs of 30 or 60
ANTIBIOTIC = 24  # cefuroxime 250 mg, packs of 10 or 14


def outcome_body(today: date, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "recommendation": "Rest, fluids; come back if the fever stays over 3 days.",
        "prescriptions": [
            {
                "product_id": ASPIRIN,
                "pack_size": 60,
                "packs": 2,
                "dosage_instruction": "1 tablet daily after a meal",
                "validity_days": 180,
                "therapy_days": 120,
            },
            {
                "product_id": ANTIBIOTIC,
                "pack_size": 10,
                "dosage_instruction": "1 tablet every 12 hours for 5 days",
                "payment_level": "50%",
            },
        ],
        "referrals": [
            {
                "kind": "specialist_consultation",
                "target": "cardiology",
                "diagnosis": "i10",
                "reason": "Blood pressure 165/100 on three readings.",
                "priority": "routine",
            }
        ],
        "sick_leave": {
            "start": (today - timedelta(days=1)).isoformat(),
            "end": (today + timedelta(days=4)).isoformat(),
            "backdating_reason": "Fever since yesterday morning.",
            "recommendation": 1,
            "diagnosis": "J06.9",
            "letter_codes": [],
        },
    }
    body.update(overrides)
    return body


async def consulting(
    api: Callable[..., Awaitable[ApiClient]],
    sockets: Callable[..., Awaitable[SocketClient]],
    patient_email: str = "anna@demo.test",
) -> tuple[ApiClient, SocketClient, ApiClient, SocketClient, int]:
    patient = await api(patient_email)
    patient_ws = await sockets(patient.token)
    doctor = await api("dr.house@demo.test")
    doctor_ws = await sockets(doctor.token)
    ack = await doctor_ws.emit(
        "presence:online", {"specialties": ["internal-medicine"], "forms": ["chat"]}
    )
    assert ack["ok"], ack
    cid = await start_and_accept(patient, doctor_ws, "internal-medicine")
    return patient, patient_ws, doctor, doctor_ws, cid


async def issue(
    doctor: ApiClient, cid: int, body: dict[str, Any], key: str | None = None, expect: int = 201
) -> Any:
    headers = {"Idempotency-Key": key or str(uuid.uuid4())}
    return await doctor.call(
        "POST", f"/api/consultations/{cid}/outcome", body, expect=expect, headers=headers
    )


def today_of(clock: ManualClock) -> date:
    return clinic_day(clock.now())


async def test_issue_and_end_tells_the_patient_and_keeps_the_documents(
    api, sockets, clock, database_url
):
    patient, patient_ws, doctor, _, cid = await consulting(api, sockets)
    today = today_of(clock)
    out = await issue(doctor, cid, outcome_body(today))

    (package,) = out["packages"]
    assert len(package["key"]) == 44 and package["key"].isdigit()
    assert len(package["access_code"]) == 4 and package["access_code"].isdigit()
    aspirin, antibiotic = package["prescriptions"]
    assert aspirin["valid_until"] == (today + timedelta(days=180)).isoformat()
    assert aspirin["status"] == "active" and aspirin["renewable"] is True
    assert antibiotic["validity_days"] == 7 and antibiotic["payment_level"] == "50%"
    assert antibiotic["status"] == "expiring" and antibiotic["renewable"] is False
    (referral,) = out["referrals"]
    assert referral["diagnosis"]["code"] == "I10" and len(referral["key"]) == 44
    assert referral["key"] != package["key"]
    assert out["sick_leave"]["days"] == 6 and out["sick_leave"]["diagnosis"]["code"] == "J06.9"
    assert out["doctor"]["licence_number"] == "3123456"

    told = await patient_ws.next("outcome:issued")
    assert told["outcome"]["packages"][0]["access_code"] == package["access_code"]
    ended = await patient.call("GET", f"/api/consultations/{cid}")
    assert ended["status"] == "ended"
    mine = await patient.call("GET", "/api/patients/me/issued")
    assert [p["key"] for p in mine["packages"]] == [package["key"]]
    assert mine["sick_leaves"][0]["backdating_reason"] == "Fever since yesterday morning."
    record = await patient.call("GET", "/api/patients/me/record")
    entry = record["entries"][0]
    assert entry["recommendations"][0]["text"].startswith("Rest, fluids")
    assert [p["access_code"] for p in entry["packages"]] == [package["access_code"]]
    assert entry["packages"][0]["prescriptions"][1]["status"] == "expiring"
    assert entry["referrals"][0]["key"] == referral["key"]
    assert entry["sick_leaves"][0]["days"] == 6
    assert await count(database_url, t.audit_log, t.audit_log.c.action == "outcome.issue") == 1
    read = await patient.call("GET", f"/api/consultations/{cid}/outcome")
    assert read["packages"][0]["key"] == package["key"]
    reads = t.audit_log.c.action == "outcome.read", t.audit_log.c.allowed.is_(True)
    assert await count(database_url, t.audit_log, *reads) == 1


async def test_a_repeat_gets_the_stored_outcome_and_another_body_is_refused(
    api, sockets, clock, database_url
):
    _, _, doctor, _, cid = await consulting(api, sockets)
    body = outcome_body(today_of(clock))
    key = str(uuid.uuid4())
    first = await issue(doctor, cid, body, key)
    again = await issue(doctor, cid, body, key)
    assert again == {**first, "warnings": again["warnings"]}
    other = dict(body, recommendation="Something else")
    refused = await issue(doctor, cid, other, key, expect=422)
    assert refused["error"]["code"] == "idempotency_key_reused"
    late = await issue(doctor, cid, body, expect=409)
    assert late["error"]["code"] == "consultation_ended"
    assert await count(database_url, t.prescription_packages) == 1
    assert await count(database_url, t.prescriptions) == 2
    assert await count(database_url, t.referrals) == 1


async def test_ten_concurrent_requests_with_one_key_give_one_outcome(
    api, sockets, clock, database_url
):
    _, _, doctor, _, cid = await consulting(api, sockets)
    body = outcome_body(today_of(clock))
    key = str(uuid.uuid4())
    answers = await asyncio.gather(*(issue(doctor, cid, body, key) for _ in range(10)))
    assert len({a["packages"][0]["key"] for a in answers}) == 1
    assert await count(database_url, t.outcomes) == 1
    assert await count(database_url, t.prescription_packages) == 1
    assert await count(database_url, t.sick_leaves) == 1


@pytest.mark.parametrize(
    "step",
    ["recommendation", "outcome", "package", "prescriptions", "referral", "sick_leave", "ended"],
)
async def test_a_fault_between_writes_leaves_nothing(
    api, sockets, clock, database_url, server: TestServer, step
):
    patient, _, doctor, _, cid = await consulting(api, sockets)

    def fault(name: str) -> None:
        if name == step:
            raise RuntimeError(f"injected fault after {name}")

    server.app[SERVICES].outcome.fault = fault
    failed = await issue(doctor, cid, outcome_body(today_of(clock)), expect=500)
    assert failed["error"]["code"] == "internal"
    for table in (
        t.outcomes,
        t.recommendations,
        t.prescription_packages,
        t.prescriptions,
        t.referrals,
        t.sick_leaves,
    ):
        assert await count(database_url, table) == 0, table.name
    assert (await patient.call("GET", f"/api/consultations/{cid}"))["status"] == "active"
    server.app[SERVICES].outcome.fault = None
    out = await issue(doctor, cid, outcome_body(today_of(clock)))
    assert len(out["packages"][0]["prescriptions"]) == 2


async def test_only_the_accepted_doctor_issues_and_strangers_read_nothing(
    api, sockets, clock, database_url
):
    patient, _, doctor, _, cid = await consulting(api, sockets)
    other_doctor = await api("dr.grey@demo.test")
    refused = await issue(other_doctor, cid, outcome_body(today_of(clock)), expect=403)
    assert refused["error"]["code"] == "not_participant"
    by_patient = await issue(patient, cid, outcome_body(today_of(clock)), expect=403)
    assert by_patient["error"]["code"] == "not_a_doctor"
    await issue(doctor, cid, outcome_body(today_of(clock)))

    stranger = await api("piotr@demo.test")
    got = await stranger.call("GET", f"/api/consultations/{cid}/outcome", expect=403)
    assert got["error"]["code"] == "not_participant"
    docs = await other_doctor.call("GET", f"/api/patients/{patient.user['id']}/issued", expect=404)
    assert docs["error"]["code"] == "patient_not_found"
    denied = await rows(
        database_url,
        t.audit_log,
        t.audit_log.c.allowed.is_(False),
        t.audit_log.c.action.in_(["outcome.issue", "outcome.read", "outcome.documents.read"]),
    )
    assert {r.action for r in denied} == {"outcome.issue", "outcome.read", "outcome.documents.read"}
    seen = await doctor.call("GET", f"/api/patients/{patient.user['id']}/issued")
    assert len(seen["packages"]) == 1


async def test_an_e_prescription_needs_the_patients_pesel(api, sockets, clock, database_url):
    patient, _, doctor, _, cid = await consulting(api, sockets)
    engine_rows = await rows(database_url, t.users, t.users.c.id == patient.user["id"])
    assert engine_rows[0].pesel == "85031412361"
    await execute(
        database_url, t.users.update().where(t.users.c.id == patient.user["id"]).values(pesel=None)
    )
    body = outcome_body(today_of(clock))
    refused = await issue(doctor, cid, body, expect=409)
    assert refused["error"]["code"] == "pesel_required"
    assert await count(database_url, t.outcomes) == 0
    bad = await patient.call("PUT", "/api/patients/me/pesel", {"pesel": "85031412362"}, expect=400)
    assert bad["error"]["code"] == "pesel_bad_checksum"
    await patient.call("PUT", "/api/patients/me/pesel", {"pesel": "85031412361"})
    await issue(doctor, cid, body)
    referral_only = outcome_body(today_of(clock), prescriptions=[], sick_leave=None)
    assert referral_only["referrals"]


async def test_rules_are_checked_before_anything_is_written(api, sockets, clock, database_url):
    _, _, doctor, _, cid = await consulting(api, sockets)
    today = today_of(clock)
    cases = [
        (
            {"prescriptions": [{"product_id": 999_999, "pack_size": 1, "dosage_instruction": "x"}]},
            400,
            "product_unknown",
        ),
        (
            {"prescriptions": [{"product_id": ASPIRIN, "pack_size": 7, "dosage_instruction": "x"}]},
            400,
            "pack_size_unknown",
        ),
        (
            {
                "prescriptions": [
                    {
                        "product_id": ANTIBIOTIC,
                        "pack_size": 10,
                        "dosage_instruction": "x",
                        "validity_days": 90,
                        "therapy_days": 60,
                    }
                ]
            },
            400,
            "long_term_not_allowed",
        ),
        (
            {
                "referrals": [
                    {"kind": "specialist_consultation", "target": "x", "diagnosis": "Q99.99"}
                ]
            },
            400,
            "icd10_unknown",
        ),
        (
            {
                "sick_leave": {
                    "start": (today - timedelta(days=4)).isoformat(),
                    "end": today.isoformat(),
                    "backdating_reason": "late",
                    "recommendation": 2,
                    "diagnosis": "J06.9",
                }
            },
            400,
            "sick_leave_backdated_too_far",
        ),
        ({"prescriptions": [{"product_id": ASPIRIN, "pack_size": 30}]}, 400, "invalid_payload"),
    ]
    for overrides, status, code in cases:
        body = outcome_body(
            today, **{"prescriptions": [], "referrals": [], "sick_leave": None, **overrides}
        )
        refused = await issue(doctor, cid, body, expect=status)
        assert refused["error"]["code"] == code, (overrides, refused)
    assert await count(database_url, t.outcomes) == 0
    missing = await doctor.call(
        "POST", f"/api/consultations/{cid}/outcome", outcome_body(today), expect=400
    )
    assert missing["error"]["code"] == "idempotency_key_required"


async def test_the_draft_survives_a_reload_and_warns_of_an_active_substance(api, sockets, clock):
    patient, _, doctor, doctor_ws, cid = await consulting(api, sockets)
    today = today_of(clock)
    await issue(doctor, cid, outcome_body(today))
    # A second visit: aspirin again is a warning, not a refusal.
    cid2 = await start_and_accept(patient, doctor_ws, "internal-medicine")
    empty = await doctor.call("GET", f"/api/consultations/{cid2}/outcome/draft")
    assert empty["version"] == 0 and empty["draft"]["prescriptions"] == []
    draft = {
        "recommendation": "half typed",
        "prescriptions": [{"product_id": 242, "pack_size": 30, "dosage_instruction": "1 daily"}],
    }
    saved = await doctor.call("PUT", f"/api/consultations/{cid2}/outcome/draft", draft)
    assert saved["version"] == 1
    assert saved["warnings"] == [
        "the patient already has an active prescription for kwas acetylosalicylowy"
    ]
    again = await doctor.call("GET", f"/api/consultations/{cid2}/outcome/draft")
    assert again["draft"]["recommendation"] == "half typed" and again["version"] == 1
    out = await issue(doctor, cid2, dict(draft, referrals=[], sick_leave=None))
    assert out["warnings"] == saved["warnings"]
    gone = await doctor.call("GET", f"/api/consultations/{cid2}/outcome/draft", expect=200)
    assert gone["version"] == 0


async def test_the_issuing_doctor_cancels_and_the_patient_is_told(
    api, sockets, clock, database_url
):
    patient, patient_ws, doctor, _, cid = await consulting(api, sockets)
    out = await issue(doctor, cid, outcome_body(today_of(clock)))
    await patient_ws.next("outcome:issued")
    first = out["packages"][0]["prescriptions"][0]["id"]
    other = await api("dr.grey@demo.test")
    refused = await other.call(
        "POST", f"/api/prescriptions/{first}/cancel", {"reason": "x"}, expect=403
    )
    assert refused["error"]["code"] == "not_the_issuing_doctor"
    package = await doctor.call(
        "POST", f"/api/prescriptions/{first}/cancel", {"reason": "Wrong strength"}
    )
    assert package["prescriptions"][0]["status"] == "cancelled"
    assert package["prescriptions"][0]["cancel_reason"] == "Wrong strength"
    told = await patient_ws.next("outcome:cancelled")
    assert told["kind"] == "prescription"
    again = await doctor.call(
        "POST", f"/api/prescriptions/{first}/cancel", {"reason": "again"}, expect=409
    )
    assert again["error"]["code"] == "already_cancelled"
    leave = out["sick_leave"]["id"]
    cancelled = await doctor.call("POST", f"/api/sick-leaves/{leave}/cancel", {"reason": "Typo"})
    assert cancelled["cancelled_at"] is not None
    mine = await patient.call("GET", "/api/patients/me/issued")
    assert mine["sick_leaves"][0]["cancel_reason"] == "Typo"


async def test_doctors_search_products_and_icd10(api):
    doctor = await api("dr.house@demo.test")
    found = await doctor.call("GET", "/api/products?q=acard%2075")
    assert found["products"][0]["id"] == 241
    codes = await doctor.call("GET", "/api/icd10?q=j06.9")
    assert codes["diagnoses"][0]["code"] == "J06.9"
    patient = await api("anna@demo.test")
    refused = await patient.call("GET", "/api/products?q=acard", expect=403)
    assert refused["error"]["code"] == "not_a_doctor"
    bad = await doctor.call("GET", "/api/products?limit=500", expect=400)
    assert bad["error"]["code"] == "invalid_query"


async def test_doctors_read_one_product_by_id(api):
    doctor = await api("dr.house@demo.test")
    aspirin = await doctor.call("GET", f"/api/products/{ASPIRIN}")
    assert aspirin["id"] == ASPIRIN and aspirin["pack_sizes"] == [30, 60]
    assert aspirin["long_term_eligible"] is True
    missing = await doctor.call("GET", "/api/products/999999", expect=404)
    assert missing["error"]["code"] == "product_not_found"
    patient = await api("anna@demo.test")
    refused = await patient.call("GET", f"/api/products/{ASPIRIN}", expect=403)
    assert refused["error"]["code"] == "not_a_doctor"
