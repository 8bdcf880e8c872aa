"""Per-user rate limits on events and clinical reads, over real Socket.IO and HTTP: a burst
beyond the limit is refused (rate_limited, retry_after; 429 with Retry-After) and audits
nothing beyond what was allowed; after the wait the same call works; other users and other
routes keep their own budgets. And every GET route is classified (clinical or not)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from consult.app import APIS, create_app
from consult.clock import ManualClock
from consult.storage import tables as t
from consult.usage_limits import CLINICAL_READS, HEAVY_READS, OTHER_READS
from tests.integration.conftest import settings_for
from tests.support import ApiClient, SocketClient, count, start_and_accept

BURST = 5
# A low rate: the refill during the test's burst (well under a second) is at most a token.
LIMITS = {"read_rate": 1.0, "read_burst": BURST, "event_rate": 1.0, "event_burst": BURST}


@pytest.fixture
async def limited(
    database_url: str,
    clock: ManualClock,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    tmp_path: Path,
) -> Any:
    app = create_app(settings_for(database_url, tmp_path, **LIMITS), clock=clock)
    server = await aiohttp_server(app)
    base = str(server.make_url("/")).rstrip("/")
    made: list[Any] = []

    async def http(email: str) -> ApiClient:
        client = await ApiClient(base).login(email)
        made.append(client)
        return client

    async def socket(token: str | None) -> SocketClient:
        client = await SocketClient().connect(base, token)
        made.append(client)
        return client

    yield http, socket
    for client in made:
        await client.close()


async def chatting(http: Any, socket: Any) -> tuple[ApiClient, SocketClient, int]:
    doctor = await http("dr.house@demo.test")
    doctor_ws = await socket(doctor.token)
    presence = {"specialties": ["internal-medicine"], "forms": ["chat"]}
    assert (await doctor_ws.emit("presence:online", presence))["ok"]
    patient = await http("anna@demo.test")
    cid = await start_and_accept(patient, doctor_ws, "internal-medicine")
    return patient, await socket(patient.token), cid


def reads_of(cid: int) -> Any:
    return (t.audit_log.c.action == "chat.read", t.audit_log.c.consultation_id == cid)


async def test_a_resume_flood_is_refused_beyond_the_limit_and_audits_only_what_was_allowed(
    limited: Any, database_url: str
) -> None:
    http, socket = limited
    patient, patient_ws, cid = await chatting(http, socket)
    before = await count(database_url, t.audit_log, *reads_of(cid))
    resume = {"consultation_id": cid, "after_seq": 0}

    acks = await asyncio.gather(*(patient_ws.emit("chat:resume", resume) for _ in range(40)))
    allowed = [a for a in acks if a["ok"]]
    refused = [a for a in acks if not a["ok"]]
    assert BURST <= len(allowed) <= BURST + 1
    assert {a["error"]["code"] for a in refused} == {"rate_limited"}
    assert all(0 < a["error"]["retry_after"] <= 1 for a in refused)
    assert await count(database_url, t.audit_log, *reads_of(cid)) == before + len(allowed)

    # After the wait it says, the same call works again.
    await asyncio.sleep(refused[-1]["error"]["retry_after"] + 0.05)
    assert (await patient_ws.emit("chat:resume", resume))["ok"]


async def test_each_event_has_its_own_budget_per_user(limited: Any) -> None:
    http, socket = limited
    patient, patient_ws, cid = await chatting(http, socket)
    # queue:ticket (no clinical read) takes the events' figures.
    acks = [await patient_ws.emit("queue:ticket") for _ in range(BURST + 3)]
    codes = [a["error"]["code"] if not a["ok"] else "ok" for a in acks]
    assert codes.count("rate_limited") >= 2, codes
    # Another event of the same user, and the same event of another user, are not held up.
    resumed = await patient_ws.emit("chat:resume", {"consultation_id": cid, "after_seq": 0})
    assert resumed["ok"]
    piotr = await http("piotr@demo.test")
    piotr_ws = await socket(piotr.token)
    ticket = await piotr_ws.emit("queue:ticket")
    assert ticket["ok"] or ticket["error"]["code"] != "rate_limited", ticket
    # chat:send keeps its own limit (per consultation, CONSULT_CHAT_BURST = 20 here).
    for n in range(BURST + 3):
        sent = await patient_ws.emit(
            "chat:send", {"consultation_id": cid, "client_id": f"m{n}", "body": "hello"}
        )
        assert sent["ok"], sent


async def test_an_http_read_flood_gets_429_with_retry_after_and_audits_only_what_was_allowed(
    limited: Any, database_url: str
) -> None:
    http, socket = limited
    patient, _, cid = await chatting(http, socket)
    reads = reads_of(cid)
    before = await count(database_url, t.audit_log, *reads)
    headers = {"Authorization": f"Bearer {patient.token}"}
    url = f"{patient.base_url}/api/consultations/{cid}/messages"

    async def get() -> tuple[int, str | None, Any]:
        async with patient.session.get(url, headers=headers) as response:
            return response.status, response.headers.get("Retry-After"), await response.json()

    answers = await asyncio.gather(*(get() for _ in range(30)))
    ok = [a for a in answers if a[0] == 200]
    limited_answers = [a for a in answers if a[0] == 429]
    assert len(ok) + len(limited_answers) == 30
    assert BURST <= len(ok) <= BURST + 1
    assert {a[2]["error"]["code"] for a in limited_answers} == {"rate_limited"}
    assert {a[1] for a in limited_answers} == {"1"}  # whole seconds, rounded up
    assert await count(database_url, t.audit_log, *reads) == before + len(ok)
    # Another clinical route has its own budget; a route that reads nothing clinical has none.
    await patient.call("GET", f"/api/consultations/{cid}")
    async with aiohttp.ClientSession() as anonymous:
        for _ in range(BURST + 3):
            async with anonymous.get(patient.base_url + "/healthz") as response:
                assert response.status == 200
    for _ in range(BURST + 3):
        await patient.call("GET", "/api/specialties")


def test_every_get_route_is_classified_as_a_clinical_read_or_not() -> None:
    gets = {r.path for api in APIS for r in api.routes if r.method == "GET"}
    # A new GET route must be put in one set or another (unlimited only on purpose).
    limited = CLINICAL_READS | HEAVY_READS
    assert gets <= limited | OTHER_READS, gets - limited - OTHER_READS
    assert not CLINICAL_READS & OTHER_READS
    assert not HEAVY_READS & (CLINICAL_READS | OTHER_READS)  # one bucket each
