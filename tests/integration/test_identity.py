"""Becoming verified: a new patient gives their PESEL, a scheduler confirms after seeing an
identity document (audited), and the account may then start an online consultation. Bad
input (an invalid PESEL, an unconfirmed e-mail, a second request, a decided request, the
wrong role) is refused and changes nothing."""

from __future__ import annotations

from datetime import date

from consult.outcome.pesel import make_pesel
from consult.storage import tables as t
from tests.integration.accounts_support import (  # noqa: F401 (fixtures)
    PASSWORD,
    mail_fixture,
    mail_server_fixture,
    sign_up,
    signed_up_and_confirmed,
)
from tests.support import count, rows

EMAIL = "jan@example.org"
PESEL = make_pesel(date(1985, 3, 14), 321, "male")
START = {"specialty": "internal-medicine", "form": "chat"}


async def test_confirmed_by_the_scheduler_the_patient_consults_online(api, mail, database_url):
    anonymous = await api()
    await signed_up_and_confirmed(anonymous, mail, EMAIL)
    jan = await (await api()).login(EMAIL, PASSWORD)
    refused = await jan.call("POST", "/api/consultations", START, expect=403)
    assert refused["error"]["code"] == "identity_not_verified"

    asked = await jan.call("POST", "/api/me/identity", {"pesel": PESEL}, expect=202)
    assert asked["identity"] == "basic" and asked["status"] == "pending"
    again = await jan.call("POST", "/api/me/identity", {"pesel": PESEL}, expect=409)
    assert again["error"]["code"] == "verification_pending"

    scheduler = await api("scheduler@demo.test")
    (request,) = (await scheduler.call("GET", "/api/identity/requests"))["requests"]
    assert request["name"] == "Ewa Nowa" and request["pesel"] == PESEL
    assert request["born"] == "1985-03-14"
    reads = await rows(database_url, t.audit_log, t.audit_log.c.action == "identity.requests.read")
    assert [(r.actor_id, r.patient_id) for r in reads] == [(scheduler.user["id"], jan.user["id"])]
    path = f"/api/identity/requests/{request['id']}/confirm"
    await scheduler.call("POST", path, {"document": "ID card, number ending 4821"}, expect=204)
    decided = await scheduler.call("POST", path, {"document": "again"}, expect=409)
    assert decided["error"]["code"] == "request_decided"

    status = await jan.call("GET", "/api/me/identity")
    assert status["identity"] == "verified" and status["status"] == "confirmed"
    assert (await jan.call("GET", "/api/patients/me/pesel"))["pesel"] == PESEL
    await jan.call("POST", "/api/consultations", START, expect=201)
    confirm_rows = await rows(database_url, t.audit_log, t.audit_log.c.action == "identity.confirm")
    assert [(r.patient_id, r.allowed) for r in confirm_rows] == [(jan.user["id"], True)]
    assert "4821" in confirm_rows[0].detail
    already = await jan.call("POST", "/api/me/identity", {"pesel": PESEL}, expect=409)
    assert already["error"]["code"] == "already_verified"
    # The verified PESEL stays: another one is refused, the same one is no change.
    other = {"pesel": make_pesel(date(1985, 3, 14), 555, "male")}
    moved = await jan.call("PUT", "/api/patients/me/pesel", other, expect=409)
    assert moved["error"]["code"] == "pesel_verified"
    await jan.call("PUT", "/api/patients/me/pesel", {"pesel": PESEL})
    assert (await jan.call("GET", "/api/patients/me/pesel"))["pesel"] == PESEL


async def test_a_rejected_request_tells_the_reason_and_may_be_made_again(api, mail, database_url):
    await signed_up_and_confirmed(await api(), mail, EMAIL)
    jan = await (await api()).login(EMAIL, PASSWORD)
    await jan.call("POST", "/api/me/identity", {"pesel": PESEL}, expect=202)
    scheduler = await api("scheduler@demo.test")
    (request,) = (await scheduler.call("GET", "/api/identity/requests"))["requests"]
    path = f"/api/identity/requests/{request['id']}/reject"
    await scheduler.call("POST", path, {"reason": "the photo did not match"}, expect=204)
    status = await jan.call("GET", "/api/me/identity")
    assert status == status | {"identity": "basic", "status": "rejected"}
    assert status["note"] == "the photo did not match"
    await jan.call("POST", "/api/me/identity", {"pesel": PESEL}, expect=202)


async def test_bad_requests_change_nothing(api, mail, database_url):
    anonymous = await api()
    await sign_up(anonymous, EMAIL)  # not confirmed
    jan = await (await api()).login(EMAIL, PASSWORD)
    unconfirmed = await jan.call("POST", "/api/me/identity", {"pesel": PESEL}, expect=403)
    assert unconfirmed["error"]["code"] == "email_not_confirmed"
    bad_checksum = PESEL[:-1] + str((int(PESEL[-1]) + 1) % 10)
    for pesel, code in (
        (bad_checksum, "pesel_bad_checksum"),
        ("1234", "pesel_invalid_length"),
        ("8503141234x", "pesel_not_digits"),
    ):
        answer = await jan.call("POST", "/api/me/identity", {"pesel": pesel}, expect=400)
        assert answer["error"]["code"] == code
    anna = await api("anna@demo.test")
    assert (await anna.call("GET", "/api/identity/requests", expect=403))["error"][
        "code"
    ] == "not_a_scheduler"
    doctor = await api("dr.house@demo.test")
    not_patient = await doctor.call("POST", "/api/me/identity", {"pesel": PESEL}, expect=403)
    assert not_patient["error"]["code"] == "not_a_patient"
    scheduler = await api("scheduler@demo.test")
    missing = await scheduler.call(
        "POST", "/api/identity/requests/999/confirm", {"document": "ID card"}, expect=404
    )
    assert missing["error"]["code"] == "request_not_found"
    assert await count(database_url, t.identity_requests) == 0
