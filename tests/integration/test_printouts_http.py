"""The outcome's printouts over real HTTP, on each backend: the patient and the issuing doctor
download the PDF of the package, the referral and the sick leave, and read in it (pypdf) what
a pharmacist would: the key, the access code, the PESEL, the licence number, the clinic; a
cancelled prescription says CANCELLED; another doctor who took the patient reads them too, and
so does the doctor who approved a renewal handed to them; a stranger patient, an unrelated
doctor and a scheduler get the 404 of nothing, audited."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from multidict import CIMultiDictProxy
from pypdf import PdfReader

from consult.app import create_app
from consult.clock import ManualClock
from consult.demo import IDENTIFIERS
from consult.storage import tables as t
from tests.integration.conftest import settings_for
from tests.integration.test_outcome import consulting, issue, outcome_body, today_of
from tests.support import ApiClient, rows, start_and_accept

CLINIC = "Przychodnia Łąka"
ANNA_PESEL = IDENTIFIERS["anna@demo.test"]
HOUSE_LICENCE = IDENTIFIERS["dr.house@demo.test"]
_A = t.audit_log.c


@pytest.fixture
async def server(
    database_url: str,
    clock: ManualClock,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    tmp_path: Path,
) -> TestServer:
    """The integration tests' server, with a clinic name of its own (CONSULT_CLINIC_NAME)."""
    settings = settings_for(database_url, tmp_path, clinic_name=CLINIC)
    return await aiohttp_server(create_app(settings, clock=clock))


async def download(
    client: ApiClient, path: str, expect: int = 200
) -> tuple[CIMultiDictProxy[str], bytes]:
    headers = {"Authorization": f"Bearer {client.token}"}
    async with client.session.get(client.base_url + path, headers=headers) as response:
        body = await response.read()
        assert response.status == expect, (response.status, body[:300])
        return response.headers, body


def text_of(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def paths(out: dict[str, Any]) -> dict[str, str]:
    return {
        "package": f"/api/packages/{out['packages'][0]['id']}/printout.pdf",
        "referral": f"/api/referrals/{out['referrals'][0]['id']}/printout.pdf",
        "sick_leave": f"/api/sick-leaves/{out['sick_leave']['id']}/printout.pdf",
    }


async def printout_reads(database_url: str, *where: Any) -> list[Any]:
    return await rows(database_url, t.audit_log, _A.action == "outcome.printout.read", *where)


async def test_the_patient_and_the_doctor_download_each_printout(api, sockets, clock, database_url):
    patient, _, doctor, _, cid = await consulting(api, sockets)
    out = await issue(doctor, cid, outcome_body(today_of(clock)))
    package, referral, leave = out["packages"][0], out["referrals"][0], out["sick_leave"]
    expected = {
        "package": [package["key"], package["access_code"], "Acard", "Aksef"],
        "referral": [referral["key"], referral["access_code"], "I10", "cardiology"],
        "sick_leave": [leave["start"], leave["end"], "J06.9", "Fever since yesterday morning."],
    }
    stems = {"package": "e-prescription", "referral": "e-referral", "sick_leave": "sick-leave"}
    for kind, path in paths(out).items():
        for client in (patient, doctor):
            headers, pdf = await download(client, path)
            assert headers["Content-Type"] == "application/pdf"
            assert headers["Cache-Control"] == "private, no-store"
            assert headers["X-Content-Type-Options"] == "nosniff"
            disposition = headers["Content-Disposition"]
            assert disposition.startswith(f'attachment; filename="{stems[kind]}-'), disposition
            assert disposition.split(";")[1].strip().endswith('.pdf"'), disposition
            text = text_of(pdf)
            for wanted in [*expected[kind], ANNA_PESEL, HOUSE_LICENCE, CLINIC, "Anna"]:
                assert wanted in text, (kind, wanted, text)
            assert "CANCELLED" not in text, kind
    reads = await printout_reads(database_url, _A.allowed.is_(True))
    assert len(reads) == 6
    assert {(r.actor_id, r.patient_id, r.consultation_id) for r in reads} == {
        (patient.user["id"], patient.user["id"], cid),
        (doctor.user["id"], patient.user["id"], cid),
    }
    assert {r.detail for r in reads} == {
        f"package {package['id']}",
        f"referral {referral['id']}",
        f"sick leave {leave['id']}",
    }


async def test_a_cancelled_prescription_and_a_cancelled_referral_say_so(api, sockets, clock):
    patient, _, doctor, _, cid = await consulting(api, sockets)
    out = await issue(doctor, cid, outcome_body(today_of(clock)))
    first = out["packages"][0]["prescriptions"][0]["id"]
    await doctor.call("POST", f"/api/prescriptions/{first}/cancel", {"reason": "Wrong strength"})
    referral = out["referrals"][0]["id"]
    await doctor.call("POST", f"/api/referrals/{referral}/cancel", {"reason": "Not needed"})
    printouts = paths(out)
    _, package_pdf = await download(patient, printouts["package"])
    text = text_of(package_pdf)
    # The cancelled one is marked in the list; the other still stands, so the page is not.
    assert text.count("CANCELLED") == 1, text
    assert "Aksef" in text and out["packages"][0]["key"] in text
    _, referral_pdf = await download(patient, printouts["referral"])
    assert "CANCELLED" in text_of(referral_pdf)
    _, leave_pdf = await download(patient, printouts["sick_leave"])
    assert "CANCELLED" not in text_of(leave_pdf)


async def test_another_doctor_who_took_the_patient_reads_them(api, sockets, clock, database_url):
    patient, _, house, house_ws, cid = await consulting(api, sockets)
    out = await issue(house, cid, outcome_body(today_of(clock)))
    grey = await api("dr.grey@demo.test")
    await download(grey, paths(out)["package"], expect=404)  # not yet a doctor of Anna's
    assert (await presence(house_ws, "presence:offline"))["ok"]
    grey_ws = await sockets(grey.token)
    assert (await presence(grey_ws, "presence:online"))["ok"]
    await start_and_accept(patient, grey_ws, "internal-medicine")
    for path in paths(out).values():
        _, pdf = await download(grey, path)
        assert HOUSE_LICENCE in text_of(pdf)  # the issuing doctor's, not the reader's
    allowed = await printout_reads(database_url, _A.actor_id == grey.user["id"], _A.allowed)
    assert len(allowed) == 3


async def test_the_doctor_who_approved_a_handed_over_renewal_prints_its_package(
    api, sockets, clock, database_url
):
    """A scheduler hands Anna's renewal request to Dr Grey, who never consulted her: Grey
    issued the new package, so Grey prints it, but not the package Dr House issued."""
    patient, _, house, _, cid = await consulting(api, sockets)
    original = (await issue(house, cid, outcome_body(today_of(clock))))["packages"][0]
    aspirin = original["prescriptions"][0]["id"]
    asked = await patient.call("POST", f"/api/prescriptions/{aspirin}/renewal", {}, expect=201)
    grey = await api("dr.grey@demo.test")
    scheduler = await api("scheduler@demo.test")
    reassign = {"doctor_id": grey.user["id"]}
    await scheduler.call("POST", f"/api/renewals/{asked['id']}/reassign", reassign)
    renewed = (await grey.call("POST", f"/api/renewals/{asked['id']}/approve", {}))["package"]

    for client in (grey, patient):
        _, pdf = await download(client, f"/api/packages/{renewed['id']}/printout.pdf")
        text = text_of(pdf)
        assert renewed["key"] in text and renewed["access_code"] in text
        assert IDENTIFIERS["dr.grey@demo.test"] in text and HOUSE_LICENCE not in text
    await download(grey, f"/api/packages/{original['id']}/printout.pdf", expect=404)
    reads = await printout_reads(database_url, _A.actor_id == grey.user["id"])
    assert [(r.allowed, r.detail) for r in reads] == [
        (True, f"package {renewed['id']}"),
        (False, f"package {original['id']}"),
    ]


async def presence(ws: Any, event: str) -> dict[str, Any]:
    if event == "presence:online":
        return await ws.emit(event, {"specialties": ["internal-medicine"], "forms": ["chat"]})
    return await ws.emit(event, {})


async def test_strangers_get_the_404_of_nothing_and_are_audited(api, sockets, clock, database_url):
    patient, _, doctor, _, cid = await consulting(api, sockets)
    out = await issue(doctor, cid, outcome_body(today_of(clock)))
    strangers = [
        await api("piotr@demo.test"),  # another patient
        await api("dr.grey@demo.test"),  # a doctor who never took Anna
        await api("scheduler@demo.test"),
    ]
    codes = {"package": "package_not_found", "referral": "referral_not_found"}
    codes["sick_leave"] = "sick_leave_not_found"
    for kind, path in paths(out).items():
        for stranger in strangers:
            status, body = await json_error(stranger, path)
            assert (status, body["error"]["code"]) == (404, codes[kind]), (kind, body)
        # A document that does not exist answers the same.
        missing = path.replace(f"/{path.split('/')[3]}/", "/999999/")
        status, body = await json_error(patient, missing)
        assert (status, body["error"]["code"]) == (404, codes[kind])
    denied = await printout_reads(database_url, _A.allowed.is_(False))
    assert len(denied) == 9
    assert {r.actor_id for r in denied} == {s.user["id"] for s in strangers}
    assert {(r.patient_id, r.consultation_id) for r in denied} == {(patient.user["id"], cid)}
    # What a stranger was refused, nobody was shown: no allowed read of theirs.
    assert await printout_reads(database_url, _A.allowed.is_(True)) == []
    bad, body = await json_error(patient, "/api/packages/0/printout.pdf")
    assert (bad, body["error"]["code"]) == (400, "invalid_id")


async def json_error(client: ApiClient, path: str) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {client.token}"}
    async with client.session.get(client.base_url + path, headers=headers) as response:
        return response.status, await response.json()


async def test_downloads_at_once_are_each_whole_and_the_same(api, sockets, clock):
    """Printouts are made in worker threads one at a time (reportlab is not thread-safe):
    concurrent downloads each get the whole, identical document."""
    patient, _, doctor, _, cid = await consulting(api, sockets)
    out = await issue(doctor, cid, outcome_body(today_of(clock)))
    path = paths(out)["package"]
    answers = await asyncio.gather(*(download(c, path) for c in [patient, doctor] * 4))
    assert len({pdf for _, pdf in answers}) == 1
    assert out["packages"][0]["access_code"] in text_of(answers[0][1])
