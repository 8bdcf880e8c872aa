"""Chat as the pages do it (web/common/chat.js), over a Tab that reconnects, and the check of
what was stored.

- Sending: each message gets a client id when written and waits in an outbox; messages go one
  at a time, in order; a message whose ack did not come (the connection dropped, the node died)
  is sent again, with the same client id, once the tab is connected again. The server stores
  a client id once and answers a repeat with the stored message. A send refused
  ``rate_limited`` (a backlog going out at once) or ``database_unavailable`` is sent again after
  ``retry_after``.
- Receiving: messages are applied by seq; one pushed past a gap waits until ``chat:resume``
  fills the gap, as does every reconnect.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from consult.storage import tables as t
from tests.cluster.people import Http, add_users
from tests.cluster.tabs import Lost, Tab, open_tabs
from tests.support import rows


@dataclass
class Chatter:
    tab: Tab
    cid: int
    outbox: deque[str] = field(default_factory=deque)  # client ids, in the order written
    written: list[str] = field(default_factory=list)
    acked: dict[str, int] = field(default_factory=dict)  # client id -> the seq its ack gave
    resent: int = 0  # sends of a message whose previous send got no ack
    fetched: int = 0  # the other side's messages that came by chat:resume, not pushed
    slowed: int = 0  # sends refused rate_limited (a backlog sent at once), sent again later
    unavailable: int = 0  # sends refused database_unavailable, sent again after retry_after
    view: dict[int, dict[str, Any]] = field(default_factory=dict)  # seq -> message, no gap
    ahead: dict[int, dict[str, Any]] = field(default_factory=dict)
    first_push_after: float | None = None  # see pushes_since()
    _watch_from: float = 0.0

    def __post_init__(self) -> None:
        self.tab.on("chat:message", self._pushed)
        self.tab.on_connect.append(lambda tab: self.catch_up())

    @property
    def last_seq(self) -> int:
        return max(self.view, default=0)

    def write(self) -> None:
        client_id = uuid.uuid4().hex
        self.outbox.append(client_id)
        self.written.append(client_id)

    async def flush(self) -> None:
        """Send the outbox, head first, until it is empty."""
        while self.outbox:
            client_id = self.outbox[0]
            await self.tab.connected.wait()
            payload = {"consultation_id": self.cid, "client_id": client_id, "body": client_id}
            try:
                ack = await self.tab.call("chat:send", payload, timeout=8)
            except Lost:
                self.resent += 1
                await asyncio.sleep(0.05)
                continue
            code = "" if ack["ok"] else ack["error"]["code"]
            if code in ("rate_limited", "database_unavailable"):  # as chat.js: wait, again
                if code == "rate_limited":
                    self.slowed += 1
                else:
                    self.unavailable += 1
                await asyncio.sleep(ack["error"]["details"]["retry_after"])
                continue
            assert ack["ok"], ack
            self.acked[client_id] = ack["data"]["seq"]
            self.outbox.popleft()
            self._apply(ack["data"])

    async def talk(self, stop: asyncio.Event, every: float) -> None:
        """Write a message every ``every`` seconds until ``stop``, sending as it goes; then
        send what is left."""
        sender = asyncio.create_task(self._sending(stop))
        while not stop.is_set():
            self.write()
            await asyncio.sleep(every)
        await sender
        await self.flush()

    async def catch_up(self) -> None:
        after = self.last_seq
        while True:
            try:
                reply = await self.tab.call(
                    "chat:resume", {"consultation_id": self.cid, "after_seq": after, "limit": 500}
                )
            except Lost:
                return  # the next connect catches up again
            assert reply["ok"], reply
            for message in reply["data"]["messages"]:
                new = message["seq"] not in self.view and message["seq"] not in self.ahead
                self._apply(message)
                if new and message["sender_id"] != self.tab.user.id:
                    self.fetched += 1
            if not reply["data"]["has_more"] or not reply["data"]["messages"]:
                return
            after = reply["data"]["messages"][-1]["seq"]

    def watch_pushes(self) -> None:
        """Note the time of the next message pushed by the other side from now on."""
        self._watch_from = time.monotonic()
        self.first_push_after = None

    # --- internals ---------------------------------------------------------------------------

    async def _sending(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.flush()
            await asyncio.sleep(0.01)

    async def _pushed(self, data: Any) -> None:
        message = data["message"]
        if message["consultation_id"] != self.cid:
            return
        mine = message["client_id"] in self.acked or message["client_id"] in self.outbox
        if not mine and self._watch_from and self.first_push_after is None:
            self.first_push_after = time.monotonic() - self._watch_from
        if self._apply(message):
            await self.catch_up()  # a push skipped a message: fetch what is missing

    def _apply(self, message: dict[str, Any]) -> bool:
        """Take a message in; True when it is past a gap."""
        seq = message["seq"]
        if seq in self.view:
            assert self.view[seq]["client_id"] == message["client_id"], "a seq changed meaning"
            return False
        self.ahead[seq] = message
        while self.last_seq + 1 in self.ahead:
            seq = self.last_seq + 1
            self.view[seq] = self.ahead.pop(seq)
        return bool(self.ahead)


@dataclass
class Stored:
    """What the database holds, against what the clients wrote and were told."""

    written: int
    acked: int
    resent: int
    stored: int
    lost: int
    doubled: int

    def __str__(self) -> str:
        return (
            f"{self.written} written, {self.acked} acknowledged, {self.resent} sent again "
            f"after a lost ack, {self.stored} stored, lost: {self.lost}, stored twice: "
            f"{self.doubled}"
        )


async def check_stored(database_url: str, pairs: list[tuple[Chatter, Chatter]]) -> Stored:
    """Every message written is stored once, with the seq its ack gave, each sender's in the
    order written, seqs without a gap; each side saw exactly the stored transcript."""
    m = t.messages.c
    found = await rows(database_url, t.messages, m.consultation_id.in_([a.cid for a, _ in pairs]))
    found.sort(key=lambda r: (r.consultation_id, r.seq))
    by_cid: dict[int, list[Any]] = {}
    for row in found:
        by_cid.setdefault(row.consultation_id, []).append(row)
    lost = doubled = 0
    for a, b in pairs:
        stored = by_cid.get(a.cid, [])
        assert [r.seq for r in stored] == list(range(1, len(stored) + 1)), "a gap in the seqs"
        seq_of = {r.client_id: r.seq for r in stored}
        doubled += len(stored) - len(seq_of)
        for side in (a, b):
            lost += sum(1 for c in side.written if c not in seq_of)
            assert {c: seq_of.get(c) for c in side.acked} == side.acked, "an ack named another seq"
            mine = [r.client_id for r in stored if r.sender_id == side.tab.user.id]
            assert mine == side.written, "a sender's messages out of the order written"
            assert [side.view[s]["client_id"] for s in sorted(side.view)] == [
                r.client_id for r in stored
            ], "a side's view is not the stored transcript"
    chatters = [side for pair in pairs for side in pair]
    return Stored(
        written=sum(len(c.written) for c in chatters),
        acked=sum(len(c.acked) for c in chatters),
        resent=sum(c.resent for c in chatters),
        stored=len(found),
        lost=lost,
        doubled=doubled,
    )


async def open_chats(
    http: Http, doctors: list[Tab], patients: list[Tab], specialty: str, form: str = "chat"
) -> list[tuple[Chatter, Chatter]]:
    """Each doctor takes one patient's consultation (a chat, or a call of ``form``): the
    doctors go online (one each), the patients join, and each doctor accepts the offer found
    among their open consultations. Returns (patient, doctor) chatters per consultation."""
    online = {"specialties": [specialty], "forms": sorted({"chat", form}), "capacity": 1}
    for ack in await asyncio.gather(*(d.call("presence:online", online) for d in doctors)):
        assert ack["ok"], ack
    joined = await asyncio.gather(
        *(
            http.call(
                p.user,
                "POST",
                "/api/consultations",
                {"specialty": specialty, "form": form},
                expect=201,
            )
            for p in patients
        )
    )
    patient_of = {j["consultation"]["id"]: tab for j, tab in zip(joined, patients, strict=True)}
    pairs = await asyncio.gather(*(_accept_one(http, d, patient_of) for d in doctors))
    return list(pairs)


async def _accept_one(
    http: Http, doctor: Tab, patient_of: dict[int, Tab]
) -> tuple[Chatter, Chatter]:
    deadline = time.monotonic() + 30
    while True:
        found = await http.call(doctor.user, "GET", "/api/consultations/open")
        offered = [c["id"] for c in found["consultations"] if c["status"] == "offered"]
        if offered:
            break
        assert time.monotonic() < deadline, f"doctor {doctor.user.id} was offered nobody"
        await asyncio.sleep(0.2)
    ack = await doctor.call("queue:accept", {"consultation_id": offered[0]})
    assert ack["ok"], ack
    return Chatter(patient_of[offered[0]], offered[0]), Chatter(doctor, offered[0])


async def chats_through_haproxy(
    url: str, database_url: str, http: Http, count: int, specialty: str
) -> tuple[list[Tab], list[tuple[Chatter, Chatter]]]:
    """``count`` new patients and doctors of ``specialty``, connected through HAProxy at
    ``url``, each doctor in a chat with one patient: every tab (patients first) and the pairs."""
    patients = await add_users(database_url, "patient", count)
    doctors = await add_users(database_url, "doctor", count, specialty)
    tabs = await open_tabs(url, patients + doctors, lambda tab: None)
    try:
        return tabs, await open_chats(http, tabs[count:], tabs[:count], specialty)
    except BaseException:
        await asyncio.gather(*(tab.close() for tab in tabs))
        raise
