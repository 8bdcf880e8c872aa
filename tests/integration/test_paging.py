"""Transcripts and the record read a page at a time, on each backend: the pages over HTTP and
Socket.IO, the cursor walking a long record, the rest of a long transcript through the record,
and a record page costing the same statements for 5 consultations as for 500."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from consult.domain import Actor, Identity, Role
from consult.http.routing import SERVICES
from consult.storage import tables as t
from tests.support import ApiClient, SocketClient, rows, start_and_accept

IM = {"specialties": ["internal-medicine"], "forms": ["chat"]}


async def house_and_anna(api: Any, sockets: Any) -> tuple[ApiClient, SocketClient, ApiClient, int]:
    house = await api("dr.house@demo.test")
    house_ws = await sockets(house.token)
    assert (await house_ws.emit("presence:online", IM))["ok"]
    anna = await api("anna@demo.test")
    cid = await start_and_accept(anna, house_ws, "internal-medicine")
    return house, house_ws, anna, cid


async def seed_messages(database_url: str, cid: int, sender: int, count: int) -> None:
    """``count`` messages (seq 1…count) stored straight into the consultation."""
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            now = (await conn.execute(sa.select(t.consultations.c.created_at))).scalars().first()
            await conn.execute(
                t.messages.insert(),
                [
                    {
                        "consultation_id": cid,
                        "seq": seq,
                        "sender_id": sender,
                        "client_id": f"seed-{seq}",
                        "body": f"message {seq}",
                        "created_at": now,
                    }
                    for seq in range(1, count + 1)
                ],
            )
            await conn.execute(
                t.consultations.update().where(t.consultations.c.id == cid).values(last_seq=count)
            )
    finally:
        await engine.dispose()


async def seed_record(database_url: str, patient: int, doctor: int, count: int) -> None:
    """``count`` ended consultations of ``patient`` with ``doctor``, each with a few messages,
    a recommendation, a form, a follow-up question and a recording: every part of an entry."""
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            start = await conn.execute(sa.select(sa.func.max(t.consultations.c.created_at)))
            at = start.scalar_one()
            ids = (
                await conn.execute(
                    t.consultations.insert().returning(t.consultations.c.id),
                    [
                        {
                            "patient_id": patient,
                            "doctor_id": doctor,
                            "specialty_code": "internal-medicine",
                            "form": "chat",
                            "status": "ended",
                            "created_at": at - timedelta(days=1),
                            "started_at": at - timedelta(days=1),
                            "ended_at": at - timedelta(days=1) + timedelta(minutes=10),
                            "last_seq": 3,
                        }
                        for _ in range(count)
                    ],
                )
            ).scalars()
            ids = list(ids)
            day = at - timedelta(days=1)
            per = [(cid, seq) for cid in ids for seq in (1, 2, 3)]
            await conn.execute(
                t.messages.insert(),
                [
                    {
                        "consultation_id": cid,
                        "seq": seq,
                        "sender_id": patient if seq % 2 else doctor,
                        "client_id": f"s{seq}",
                        "body": f"{cid}:{seq}",
                        "created_at": day,
                    }
                    for cid, seq in per
                ],
            )
            common = {"patient_id": patient, "doctor_id": doctor}
            await conn.execute(
                t.recommendations.insert(),
                [{"consultation_id": c, "text": "rest", "created_at": day, **common} for c in ids],
            )
            await conn.execute(
                t.follow_ups.insert(),
                [{"consultation_id": c, "question": "ok?", "asked_at": day, **common} for c in ids],
            )
            await conn.execute(
                t.consultation_forms.insert(),
                [{"consultation_id": c, "form": "chat", "started_at": day} for c in ids],
            )
            await conn.execute(
                t.recordings.insert(),
                [
                    {
                        "consultation_id": c,
                        "status": "failed",
                        "started_at": day,
                        "stored_name": f"r{c}",
                    }
                    for c in ids
                ],
            )
    finally:
        await engine.dispose()


async def page_statements(server: Any, actor: Actor, patient_id: int) -> list[str]:
    """The statements one record page runs (those of this task only: the server's background
    work runs its own)."""
    services = server.app[SERVICES]
    me = asyncio.current_task()
    seen: list[str] = []

    def observe(name: str, _seconds: float) -> None:
        if asyncio.current_task() is me:
            seen.append(name)

    services.db.statements.observers.append(observe)
    try:
        page = await services.records.record(actor, patient_id)
    finally:
        services.db.statements.observers.remove(observe)
    assert page.entries
    return seen


async def test_a_record_page_runs_the_same_statements_for_5_and_for_500_consultations(
    api, sockets, server, database_url
):
    house, _, anna, _ = await house_and_anna(api, sockets)
    pid, did = anna.user["id"], house.user["id"]
    patient = Actor(pid, Role.PATIENT, Identity.VERIFIED, "Anna")
    doctor = Actor(did, Role.DOCTOR, Identity.VERIFIED, "House")
    await seed_record(database_url, pid, did, 4)
    few = [await page_statements(server, who, pid) for who in (patient, doctor)]
    await seed_record(database_url, pid, did, 495)
    many = [await page_statements(server, who, pid) for who in (patient, doctor)]
    assert many == few
    # One statement per kind of thing (packages: two, with their prescriptions), for the page.
    assert len(few[1]) <= 16, few[1]


async def test_the_record_is_walked_newest_first_with_the_next_cursor(api, sockets, database_url):
    house, _, anna, _ = await house_and_anna(api, sockets)
    pid = anna.user["id"]
    await seed_record(database_url, pid, house.user["id"], 60)
    everything = sorted((r.id for r in await rows(database_url, t.consultations)), reverse=True)
    first = await anna.call("GET", "/api/patients/me/record")
    ids = [e["consultation"]["id"] for e in first["entries"]]
    assert ids == everything[:20]
    assert first["next"] == ids[-1]
    entry = first["entries"][1]
    assert [m["body"] for m in entry["transcript"]] == [f"{ids[1]}:{s}" for s in (1, 2, 3)]
    assert entry["transcript_has_more"] is False
    assert len(entry["recommendations"]) == len(entry["follow_ups"]) == 1
    assert len(entry["forms"]) == len(entry["recordings"]) == 1

    walked, cursor = list(ids), first["next"]
    while cursor is not None:
        page = await house.call("GET", f"/api/patients/{pid}/record?before={cursor}&limit=50")
        walked += [e["consultation"]["id"] for e in page["entries"]]
        cursor = page["next"]
    assert walked == everything

    for query, code in [
        ("limit=0", "invalid_limit"),
        ("limit=51", "invalid_limit"),
        ("limit=x", "invalid_limit"),
        ("before=0", "invalid_before"),
        ("before=2147483648", "invalid_before"),
        ("before=%C2%B2", "invalid_before"),
    ]:
        body = await anna.call("GET", f"/api/patients/me/record?{query}", expect=400)
        assert body["error"]["code"] == code, query
    reads = await rows(database_url, t.audit_log, t.audit_log.c.action == "record.read")
    assert [r.allowed for r in reads].count(True) == 1 + (len(walked) - 20 + 49) // 50


async def test_the_transcript_is_read_in_pages_over_http_and_socketio(api, sockets, database_url):
    house, house_ws, anna, cid = await house_and_anna(api, sockets)
    await seed_messages(database_url, cid, anna.user["id"], 450)
    path = f"/api/consultations/{cid}/messages"

    first = await house.call("GET", path)
    assert [m["seq"] for m in first["messages"]] == list(range(1, 201))
    assert first["has_more"] is True
    seqs, after, more = [], 0, True
    while more:
        page = await house.call("GET", f"{path}?after={after}&limit=150")
        seqs += [m["seq"] for m in page["messages"]]
        after, more = page["messages"][-1]["seq"], page["has_more"]
    assert seqs == list(range(1, 451))
    whole = await house.call("GET", f"{path}?limit=500")
    assert len(whole["messages"]) == 450 and whole["has_more"] is False
    last = await house.call("GET", f"{path}?after=450")
    assert last == {"messages": [], "has_more": False}
    for query in ("limit=0", "limit=501", "limit=-1", "limit=", "limit=1.5"):
        body = await house.call("GET", f"{path}?{query}", expect=400)
        assert body["error"]["code"] == "invalid_limit", query

    resumed = (await house_ws.emit("chat:resume", {"consultation_id": cid, "after_seq": 100}))[
        "data"
    ]
    assert [m["seq"] for m in resumed["messages"]] == list(range(101, 301))
    assert resumed["has_more"] is True and resumed["last_seq"] == 450
    rest = await house_ws.emit(
        "chat:resume", {"consultation_id": cid, "after_seq": 300, "limit": 500}
    )
    assert [m["seq"] for m in rest["data"]["messages"]] == list(range(301, 451))
    assert rest["data"]["has_more"] is False
    for limit in (0, 501, "5", 2.5):
        refused = await house_ws.emit("chat:resume", {"consultation_id": cid, "limit": limit})
        assert refused["error"]["code"] == "invalid_payload", limit

    reads = await rows(
        database_url, t.audit_log, t.audit_log.c.action == "chat.read", t.audit_log.c.allowed
    )
    assert len(reads) == 1 + 3 + 1 + 1 + 2  # one row for each page read


async def test_a_long_transcript_is_read_whole_through_the_record(api, sockets, database_url):
    house, _, anna, cid = await house_and_anna(api, sockets)
    await seed_messages(database_url, cid, anna.user["id"], 260)
    pid = anna.user["id"]
    (entry,) = (await anna.call("GET", "/api/patients/me/record"))["entries"]
    assert [m["seq"] for m in entry["transcript"]] == list(range(1, 51))
    assert entry["transcript_has_more"] is True

    path = f"/api/patients/{pid}/record/{cid}/messages"
    for reader in (anna, house):
        page = await reader.call("GET", f"{path}?after=50")
        assert [m["seq"] for m in page["messages"]] == list(range(51, 251)) and page["has_more"]
        page = await reader.call("GET", f"{path}?after=250")
        assert [m["seq"] for m in page["messages"]] == list(range(251, 261))
        assert page["has_more"] is False

    piotr = await api("piotr@demo.test")
    refused = await piotr.call("GET", path, expect=404)
    assert refused["error"]["code"] == "patient_not_found"
    grey = await api("dr.grey@demo.test")
    assert (await grey.call("GET", path, expect=404))["error"]["code"] == "patient_not_found"
    other = f"/api/patients/{piotr.user['id']}/record/{cid}/messages"
    missing = await piotr.call("GET", other, expect=404)
    assert missing["error"]["code"] == "consultation_not_found"
    bad = await anna.call("GET", f"{path}?limit=501", expect=400)
    assert bad["error"]["code"] == "invalid_limit"

    audit = t.audit_log.c
    reads = await rows(database_url, t.audit_log, audit.action == "record.read")
    assert [(r.actor_id, r.consultation_id, r.allowed) for r in reads if r.consultation_id] == [
        (pid, cid, True),
        (pid, cid, True),
        (house.user["id"], cid, True),
        (house.user["id"], cid, True),
    ]
    assert sum(not r.allowed for r in reads) == 2  # Piotr's and Dr Grey's
