"""Nothing acknowledged is lost, duplicated or reordered, whatever the network does.

A patient and a doctor exchange 2,000 messages (1,000 each) through the real server over real
Socket.IO (websocket transport), while each side's transport is cut 100 times: the TCP socket
under the client's websocket is shut down abruptly (no close frame, no Socket.IO disconnect),
most of the time while a message is in flight. Each client then does what the pages do:
reconnect, resume from the last sequence number it holds (``chat:resume``), and send the
unacknowledged message again with the same client id. Sending is one message at a time, in
the user's order, as the pages send.

At the end the stored transcript must hold every message exactly once, with sequence numbers
1..2000, each sender's messages in the order they were written; each side's view (live pushes
plus resumes, applied by seq) must be exactly the stored transcript; each ack must name the
stored sequence number.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import socketio
import sqlalchemy as sa
from aiohttp.test_utils import TestServer
from sqlalchemy.ext.asyncio import create_async_engine

from consult.app import create_app
from consult.clock import SystemClock
from consult.settings import Settings
from consult.storage import tables as t
from tests.support import start_and_accept

PER_SIDE = 1000
CUTS_PER_SIDE = 100
ACK_PATIENCE = 5.0


@pytest.fixture
async def server(
    database_url: str, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> TestServer:
    # The real clock and sweeper; rate limits well above what one sender does here: the
    # cutters reconnect (and so resume) about ten times a second, far beyond any real page.
    settings = Settings(
        database_url=database_url,
        demo=True,
        migrate_on_start=False,
        sweep_interval=1.0,
        chat_rate=5000.0,
        chat_burst=5000,
        read_rate=5000.0,
        read_burst=5000,
    )
    return await aiohttp_server(create_app(settings, clock=SystemClock()))


class Lost(Exception):
    """The connection dropped before the ack came."""


class Participant:
    """A chat client that survives cuts: resume by seq, retry by client id, order by seq."""

    def __init__(self, name: str, base_url: str, token: str, cid: int) -> None:
        self.name, self.base_url, self.token, self.cid = name, base_url, token, cid
        self.sio: socketio.AsyncClient | None = None
        self.connected = asyncio.Event()
        self.last_seq = 0
        self.log: dict[int, dict[str, Any]] = {}  # seq -> message, applied in order
        self.ahead: dict[int, dict[str, Any]] = {}  # pushed past a gap, waiting for it
        # client id -> (the connection it was sent on, the future its ack resolves)
        self.waiting: dict[str, tuple[socketio.AsyncClient, asyncio.Future[Any]]] = {}
        self.acks: dict[str, int] = {}
        self.sent_order: list[str] = []
        self.in_flight = False
        self.cut_on_next_send = False
        self.sends = 0
        self.resends = 0
        self.resends_of_stored = 0
        self.redelivered = 0
        self.cuts = 0
        self.cuts_in_flight = 0
        self.reconnects = 0

    # --- receiving ----------------------------------------------------------------------------

    def apply(self, message: dict[str, Any]) -> None:
        seq = message["seq"]
        if seq <= self.last_seq or seq in self.ahead:
            self.redelivered += 1
            assert self.log.get(seq, self.ahead.get(seq)) == message, "a seq changed meaning"
            return
        self.ahead[seq] = message
        while self.last_seq + 1 in self.ahead:
            self.last_seq += 1
            self.log[self.last_seq] = self.ahead.pop(self.last_seq)

    # --- connection ---------------------------------------------------------------------------

    async def connect(self) -> None:
        sio = socketio.AsyncClient(reconnection=False)

        @sio.on("chat:message")
        async def on_message(data: dict[str, Any]) -> None:
            if sio is self.sio:
                self.apply(data["message"])

        @sio.on("disconnect")
        async def on_disconnect(*_: Any) -> None:
            if sio is self.sio:
                self.connected.clear()
            # Acks of this connection will never come: send those messages again.
            for via, future in list(self.waiting.values()):
                if via is sio and not future.done():
                    future.set_exception(Lost())

        self.sio = sio
        await sio.connect(
            self.base_url, auth={"token": self.token}, transports=["websocket"], wait_timeout=5
        )
        # Everything after what we hold, before new messages are trusted: pushes that arrive
        # meanwhile wait in `ahead` until the gap is filled.
        reply = await sio.call(
            "chat:resume", {"consultation_id": self.cid, "after_seq": self.last_seq}, timeout=10
        )
        assert reply["ok"], reply
        for message in reply["data"]["messages"]:
            self.apply(message)
        self.connected.set()

    async def keep_connected(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if not self.connected.is_set():
                try:
                    await self.connect()
                    self.reconnects += 1
                except (socketio.exceptions.ConnectionError, TimeoutError, OSError):
                    pass  # cut again while connecting; try again
            await asyncio.sleep(0.002)

    def cut(self) -> None:
        """Shut the TCP socket under the websocket: no close frame, nothing said."""
        sio = self.sio
        ws = sio.eio.ws if sio is not None else None
        raw = ws.get_extra_info("socket") if ws is not None else None
        if raw is None:
            return
        self.cuts += 1
        self.cuts_in_flight += self.in_flight
        self.connected.clear()
        try:
            raw.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # --- sending ------------------------------------------------------------------------------

    async def send_all(self, bodies: list[str]) -> None:
        for i, body in enumerate(bodies):
            client_id = f"{self.name}-{i}"
            self.sent_order.append(client_id)
            attempt = 0
            while client_id not in self.acks:
                await self.connected.wait()
                attempt += 1
                if attempt > 1:
                    self.resends += 1
                    if any(m["client_id"] == client_id for m in self.log.values()):
                        self.resends_of_stored += 1  # it was stored; only the ack was lost
                await self._send_once(client_id, body)

    async def _send_once(self, client_id: str, body: str) -> None:
        sio = self.sio
        assert sio is not None
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiting[client_id] = (sio, future)

        def on_ack(reply: Any) -> None:
            if not future.done():
                future.set_result(reply)

        self.in_flight = True
        try:
            self.sends += 1
            await sio.emit(
                "chat:send",
                {"consultation_id": self.cid, "client_id": client_id, "body": body},
                callback=on_ack,
            )
            if self.cut_on_next_send:  # the packet is queued, not yet on the wire
                self.cut_on_next_send = False
                self.cut()
            reply = await asyncio.wait_for(future, ACK_PATIENCE)
        except (Lost, socketio.exceptions.BadNamespaceError, TimeoutError):
            return  # sent again, with the same client id, once reconnected
        finally:
            self.in_flight = False
            self.waiting.pop(client_id, None)
        if not reply["ok"] and reply["error"]["code"] == "rate_limited":
            await asyncio.sleep(reply["error"]["retry_after"])
            return
        assert reply["ok"], reply
        self.acks[client_id] = reply["data"]["seq"]
        self.apply(reply["data"])


async def cutter(side: Participant, rng: random.Random, done: asyncio.Event) -> None:
    """Cut ``CUTS_PER_SIDE`` times, about every 10 messages, mostly while one is in flight."""
    for _ in range(CUTS_PER_SIDE):
        target = side.sends + rng.randint(3, 16)
        while side.sends < target and not done.is_set():
            await asyncio.sleep(0.001)
        await side.connected.wait()
        if done.is_set():
            side.cut()
        elif rng.random() < 0.3:
            # The next message is lost on its way out: the server never sees it.
            cuts = side.cuts
            side.cut_on_next_send = True
            while side.cuts == cuts and not done.is_set():
                await asyncio.sleep(0.001)
            if side.cuts == cuts:
                side.cut_on_next_send = False
                side.cut()
        else:
            # Later in a message's flight: while it is being stored, or after the commit with
            # the ack on its way back.
            while not side.in_flight and not done.is_set():
                await asyncio.sleep(0)
            await asyncio.sleep(rng.uniform(0, 0.004))
            side.cut()
        await asyncio.sleep(0.003)


async def test_2000_messages_survive_200_cuts(api, sockets, base_url, database_url):
    doctor = await api("dr.house@demo.test")
    doctor_ws = await sockets(doctor.token)
    assert (
        await doctor_ws.emit(
            "presence:online", {"specialties": ["internal-medicine"], "forms": ["chat"]}
        )
    )["ok"]
    patient = await api("anna@demo.test")
    cid = await start_and_accept(patient, doctor_ws, "internal-medicine")

    sides = [
        Participant("patient", base_url, str(patient.token), cid),
        Participant("doctor", base_url, str(doctor.token), cid),
    ]
    rng = random.Random(4)
    stop = asyncio.Event()
    sent_all = asyncio.Event()
    for side in sides:
        await side.connect()
    keepers = [asyncio.create_task(s.keep_connected(stop)) for s in sides]
    started = time.monotonic()
    try:
        senders = asyncio.gather(
            *(s.send_all([f"{s.name} says {i}" for i in range(PER_SIDE)]) for s in sides)
        )
        cutters = asyncio.gather(*(cutter(s, rng, sent_all) for s in sides))
        await asyncio.wait_for(senders, 120)
        sent_all.set()
        await asyncio.wait_for(cutters, 30)
        # The last pushes (or the resume after the last cut) bring every message to both sides.
        deadline = time.monotonic() + 15
        while any(s.last_seq < 2 * PER_SIDE for s in sides) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        for task in keepers:
            task.cancel()
        await asyncio.gather(*keepers, return_exceptions=True)
        for side in sides:
            if side.sio is not None and side.sio.connected:
                await side.sio.disconnect()
    elapsed = time.monotonic() - started

    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            stored = (
                await conn.execute(
                    sa.select(t.messages)
                    .where(t.messages.c.consultation_id == cid)
                    .order_by(t.messages.c.seq)
                )
            ).all()
    finally:
        await engine.dispose()

    stats = {
        s.name: {
            "sends": s.sends,
            "resends": s.resends,
            "resends_of_stored": s.resends_of_stored,
            "cuts": s.cuts,
            "cuts_in_flight": s.cuts_in_flight,
            "reconnects": s.reconnects,
            "redelivered": s.redelivered,
        }
        for s in sides
    }
    print(f"chat reliability: {elapsed:.1f} s, {stats}")

    # 0 lost, 0 duplicated: every message written is stored once, numbered 1..2000 with no gap.
    assert [r.seq for r in stored] == list(range(1, 2 * PER_SIDE + 1))
    written = {cid_ for s in sides for cid_ in s.sent_order}
    assert len(written) == 2 * PER_SIDE
    assert sorted(r.client_id for r in stored) == sorted(written)
    # Order kept: each sender's messages in the order written.
    for side in sides:
        mine = [r.client_id for r in stored if r.client_id.startswith(side.name + "-")]
        assert mine == side.sent_order
        # Every ack named the stored sequence number.
        assert side.acks == {
            r.client_id: r.seq for r in stored if r.client_id.startswith(side.name + "-")
        }
        # Each side's view is the stored transcript, exactly.
        assert side.ahead == {}
        assert [(m["seq"], m["client_id"], m["body"]) for m in side.log.values()] == [
            (r.seq, r.client_id, r.body) for r in stored
        ]
    # The network really did misbehave: 100 cuts a side, most of them with a message in flight,
    # and some acks were lost after the commit (the retry found the stored message).
    for side in sides:
        assert side.cuts == CUTS_PER_SIDE
        assert side.cuts_in_flight >= CUTS_PER_SIDE // 2
        assert side.reconnects >= CUTS_PER_SIDE
    assert sum(s.resends for s in sides) >= CUTS_PER_SIDE
    # Both kinds of loss happened: messages stored whose ack was lost (the retry found the
    # stored one), and messages that never reached the server (the retry stored them).
    assert 0 < sum(s.resends_of_stored for s in sides) < sum(s.resends for s in sides)
