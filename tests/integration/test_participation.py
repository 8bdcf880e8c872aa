"""Who may read a consultation: every doctor who accepted it (``consultation_doctors``), never
a doctor only offered it. An interrupted consultation offered to a second doctor shows them
nothing until they accept; the first doctor, who wrote in it, keeps reading it afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from consult.storage import tables as t
from consult.storage.migrate import upgrade
from tests import backends
from tests.integration.test_platform import downgrade
from tests.integration.test_queue import IM, dropped, sweep
from tests.support import ApiClient, SocketClient, png, rows, start_and_accept


async def upload_png(client: ApiClient) -> dict:
    form = aiohttp.FormData()
    form.add_field("description", "Rash, day 3")
    form.add_field("file", png(), filename="rash.png", content_type="application/octet-stream")
    return await client.call("POST", "/api/documents", data=form, expect=201)


async def refused(client: ApiClient, ws: SocketClient, cid: int, doc: int, patient: int) -> None:
    """Nothing of the consultation, the shared document or the patient's record, by any route."""
    for path in (
        f"/api/consultations/{cid}",
        f"/api/consultations/{cid}/messages",
        f"/api/documents/{doc}/content",
    ):
        body = await client.call("GET", path, expect=403)
        assert body["error"]["code"] in ("not_participant", "not_your_document"), (path, body)
    for path in (f"/api/patients/{patient}/record", f"/api/patients/{patient}/documents"):
        body = await client.call("GET", path, expect=404)
        assert body["error"]["code"] == "patient_not_found", (path, body)
    resumed = await ws.emit("chat:resume", {"consultation_id": cid, "after_seq": 0})
    assert resumed["error"]["code"] == "not_participant"


async def readable(client: ApiClient, cid: int, doc: int, patient: int) -> None:
    assert (await client.call("GET", f"/api/consultations/{cid}"))["id"] == cid
    transcript = (await client.call("GET", f"/api/consultations/{cid}/messages"))["messages"]
    assert [m["body"] for m in transcript if not m.get("document")] == ["How long has it itched?"]
    async with client.session.get(
        f"{client.base_url}/api/documents/{doc}/content",
        headers={"Authorization": f"Bearer {client.token}"},
    ) as response:
        assert response.status == 200 and await response.read() == png()
    record = await client.call("GET", f"/api/patients/{patient}/record")
    assert [e["consultation"]["id"] for e in record["entries"]] == [cid]


async def test_an_offered_doctor_reads_nothing_and_the_first_doctor_keeps_reading(
    api, sockets, server, clock, database_url
):
    house = await api("dr.house@demo.test")
    house_ws = await sockets(house.token)
    await house_ws.emit("presence:online", IM)
    anna = await api("anna@demo.test")
    anna_id = anna.user["id"]
    cid = await start_and_accept(anna, house_ws, "internal-medicine")
    doc = (await upload_png(anna))["id"]
    await anna.call(
        "POST",
        f"/api/consultations/{cid}/documents",
        {"document_id": doc, "client_id": "share-1"},
        expect=201,
    )
    sent = await house_ws.emit(
        "chat:send",
        {"consultation_id": cid, "client_id": "q-1", "body": "How long has it itched?"},
    )
    assert sent["ok"], sent

    # Dr House's console is gone for the grace period: the consultation is interrupted.
    await dropped(house_ws, database_url, t.doctor_presence, "disconnected_at")
    clock.advance(31)
    await sweep(server)
    # Dr Grey is offered it: before accepting she sees none of it.
    grey = await api("dr.grey@demo.test")
    grey_ws = await sockets(grey.token)
    await grey_ws.emit("presence:online", IM)
    assert (await grey_ws.next("queue:offer"))["consultation"]["id"] == cid
    await refused(grey, grey_ws, cid, doc, anna_id)
    # Every refusal is in the audit log.
    denied = await rows(
        database_url,
        t.audit_log,
        t.audit_log.c.actor_id == grey.user["id"],
        sa.not_(t.audit_log.c.allowed),
    )
    assert len(denied) >= 6
    # Meanwhile Dr House, who accepted and wrote in it, still reads it all.
    await readable(house, cid, doc, anna_id)

    # Once Dr Grey accepts, she reads it all too, and so does Dr House still.
    assert (await grey_ws.emit("queue:accept", {"consultation_id": cid}))["ok"]
    await readable(grey, cid, doc, anna_id)
    await readable(house, cid, doc, anna_id)
    # But only the doctor consulting now acts in it.
    late = await api("dr.house@demo.test")
    late_ws = await sockets(late.token)
    sent = await late_ws.emit(
        "chat:send", {"consultation_id": cid, "client_id": "q-2", "body": "Still there?"}
    )
    assert sent["error"]["code"] == "not_participant"
    accepted = await rows(database_url, t.consultation_doctors)
    assert sorted((r.consultation_id, r.doctor_id) for r in accepted) == sorted(
        [(cid, house.user["id"]), (cid, grey.user["id"])]
    )


async def test_the_record_leaves_out_cancelled_consultations(
    api, sockets, server, clock, database_url
):
    """An interrupted consultation whose patient never came back is cancelled: her record
    (and a doctor's view of it) leaves it out, as protocol.md says."""
    house = await api("dr.house@demo.test")
    house_ws = await sockets(house.token)
    await house_ws.emit("presence:online", IM)
    anna = await api("anna@demo.test")
    anna_ws = await sockets(anna.token)
    cid = await start_and_accept(anna, house_ws, "internal-medicine")
    await dropped(house_ws, database_url, t.doctor_presence, "disconnected_at")
    clock.advance(31)
    await sweep(server)
    await dropped(anna_ws, database_url, t.consultations, "patient_disconnected_at")
    clock.advance(61)
    await sweep(server)
    assert (await anna.call("GET", f"/api/consultations/{cid}"))["status"] == "cancelled"
    assert (await anna.call("GET", "/api/patients/me/record"))["entries"] == []
    mine = await house.call("GET", f"/api/patients/{anna.user['id']}/record")
    assert mine["entries"] == []


@pytest.fixture(params=backends.BACKENDS)
def database_at_0009(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of its own, migrated up to 0009 only."""
    yield from backends.database_at(request.param, "0009", tmp_path)


async def test_migration_0010_keeps_every_doctor_who_accepted(database_at_0009):
    """0010 fills ``consultation_doctors`` from the consultations a doctor holds (active or
    ended) and from the audit log's accepts (a consultation interrupted since names nobody, or
    the doctor it is offered to now, who is left out)."""
    now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    url = database_at_0009
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(t.specialties.insert().values(code="im", name="Internal"))
            for uid in (1, 2, 3, 5, 6):
                await conn.execute(
                    t.users.insert().values(
                        id=uid,
                        email=f"u{uid}@migration.test",
                        password_hash="x",
                        role="doctor" if uid >= 5 else "patient",
                        identity="verified",
                        name=f"user {uid}",
                        created_at=now,
                    )
                )
            ticket = {"specialty_code": "im", "form": "chat", "created_at": now, "rank_at": now}
            for cid, status, doctor in (
                (1, "ended", 5),  # accepted by 5 and ended
                (2, "offered", 6),  # accepted by 5, interrupted, offered to 6 now
                (3, "offered", 6),  # offered to 6, never accepted
            ):
                await conn.execute(
                    t.consultations.insert().values(
                        id=cid, patient_id=cid, status=status, doctor_id=doctor, **ticket
                    )
                )
            for cid in (1, 2):
                await conn.execute(
                    t.audit_log.insert().values(
                        at=now,
                        actor_id=5,
                        actor_role="doctor",
                        action="consultation.accept",
                        consultation_id=cid,
                        allowed=True,
                    )
                )
        await engine.dispose()
        backends.off_loop(upgrade, url, "0010")
        async with engine.connect() as conn:
            kept = (await conn.execute(sa.select(t.consultation_doctors))).all()
        assert sorted((r.consultation_id, r.doctor_id) for r in kept) == [(1, 5), (2, 5)]
        await engine.dispose()
        backends.off_loop(downgrade, url, "0009")
        backends.off_loop(upgrade, url, "head")
    finally:
        await engine.dispose()
