"""The client's address behind a reverse proxy, over real HTTP and Socket.IO. The test client
connects from 127.0.0.1. When that address is a trusted proxy (CONSULT_TRUSTED_PROXIES), the
X-Forwarded-For it sends is what the audit log records. Otherwise the header is ignored, so a
client cannot spoof its address. The /metrics loopback rule does not depend on the trust."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from consult.app import SIO, create_app
from consult.clock import ManualClock
from consult.storage import tables as t
from tests.integration.conftest import settings_for
from tests.support import ApiClient, SocketClient, rows, start_and_accept

IM = {"specialties": ["internal-medicine"], "forms": ["chat"]}
# What nginx would send: whatever the client wrote, then the address nginx saw.
PATIENT_HTTP = {"X-Forwarded-For": "10.66.0.1, 203.0.113.7"}
PATIENT_SOCKET = {"X-Forwarded-For": "203.0.113.8"}
DOCTOR_HTTP = {"X-Forwarded-For": "198.51.100.20"}
DOCTOR_SOCKET = {"X-Forwarded-For": "[2001:db8::21]:4711"}


@pytest.fixture
async def behind_proxy(
    database_url: str,
    clock: ManualClock,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    tmp_path: Path,
) -> TestServer:
    """The integration tests' server, with the test client's 127.0.0.1 as a trusted proxy."""
    settings = settings_for(database_url, tmp_path, trusted_proxies="127.0.0.1, ::1")
    return await aiohttp_server(create_app(settings, clock=clock))


@pytest.fixture
async def clients() -> AsyncIterator[list[Any]]:
    made: list[Any] = []
    yield made
    for client in made:
        if isinstance(client, ApiClient):
            await client.close()
        elif client.sio.connected:
            await client.close()


async def consult_through_a_proxy(server: TestServer, made: list[Any]) -> int:
    """Log in a doctor and a patient, and run a chat consultation; every request carries an
    X-Forwarded-For header. The consultation's id."""
    base = str(server.make_url("/")).rstrip("/")

    async def api(email: str, headers: dict[str, str]) -> ApiClient:
        client = ApiClient(base, headers=headers)
        made.append(client)
        return await client.login(email)

    async def sockets(token: str | None, headers: dict[str, str]) -> SocketClient:
        client = SocketClient()
        made.append(client)
        return await client.connect(base, token, headers=headers)

    doctor = await api("dr.house@demo.test", DOCTOR_HTTP)
    doctor_ws = await sockets(doctor.token, DOCTOR_SOCKET)
    assert (await doctor_ws.emit("presence:online", IM))["ok"]
    patient = await api("anna@demo.test", PATIENT_HTTP)
    patient_ws = await sockets(patient.token, PATIENT_SOCKET)
    cid = await start_and_accept(patient, doctor_ws, "internal-medicine")
    ack = await patient_ws.emit(
        "chat:send", {"consultation_id": cid, "client_id": "c1", "body": "hello"}
    )
    assert ack["ok"], ack
    # A failed login: no actor, the address all the same.
    wrong = ApiClient(base, headers=PATIENT_HTTP)
    made.append(wrong)
    await wrong.call(
        "POST",
        "/api/login",
        {"email": "anna@demo.test", "password": "not-the-password"},
        expect=401,
    )
    return cid


async def audited_ips(database_url: str) -> dict[tuple[str, int | None, bool], set[str | None]]:
    """The addresses recorded per (action, actor, allowed)."""
    found: dict[tuple[str, int | None, bool], set[str | None]] = {}
    for row in await rows(database_url, t.audit_log):
        found.setdefault((row.action, row.actor_id, row.allowed), set()).add(row.ip)
    return found


async def ids(database_url: str) -> tuple[int, int]:
    users = {r.email: r.id for r in await rows(database_url, t.users)}
    return users["dr.house@demo.test"], users["anna@demo.test"]


async def test_behind_a_trusted_proxy_the_forwarded_address_is_audited(
    behind_proxy, clients, database_url
):
    await consult_through_a_proxy(behind_proxy, clients)
    house, anna = await ids(database_url)
    audited = await audited_ips(database_url)
    # HTTP: the right-most untrusted entry; the spoofable 10.66.0.1 on its left is not read.
    assert audited[("session.login", anna, True)] == {"203.0.113.7"}
    assert audited[("session.login", house, True)] == {"198.51.100.20"}
    assert audited[("session.login", None, False)] == {"203.0.113.7"}
    assert audited[("consultation.start", anna, True)] == {"203.0.113.7"}
    # Socket.IO: the handshake's header, kept for the socket's life.
    assert audited[("consultation.accept", house, True)] == {"2001:db8::21"}
    assert audited[("chat.write", anna, True)] == {"203.0.113.8"}


async def test_without_trust_the_header_is_ignored(server, clients, database_url):
    """The default: nobody is trusted, so the same headers are a spoofing attempt."""
    await consult_through_a_proxy(server, clients)
    house, anna = await ids(database_url)
    audited = await audited_ips(database_url)
    for key in [
        ("session.login", anna, True),
        ("session.login", house, True),
        ("session.login", None, False),
        ("consultation.start", anna, True),
        ("consultation.accept", house, True),
        ("chat.write", anna, True),
    ]:
        assert audited[key] == {"127.0.0.1"}, key


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Forwarded-For": "127.0.0.1"},
        {"X-Forwarded-For": "203.0.113.7"},
        {"X-Forwarded-For": "garbage"},
        {"Forwarded": "for=127.0.0.1"},
    ],
)
async def test_a_trusted_proxy_does_not_make_a_forwarded_request_local(behind_proxy, headers):
    """/metrics answers direct loopback requests only: a relayed one needs a scheduler, even
    from a trusted proxy that forwards a loopback address."""
    base = str(behind_proxy.make_url("/")).rstrip("/")
    client = ApiClient(base, headers=headers)
    try:
        assert (await client.call("GET", "/metrics", expect=401))["error"]["code"] == (
            "not_authenticated"
        )
    finally:
        await client.close()
    direct = ApiClient(base)
    try:
        async with direct.session.get(base + "/metrics") as response:
            assert response.status == 200
    finally:
        await direct.close()


async def test_garbage_from_a_trusted_proxy_is_the_peer_never_an_error(
    behind_proxy, clients, database_url
):
    base = str(behind_proxy.make_url("/")).rstrip("/")
    anna = ApiClient(base, headers={"X-Forwarded-For": "203.0.113.7, not-an-ip"})
    clients.append(anna)
    await anna.login("anna@demo.test")
    ws = SocketClient()
    clients.append(ws)
    await ws.connect(base, anna.token, headers={"X-Forwarded-For": "[::1"})
    session = await behind_proxy.app[SIO].get_session(ws.sio.get_sid("/"))
    assert session["ip"] == "127.0.0.1"
    logins = [r for r in await rows(database_url, t.audit_log) if r.action == "session.login"]
    assert [r.ip for r in logins] == ["127.0.0.1"]
