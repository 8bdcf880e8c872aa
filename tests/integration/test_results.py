"""Laboratory and imaging results over real HTTP, on each backend: a sending system posts a
blood count with its integration credential, the patient reads it (flags from the laboratory
and from the range), hears of it live, reads a value's history; a resend stores nothing, a
correction replaces it, other content under its identifier is a conflict. Refusals are FHIR
OperationOutcomes with nothing stored: no, a wrong, a revoked or a session's token (401), an
unknown PESEL or one of two patients, a bundle that is not FHIR, another media type, a body
too large; the integration's token reads nothing. A doctor who consulted the patient reads the
results, the report's PDF (kept 0600) and the FHIR export's DiagnosticReports; other doctors, a
scheduler and other patients get 404. Every delivery, refusal and read is audited. The
operator's `consult add-integration` and `revoke-integration` make and end a credential."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome

from consult.accounts.service import token_hash
from consult.http import routes_results
from consult.http.routing import SERVICES
from consult.storage import tables as t
from tests.integration.test_queue import IM
from tests.support import ApiClient, consult_command, count, execute, pdf, rows, start_and_accept
from tests.unit.results_sample import UNKNOWN_PESEL, blood_count, changed, imaging_report

_A = t.audit_log.c
_R = t.results.c
FHIR = "application/fhir+json"


async def post(
    client: ApiClient,
    token: str | None,
    bundle: Any,
    expect: int,
    content_type: str = FHIR,
) -> dict[str, Any]:
    """POST /api/integration/fhir; the FHIR answer, checked with fhir.resources."""
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = bundle if isinstance(bundle, bytes) else json.dumps(bundle).encode()
    async with client.session.post(
        client.base_url + "/api/integration/fhir", data=data, headers=headers
    ) as response:
        body = await response.json(content_type=None)
        assert response.status == expect, (response.status, body)
        assert response.headers["Content-Type"].startswith(FHIR)
    if body["resourceType"] == "OperationOutcome":
        OperationOutcome.model_validate(body)
    else:
        Bundle.model_validate(body)
    return body


def issue(outcome: dict[str, Any]) -> tuple[str, str, list[str]]:
    """The first issue's consult code, FHIR issue type and expression."""
    first = outcome["issue"][0]
    return first["details"]["coding"][0]["code"], first["code"], first.get("expression", [])


async def credential(server: Any, name: str = "lab-central") -> str:
    _, token = await server.app[SERVICES].results.credentials.add(name)
    return token


def when(clock: Any, days: int = 1) -> str:
    return (clock.now() - timedelta(days=days)).isoformat()


async def test_a_laboratory_posts_a_blood_count_and_the_patient_reads_it(
    api, sockets, server, clock, database_url
):
    token = await credential(server)
    anna = await api("anna@demo.test")
    anna_ws = await sockets(anna.token)
    lab = await api()
    sent = blood_count(when=when(clock))
    answer = await post(lab, token, sent, 201)
    assert answer["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in answer["entry"]]
    assert statuses == ["200 OK", "201 Created", "201 Created", "201 Created"]
    assert answer["entry"][1]["response"]["location"].startswith("DiagnosticReport/")
    pushed = await anna_ws.next("result:received")

    page = await anna.call("GET", "/api/patients/me/results")
    newest = page["results"][0]
    assert pushed == {"result": newest}
    assert newest["code"]["display"] == "Complete blood count"
    assert newest["identifier"] == {
        "system": "https://lab.example.org/reports",
        "value": "CBC-2026-0042",
    }
    assert (newest["sender"], newest["performer"]) == ("lab-central", "Laboratorium Example")
    wbc, hgb = newest["observations"]
    assert (wbc["value"], wbc["unit"], wbc["range"]) == ("11.2", "10^9/L", "4.0–10.0")
    assert (wbc["flag"], wbc["flag_source"], wbc["interpretation"]) == ("high", "laboratory", "H")
    assert (hgb["flag"], hgb["flag_source"]) == ("normal", "range")
    assert newest["out_of_range"] == 1

    # Sent again: nothing stored, nothing audited twice.
    again = await post(lab, token, sent, 200)
    assert [e["response"]["status"] for e in again["entry"]][1] == "200 OK"
    mine = _R.identifier_value == "CBC-2026-0042"
    assert await count(database_url, t.results, mine) == 1
    received = await rows(database_url, t.audit_log, _A.action == "result.receive")
    assert [(r.actor_id, r.actor_role, r.patient_id, r.allowed) for r in received] == [
        (None, "integration", anna.user["id"], True)
    ]

    # A correction replaces it; other content under the identifier is refused.
    corrected = blood_count(when=when(clock), wbc=9.0, status="corrected")
    await post(lab, token, corrected, 200)
    page = await anna.call("GET", "/api/patients/me/results?limit=1")
    (fixed,) = page["results"]
    assert fixed["id"] == newest["id"] and fixed["changed_at"] is not None
    assert fixed["status"] == "corrected" and fixed["observations"][0]["flag"] == "normal"
    assert page["next"] == fixed["id"]
    other = blood_count(when=when(clock), wbc=3.0)
    refused = await post(lab, token, other, 409)
    assert issue(refused)[:2] == ("identifier_conflict", "duplicate")
    assert await count(database_url, t.results, mine) == 1

    # The leukocytes' history: the demo's two values and this one, oldest first.
    history = await anna.call(
        "GET", "/api/patients/me/results/history?system=http://loinc.org&code=6690-2"
    )
    assert [p["value"] for p in history["points"]] == ["6.1", "11.4", "9.0"]
    assert [p["flag"] for p in history["points"]] == ["normal", "high", "normal"]
    reads = await rows(database_url, t.audit_log, _A.action == "result.read", _A.allowed)
    assert {r.actor_id for r in reads} == {anna.user["id"]} and len(reads) == 3


async def test_refusals_are_operation_outcomes_and_store_nothing(
    api, server, clock, database_url, monkeypatch
):
    token = await credential(server)
    revoked = await credential(server, "old-lab")
    await server.app[SERVICES].results.credentials.revoke("old-lab")
    anna = await api("anna@demo.test")
    lab = await api()
    bundle = blood_count(when=when(clock))
    before = await count(database_url, t.results)

    assert issue(await post(lab, None, bundle, 401))[:2] == ("not_authenticated", "login")
    for wrong in ("nonsense", revoked, anna.token):
        assert issue(await post(lab, wrong, bundle, 401))[0] == "invalid_credential"

    unknown = await post(lab, token, blood_count(pesel=UNKNOWN_PESEL), 422)
    assert issue(unknown) == (
        "unknown_patient",
        "not-found",
        ["Bundle.entry[0].resource.identifier[0].value"],
    )
    # A PESEL two patients have: nobody's result is guessed.
    twice = t.users.update().where(t.users.c.email == "basia@demo.test").values(pesel="85031412361")
    await execute(database_url, twice)
    assert issue(await post(lab, token, bundle, 422))[:2] == (
        "ambiguous_patient",
        "multiple-matches",
    )
    undo = t.users.update().where(t.users.c.email == "basia@demo.test").values(pesel=None)
    await execute(database_url, undo)
    broken = changed(bundle, 2, valueQuantity={"value": "eleven"})
    assert issue(await post(lab, token, broken, 400)) == (
        "invalid_bundle",
        "value",
        ["Bundle.entry[2].resource.valueQuantity.value"],
    )
    no_id = changed(bundle, 1, identifier=None)
    assert issue(await post(lab, token, no_id, 422))[::2] == (
        "invalid_report",
        ["Bundle.entry[1].resource.identifier"],
    )
    assert issue(await post(lab, token, b"{", 400))[0] == "invalid_bundle"
    assert issue(await post(lab, token, bundle, 415, "text/plain"))[0] == "unsupported_media_type"
    monkeypatch.setattr(routes_results, "MAX_BODY", 1_000)
    assert issue(await post(lab, token, bundle, 413))[0] == "report_too_large"
    assert await count(database_url, t.results) == before

    # Each refusal to a known sending system is audited (no row without a valid credential).
    denied = await rows(database_url, t.audit_log, _A.action == "result.receive")
    assert [r.detail.split(": ")[-1] for r in denied] == [
        "422 unknown_patient",
        "422 ambiguous_patient",
        "400 invalid_bundle",
        "422 invalid_report",
        "400 invalid_bundle",
        "415 unsupported_media_type",
        "413 report_too_large",
    ]
    assert {(r.allowed, r.actor_role) for r in denied} == {(False, "integration")}

    # The integration's token is no session: it reads nothing.
    reader = ApiClient(lab.base_url)
    reader.token = token
    for path in ("/api/me", "/api/patients/me/results", f"/api/patients/{anna.user['id']}/fhir"):
        await reader.call("GET", path, expect=401)
    await reader.close()


async def test_a_doctor_of_the_patient_reads_her_results_and_others_get_404(
    api, sockets, server, database_url, tmp_path
):
    token = await credential(server, "imaging")
    lab = await api()
    await post(lab, token, imaging_report(pdf()), 201)
    folder = tmp_path / "documents" / "results"  # the PDF is the server's alone
    (kept,) = folder.iterdir()
    assert (folder.stat().st_mode & 0o777, kept.stat().st_mode & 0o777) == (0o700, 0o600)
    house = await api("dr.house@demo.test")
    house_ws = await sockets(house.token)
    await house_ws.emit("presence:online", IM)
    anna = await api("anna@demo.test")
    aid = anna.user["id"]
    await start_and_accept(anna, house_ws, "internal-medicine")

    page = await house.call("GET", f"/api/patients/{aid}/results")
    x_ray = next(r for r in page["results"] if r["sender"] == "imaging")
    assert x_ray["conclusion"].startswith("No focal lesions") and x_ray["observations"] == []
    headers = {"Authorization": f"Bearer {house.token}"}
    async with house.session.get(house.base_url + x_ray["pdf"]["url"], headers=headers) as got:
        assert got.status == 200 and await got.read() == pdf()
        assert got.headers["Content-Type"] == "application/pdf"
    history = f"/api/patients/{aid}/results/history?system=http://loinc.org&code=2093-3"
    assert len((await house.call("GET", history))["points"]) == 2

    bundle = await house.call("GET", f"/api/patients/{aid}/fhir")
    reports = [
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "DiagnosticReport"
    ]
    assert len(reports) == 6  # the demo's five and the X-ray
    for entry in bundle["entry"]:
        resource = entry["resource"]
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    (fhir_x_ray,) = [r for r in reports if r["identifier"][0]["value"] == "RTG-77"]
    assert fhir_x_ray["presentedForm"][0]["url"].endswith(x_ray["pdf"]["url"])

    for stranger in ("dr.grey@demo.test", "scheduler@demo.test", "piotr@demo.test"):
        other = await api(stranger)
        refused = await other.call("GET", f"/api/patients/{aid}/results", expect=404)
        assert refused["error"]["code"] == "patient_not_found"
        await other.call("GET", history, expect=404)
        gone = await other.call("GET", x_ray["pdf"]["url"], expect=404)
        assert gone["error"]["code"] == "result_not_found"
        denied = await rows(
            database_url, t.audit_log, _A.actor_id == other.user["id"], _A.action == "result.read"
        )
        assert len(denied) == 3 and not any(r.allowed for r in denied)
    await house.call("GET", "/api/patients/me/results", expect=404)  # a doctor has none


async def command(*args: str) -> tuple[int, str]:
    """consult, run as the operator would, in a process of its own."""
    process = await asyncio.create_subprocess_exec(
        *consult_command(),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_the_operator_adds_and_revokes_a_laboratorys_credential(
    api, server, clock, database_url
):
    status, out = await command("add-integration", "lab-north", "--database-url", database_url)
    assert status == 0, out
    token = out.splitlines()[1]
    (stored,) = await rows(database_url, t.integrations, t.integrations.c.name == "lab-north")
    assert stored.token_hash == token_hash(token) and stored.revoked_at is None  # its hash only
    lab = await api()
    await post(lab, token, blood_count(when=when(clock)), 201)
    status, out = await command("revoke-integration", "lab-north", "--database-url", database_url)
    assert (status, out.strip()) == (0, "revoked 1 credential(s) of 'lab-north'")
    refused = await post(lab, token, blood_count(when=when(clock), report_id="CBC-2"), 401)
    assert issue(refused)[0] == "invalid_credential"
    status, _ = await command("revoke-integration", "lab-north", "--database-url", database_url)
    assert status == 1  # none left
