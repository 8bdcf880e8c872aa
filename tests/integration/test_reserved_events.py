"""Client events that bear a Socket.IO lifecycle name (``connect``, ``disconnect``,
``connect_error``) are refused before any handler runs: the identity and address found at the
handshake stay for the socket's life, and no grace period starts. Real Socket.IO clients, one
backend; the server's clock and sweeps are driven by hand."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestServer

from consult.http.routing import SERVICES
from consult.storage import tables as t
from tests.support import rows, start_and_accept

# Refused before any handler runs: storage is never reached.
pytestmark = pytest.mark.one_backend

ONE_AT_A_TIME = {"specialties": ["internal-medicine"], "forms": ["chat"], "capacity": 1}
FORGED_ADDRESS = "10.66.66.66"


def refused(ack: object, name: str) -> None:
    assert isinstance(ack, dict) and ack["ok"] is False, ack
    assert ack["error"]["code"] == "unknown_event", ack
    assert name in ack["error"]["message"]


@pytest.mark.parametrize("name", ["connect", "disconnect", "connect_error"])
async def test_a_client_event_with_a_lifecycle_name_is_refused_and_changes_nothing(
    api, sockets, server: TestServer, clock, database_url: str, name: str
) -> None:
    house = await api("dr.house@demo.test")
    house_ws = await sockets(house.token)
    assert (await house_ws.emit("presence:online", ONE_AT_A_TIME))["ok"]
    anna = await api("anna@demo.test")
    cid = await start_and_accept(anna, house_ws, "internal-medicine")

    # What a forger sends: an environ of their making and another valid user's token.
    environ = {
        "REMOTE_ADDR": FORGED_ADDRESS,
        "HTTP_X_FORWARDED_FOR": FORGED_ADDRESS,
        "HTTP_COOKIE": f"consult_session={anna.token}",
    }
    ack = await house_ws.sio.call(name, (environ, {"token": anna.token}), timeout=10)
    refused(ack, name)
    refused(await house_ws.sio.call(name, timeout=10), name)  # and without arguments

    # Still Dr House, at the handshake's address: a doctor's event works, and what the socket
    # does is audited as him from 127.0.0.1.
    read = await house_ws.emit("chat:read", {"consultation_id": cid, "seq": 0})
    assert read["ok"], read
    assert (await house_ws.emit("presence:online", ONE_AT_A_TIME))["ok"]
    house_id = house.user["id"]
    audited = [r for r in await rows(database_url, t.audit_log) if r.actor_id == house_id]
    assert audited and {r.ip for r in audited} == {"127.0.0.1"}, {r.ip for r in audited}

    # No grace period started: after the doctor's grace and a sweep, he is still online and
    # the consultation still his.
    clock.advance(server.app[SERVICES].settings.doctor_grace + 5)
    await server.app[SERVICES].sweeper.sweep()
    (presence,) = await rows(
        database_url, t.doctor_presence, t.doctor_presence.c.doctor_id == house_id
    )
    assert presence.status == "online" and presence.disconnected_at is None
    (consultation,) = await rows(database_url, t.consultations, t.consultations.c.id == cid)
    assert consultation.status == "active" and consultation.doctor_id == house_id
    assert house_ws.sio.connected


@pytest.mark.parametrize("name", ["connect", "no:such-event"])
async def test_an_unknown_or_reserved_event_is_audited_as_a_refusal(
    api, sockets, database_url: str, name: str
) -> None:
    anna = await api("anna@demo.test")
    anna_ws = await sockets(anna.token)
    refused(await anna_ws.sio.call(name, {"consultation_id": 1}, timeout=10), name)
    denied = [
        r
        for r in await rows(database_url, t.audit_log)
        if r.actor_id == anna.user["id"] and not r.allowed
    ]
    assert [r.detail for r in denied] == [f"unknown_event: {name}"], denied
