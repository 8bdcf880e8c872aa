"""A ``consult serve`` process killed with SIGKILL in the middle of a busy chat loses no
acknowledged message: ``chat:send`` acks only after the commit, and the commit is durable
(SQLite: WAL with synchronous=FULL; PostgreSQL: its own WAL), so after a restart on the same
database every acked message is there with the seq its ack gave."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from tests.integration.test_process_lifecycle import ONE_AT_A_TIME, Servers
from tests.integration.test_two_processes import Clients, add_users

MESSAGES = 2000  # half each way
IN_FLIGHT = 10  # each participant's sends awaiting their acks at once
KILL_AFTER = 800  # acks seen before the SIGKILL: about 40% of the way

# The test sends as fast as acks come back: no chat rate limit to speak of.
SETTINGS = {"CONSULT_CHAT_RATE": "100000", "CONSULT_CHAT_BURST": "100000", "CONSULT_SLOT_DAYS": "0"}


@pytest.fixture
def servers(database_url: str, tmp_path: Path) -> Iterator[Servers]:
    made = Servers(database_url, tmp_path, SETTINGS)
    yield made
    made.stop_all()


@pytest.fixture
async def clients() -> AsyncIterator[Clients]:
    made = Clients()
    yield made
    await made.close()


async def test_every_acknowledged_message_survives_a_sigkill(
    servers: Servers, clients: Clients, database_url: str
) -> None:
    first = servers.start("first", demo=True)
    engine = create_async_engine(database_url)
    try:
        (doctor,) = await add_users(engine, "doctor", 1, "psychiatry")
        (patient,) = await add_users(engine, "patient", 1)
    finally:
        await engine.dispose()
    doctor_ws = await clients.socket(first, doctor)
    assert (await doctor_ws.emit("presence:online", ONE_AT_A_TIME))["ok"]
    patient_ws = await clients.socket(first, patient)
    ticket = await clients.api(first, patient).call(
        "POST", "/api/consultations", {"specialty": "psychiatry", "form": "chat"}, expect=201
    )
    cid = ticket["consultation"]["id"]
    await doctor_ws.next("queue:offer", 10)
    assert (await doctor_ws.emit("queue:accept", {"consultation_id": cid}))["ok"]

    acked: dict[str, int] = {}  # client_id -> the seq its ack gave
    enough = asyncio.Event()

    async def send(ws: Any, client_id: str) -> None:
        payload = {"consultation_id": cid, "client_id": client_id, "body": f"message {client_id}"}
        # A call the dead server never answers ends at its timeout (cancelling it does not
        # stop python-socketio's wait): short, for the test's sake.
        ack = await ws.sio.call("chat:send", payload, timeout=5)
        assert ack["ok"], ack
        acked[client_id] = ack["data"]["seq"]
        if len(acked) >= KILL_AFTER:
            enough.set()

    async def sender(ws: Any, prefix: str, lane: int) -> None:
        # Each lane sends its share one after another; IN_FLIGHT lanes per participant.
        for n in range(lane, MESSAGES // 2, IN_FLIGHT):
            await send(ws, f"{prefix}-{n}")

    lanes = [
        asyncio.create_task(sender(ws, prefix, lane))
        for ws, prefix in ((patient_ws, "p"), (doctor_ws, "d"))
        for lane in range(IN_FLIGHT)
    ]
    await asyncio.wait_for(enough.wait(), 60)
    first.popen.send_signal(signal.SIGKILL)
    first.popen.wait(timeout=10)
    for lane in lanes:
        lane.cancel()

    second = servers.start("second", demo=True)
    api = clients.api(second, patient)
    # The transcript comes a page at a time: read on until has_more is false.
    messages: list[dict] = []
    while True:
        after = messages[-1]["seq"] if messages else 0
        page = await api.call("GET", f"/api/consultations/{cid}/messages?after={after}&limit=500")
        messages += page["messages"]
        if not page["has_more"]:
            break
    # An ack already on its way when the process died may still be recorded meanwhile: it
    # was sent after the commit, so it counts.
    await asyncio.gather(*lanes, return_exceptions=True)
    assert KILL_AFTER <= len(acked) < MESSAGES, "the kill came in the middle of the chat"
    stored = {m["client_id"]: m["seq"] for m in messages}
    lost = {client_id for client_id in acked if client_id not in stored}
    assert not lost, f"{len(lost)} acknowledged messages lost, e.g. {sorted(lost)[:5]}"
    assert {client_id: stored[client_id] for client_id in acked} == acked
    seqs = [m["seq"] for m in messages]
    assert seqs == list(range(1, len(seqs) + 1)), "seq 1, 2, 3... with no gap"
